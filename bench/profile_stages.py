"""Where LM Bridge's per-request CPU goes, stage by stage, in-process.

Times each pure step of the pipeline (no sockets) on the same bodies and the
same upstream answers bench_proxy.py uses, so the proxy's overhead over the
floor can be attributed: front-door parse, upstream encode, stream decode,
event filters, assembly or re-encoding, and the pass-through extras.
Microseconds, best of 7 repeats (robust to a busy machine).

Run: python bench/profile_stages.py   (a few seconds)
"""

from __future__ import annotations

import asyncio
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "app"))

import msgspec

import fake_upstream_server as fake
import payloads
from lmbridge.core import ir
from lmbridge.core.assemble import Assembler
from lmbridge.core.events import RequestRecord
from lmbridge.protocols.anthropic.wire import WireRequest
from lmbridge.protocols.openai_chat import OPENAI_CHAT
from lmbridge.protocols.registry import front_door, upstream_codec
from lmbridge.server import translate


def us(fn: Callable[[], object], number: int = 50) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


def events_of(req: ir.Request, stream: bytes) -> list[ir.Event]:
    decoder = upstream_codec("openai").stream_decoder(req)
    return [*decoder.feed(stream), *decoder.close()]


def filtered(req: ir.Request, events: list[ir.Event]) -> list[ir.Event]:
    filters = translate.event_filters(req)
    out = events
    for f in filters:
        out = [o for e in out for o in f.feed(e)] + f.close()
    return out


def assembled(req: ir.Request, events: list[ir.Event]) -> bytes:
    a = Assembler(model=req.model)
    for e in events:
        a.feed(e)
    return front_door("anthropic").encode_response(a.result())


def encoded(req: ir.Request, events: list[ir.Event]) -> bytes:
    enc = front_door("anthropic").stream_encoder(req)
    return b"".join(enc.encode(e) for e in events)


async def _plain(events: list[ir.Event]) -> int:
    async def source():  # type: ignore[no-untyped-def]
        for e in events:
            yield e

    n = 0
    async for _ in source():
        n += 1
    return n


class _Head(msgspec.Struct):
    """What pass-through needs from a Chat body: model, stream, session keys."""

    model: str = ""
    stream: bool = False
    user: str | None = None
    prompt_cache_key: str | None = None
    max_tokens: int | None = None


_head = msgspec.json.Decoder(_Head)


def main() -> None:
    anthropic, openai = front_door("anthropic"), front_door("openai")
    chat = upstream_codec("openai")
    rows: list[tuple[str, float]] = []

    # ---- translation, 50 KB Claude Code-shaped request, non-streaming
    body = payloads.anthropic_claude_code()
    req = anthropic.parse_request(body)
    up_body = chat.encode_request(req)
    answer = b"".join(fake.chat_frames(req.model))  # 20 frames, as the fake sends
    events = events_of(req, answer)
    print(
        f"50 KB request: {len(body):,} B in, {len(up_body):,} B to the upstream,"
        f" {len(events)} IR events back; tools: {len(req.tools)}"
    )
    rows += [
        (
            "translate 50K: anthropic parse_request",
            us(lambda: anthropic.parse_request(body)),
        ),
        (
            "translate 50K:   msgspec decode of WireRequest alone",
            us(lambda: _wire.decode(body)),
        ),
        ("translate 50K: chat encode_request", us(lambda: chat.encode_request(req))),
        (
            "translate 50K: ChatStreamDecoder, 20 frames",
            us(lambda: events_of(req, answer)),
        ),
        (
            "translate 50K: event filters (tool repair)",
            us(lambda: filtered(req, events)),
        ),
        (
            "translate 50K: Assembler + encode_response",
            us(lambda: assembled(req, events)),
        ),
    ]
    # ---- pass-through: what LM Bridge parses that a relay would not
    small = payloads.openai_small()
    big = msgspec.json.encode({**msgspec.json.decode(up_body), "stream": False})
    reply = fake.chat_json("fake-model")
    passthrough = OPENAI_CHAT.passthrough
    rows += [
        (
            "pass 1K: openai parse_request (full IR)",
            us(lambda: openai.parse_request(small), 2000),
        ),
        (
            "pass 1K: head-only decode (model, stream, keys)",
            us(lambda: _head.decode(small), 2000),
        ),
        (
            f"pass {len(big) // 1000}K: openai parse_request (full IR)",
            us(lambda: openai.parse_request(big)),
        ),
        (f"pass {len(big) // 1000}K: head-only decode", us(lambda: _head.decode(big))),
        (
            "pass 1K: whole_usage (decode the answer)",
            us(lambda: passthrough.whole_usage(reply), 2000),
        ),
        ("pass 1K: RequestRecord()", us(lambda: RequestRecord(), 2000)),
        (
            "pass 1K: upstream_codec() lookup (importlib)",
            us(lambda: upstream_codec("openai"), 2000),
        ),
    ]
    # ---- streaming translation, per event
    sreq = anthropic.parse_request(
        payloads.anthropic_small("claude-chunks-1000", stream=True)
    )
    sframes = b"".join(fake.chat_frames("claude-chunks-1000"))
    sevents = events_of(sreq, sframes)
    n = len(sevents)
    rows += [
        ("stream: chat decode, per event", us(lambda: events_of(sreq, sframes), 5) / n),
        (
            "stream: anthropic encode, per event",
            us(lambda: encoded(sreq, sevents), 5) / n,
        ),
        (
            "stream: plain async generator, per event",
            us(lambda: asyncio.run(_plain(sevents)), 3) / n,
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:{width}s} {value:9.1f} µs")


_wire = msgspec.json.Decoder(WireRequest)


if __name__ == "__main__":
    main()
