"""The HTTP upstream client: LM Studio, any OpenAI-compatible server, Anthropic.

It owns one aiohttp session per upstream, converts aiohttp failures into our
error tree (the one place for this subsystem), and hands back either the raw
upstream response (pass-through) or a stream of IR events (translation).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import AsyncGenerator, Awaitable, Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

import aiohttp
import msgspec

from lmbridge.config import UpstreamSettings
from lmbridge.core import errors, ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.core.events import RequestRecord
from lmbridge.core.redact import SECRETS
from lmbridge.core.urls import Url
from lmbridge.protocols.base import UpstreamCodec
from lmbridge.protocols.registry import upstream_codec
from lmbridge.upstreams.credentials import KeyCredentials
from lmbridge.upstreams.health import Health
from lmbridge.upstreams.transport import Transport

DEFAULT_API: dict[str, str] = {
    "lmstudio": "responses",
    "llamacpp": "openai",
    "openai": "openai",
    "anthropic": "anthropic",
    "azure-foundry": "responses",
}
"""The API (a codec's name) each kind of upstream speaks unless its
settings name one."""


class _Model(msgspec.Struct):
    id: str


class _ModelList(msgspec.Struct):
    data: list[_Model] = []


_models = msgspec.json.Decoder(_ModelList)


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Refusal(NamedTuple):
    """An answer that refuses (Azure's content filter), as data: `body` is
    the refusal in the client's protocol, `content_type` its type."""

    message: str
    body: bytes
    content_type: str


class HttpUpstream:
    """One configured upstream reached over HTTP (see transport.py)."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.kind = settings.kind
        self.codec: UpstreamCodec = upstream_codec(
            settings.api or DEFAULT_API[settings.kind]
        )
        base = settings.base_url.rstrip("/")
        self.base_url = base.removesuffix("/v1")
        # Credentials in base_url are sent (aiohttp makes them Basic auth)
        # but never shown: `shown_url` and `address` mask the password.
        SECRETS.add_url(self.base_url)
        self.shown_url = Url(self.base_url)
        self.loopback = is_loopback(self.base_url)
        self.address = self.shown_url.netloc or str(self.shown_url)
        self.transport = Transport(settings, self.loopback, self.unavailable)
        self.credentials = KeyCredentials(settings)
        # The key is at hand (no token to wait for): `post` needs no await.
        self._key_auth = type(self).auth_headers is HttpUpstream.auth_headers
        self._models_cache: tuple[float, list[str]] | None = None
        # Seconds of upstream silence after which a translated stream gets a
        # keep-alive ping (server.ping_interval; set by the proxy).
        self.ping_interval: float | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def api(self) -> str:
        """The name of the API this upstream speaks (its codec's)."""
        return self.codec.name

    async def start(self) -> None:
        await self.load_credentials()
        self.transport.start()

    async def load_credentials(self) -> None:
        """Read the key from the keyring (kinds that sign in otherwise
        override this)."""
        await self.credentials.load()

    async def close(self) -> None:
        await self.transport.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        return self.transport.session

    # ------------------------------------------------------------ requests

    def url(self, path: str) -> str:
        return self.base_url + path

    async def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate us to the upstream (never logged)."""
        return self.credentials.headers(self.codec.wire)

    def unavailable(self, reason: str) -> errors.UpstreamUnavailable:
        return errors.UpstreamUnavailable(
            f"upstream {self.name!r} is not reachable at {self.address} ({reason})"
            f" — check that it is running, or fix base_url of upstream {self.name!r}"
        )

    def post(
        self,
        path: str,
        body: bytes,
        *,
        codec: UpstreamCodec,
        record: RequestRecord | None = None,
        headers: Mapping[str, str] | None = None,
        auth: Mapping[str, str] | None = None,
    ) -> Awaitable[aiohttp.ClientResponse]:
        """POST `body`; returns a response whose status is below 400.

        Connection failures and error statuses become our errors, the latter
        parsed by `codec` so the upstream's message is kept. `auth` replaces
        `auth_headers()` when the caller already holds the credential.
        (Not a coroutine of its own: the transport's is awaited directly,
        one layer less on every request.)
        """
        if auth is None:
            if not self._key_auth:
                return self._post_signed(path, body, codec, record, headers)
            auth = self.credentials.headers(self.codec.wire)
        send = {"Content-Type": "application/json", **auth}
        if headers:
            send.update(headers)
        return self.transport.post(self.url(path), body, send, codec, record)

    async def _post_signed(
        self,
        path: str,
        body: bytes,
        codec: UpstreamCodec,
        record: RequestRecord | None,
        headers: Mapping[str, str] | None,
    ) -> aiohttp.ClientResponse:
        """`post` with the headers of an `auth_headers` that must be awaited."""
        auth = await self.auth_headers()
        return await self.post(
            path, body, codec=codec, record=record, headers=headers, auth=auth
        )

    def relay(
        self,
        path: str,
        body: bytes,
        *,
        codec: UpstreamCodec,
        record: RequestRecord | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Awaitable[aiohttp.ClientResponse | Refusal]:
        """`post` for a body relayed unchanged: the upstream's answer, or its
        refusal as data (only Azure refuses so; see azure.py)."""
        return self.post(path, body, codec=codec, record=record, headers=headers)

    def release(self, resp: aiohttp.ClientResponse) -> None:
        self.transport.release(resp)

    def chunks(
        self, resp: aiohttp.ClientResponse, heartbeat: float | None = None
    ) -> AsyncGenerator[bytes, None]:
        return self.transport.chunks(resp, heartbeat)

    async def open_batches(
        self, req: ir.Request, record: RequestRecord
    ) -> AsyncGenerator[list[ir.Event], None]:
        """Send `req` translated to this upstream's API; stream IR events,
        one list per upstream read, so a caller can answer a whole read with
        one write. Errors before the first byte raise here; later ones
        arrive as a `StreamError` event, so a started stream always ends
        well-formed.

        An API that answers whole (`Wire.whole_answers`: Chat Completions)
        is asked for a whole answer when the client wants one (`req.stream`
        false) and no stop sequence needs watching (LM Bridge cuts the
        stream at a stop, which saves the model's time): no stream to decode.
        """
        if not req.stream and (not self.codec.wire.whole_answers or req.stop):
            req = msgspec.structs.replace(req, stream=True)
        resp, codec = await self._send_request(req, record)
        if not req.stream:
            return self._whole(resp, codec)
        return self._batches(resp, codec, req)

    async def _send_request(
        self, req: ir.Request, record: RequestRecord
    ) -> tuple[aiohttp.ClientResponse, UpstreamCodec]:
        """POST `req` in this upstream's API: the response and its codec."""
        codec = self.codec
        body = codec.encode_request(req)
        return await self.post(codec.wire.path, body, codec=codec, record=record), codec

    async def _whole(
        self, resp: aiohttp.ClientResponse, codec: UpstreamCodec
    ) -> AsyncGenerator[list[ir.Event], None]:
        """A whole answer, as one batch of events."""
        try:
            body = await self.transport.read(resp)
        except errors.LMBridgeError as exc:
            yield [ir.StreamError(exc.kind, exc.message, exc.status)]
            return
        yield codec.decode_whole(body)

    def betas(self, values: str) -> tuple[str, list[str]]:
        """An `anthropic-beta` header's values split into what this upstream
        is sent (joined) and what is removed (see `anthropic_betas`)."""
        allowed = self.settings.anthropic_betas
        if allowed is None:
            allowed = self.default_betas()
        asked = [v.strip() for v in values.split(",") if v.strip()]
        if "*" in allowed:
            return ",".join(asked), []
        kept = [v for v in asked if v in allowed]
        return ",".join(kept), [v for v in asked if v not in allowed]

    def default_betas(self) -> list[str]:
        """The betas sent when the settings name none: all of them."""
        return ["*"]

    @property
    def keeps_billing_header(self) -> bool:
        """Whether Claude Code's billing block goes to this upstream: only
        Anthropic's own servers read it (Claude on Azure AI Foundry, whose
        class says so), unless the settings keep it."""
        return self.settings.keep_billing_header

    def speaks(self, api: str) -> bool:
        """Whether a request in API `api` (a codec's name) can go to this
        upstream unchanged."""
        return api == self.api

    def encoded_size(self, req: ir.Request) -> int:
        """Bytes `req` takes on the wire to this upstream."""
        return len(self.codec.encode_request(req))

    async def _batches(
        self, resp: aiohttp.ClientResponse, codec: UpstreamCodec, req: ir.Request
    ) -> AsyncGenerator[list[ir.Event], None]:
        decoder = codec.stream_decoder(req)
        chunks = self.chunks(resp, self.ping_interval)
        try:
            async for chunk in chunks:
                if not chunk:
                    yield [ir.Ping()]
                    continue
                batch = decoder.feed(chunk)
                if batch and isinstance(batch[-1], ir.Finish | ir.StreamError):
                    # Read the little that follows the answer ([DONE], the
                    # end of the body) so the connection can be reused.
                    await self.transport.drain(resp)
                if batch:
                    yield batch
            batch = decoder.close()
            if batch:
                yield batch
        except errors.LMBridgeError as exc:
            yield [ir.StreamError(exc.kind, exc.message, exc.status)]
        finally:
            await chunks.aclose()

    # ------------------------------------------------------------ discovery

    async def list_models(self, max_age: float = 5.0) -> list[str]:
        """Model ids the upstream serves (cached for `max_age` seconds).

        Raises our error when the upstream cannot be asked or its answer is
        not a model list: callers say so rather than show an empty list.
        """
        now = time.monotonic()
        if self._models_cache and now - self._models_cache[0] < max_age:
            return self._models_cache[1]
        url = self.url("/v1/models")
        status, body = await self.transport.get(url, await self.auth_headers(), 3)
        if status >= 400:
            raise self.codec.parse_error(status, body)
        try:
            ids = [m.id for m in _models.decode(body).data]
        except DECODE_ERRORS:
            raise errors.UpstreamError(
                f"upstream {self.name!r} answered GET /v1/models with something"
                f" that is not a model list: {body[:120]!r}"
            ) from None
        self._models_cache = (now, ids)
        return ids

    def reported_window(self, model: str) -> int | None:
        """The window `context_window` last found, without asking (None:
        none known); for overflow messages, which must not wait."""
        return None

    async def context_window(self, model: str) -> int | None:
        """The context window the server reports for `model` (None: unknown).

        Servers that say (llama.cpp's `/props`) override this; the pipeline
        checks the fit of a request against it before sending.
        """
        return None

    async def check(self) -> Health:
        """Health: reachable or not, and why."""
        health = Health(
            name=self.name, kind=self.kind, url=str(self.shown_url), reachable=False
        )
        try:
            status, _body = await self.transport.get(
                self.url("/v1/models"), await self.auth_headers(), 2
            )
        except errors.LMBridgeError as err:
            health.error = err.message
            return health
        health.reachable, health.status = status < 500, status
        return health
