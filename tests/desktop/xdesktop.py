"""The real app on the desktop tier's X desktop, and the fakes it talks to.

- `DesktopApp`: `.venv/bin/lmbridge` started the way `make run` starts it,
  with LMBRIDGE_HOME, HOME and XDG_RUNTIME_DIR in a temporary directory, a
  free proxy port, and the automation hook (`lmbridge.gui.automation`) on a
  socket, so a test can ask where a widget is and click there with
  xdotool. Everything a test checks it reads from the X server.
- `BackgroundFake`: an async fake server (tests/fakes) on its own loop in
  a thread, so the tests can be plain functions that wait with `until()`.

The X desktop itself is `xsession.XSession`. Also used by
bench/bench_desktop_memory.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from desktop.xsession import (
    DesktopError,
    XSession,
    free_port,
    missing_tools,
    port_is_free,
    until,
)

__all__ = [
    "BackgroundFake",
    "DesktopApp",
    "DesktopError",
    "XSession",
    "free_port",
    "lmstudio_config",
    "missing_tools",
    "port_is_free",
    "running_fake_lmstudio",
    "until",
]

T = TypeVar("T")
LMBRIDGE = Path(sys.executable).with_name("lmbridge")


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
