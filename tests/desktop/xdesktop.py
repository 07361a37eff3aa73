"""A real X desktop for the desktop tier, and the real app running on it.

- `XSession`: Xvfb on a free display number (`-displayfd`), the openbox
  window manager and a tint2 panel whose system tray embeds icons over
  XEmbed, all in a private HOME. `x(...)` runs an X tool (xdotool,
  xwininfo, xprop) against it; `screenshot()` grabs the screen from the X
  server (ImageMagick's `import -window root`).
- `DesktopApp`: `.venv/bin/lmbridge` started the way `make run` starts it,
  with LMBRIDGE_HOME, HOME and XDG_RUNTIME_DIR in a temporary directory, a
  free proxy port, and the automation hook (`lmbridge.gui.automation`) on a
  socket, so a test can ask where a widget is and click there with
  xdotool. Everything a test checks it reads from the X server.
- `BackgroundFake`: an async fake server (tests/fakes) on its own loop in
  a thread, so the tests can be plain functions that wait with `until()`.

Also used by bench/bench_desktop_memory.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# The tools the tier needs; `make sysdeps` installs them (Debian packages
# xvfb, openbox, tint2, xdotool, x11-utils, imagemagick).
TOOLS = ("Xvfb", "openbox", "tint2", "xdotool", "xwininfo", "xprop", "import")
SCREEN = (1280, 800)
LMBRIDGE = Path(sys.executable).with_name("lmbridge")

# tint2: a task bar and a system tray at the bottom, nothing that changes
# from one screenshot to the next (no clock).
TINT2RC = """\
panel_items = TS
panel_position = bottom center horizontal
panel_size = 100% 32
panel_background_id = 0
taskbar_mode = single_desktop
systray_padding = 6 2 6
systray_icon_size = 22
systray_sort = ascending
"""


class DesktopError(AssertionError):
    """The desktop or the app did not do what the test waited for."""


def missing_tools() -> list[str]:
    """The tools of the tier that are not installed."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def until(
    condition: Callable[[], T | None],
    timeout: float = 15.0,
    what: str = "condition",
    log: Path | None = None,
) -> T:
    """Poll `condition()` until it returns something truthy; return that.
    On a timeout the error quotes the end of `log`, if given."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = (
                log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            )
            raise DesktopError(
                f"timed out after {timeout} s waiting for {what}\n{tail}"
            )
        time.sleep(0.1)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class _X11:
    """The two Xlib calls the session needs: is a selection owned."""

    def __init__(self) -> None:
        lib = ctypes.CDLL("libX11.so.6")
        lib.XOpenDisplay.restype = ctypes.c_void_p
        lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        lib.XInternAtom.restype = ctypes.c_ulong
        lib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        lib.XGetSelectionOwner.restype = ctypes.c_ulong
        lib.XGetSelectionOwner.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
        self.lib = lib

    def selection_owner(self, display: str, selection: str) -> int:
        handle = self.lib.XOpenDisplay(display.encode())
        if not handle:
            return 0
        try:
            atom = self.lib.XInternAtom(handle, selection.encode(), 0)
            return int(self.lib.XGetSelectionOwner(handle, atom))
        finally:
            self.lib.XCloseDisplay(handle)


class XSession:
    """Xvfb + openbox + a tint2 system tray, in `workdir`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.home = workdir / "home"
        self.runtime = workdir / "runtime"
        self.display = ""
        self.procs: list[subprocess.Popen[bytes]] = []

    def _spawn(self, name: str, args: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=self.env(), **kw
        )
        log.close()
        self.procs.append(proc)
        return proc

    def start(self) -> XSession:
        self.home.mkdir(parents=True, exist_ok=True)
        self.runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        read, write = os.pipe()
        try:
            self._spawn(
                "xvfb",
                [
                    "Xvfb",
                    "-displayfd",
                    str(write),
                    "-nolisten",
                    "tcp",
                    "-screen",
                    "0",
                    f"{SCREEN[0]}x{SCREEN[1]}x24",
                ],
                pass_fds=(write,),
            )
            os.close(write)
            said = b""
            while not said.endswith(b"\n"):  # all of it: Xvfb dies on EPIPE
                ready, _, _ = select.select([read], [], [], 15)
                chunk = os.read(read, 64) if ready else b""
                if not chunk:
                    raise DesktopError("Xvfb did not say which display it took")
                said += chunk
            number = said.decode().strip()
        finally:
            os.close(read)
        self.display = f":{number}"
        self._spawn("openbox", ["openbox", "--sm-disable"])
        until(
            self._wm_running,
            what="openbox to manage the screen",
            log=self.workdir / "openbox.log",
        )
        rc = self.workdir / "tint2rc"
        rc.write_text(TINT2RC)
        self._spawn("tint2", ["tint2", "-c", str(rc)])
        until(
            self.tray_owner, what="tint2's system tray", log=self.workdir / "tint2.log"
        )
        return self

    def _wm_running(self) -> bool:
        out = self.x("xprop", "-root", "_NET_SUPPORTING_WM_CHECK", check=False)
        return "window id" in out

    def tray_owner(self) -> int:
        """The window that owns the system tray selection (0: none)."""
        return _X11().selection_owner(self.display, "_NET_SYSTEM_TRAY_S0")

    def env(self, **extra: str) -> dict[str, str]:
        """A clean environment for programs on this display: no session bus
        (Qt then uses the XEmbed tray), no Qt platform override."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_RUNTIME_DIR": str(self.runtime),
            "LANG": "C.UTF-8",
        }
        if self.display:
            env["DISPLAY"] = self.display
        env.update(extra)
        return env

    def x(self, *args: str, check: bool = True) -> str:
        """Run an X tool on this display; its output."""
        done = subprocess.run(
            args, env=self.env(), capture_output=True, text=True, timeout=15
        )
        if check and done.returncode != 0:
            raise DesktopError(f"{' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    # -- what the X server knows --------------------------------------------------

    def client_windows(self) -> list[int]:
        """The windows the window manager manages (_NET_CLIENT_LIST)."""
        out = self.x("xprop", "-root", "_NET_CLIENT_LIST", check=False)
        return [int(w, 16) for w in re.findall(r"0x[0-9a-f]+", out)]

    def prop(self, window: int, name: str) -> str:
        """A window property as xprop prints its value ('' if unset)."""
        out = self.x("xprop", "-id", str(window), name, check=False)
        _, sep, value = out.partition(" = ")
        return value.strip() if sep else ""

    def title(self, window: int) -> str:
        return self.prop(window, "_NET_WM_NAME").strip('"')

    def info(self, window: int) -> dict[str, str]:
        """xwininfo's fields ("Map State", "Absolute upper-left X", "Width")."""
        out = self.x("xwininfo", "-id", str(window), check=False)
        fields = {}
        for line in out.splitlines():
            key, sep, value = line.strip().partition(": ")
            if sep:
                fields[key] = value.strip()
        return fields

    def viewable(self, window: int) -> bool:
        return self.info(window).get("Map State") == "IsViewable"

    def center(self, window: int) -> tuple[int, int]:
        f = self.info(window)
        return (
            int(f["Absolute upper-left X"]) + int(f["Width"]) // 2,
            int(f["Absolute upper-left Y"]) + int(f["Height"]) // 2,
        )

    def children(self, window: int) -> list[int]:
        """Every window below `window` (xwininfo -tree)."""
        out = self.x("xwininfo", "-id", str(window), "-tree", check=False)
        return [int(w, 16) for w in re.findall(r"^\s+(0x[0-9a-f]+) ", out, re.M)]

    def active_window(self) -> int:
        out = self.x("xdotool", "getactivewindow", check=False).strip()
        return int(out) if out.isdigit() else 0

    def screenshot(self, path: Path) -> Path:
        """The whole screen, as the X server has it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.x("import", "-window", "root", str(path))
        return path

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


def lmstudio_config(port: int, lmstudio_url: str) -> str:
    """A config.toml: the proxy on `port`, LM Studio at `lmstudio_url`."""
    return f"""\
