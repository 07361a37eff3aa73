"""Setuptools hook: ship the repository's resources/ inside the package.

Everything else is in pyproject.toml. The icons and the .desktop template
live in resources/ at the top of the repository (the GUI and packaging
share them); wheels carry them as lmbridge/resources/..., where
lmbridge.resources.resource() looks first. Adding them to build_py's data
files also puts them in the sdist, so a wheel built from it has them too.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RESOURCES = Path("resources")


def _resource_files(build_lib: str) -> list[tuple[str, str, str, list[str]]]:
    if not RESOURCES.is_dir():
        return []
    names = sorted(
        p.relative_to(RESOURCES).as_posix() for p in RESOURCES.rglob("*") if p.is_file()
    )
    target = str(Path(build_lib, "lmbridge", "resources"))
    return [("lmbridge", str(RESOURCES), target, names)] if names else []


class BuildPyWithResources(build_py):
    """build_py whose data files include resources/ as lmbridge/resources."""

    def _get_data_files(self):  # type: ignore[no-untyped-def]
        return super()._get_data_files() + _resource_files(self.build_lib)

    def get_data_files_without_manifest(self):  # type: ignore[no-untyped-def]
        return super().get_data_files_without_manifest() + _resource_files(
            self.build_lib
        )


setup(cmdclass={"build_py": BuildPyWithResources})
