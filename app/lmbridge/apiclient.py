"""A small HTTP client for the running proxy: replays and test requests
(which `integrations/testrequest.py` builds).

The GUI's Replay button and the Integrations panel's Test send real
requests through the proxy, exactly as a client would, so the answer (and
the request record it produces) shows what that client would get. This
module holds that client code; widgets only call it.

`answer_text` reads the text out of an answer in any of the three model
protocols, whole JSON or SSE stream (with the protocol's own decoder).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import aiohttp
import msgspec

from lmbridge.core import errors, ir
from lmbridge.protocols.base import UpstreamCodec
from lmbridge.protocols.registry import FRONT_DOORS, UPSTREAM_APIS, front_door


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """What the proxy answered."""

    status: int
    text: str
    body: str = ""
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def is_stream(body: str) -> bool:
    """Whether an answer is an SSE stream."""
    return body.lstrip()[:200].startswith(("data:", "event:", ":"))


def _request_for(protocol: str, request_body: str) -> ir.Request:
    try:
        return front_door(protocol).parse_request(request_body.encode())
    except errors.LMBridgeError:
        # A capped or unusual body still lets the decoder run.
        return ir.Request(model="", messages=())


def answer_codec(protocol: str) -> UpstreamCodec | None:
    """The codec that reads answers of front door `protocol`: the same
    codec as an upstream API (a codec has one name); None for the chat and
    store APIs."""
    return UPSTREAM_APIS.get(protocol)


def stream_text(protocol: str, request_body: str, response_body: str) -> str | None:
    """The text of an SSE answer as the client assembled it, or None.

    Thinking and tool calls are shown in brackets around the text.
    """
    codec = answer_codec(protocol)
    if codec is None or not is_stream(response_body):
        return None
    decoder = codec.stream_decoder(_request_for(protocol, request_body))
    # Decoders never raise: what they cannot read ends in a StreamError.
    return events_text(decoder.feed(response_body.encode()) + decoder.close())


def events_text(events: list[ir.Event]) -> str:
    """An answer's events as text for people to read."""
    out: list[str] = []
    kinds: dict[int, ir.BlockKind] = {}
    for event in events:
        match event:
            case ir.BlockStart():
                kinds[event.index] = event.kind
                if event.kind is ir.BlockKind.THINKING:
                    out.append("[thinking] ")
                elif event.kind is ir.BlockKind.TOOL_CALL:
                    out.append(f"\n[tool call {event.name}] ")
            case ir.TextDelta() | ir.ThinkingDelta():
                out.append(event.text)
            case ir.ToolArgsDelta():
                out.append(event.partial_json)
            case ir.BlockStop() if kinds.get(event.index) is not ir.BlockKind.TEXT:
                out.append("\n")
            case ir.StreamError():
                out.append(f"\n[error: {event.message}]")
            case _:
                pass
    return "".join(out).strip()


def answer_text(
    protocol: str, request_body: str, response_body: str, status: int | None = None
) -> str:
    """The text of an answer (or its error message) for people to read,
    read by the protocol's own codec. `status` None: not known, so an answer
    that is no model answer is read as the protocol's error."""
    streamed = stream_text(protocol, request_body, response_body)
    if streamed is not None:
        return streamed
    codec = answer_codec(protocol)
    if codec is None:  # the chat and store APIs: their JSON as it is
        return response_body.strip()[:2000]
    body = response_body.encode()
    if status is None or status < 400:
        events = codec.decode_whole(body)
        if not (events and isinstance(events[-1], ir.StreamError)):
            return events_text(events)
    return codec.parse_error(status or 400, body).message


class ProxyClient:
    """Sends requests to the proxy at `base_url`, with its access token
    (`server.access_token`) when one is configured."""

    def __init__(
        self, base_url: str, *, token: str = "", timeout: float = 300.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    async def send(
        self,
        protocol: str,
        path: str,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        user_agent: str = "lmbridge-gui",
    ) -> Reply:
        """POST `body` to `path`; never raises for HTTP or connection errors."""
        sent = {"content-type": "application/json", "user-agent": user_agent}
        if self.token:
            sent["authorization"] = f"Bearer {self.token}"
        sent.update({k.lower(): v for k, v in (headers or {}).items()})
        door = FRONT_DOORS.get(protocol)
        for name, value in (door.wire.headers if door else {}).items():
            sent.setdefault(name.lower(), value)
        started = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(self.base_url + path, data=body, headers=sent) as resp,
            ):
                raw = (await resp.read()).decode("utf-8", "replace")
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Reply(
                status=0,
                text=f"LM Bridge did not answer at {self.base_url} "
                f"({exc or type(exc).__name__}) — start the proxy (Overview ▸ "
                "Start) and check its address in Settings",
                elapsed=time.perf_counter() - started,
            )
        return Reply(
            status=status,
            text=answer_text(protocol, body.decode("utf-8", "replace"), raw, status),
            body=raw,
            elapsed=time.perf_counter() - started,
        )
