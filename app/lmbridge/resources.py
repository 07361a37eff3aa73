"""Files shipped beside the code: icons and other resources.

`resource("icons/app.svg")` finds a file in the installed package's data
(`lmbridge/resources/...`, how a wheel carries it) or, in a source checkout,
in `resources/` next to `app/`. Everything that loads a resource goes
through this one function, so packaging can move the files in one place.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dirs() -> tuple[Path, ...]:
    """Where resources are looked for, first match wins."""
    return (
        _PACKAGE / "resources",  # installed: package data in the wheel
        _PACKAGE.parent.parent / "resources",  # source checkout: repo/resources
    )


def resource(path: str) -> Path:
    """The file `path` (relative, with `/`) under the resources directory.

    Raises FileNotFoundError naming every place looked in.
    """
    tried = []
    for base in resource_dirs():
        candidate = base.joinpath(*path.split("/"))
        if candidate.is_file():
            return candidate
        tried.append(str(candidate))
    raise FileNotFoundError(
        f"resource {path!r} not found (looked in {', '.join(tried)}) — "
        "reinstall LM Bridge"
    )
