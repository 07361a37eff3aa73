"""The floor: a bare aiohttp relay every LM Bridge figure is compared with.

Forwards the request bytes unchanged to the upstream (same path) and relays
the answer, streams chunk by chunk as they arrive. No parsing, no routing,
no records: the least any aiohttp proxy can do.

Run: python bench/floor_relay.py --upstream http://127.0.0.1:N --port 0
         [--loop asyncio|uvloop]   (asyncio: a stock aiohttp relay)
"""

import argparse
import asyncio

import aiohttp
from aiohttp import web


def floor_app(upstream: str, session: aiohttp.ClientSession) -> web.Application:
    """The relay as an aiohttp application: every POST forwarded to
    `upstream` (same path) through `session`, the answer relayed."""

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {"Content-Type": "application/json"}
        async with session.post(
            upstream + request.path, data=body, headers=headers
        ) as up:
            ctype = up.headers.get("Content-Type", "application/json")
            if not ctype.startswith("text/event-stream"):
                payload = await up.read()
                return web.Response(
                    status=up.status, body=payload, headers={"Content-Type": ctype}
                )
            out = web.StreamResponse(status=up.status, headers={"Content-Type": ctype})
            await out.prepare(request)
            async for chunk in up.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/{tail:.*}", relay)
    return app


async def main(upstream: str, port: int) -> None:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    runner = web.AppRunner(floor_app(upstream, session), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    print(f"listening {site._server.sockets[0].getsockname()[1]}", flush=True)  # type: ignore[union-attr]
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="bare aiohttp relay (the floor)")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    factory = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main(args.upstream.rstrip("/"), args.port))
