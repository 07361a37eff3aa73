"""The X desktop of the desktop tier: Xvfb, openbox and tint2's system tray.

`XSession` starts them on a free display (`-displayfd`) in a private HOME;
`x(...)` runs an X tool (xdotool, xwininfo, xprop) against it and the
helpers read what the X server knows (managed windows, properties, map
state, geometry, the tray selection's owner); `screenshot()` grabs the
screen from the X server (ImageMagick's `import -window root`). `until()`
waits for a condition. See README.md here.
"""

from __future__ import annotations

import ctypes
import os
import re
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# The tools the tier needs; `make sysdeps` installs them (Debian packages
# xvfb, openbox, tint2, xdotool, x11-utils, imagemagick).
TOOLS = ("Xvfb", "openbox", "tint2", "xdotool", "xwininfo", "xprop", "import")
SCREEN = (1280, 800)

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
