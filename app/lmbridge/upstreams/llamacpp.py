"""llama.cpp's own server (`llama-server`) as an upstream: `kind = "llamacpp"`.

It speaks OpenAI Chat (the default API here), and answers three questions
that a plain OpenAI-compatible server does not:

- `GET /props`: the context window of one slot
  (`default_generation_settings.n_ctx`, the whole context divided among
  `total_slots`), which the context guard (`fit`) and the overflow message's
  M use, and the number of slots;
- `GET /health`: 200 when a model is loaded, 503 while it loads;
- `timings` and `usage.prompt_tokens_details.cached_tokens` on every answer,
  which the Chat codec reads into the usage (prompt tokens reused from the
  slot's cache versus evaluated anew).

`cache_prompt` is not sent: the server's default has been `true` since 2024
(`params.cache_prompt` in tools/server), so sending it would change nothing
but the body. `id_slot` is not sent either: the server picks the slot whose
cached prompt shares the longest prefix with the request, which is what a
session of several agents needs.
"""

from __future__ import annotations

import logging
import time

import msgspec

from lmbridge.config import UpstreamSettings
from lmbridge.core import errors
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.upstreams.health import Health
from lmbridge.upstreams.http import HttpUpstream

log = logging.getLogger(__name__)

# How long `/props` is trusted: a server is restarted with other flags rarely,
# and a request must not wait on a round trip each time.
PROPS_MAX_AGE = 30.0


class _Generation(msgspec.Struct):
    n_ctx: int = 0


class Props(msgspec.Struct):
    """The part of `GET /props` LM Bridge uses."""

    default_generation_settings: _Generation = msgspec.field(
        default_factory=_Generation
    )
    total_slots: int = 1
    model_alias: str = ""


_props = msgspec.json.Decoder(Props)


class LlamaCppUpstream(HttpUpstream):
    """An upstream of `kind = "llamacpp"`: llama.cpp's `llama-server`."""

    def __init__(self, settings: UpstreamSettings) -> None:
        super().__init__(settings)
        self._props: tuple[float, Props] | None = None

    async def props(self, max_age: float = PROPS_MAX_AGE) -> Props:
        """The server's `/props` (cached for `max_age` seconds).

        Raises our error when the server cannot be asked or answers
        something else than its properties.
        """
        now = time.monotonic()
        if self._props is not None and now - self._props[0] < max_age:
            return self._props[1]
        url = self.url("/props")
        status, body = await self.transport.get(url, await self.auth_headers(), 3)
        if status >= 400:
            raise errors.UpstreamError(
                f"upstream {self.name!r} answered GET /props with HTTP {status}"
            )
        try:
            props = _props.decode(body)
        except DECODE_ERRORS:
            raise errors.UpstreamError(
                f"upstream {self.name!r} answered GET /props with something that"
                f" is not llama.cpp's properties: {body[:120]!r}"
            ) from None
        self._props = (now, props)
        return props

    def reported_window(self, model: str) -> int | None:
        """One slot's context as `/props` last said (no request)."""
        if self._props is None:
            return None
        n_ctx = self._props[1].default_generation_settings.n_ctx
        return n_ctx if n_ctx > 0 else None

    async def context_window(self, model: str) -> int | None:
        """One slot's context (what one request can use), if the server says.

        llama-server serves one model whatever a request names, so `model`
        does not matter. None when the server cannot be asked or reports no
        window: the request then goes out unchecked, as to any server.
        """
        try:
            await self.props()
        except errors.LMBridgeError as err:
            log.debug("no context window from %s: %s", self.name, err.message)
            return None
        return self.reported_window(model)

    async def check(self) -> Health:
        """Health from llama-server's own `/health` (503 while it loads)."""
        health = Health(
            name=self.name, kind=self.kind, url=self.base_url, reachable=False
        )
        try:
            status, _body = await self.transport.get(
                self.url("/health"), await self.auth_headers(), 2
            )
        except errors.LMBridgeError as err:
            health.error = err.message
            return health
        health.reachable, health.status = True, status
        if status == 503:
            health.error = "llama-server is loading its model"
        elif status >= 400:
            health.error = f"GET /health answered HTTP {status}"
        else:
            # Keeps the slot's window known between requests (the
            # Integrations page writes it into the tools' settings).
            await self.context_window("")
        return health
