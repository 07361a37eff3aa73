"""A busy port, fixed from the GUI: what owns it, and the one-click ways out.

When the proxy cannot listen because its port is taken, `PortDoctor` looks
at the port's owner (`probe_lmbridge`: does it answer LM Bridge's
`/health`?) and shows one condition banner with the fixes the app has:
"Use free port N" (find a free port, save it, start) and, when the owner is
another LM Bridge of this user, "Stop the other LM Bridge" (SIGTERM to the
process listening there, then start). No command-line advice: the banner's
buttons do what `--port` and `server.port_fallback` would.

`upstream_port_reason` is the check the Settings page makes before it
accepts a port: one that an upstream listens on (LM Studio's 1234) is
refused with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from PySide6.QtCore import QObject

from lmbridge import config
from lmbridge.gui import message
from lmbridge.gui.controller import PROXY_CONDITION, ProxyController
from lmbridge.gui.tasks import Tasks

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 1.5
# How long a stopped LM Bridge may take to free its port.
STOP_WAIT = 6.0


def _loopback_or_any(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(host.strip("[]"))
        return address.is_loopback or address.is_unspecified
    return False


def same_host(a: str, b: str) -> bool:
    """Whether two listen / connect hosts meet on this machine's ports."""
    if a == b:
        return True
    return _loopback_or_any(a) and _loopback_or_any(b)


def upstream_addresses(
    upstreams: Iterable[config.UpstreamSettings],
) -> list[tuple[str, str]]:
    """(name, base URL) of each upstream, for `upstream_port_reason`."""
    return [(up.name, up.base_url) for up in upstreams]


def upstream_port_reason(
    host: str, port: int, upstreams: Iterable[tuple[str, str]]
) -> str:
    """Why the proxy cannot take `port` ("" when it can): an upstream
    (name, base URL) on this machine is reached there, so the proxy would
    shadow it."""
    for name, base_url in upstreams:
        parts = urlsplit(base_url)
        try:
            up_port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            continue
        if up_port == port and same_host(host, parts.hostname or ""):
            return (
                f"port {port} is where upstream {name} ({base_url}) "
                "listens — choose another port for LM Bridge"
            )
    return ""


def free_port(host: str, near: int, upstreams: Iterable[tuple[str, str]]) -> int:
    """A port that `host` can listen on now: the first free one after
    `near`, else any the system gives; never an upstream's."""
    upstreams = list(upstreams)
    candidates = [p for p in range(near + 1, near + 50) if 1024 <= p <= 65535]
    for port in [*candidates, 0]:
        if port and upstream_port_reason(host, port, upstreams):
            continue
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError(f"no free port on {host}")


async def probe_lmbridge(host: str, port: int) -> str | None:
    """The version of the LM Bridge answering on host:port (None: it is
    another program, or it does not answer HTTP)."""
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::", ""):
        shown = "127.0.0.1"
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"http://{shown}:{port}/health") as resp,
        ):
            if resp.status != 200:
                return None
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    if isinstance(body, dict) and "upstreams" in body and "version" in body:
        return str(body["version"])
    return None


def listening_pid(port: int, proc: Path = Path("/proc")) -> int | None:
    """The process of this user listening on TCP `port` (Linux; None where
    it cannot be told)."""
    inodes: set[str] = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            lines = (proc / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            listening = len(fields) > 9 and fields[3] == "0A"  # LISTEN
            if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(fd) in inodes:
                    return int(entry.name)
    return None


class PortDoctor(QObject):
    """Offers the fixes for a taken port as the proxy's condition banner."""

    def __init__(self, controller: ProxyController, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self.tasks = Tasks("port")
        self.suggested = 0
        self.other_version: str | None = None
        self.other_pid: int | None = None
        controller.portTaken.connect(self._on_port_taken)

    def _on_port_taken(self, _text: str) -> None:
        self.tasks.cancel()
        self.tasks.start(self.diagnose(), what="Looking at the busy port")

    async def diagnose(self) -> None:
        """Find out who has the port and offer the fixes."""
        asked = self.controller.settings
        server = asked.server
        host, port = server.host, server.port
        upstreams = upstream_addresses(self.controller.settings.upstream)
        self.other_version = await probe_lmbridge(host, port)
        self.other_pid = None
        if self.other_version is not None:
            self.other_pid = await asyncio.to_thread(listening_pid, port)
        self.suggested = await asyncio.to_thread(free_port, host, port, upstreams)
        if self.controller.running or self.controller.settings is not asked:
            return  # started or changed meanwhile (another fix, or the user)
        actions: list[message.Action] = [
            (f"Use free port {self.suggested}", self.use_free_port)
        ]
        if self.other_version is not None:
            owner = f"another LM Bridge ({self.other_version})"
            if self.other_pid is not None:
                actions.append(("Stop the other LM Bridge", self.stop_other))
        else:
            owner = "another program"
        message.condition(
            PROXY_CONDITION,
            message.Level.ERROR,
            f"The proxy is not running: port {port} on {host} is used by {owner}.",
            actions,
        )

    def use_free_port(self) -> None:
        """Save the suggested free port and start the proxy on it."""
        self.tasks.start(self._use_port(self.suggested), what="Moving to a free port")

    async def _use_port(self, port: int) -> None:
        self.controller.save_changes({"server": {"port": port}})
        if await self.controller.start():
            message.info(f"The proxy now runs on {self.controller.url} (saved)")

    def stop_other(self) -> None:
        """Stop the other LM Bridge that holds the port, then start."""
        self.tasks.start(self._stop_other(), what="Stopping the other LM Bridge")

    async def _stop_other(self) -> None:
        pid = self.other_pid
        if pid is None:
            return
        log.info("stopping the LM Bridge (pid %d) that holds the port", pid)
        os.kill(pid, signal.SIGTERM)
        server = self.controller.settings.server
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_WAIT
        while loop.time() < deadline:
            if await probe_lmbridge(server.host, server.port) is None:
                break
            await asyncio.sleep(0.2)
        if await self.controller.start():
            message.info(
                f"Stopped the other LM Bridge; this one runs on {self.controller.url}"
            )

    async def aclose(self) -> None:
        await self.tasks.aclose()
