"""Finding a running LM Studio on this machine.

Candidates, in order: the address from Settings; the port in LM Studio's own
server file; the SDK's default API ports; `127.0.0.1:1234`. Each is probed
with `GET /lmstudio-greeting` (the SDK's own probe). Probes go out together
and the first candidate in that order that answers wins.

LM Studio's home is named by `~/.lmstudio-home-pointer`, else it is
`~/.cache/lm-studio` (older releases) or `~/.lmstudio`; its HTTP server
settings live in `<home>/.internal/http-server-config.json` (`{"port": N}`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import aiohttp
import lmstudio

from .structs import DEFAULT_ADDRESS, Discovery, DiscoverySource

log = logging.getLogger(__name__)

# The ports the SDK probes when given no address (lmstudio 1.5.0's
# `_api_server_ports.default_api_ports`); read from the SDK when it has them.
_KNOWN_SDK_PORTS = (41343, 52993, 16141, 39414, 22931)
SERVER_FILES = (".internal/http-server-config.json", ".internal/http-server.json")
HOME_POINTER = ".lmstudio-home-pointer"
PROBE_PATH = "/lmstudio-greeting"


def sdk_default_ports() -> tuple[int, ...]:
    """The ports the installed SDK tries when it is given no address."""
    ports = getattr(lmstudio.AsyncClient, "_DEFAULT_API_PORTS", _KNOWN_SDK_PORTS)
    return tuple(int(p) for p in ports)


def lmstudio_homes(home: Path) -> list[Path]:
    """LM Studio's home directories for the user whose home is `home`."""
    homes: list[Path] = []
    pointer = home / HOME_POINTER
    try:
        target = pointer.read_text(encoding="utf-8").strip()
    except OSError:
        target = ""
    if target:
        homes.append(Path(target).expanduser())
    homes += [home / ".cache" / "lm-studio", home / ".lmstudio"]
    unique: list[Path] = []
    for path in homes:
        if path.is_dir() and path not in unique:
            unique.append(path)
    return unique


def server_file_ports(home: Path) -> list[int]:
    """Ports named in LM Studio's server files, best guess first."""
    ports: list[int] = []
    for lms_home in lmstudio_homes(home):
        for name in SERVER_FILES:
            path = lms_home / name
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:
                log.warning("cannot read LM Studio server file %s: %s", path, exc)
                continue
            port = data.get("port") if isinstance(data, dict) else None
            if isinstance(port, int) and 0 < port < 65536 and port not in ports:
                ports.append(port)
    return ports


def candidates(
    configured: str | None,
    *,
    home: Path,
    sdk_ports: Sequence[int] | None = None,
    fallback: str = DEFAULT_ADDRESS,
) -> list[Discovery]:
    """Every address worth probing, in priority order, without repeats."""
    found: list[Discovery] = []

    def add(addresses: Iterable[str], source: DiscoverySource) -> None:
        for address in addresses:
            if all(c.address != address for c in found):
                found.append(Discovery(address, source))

    if configured:
        add([normalize_address(configured)], DiscoverySource.CONFIGURED)
    add(
        (f"127.0.0.1:{p}" for p in server_file_ports(home)), DiscoverySource.SERVER_FILE
    )
    ports = sdk_default_ports() if sdk_ports is None else sdk_ports
    add((f"127.0.0.1:{p}" for p in ports), DiscoverySource.SDK_DEFAULT)
    add([normalize_address(fallback)], DiscoverySource.FALLBACK)
    return found


def normalize_address(address: str) -> str:
    """`http://host:port/...`, `ws://host:port` or `host:port` -> `host:port`."""
    text = address.strip()
    for scheme in ("http://", "https://", "ws://", "wss://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
            break
    return text.split("/", 1)[0]


async def probe(
    session: aiohttp.ClientSession, address: str, wait: float = 0.5
) -> bool:
    """True when an LM Studio API server answers the greeting at `address`."""
    url = f"http://{address}{PROBE_PATH}"
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=wait)
        ) as response:
            if response.status != 200:
                return False
            data = json.loads(await response.read())
    except (aiohttp.ClientError, TimeoutError, ValueError, OSError):
        return False
    return isinstance(data, dict) and data.get("lmstudio") is True


async def discover(
    configured: str | None = None,
    *,
    home: Path | None = None,
    probe_timeout: float = 0.5,
    sdk_ports: Sequence[int] | None = None,
    fallback: str = DEFAULT_ADDRESS,
) -> Discovery | None:
    """The first candidate LM Studio that answers, or None.

    Probes never use HTTP(S)_PROXY (`trust_env=False`): LM Studio is local,
    and a corporate proxy cannot reach this machine's loopback.
    """
    found = candidates(
        configured, home=home or Path.home(), sdk_ports=sdk_ports, fallback=fallback
    )
    async with aiohttp.ClientSession(trust_env=False) as session:
        answers = await asyncio.gather(
            *(probe(session, c.address, probe_timeout) for c in found)
        )
    for candidate, ok in zip(found, answers, strict=True):
        if ok:
            return candidate
    return None
