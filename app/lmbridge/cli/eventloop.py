"""The event loop `lmbridge serve` runs on (`[server] event_loop`).

A pass-through request is mostly the event loop's work: asyncio's
scheduling, timers and socket reads and writes are Python (about 4,800 of
the 18,000 bytecodes a relayed request costs the fake, the proxy and the
client together, `bench/count_bytecodes.py`). uvloop runs the same asyncio
API on libuv, in C, and aiohttp supports it. On the bench's 2-core VM it
takes about 100 µs of CPU off each relayed request and adds about six
points to the headless proxy's share of a bare aiohttp relay's requests
per second at concurrency 50 (docs/performance.md, "The headless event
loop").

"auto" (the default) takes uvloop where it is installed: it is a
dependency on Linux and macOS; it does not exist on Windows, where asyncio's
own loop runs. "uvloop" refuses to start without it (said in one line);
"asyncio" is the way back should uvloop misbehave somewhere. The desktop app
runs on Qt's loop (gui/loop.py) whatever this says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from lmbridge.config_tables import EventLoop

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


class LoopUnavailable(Exception):
    """`event_loop = "uvloop"` where uvloop cannot be imported."""


def loop_factory(choice: EventLoop) -> LoopFactory | None:
    """What makes the loop `choice` names; None: asyncio's own."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError as exc:
        if choice == "uvloop":
            raise LoopUnavailable(
                f'[server] event_loop is "uvloop" but uvloop cannot be loaded'
                f" ({exc}): install it (pip install uvloop; there is none for"
                f' Windows) or set event_loop = "auto"'
            ) from exc
        return None
    return uvloop.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """The loop's name as `lmbridge serve` says it: uvloop or asyncio."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(main: Coroutine[Any, Any, int], choice: EventLoop) -> int:
    """Run `main` to its end on the loop `choice` names, as asyncio.run does
    (its tasks cancelled, async generators and the executor shut down)."""
    try:
        factory = loop_factory(choice)
    except LoopUnavailable:
        main.close()  # never awaited: no "coroutine was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
