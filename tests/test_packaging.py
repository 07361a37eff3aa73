"""The things users install: the PyInstaller bundle, the wheel and the sdist.

Slow (a bundle build is about a minute, a wheel install half of one), so
marked `bundle`: `pytest -m "not bundle"` leaves them out locally; `make
test` and CI run them. The bundle is built from packaging/lmbridge.spec into
a temporary folder and started headless; the wheel is installed with plain
pip into a fresh venv, as `pipx install .` would.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lmbridge import __version__

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "lmbridge.spec"

pytestmark = [pytest.mark.bundle, pytest.mark.timeout(900)]


def require(module: str) -> None:
    """Skip without the packaging tools, except in CI, where that is a failure."""
    if importlib.util.find_spec(module) is None:
        message = f"{module} is not installed (pip install -e '.[packaging]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LMBRIDGE_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["LMBRIDGE_HOME"] = str(tmp / "lmbridge-home")
    env.update(extra)
    return env


def run(
    command: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@contextlib.contextmanager
def serving(command: list[str], env: dict[str, str]) -> Iterator[int]:
    """Run `command serve --port N` until the block ends; yields N."""
    port = free_port()
    proc = subprocess.Popen(
        [*command, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        assert proc.returncode == 0, (out, err)
        assert "LM Bridge stopped" in out


def health(port: int, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/health", timeout=5
            ) as response:
                data: dict[str, object] = json.loads(response.read())
                return data
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# -- the PyInstaller bundle ----------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the bundle once; the path of its executable."""
    require("PyInstaller")
    out = tmp_path_factory.mktemp("bundle")
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--distpath",
            str(out / "dist"),
            "--workpath",
            str(out / "build"),
            str(SPEC),
        ],
        capture_output=True,
        text=True,
        timeout=840,
        cwd=out,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    print(f"bundle built in {time.monotonic() - started:.0f} s")
    name = "lmbridge-cli.exe" if sys.platform == "win32" else "lmbridge"
    exe = out / "dist" / "lmbridge" / name
    assert exe.is_file()
    return exe


def test_the_bundle_starts_headless_and_answers_health(
    bundle: Path, tmp_path: Path
) -> None:
    env = clean_env(tmp_path)
    assert run([str(bundle), "--version"], env).stdout.strip() == (
        f"lmbridge {__version__}"
    )
    with serving([str(bundle)], env) as port:
        data = health(port)
    assert data["status"] == "ok"
    assert data["version"] == __version__


def test_the_bundle_carries_resources_and_every_command(
    bundle: Path, tmp_path: Path
) -> None:
    shipped = bundle.parent / "_internal" / "lmbridge" / "resources"
    assert (shipped / "icons" / "app.svg").is_file()
    assert (shipped / "lmbridge.desktop").is_file()
    if sys.platform not in ("win32", "darwin"):
        # What the tray app needs from Qt: a platform plugin and SVG icons.
        plugins = bundle.parent / "_internal" / "PySide6" / "Qt" / "plugins"
        assert (plugins / "platforms" / "libqxcb.so").is_file()
        assert (plugins / "platforms" / "libqoffscreen.so").is_file()
        assert (plugins / "iconengines" / "libqsvgicon.so").is_file()
    env = clean_env(tmp_path, XDG_DATA_HOME=str(tmp_path / "data"))
    codex = run([str(bundle), "integrate", "codex"], env)
    assert 'wire_api = "responses"' in codex.stdout, codex.stderr
    logs = run([str(bundle), "logs"], env)
    assert logs.stdout.strip() == str(
        tmp_path / "lmbridge-home" / "logs" / "lmbridge.log"
    )
    if sys.platform not in ("win32", "darwin"):
        desktop = run([str(bundle), "install-desktop"], env)
        assert desktop.returncode == 0, desktop.stderr
        entry = (tmp_path / "data" / "applications" / "lmbridge.desktop").read_text()
        assert f"Exec={bundle}\n" in entry  # the bundle starts itself
        assert (tmp_path / "data" / "icons" / "hicolor" / "scalable" / "apps").is_dir()


# -- the wheel and the sdist -----------------------------------------------------


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require("build")
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [wheel] = out.glob("lmbridge-*.whl")
    [sdist] = out.glob("lmbridge-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_wheel_and_sdist_include_the_resources(dists: dict[str, Path]) -> None:
    icons = sorted(p.name for p in (ROOT / "resources" / "icons").glob("*.svg"))
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        names = set(wheel.namelist())
    assert "lmbridge/py.typed" in names
    assert "lmbridge/resources/lmbridge.desktop" in names
    for icon in icons:
        assert f"lmbridge/resources/icons/{icon}" in names
    assert "lmbridge/gui/app.py" in names
    with tarfile.open(dists["sdist"]) as sdist:
        members = {m.split("/", 1)[1] for m in sdist.getnames() if "/" in m}
    assert "setup.py" in members
    assert "resources/lmbridge.desktop" in members
    for icon in icons:
        assert f"resources/icons/{icon}" in members


def test_a_plain_pip_install_of_the_wheel_works(
    dists: dict[str, Path], tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bindir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    python = bindir / "python"
    env = clean_env(tmp_path, XDG_DATA_HOME=str(tmp_path / "data"))
    install = run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            str(dists["wheel"]),
        ],
        env,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    lmbridge = bindir / "lmbridge"
    assert run([str(lmbridge), "--version"], env).stdout.strip() == (
        f"lmbridge {__version__}"
    )
    where = run(
        [
            str(python),
            "-c",
            "from lmbridge.resources import resource; print(resource('icons/app.svg'))",
        ],
        env,
    )
    assert where.stdout.strip().startswith(str(venv)), where.stderr
    if sys.platform not in ("win32", "darwin"):
        desktop = run([str(lmbridge), "install-desktop"], env)
        assert desktop.returncode == 0, desktop.stderr
    with serving([str(lmbridge)], env) as port:
        assert health(port)["status"] == "ok"
