"""Instructions per request: LM Bridge against the floor, counted, not timed.

Timings on a shared machine are noisy; instruction counts are not. This
runs the fake upstream, a proxy (LM Bridge's `ProxyServer` on the bench's
config, or the floor relay) and an aiohttp client in ONE process under
valgrind's callgrind, twice: with N and with 2N timed requests after the
same warm-up; the difference over N is the instructions one request costs
all three. (Not 0 and N: work that happens once after the warm-up, such as
a burst of 47M instructions in OpenSSL seen in LM Bridge's process, would
count as ~157k a request at N = 300.) Work on a timer (the request
history's flush, once a second) is counted per second of a run that
valgrind makes ~50x slower: small, and in both runs alike. The fake and
the client cost the same either way, so LM Bridge
minus floor is what LM Bridge adds over a bare relay. Use it to compare
two source trees (`--app`) or to see whether a change pays, not as a time:
a syscall counts as one instruction, a cache miss as nothing.

Run: python bench/count_instructions.py [--kind pass|stream|translate]
         [--n 300] [--app DIR]     (needs valgrind; a few minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
from aiohttp import web

import fake_upstream_server as fake
import floor_relay
import payloads
import procs

BENCH = Path(__file__).resolve().parent
KINDS = {
    "pass": ("/v1/chat/completions", payloads.openai_small),
    "stream": ("/v1/chat/completions", lambda: payloads.openai_small(stream=True)),
    "translate": ("/v1/messages", payloads.anthropic_claude_code),
}
HEADERS = {
    "Content-Type": "application/json",
    "anthropic-version": "2023-06-01",
    "User-Agent": "lmbridge-bench/1",
}
WARM_UP = 20


async def _floor(upstream: str) -> tuple[str, Any]:
    """The floor relay (floor_relay.py's, in this process): its URL and a
    coroutine function that stops it."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    app = floor_relay.floor_app(upstream, session)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()

    async def stop() -> None:
        await runner.cleanup()
        await session.close()

    return f"http://127.0.0.1:{_port(site)}", stop


async def _lmbridge(upstream: str, home: Path) -> tuple[str, Any]:
    from lmbridge import config
    from lmbridge.server.runner import ProxyServer

    cfg = home / "config.toml"
    cfg.write_text(procs.lmbridge_config(upstream))
    settings = config.load(cfg)
    settings.server.port = 0
    server = ProxyServer(settings)
    await server.start()
    return server.url, server.stop


def _port(site: web.TCPSite) -> int:
    server = site._server
    assert server is not None
    return int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]


async def serve_requests(
    kind: str,
    n: int,
    floor: bool,
    home: Path,
    timed: Callable[[bool], None] | None = None,
    warm_up: int = WARM_UP,
) -> None:
    """Fake, proxy and client in this process: warm-up, then `n` requests
    (`timed(True)` before them and `timed(False)` after, if given)."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", fake.chat)
    app.router.add_post("/v1/messages", fake.messages)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    upstream = f"http://127.0.0.1:{_port(site)}"
    url, stop = await (_floor(upstream) if floor else _lmbridge(upstream, home))
    path, body = KINDS[kind][0], KINDS[kind][1]()
    async with aiohttp.ClientSession() as client:
        for i in range(warm_up + n):
            if i == warm_up and timed is not None:
                timed(True)
            async with client.post(url + path, data=body, headers=HEADERS) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{url}{path} answered {r.status}")
        if timed is not None:
            timed(False)
    await stop()
    await runner.cleanup()


def counted(kind: str, n: int, floor: bool, app: Path) -> int:
    """Instructions callgrind counts for a whole run of `n` requests."""
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--run",
        kind,
        str(n),
    ]
    env = {**os.environ, "PYTHONPATH": str(app)}
    if floor:
        env["LMBRIDGE_BENCH_FLOOR"] = "1"
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no count from callgrind: {done.stderr[-500:]}")
    return int(found[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=sorted(KINDS), default="pass")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument(
        "--app", type=Path, default=BENCH.parent / "app", help="LM Bridge's source"
    )
    parser.add_argument("--run", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:  # inside valgrind
        kind, n = args.run[0], int(args.run[1])
        with tempfile.TemporaryDirectory(prefix="lmbridge-count-") as tmp:
            os.environ["LMBRIDGE_HOME"] = tmp
            floor = bool(os.environ.get("LMBRIDGE_BENCH_FLOOR"))
            asyncio.run(serve_requests(kind, n, floor, Path(tmp)))
        return 0
    if shutil.which("valgrind") is None:
        print("count_instructions: valgrind is not installed (apt install valgrind)")
        return 1
    per: dict[str, int] = {}
    for name, floor in (("floor", True), ("lmbridge", False)):
        base = counted(args.kind, args.n, floor, args.app)
        total = counted(args.kind, 2 * args.n, floor, args.app)
        per[name] = (total - base) // args.n
        print(f"{name:9s} {per[name]:>10,} instructions per request", flush=True)
    print(
        f"LM Bridge - floor: {per['lmbridge'] - per['floor']:,} instructions per"
        f" {args.kind} request ({args.app}, n={args.n})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
