"""Is LM Studio installed, running, and serving? And its `lms` CLI.

First-run setup asks three questions and answers each without the SDK:

- installed: LM Studio's home directory exists (`~/.lmstudio`, or where
  `~/.lmstudio-home-pointer` says), or its `lms` CLI or app is found;
- running: the app answers the SDK's greeting on one of the addresses
  discovery knows;
- server on: its OpenAI-compatible server answers `GET /v1/models` at the
  upstream's address.

`lms server start` (the CLI LM Studio installs in `<home>/bin`) switches
the server on; `start_server` runs it. Where there is no CLI, `next_step`
says in one line what to click instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp
import msgspec

from .discovery import discover, lmstudio_homes, normalize_address, user_home
from .structs import DEFAULT_ADDRESS

log = logging.getLogger(__name__)

DOWNLOAD_URL = "https://lmstudio.ai"
LMS_NAMES = ("lms", "lms.exe")
START_TIMEOUT = 60.0
CLICK_TO_START = (
    "In LM Studio, open the Developer tab and switch the server on"
    " (Status: Running), then check again."
)


class LMStudioSetup(msgspec.Struct, frozen=True, kw_only=True):
    """What first-run setup found about LM Studio on this machine."""

    installed: bool
    running: bool
    server_on: bool
    server_url: str
    lms: str | None = None
    address: str | None = None  # where the app answered the SDK

    @property
    def ready(self) -> bool:
        return self.server_on

    def next_step(self) -> str:
        """One line: what to do next ("" when LM Studio is ready)."""
        if self.server_on:
            return ""
        if not self.installed:
            return (
                f"LM Studio is not installed: get it from {DOWNLOAD_URL}, open it "
                "once and download a model, then check again."
            )
        if self.lms:
            return (
                "Start LM Studio's server with the button (it runs `lms server start`)."
            )
        if not self.running:
            return "Open LM Studio, then switch its server on in the Developer tab."
        return CLICK_TO_START


def find_lms(home: Path, env: Mapping[str, str] | None = None) -> Path | None:
    """The `lms` CLI: on PATH, else in LM Studio's home (`<home>/bin`)."""
    env = os.environ if env is None else env
    found = shutil.which("lms", path=env.get("PATH"))
    if found:
        return Path(found)
    homes = lmstudio_homes(home) or [home / ".lmstudio"]
    for lms_home in homes:
        for name in LMS_NAMES:
            path = lms_home / "bin" / name
            if path.is_file() and os.access(path, os.X_OK):
                return path
    return None


async def server_answers(url: str, wait: float = 1.5) -> bool:
    """True when an OpenAI-compatible server answers `GET <url>/v1/models`."""
    root = url.rstrip("/").removesuffix("/v1")
    try:
        async with (
            aiohttp.ClientSession(trust_env=False) as session,
            session.get(
                f"{root}/v1/models", timeout=aiohttp.ClientTimeout(total=wait)
            ) as response,
        ):
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


async def check(
    server_url: str,
    *,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
    address: str | None = None,
    sdk_ports: Sequence[int] | None = None,
    fallback: str = DEFAULT_ADDRESS,
) -> LMStudioSetup:
    """Look for LM Studio: installed, running, its server on at `server_url`.
    `sdk_ports` and `fallback` are the addresses discovery probes besides the
    configured one (tests pass closed ones, to be independent of this
    machine's LM Studio)."""
    home = home or user_home()
    lms = find_lms(home, env)
    configured = address or normalize_address(server_url)
    found, server_on = await asyncio.gather(
        discover(
            configured,
            home=home,
            search=True,
            sdk_ports=sdk_ports,
            fallback=fallback,
        ),
        server_answers(server_url),
    )
    installed = bool(lmstudio_homes(home)) or lms is not None
    running = found is not None or server_on
    return LMStudioSetup(
        installed=installed or running,
        running=running,
        server_on=server_on,
        server_url=server_url,
        lms=str(lms) if lms else None,
        address=found.address if found else None,
    )


class StartResult(msgspec.Struct, frozen=True):
    """What `lms server start` did: whether it succeeded, and what it said."""

    ok: bool
    output: str


async def start_server(
    lms: str, port: int | None = None, wait: float = START_TIMEOUT
) -> StartResult:
    """Run `lms server start [--port N]`; its output, capped, says how it went."""
    args = [lms, "server", "start"]
    if port:
        args += ["--port", str(port)]
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        return StartResult(False, f"could not run {lms}: {exc.strerror or exc}")
    try:
        out, _ = await asyncio.wait_for(process.communicate(), wait)
    except TimeoutError:
        process.kill()
        await process.wait()
        return StartResult(False, f"`lms server start` did not finish in {wait:g} s")
    text = out.decode(errors="replace").strip()[-2000:]
    ok = process.returncode == 0
    log.info("lms server start exited with %s: %s", process.returncode, text)
    return StartResult(ok, text or ("done" if ok else f"exit {process.returncode}"))
