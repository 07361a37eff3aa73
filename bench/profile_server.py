"""LM Bridge's CPU per request, in-process, with cProfile if asked.

Runs the proxy in this process (the same `ProxyServer` `lmbridge serve`
starts, on the bench's config: one "openai" upstream on the fake) in front
of the fake upstream (its own process), and drives it from a client in a
third process: warm-up, then `--n` requests of one kind, one at a time.
Prints this process's CPU time per request over the timed window (all
threads: the database writer too), and with `--cprofile` the functions
with the most own and inclusive time, per request.

The client is a separate process, so neither its CPU nor a profiler's
view of it lands here; cProfile slows every call it sees, so use its
split, not its totals.

With `--floor`, the same for the floor relay (bench/floor_relay.py), to
set LM Bridge's figures beside it.

Run: python bench/profile_server.py [--kind pass|stream|translate] [--n 2000]
         [--cprofile] [--top 30] [--save FILE.prof] [--floor]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "app"))

import floor_relay
import payloads
import procs

KINDS = {
    "pass": ("/v1/chat/completions", lambda: payloads.openai_small()),
    "stream": ("/v1/chat/completions", lambda: payloads.openai_small(stream=True)),
    "translate": ("/v1/messages", lambda: payloads.anthropic_claude_code()),
}

# The client: reads URL, path, body file, warm-up and count from argv;
# prints "warm" after the warm-up and "done" after the timed requests,
# waiting for a line on stdin after each, so the server can switch its
# profiler on and off outside the window.
CLIENT = r"""
import asyncio, sys, aiohttp
url, path, body_file, warm, n = sys.argv[1:6]
body = open(body_file, "rb").read()
headers = {"Content-Type": "application/json", "anthropic-version": "2023-06-01",
           "User-Agent": "lmbridge-bench/1"}
async def main():
    async with aiohttp.ClientSession() as s:
        async def one():
            async with s.post(url + path, data=body, headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status
        for _ in range(int(warm)):
            await one()
        print("warm", flush=True); sys.stdin.readline()
        for _ in range(int(n)):
            await one()
        print("done", flush=True); sys.stdin.readline()
asyncio.run(main())
"""


class _Floor:
    """The floor relay (floor_relay.py's application) served in this process,
    with the two things `run` uses of a ProxyServer: its URL and `stop`."""

    def __init__(self, runner: Any, session: Any, url: str) -> None:
        self._runner, self._session, self.url = runner, session, url

    async def stop(self) -> None:
        await self._runner.cleanup()
        await self._session.close()


async def _floor(fake_url: str) -> _Floor:
    import aiohttp
    from aiohttp import web

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    runner = web.AppRunner(floor_relay.floor_app(fake_url, session), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return _Floor(runner, session, f"http://127.0.0.1:{port}")


async def _lmbridge(fake_url: str, home: Path) -> Any:
    from lmbridge import config
    from lmbridge.server.runner import ProxyServer

    cfg = home / "config.toml"
    cfg.write_text(procs.lmbridge_config(fake_url))
    settings = config.load(cfg)
    settings.server.port = 0
    server = ProxyServer(settings)
    await server.start()
    return server


async def run(args: argparse.Namespace, home: Path, fake_url: str) -> None:
    server = await (_floor(fake_url) if args.floor else _lmbridge(fake_url, home))
    path, body = KINDS[args.kind]
    body_file = home / "body.json"
    body_file.write_bytes(body())
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLIENT,
        server.url,
        path,
        str(body_file),
        str(args.warm),
        str(args.n),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert client.stdout is not None
    assert client.stdin is not None
    profile = cProfile.Profile() if args.cprofile else None
    await client.stdout.readline()  # warm
    gc0 = [g["collections"] for g in gc.get_stats()]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    client.stdin.write(b"go\n")
    await client.stdout.readline()  # done
    if profile is not None:
        profile.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    collections = [
        g["collections"] - n for g, n in zip(gc.get_stats(), gc0, strict=True)
    ]
    client.stdin.write(b"bye\n")
    await client.wait()
    await server.stop()
    print(
        f"{args.kind}: {args.n} requests, {cpu / args.n * 1e6:.0f} µs CPU and"
        f" {wall / args.n * 1e6:.0f} µs wall per request (this process"
        f"{', profiled' if profile else ''}); garbage collections of"
        f" generations 0/1/2: {'/'.join(map(str, collections))}"
    )
    if profile is not None:
        if args.save:
            profile.dump_stats(args.save)
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumtime").print_stats(args.top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=sorted(KINDS), default="pass")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--warm", type=int, default=200)
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--save", help="write the cProfile stats to this file")
    parser.add_argument("--nice", type=int, default=0)
    parser.add_argument(
        "--floor", action="store_true", help="the floor relay instead of LM Bridge"
    )
    args = parser.parse_args()
    if args.nice:
        os.nice(args.nice)
    with tempfile.TemporaryDirectory(prefix="lmbridge-prof-") as tmp:
        os.environ["LMBRIDGE_HOME"] = tmp
        fake = procs.start_fake()
        try:
            asyncio.run(run(args, Path(tmp), fake.url))
        finally:
            fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