[server]
port = {port}

[[upstream]]
name = "lmstudio"
kind = "lmstudio"
base_url = "{lmstudio_url}"
"""


class DesktopApp:
    """The real `lmbridge` on an `XSession`.

    `config`: the text of config.toml, or None for a first start (no
    settings file: the first-run wizard opens). `port` is the proxy's port
    in that config (`free_port()`).
    """

    def __init__(
        self, session: XSession, workdir: Path, port: int, config: str | None
    ) -> None:
        self.session = session
        self.port = port
        self.lmbridge_home = workdir / "lmbridge-home"
        self.lmbridge_home.mkdir(parents=True, exist_ok=True)
        if config is not None:
            (self.lmbridge_home / "config.toml").write_text(config)
        self.socket_path = str(workdir / "automation.sock")
        self.stdout = workdir / "app.stdout"
        self.stderr = workdir / "app.stderr"
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return self.session.env(
            LMBRIDGE_HOME=str(self.lmbridge_home),
            LMBRIDGE_AUTOMATION=self.socket_path,
            PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        )

    def start(self) -> DesktopApp:
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [str(LMBRIDGE)], env=self.env(), stdout=out, stderr=err
            )
        until(
            lambda: self.poll_running() and os.path.exists(self.socket_path),
            timeout=30,
            what="the app's automation socket",
        )
        return self

    def launch_again(self) -> subprocess.CompletedProcess[str]:
        """A second `lmbridge`, as a user starting it again from the menu."""
        return subprocess.run(
            [str(LMBRIDGE)], env=self.env(), capture_output=True, text=True, timeout=30
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def poll_running(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise DesktopError(f"the app is not running; its stderr:\n{self.errors()}")
        return True

    # -- through the automation hook (where things are) -----------------------

    def ask(self, **request: Any) -> dict[str, Any]:
        """One request to the automation hook."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(self.socket_path)
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        answer: dict[str, Any] = json.loads(data)
        if not answer.get("ok"):
            raise DesktopError(f"automation {request}: {answer.get('error')}")
        return answer

    def visible(self, **query: Any) -> dict[str, Any] | None:
        """The first visible widget a `find` (or `item`) query names."""
        op = "item" if "view" in query else "find"
        found = [w for w in self.ask(op=op, **query)["widgets"] if w["visible"]]
        return found[0] if found else None

    def click(self, button: int = 1, **query: Any) -> None:
        """Click, with real X input, in the middle of a visible widget."""
        widget = until(lambda: self.visible(**query), what=f"a visible {query}")
        x, y = widget["x"] + widget["w"] // 2, widget["y"] + widget["h"] // 2
        self.session.x("xdotool", "mousemove", str(x), str(y), "click", str(button))

    def modules(self, prefix: str) -> list[str]:
        return list(self.ask(op="modules", prefix=prefix)["modules"])

    # -- what the X server knows about the app ------------------------------

    def main_window(self) -> int:
        """The app's managed window titled "LM Bridge" (0: none mapped)."""
        for window in self.session.client_windows():
            if self.session.prop(window, "_NET_WM_PID") == str(self.pid) and (
                self.session.title(window) == "LM Bridge"
            ):
                return window
        return 0

    def tray_icon(self) -> int:
        """The app's icon window inside the tray host (0: not embedded)."""
        owner = self.session.tray_owner()
        tint2 = [
            w
            for w in self.session.client_windows()
            if "tint2" in self.session.prop(w, "WM_CLASS")
        ]
        for host in {owner, *tint2}:
            for window in self.session.children(host):
                if self.session.prop(window, "WM_CLASS") == '"lmbridge", "LM Bridge"':
                    return window
        return 0

    # -- the end ---------------------------------------------------------------

    def wait_exit(self, timeout: float = 10) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """SIGTERM (the app's own shutdown path), SIGKILL after 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise DesktopError("the app did not quit within 10 s of SIGTERM") from None

    def log_text(self) -> str:
        path = self.lmbridge_home / "logs" / "lmbridge.log"
        return path.read_text() if path.exists() else ""

    def errors(self) -> str:
        return self.stderr.read_text() if self.stderr.exists() else ""

    def problems(self, allowed: tuple[str, ...] = ()) -> list[str]:
        """ERROR lines of the log, and anything on stderr (Qt's warnings,
        tracebacks, the app's own warnings), but the `allowed` substrings."""
        lines = [ln for ln in self.log_text().splitlines() if " ERROR " in ln]
        lines += [ln for ln in self.errors().splitlines() if ln.strip()]
        return [ln for ln in lines if not any(a in ln for a in allowed)]


class BackgroundFake:
    """Runs the coroutines of an async fake on a loop in its own thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 15) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        with contextlib.suppress(RuntimeError):
            self.loop.close()


@contextlib.contextmanager
def running_fake_lmstudio() -> Iterator[Any]:
    """tests/fakes' LM Studio, listening on a free port, for a plain test."""
    from fakes.lmstudio_server import FakeLMStudio

    async def started() -> FakeLMStudio:
        fake = FakeLMStudio()  # made on the loop it serves on
        await fake.start()
        return fake

    background = BackgroundFake()
    try:
        fake = background.run(started())
        try:
            yield fake
        finally:
            background.run(fake.stop())
    finally:
        background.close()
