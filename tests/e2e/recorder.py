"""A recording reverse proxy: what LM Bridge sends a real server, and when
the server's first byte came back.

`Recorder(target)` is an aiohttp server on 127.0.0.1:0 that forwards every
request to `target` (llama.cpp's server) unchanged and streams the answer
back unchanged, keeping each request's raw body, status, answer and the
seconds until the answer's first data (for a streamed completion, about
the time to the first token: llama-cpp-python's server sends only pings
before it). `prefix_break()` tells whether one Chat body extends another.

With `metrics=True` (llama.cpp's own server, started with `--metrics`) it
also reads the server's `llamacpp:prompt_tokens_total` after each chat
completion, so each exchange knows how many prompt tokens the server
evaluated for it (`evaluated`), and from the answer's `timings` how long
the whole prompt was (`prompt_tokens`): exact counts, not timings.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

_HOP = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "content-encoding",
}


@dataclass
class Exchange:
    """One request through the recorder."""

    path: str
    raw: bytes
    status: int = 0
    first_byte: float = 0.0  # seconds from forwarding to the first byte back
    first_data: float = 0.0  # ... to the first SSE data event (not a ping)
    total: float = 0.0
    answer: bytes = b""
    evaluated: int | None = None  # prompt tokens the server evaluated (metrics)

    @property
    def prompt_tokens(self) -> int:
        """The whole prompt, from llama.cpp's `timings` in the answer: the
        tokens evaluated plus those reused from its cache."""
        for raw in reversed(self.answer.split(b"\n")):
            text = raw.removeprefix(b"data:").strip()
            if text.startswith(b"{") and (timings := json.loads(text).get("timings")):
                return int(timings["prompt_n"]) + int(timings["cache_n"])
        raise AssertionError(f"no timings in the answer {self.answer[-300:]!r}")

    @property
    def body(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed


@dataclass
class Recorder:
    """Forwards to `target`, keeping every `Exchange`."""

    target: str
    metrics: bool = False
    exchanges: list[Exchange] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    _prompt_total: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def chat(self) -> list[Exchange]:
        """The chat completion requests, in order."""
        return [e for e in self.exchanges if e.path.endswith("/chat/completions")]

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_read=300)
        )
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self.metrics:
            self._prompt_total = await self.prompt_tokens_total()

    async def prompt_tokens_total(self) -> float:
        """The server's count of prompt tokens evaluated since it started."""
        assert self._session is not None
        async with self._session.get(self.target + "/metrics") as resp:
            text = await resp.text()
        for row in text.splitlines():
            if row.startswith("llamacpp:prompt_tokens_total "):
                return float(row.split()[1])
        raise AssertionError(
            f"no llamacpp:prompt_tokens_total in {self.target}/metrics"
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        raw = await request.read()
        seen = Exchange(request.path, raw)
        self.exchanges.append(seen)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        started = time.perf_counter()
        async with self._session.request(
            request.method,
            self.target + request.path_qs,
            data=raw or None,
            headers=headers,
        ) as upstream:
            seen.status = upstream.status
            response = web.StreamResponse(status=upstream.status)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP:
                    response.headers[name] = value
            await response.prepare(request)
            chunks: list[bytes] = []
            async for chunk in upstream.content.iter_any():
                if not chunks:
                    seen.first_byte = time.perf_counter() - started
                if not seen.first_data and (b"data:" in chunk or b"{" in chunk):
                    # sse-starlette pings (": ping") every 15 s before it
                    seen.first_data = time.perf_counter() - started
                chunks.append(chunk)
                await response.write(chunk)
            seen.total = time.perf_counter() - started
            seen.answer = b"".join(chunks)
            await response.write_eof()
        if self.metrics and request.path.endswith("/chat/completions"):
            total = await self.prompt_tokens_total()
            seen.evaluated = int(total - self._prompt_total)
            self._prompt_total = total
        return response


def prefix_break(earlier: bytes, later: bytes) -> str | None:
    """Why Chat body `later` does not extend `earlier`, or None if it does.

    It does when every field but `messages` is the same, `earlier`'s
    messages are the first messages of `later`, and `later`'s bytes repeat
    `earlier`'s up to the end of its last message (so even a byte-exact
    cache holds).
    """
    one, two = json.loads(earlier), json.loads(later)
    head_one = {k: v for k, v in one.items() if k != "messages"}
    head_two = {k: v for k, v in two.items() if k != "messages"}
    if head_one != head_two:
        changed = sorted(
            k
            for k in head_one.keys() | head_two.keys()
            if head_one.get(k) != head_two.get(k)
        )
        return f"fields besides messages changed: {changed}"
    first, second = one.get("messages", []), two.get("messages", [])
    if second[: len(first)] != first:
        at = next(
            (i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b),
            len(second),
        )
        return (
            f"message {at} changed: {json.dumps(first[at])[:300]}"
            f" -> {json.dumps(second[at])[:300] if at < len(second) else 'missing'}"
        )
    text_one, text_two = earlier.decode(), later.decode()
    start_one, start_two = text_one.index('"messages"'), text_two.index('"messages"')
    if text_one[:start_one] != text_two[:start_two]:
        return "the bytes before messages changed"
    if not text_two.startswith(_through_messages(text_one)):
        return "the messages are the same but their bytes are not"
    return None


def _through_messages(body: str) -> str:
    """`body` up to the end of its last message (the array left open)."""
    start = body.index("[", body.index('"messages"'))
    _, end = json.JSONDecoder().raw_decode(body, start)
    return body[: end - 1]


def prefix_share(earlier: bytes, later: bytes) -> float:
    """The share of `earlier`, up to its last message, that `later` repeats.

    1.0 when `later` begins with all of it; less when something before or
    inside the earlier messages changed.
    """
    kept, text = _through_messages(earlier.decode()), later.decode()
    same = 0
    for a, b in zip(kept, text, strict=False):
        if a != b:
            break
        same += 1
    return same / len(kept) if kept else 1.0
