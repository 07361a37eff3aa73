"""CPU per request of a streaming aiohttp relay on the desktop app's event
loop (`lmbridge.gui.loop.AppLoop`), against qasync's own loop and plain
asyncio.

The upstream, the relay and the client share one loop in one process, as
the desktop app's proxy shares its loop with the window: what differs
between the rows is only the loop. Each loop runs in its own process
(Qt's application object is one per process), in turn, `--rounds` times.

    .venv/bin/python bench/bench_gui_loop.py [--requests 600] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LOOPS = ("asyncio", "qasync", "app")
CHUNKS = 20


async def serve(handler: Any, path: str) -> tuple[Any, str]:
    """`handler` served on a free loopback port: its runner and its URL."""
    from aiohttp import web

    app = web.Application()
    app.router.add_post(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}{path}"


async def relay_once(requests: int, concurrency: int) -> float:
    """CPU seconds per request for `requests` streamed relays."""
    from aiohttp import ClientSession, TCPConnector, web

    async def upstream(request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse()
        await answer.prepare(request)
        for i in range(CHUNKS):
            await answer.write(b'data: {"n": %d}\n\n' % i)
        await answer.write_eof()
        return answer

    up_runner, up_url = await serve(upstream, "/u")
    out = ClientSession(connector=TCPConnector(limit=100))

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        async with out.post(up_url, data=body) as resp:
            answer = web.StreamResponse()
            await answer.prepare(request)
            async for chunk in resp.content.iter_any():
                await answer.write(chunk)
            await answer.write_eof()
            return answer

    proxy_runner, url = await serve(relay, "/p")
    client = ClientSession(connector=TCPConnector(limit=100))
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate, client.post(url, data=b"{}") as resp:
            await resp.read()

    try:
        for _ in range(20):  # warm up
            await one()
        cpu = time.process_time()
        await asyncio.gather(*(one() for _ in range(requests)))
        return (time.process_time() - cpu) / requests
    finally:
        await client.close()
        await out.close()
        await proxy_runner.cleanup()
        await up_runner.cleanup()


def child(kind: str, requests: int) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(HERE.parent / "app"))
    loop: asyncio.AbstractEventLoop
    if kind == "asyncio":
        loop = asyncio.new_event_loop()
    else:
        import qasync
        from PySide6.QtWidgets import QApplication

        from lmbridge.gui.loop import AppLoop

        qt = QApplication(sys.argv[:1])
        loop = AppLoop(qt) if kind == "app" else qasync.QEventLoop(qt)
    asyncio.set_event_loop(loop)
    for concurrency in (1, 20):
        per = loop.run_until_complete(relay_once(requests, concurrency))
        print(f"{kind} {concurrency} {per * 1e6:.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=LOOPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests)
        return
    results: dict[tuple[str, int], list[int]] = {}
    for _ in range(args.rounds):
        for kind in LOOPS:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    kind,
                    "--requests",
                    str(args.requests),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            for line in out.splitlines():
                name, concurrency, micros = line.split()
                results.setdefault((name, int(concurrency)), []).append(int(micros))
    print(f"CPU per streamed request ({CHUNKS} chunks), µs; median of {args.rounds}:")
    print(f"{'loop':10} {'c1':>8} {'c20':>8}   all rounds")
    for kind in LOOPS:
        c1, c20 = sorted(results[(kind, 1)]), sorted(results[(kind, 20)])
        print(
            f"{kind:10} {c1[len(c1) // 2]:8} {c20[len(c20) // 2]:8}   "
            f"c1 {c1}, c20 {c20}"
        )


if __name__ == "__main__":
    main()
