"""Finding a running LM Studio on this machine.

An address that is configured (`lmstudio.address`, else the upstream's
`base_url`) is the only candidate: LM Bridge talks to the server the user
named, never to another LM Studio that happens to answer elsewhere.
Discovery fills in only where no address is configured. Its candidates, in
order: the port in LM Studio's own server file; the SDK's default API
ports; `127.0.0.1:1234`. Each is probed with `GET /lmstudio-greeting` (the
SDK's own probe). Probes go out together and the first candidate in that
order that answers wins.

LM Studio's home is named by `~/.lmstudio-home-pointer`, else it is
`~/.cache/lm-studio` (older releases) or `~/.lmstudio`; its HTTP server
settings live in `<home>/.internal/http-server-config.json` (`{"port": N}`).

Two environment variables relocate what discovery looks at (the test suite
points them at a temporary directory and at nothing, so it never meets the
LM Studio of the machine it runs on): `LMBRIDGE_DISCOVERY_HOME`, the home
directory searched for LM Studio's files instead of `~`, and
`LMBRIDGE_DISCOVERY_PORTS`, the loopback ports probed instead of the SDK's
and 1234 (comma-separated; empty: none).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
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


ENV_HOME = "LMBRIDGE_DISCOVERY_HOME"
ENV_PORTS = "LMBRIDGE_DISCOVERY_PORTS"


def sdk_default_ports() -> tuple[int, ...]:
    """The ports the installed SDK tries when it is given no address."""
    ports = getattr(lmstudio.AsyncClient, "_DEFAULT_API_PORTS", _KNOWN_SDK_PORTS)
    return tuple(int(p) for p in ports)


def user_home() -> Path:
    """The home directory whose LM Studio files discovery reads."""
    relocated = os.environ.get(ENV_HOME)
    return Path(relocated) if relocated else Path.home()


def relocated_ports() -> tuple[int, ...] | None:
    """The loopback ports `LMBRIDGE_DISCOVERY_PORTS` names (None: unset).

    Set, they replace both the SDK's default ports and the 1234 fallback.
    """
    text = os.environ.get(ENV_PORTS)
    if text is None:
        return None
    ports: list[int] = []
    for item in text.split(","):
        if not item.strip():
            continue
        try:
            port = int(item)
        except ValueError:
            log.warning("%s: not a port number: %r", ENV_PORTS, item.strip())
            continue
        if 0 < port < 65536:
            ports.append(port)
    return tuple(ports)


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
    fallback: str | None = DEFAULT_ADDRESS,
    search: bool = False,
) -> list[Discovery]:
    """Every address worth probing, in priority order, without repeats.

    A configured address is the only candidate unless `search` asks for
    every place LM Studio may be (the setup wizard's "is it running?").
    """
    found: list[Discovery] = []

    def add(addresses: Iterable[str], source: DiscoverySource) -> None:
        for address in addresses:
            if all(c.address != address for c in found):
                found.append(Discovery(address, source))

    if configured:
        add([normalize_address(configured)], DiscoverySource.CONFIGURED)
        if not search:
            return found
    add(
        (f"127.0.0.1:{p}" for p in server_file_ports(home)), DiscoverySource.SERVER_FILE
    )
    relocated = relocated_ports()
    if relocated is not None and sdk_ports is None:
        add((f"127.0.0.1:{p}" for p in relocated), DiscoverySource.SDK_DEFAULT)
        return found
    ports = sdk_default_ports() if sdk_ports is None else sdk_ports
    add((f"127.0.0.1:{p}" for p in ports), DiscoverySource.SDK_DEFAULT)
    if fallback:
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
    fallback: str | None = DEFAULT_ADDRESS,
    search: bool = False,
) -> Discovery | None:
    """The first candidate LM Studio that answers, or None.

    With `configured` set, only it is probed (unless `search`). Probes never
    use HTTP(S)_PROXY (`trust_env=False`): LM Studio is local, and a
    corporate proxy cannot reach this machine's loopback.
    """
    found = candidates(
        configured,
        home=home or user_home(),
        sdk_ports=sdk_ports,
        fallback=fallback,
        search=search,
    )
    async with aiohttp.ClientSession(trust_env=False) as session:
        answers = await asyncio.gather(
            *(probe(session, c.address, probe_timeout) for c in found)
        )
    for candidate, ok in zip(found, answers, strict=True):
        if ok:
            return candidate
    return None
