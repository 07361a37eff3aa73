"""The HTTP upstream client: LM Studio, any OpenAI-compatible server, Anthropic.

It owns one aiohttp session per upstream, converts aiohttp failures into our
error tree (the one place for this subsystem), and hands back either the raw
upstream response (pass-through) or a stream of IR events (translation).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec

from lmbridge.config import UpstreamApi, UpstreamSettings
from lmbridge.core import errors, ir
from lmbridge.core.events import RequestRecord
from lmbridge.protocols.base import UpstreamCodec
from lmbridge.protocols.openai_chat.decode import ChatStreamDecoder
from lmbridge.protocols.registry import upstream_codec

log = logging.getLogger(__name__)

DEFAULT_API: dict[str, UpstreamApi] = {
    "lmstudio": "responses",
    "openai": "chat",
    "anthropic": "messages",
    "azure-foundry": "responses",
}


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _stored_key(name: str) -> str:
    """The key stored for upstream `name` in the OS keyring ("" if none)."""
    from lmbridge.auth.secrets import SECRETS

    try:
        return await SECRETS.get(name) or ""
    except errors.LMBridgeError as exc:
        log.warning("cannot read the key of upstream %s: %s", name, exc.message)
        return ""


async def flatten(
    batches: AsyncGenerator[list[ir.Event], None],
) -> AsyncGenerator[ir.Event, None]:
    """One event at a time from a stream of event lists."""
    async with contextlib.aclosing(batches):
        async for batch in batches:
            for event in batch:
                yield event


class HttpUpstream:
    """One configured upstream reached over HTTP."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.kind = settings.kind
        self.api: UpstreamApi = settings.api or DEFAULT_API[settings.kind]
        base = settings.base_url.rstrip("/")
        self.base_url = base.removesuffix("/v1")
        self.loopback = is_loopback(self.base_url)
        self.address = urlsplit(self.base_url).netloc or self.base_url
        connect = settings.connect_timeout
        if connect is None:
            connect = 2.0 if self.loopback else 10.0
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect, sock_connect=connect
        )
        self._session: aiohttp.ClientSession | None = None
        self._models_cache: tuple[float, list[str]] | None = None
        limit = settings.max_concurrent
        self._slots = asyncio.Semaphore(limit) if limit else None
        self._leases: set[aiohttp.ClientResponse] = set()
        # Seconds of upstream silence after which a translated stream gets a
        # keep-alive ping (server.ping_interval; set by the proxy).
        self.ping_interval: float | None = None
        self._stored_key = ""

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if not (self.settings.api_key_env or self.kind == "azure-foundry"):
            # A key saved from the app's Settings lives in the keyring.
            self._stored_key = await _stored_key(self.name)
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            # Loopback must not go through an HTTP_PROXY from the environment.
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                trust_env=not self.loopback,
                auto_decompress=True,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"upstream {self.name} is not started")
        return self._session

    # ------------------------------------------------------------ requests

    def url(self, path: str) -> str:
        return self.base_url + path

    async def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate us to the upstream (never logged)."""
        return self.key_headers()

    def own_key(self) -> str:
        """The key this upstream is sent: its environment variable's, else
        the one stored in the keyring ("" for none)."""
        env = self.settings.api_key_env
        return os.environ.get(env, "") if env else self._stored_key

    def key_headers(self) -> dict[str, str]:
        key = self.own_key()
        if not key:
            return {}
        if self.api == "messages":
            return {"x-api-key": key}
        return {"Authorization": f"Bearer {key}"}

    def unavailable(self, reason: str) -> errors.UpstreamUnavailable:
        what = "LM Studio" if self.kind == "lmstudio" else f"upstream {self.name!r}"
        if self.kind == "lmstudio":
            fix = "start its server, or set the address in Settings"
        else:
            fix = f"check that it is running, or fix base_url of upstream {self.name!r}"
        return errors.UpstreamUnavailable(
            f"{what} is not reachable at {self.address} ({reason}) — {fix}"
        )

    async def post(
        self,
        path: str,
        body: bytes,
        *,
        codec: UpstreamCodec,
        record: RequestRecord | None = None,
        headers: Mapping[str, str] | None = None,
        auth: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """POST `body`; returns a response whose status is below 400.

        Connection failures and error statuses become our errors, the latter
        parsed by `codec` so the upstream's message is kept. `auth` replaces
        `auth_headers()` when the caller already holds the credential.
        """
        if auth is None:
            auth = await self.auth_headers()
        send = {"Content-Type": "application/json", **auth}
        if headers:
            send.update(headers)
        await self._acquire(record)
        try:
            resp = await self._post_once(path, body, send, codec, record)
        except BaseException:
            self._release_slot()
            raise
        if self._slots is not None:
            self._leases.add(resp)
        return resp

    async def _acquire(self, record: RequestRecord | None) -> None:
        """Wait for a free slot when max_concurrent is set (a FIFO queue)."""
        if self._slots is None:
            return
        if self._slots.locked() and record is not None:
            started = time.monotonic()
            await self._slots.acquire()
            record.notes.append(
                f"queued {time.monotonic() - started:.2f}s for {self.name}"
                f" (max_concurrent = {self.settings.max_concurrent})"
            )
            return
        await self._slots.acquire()

    def _release_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    def release(self, resp: aiohttp.ClientResponse) -> None:
        """Done with `resp`: free its slot (idempotent), and its connection:
        back to the pool when the body was read to its end, else closed."""
        if resp.content.at_eof():
            resp.release()
        else:
            resp.close()
        if resp in self._leases:
            self._leases.discard(resp)
            self._release_slot()

    async def _post_once(
        self,
        path: str,
        body: bytes,
        send: dict[str, str],
        codec: UpstreamCodec,
        record: RequestRecord | None,
    ) -> aiohttp.ClientResponse:
        try:
            timeout = self.settings.first_byte_timeout
            async with asyncio.timeout(timeout):
                resp = await self.session.post(self.url(path), data=body, headers=send)
        except TimeoutError:
            raise errors.Timeout(
                f"upstream {self.name!r} sent nothing for {timeout:g} s"
                " — raise first_byte_timeout for slow models"
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise self.unavailable(str(exc.os_error or exc)) from None
        except aiohttp.ClientError as exc:
            raise self.unavailable(type(exc).__name__) from None
        if record is not None:
            record.mark_connected()
            record.upstream_bytes += len(body)
        if resp.status >= 400:
            try:
                payload = await resp.read()
            except aiohttp.ClientError:
                payload = b""
            finally:
                resp.release()
            error = codec.parse_error(resp.status, payload)
            error.upstream_body = payload
            # Azure and OpenAI send retry-after-ms next to Retry-After.
            if retry := resp.headers.get("retry-after-ms"):
                with contextlib.suppress(ValueError):
                    error.retry_after = float(retry) / 1000
            elif retry := resp.headers.get("Retry-After"):
                with contextlib.suppress(ValueError):
                    error.retry_after = float(retry)
            raise error
        return resp

    async def chunks(
        self, resp: aiohttp.ClientResponse, heartbeat: float | None = None
    ) -> AsyncGenerator[bytes, None]:
        """The response body as it arrives, with the idle timeout applied.

        With `heartbeat`, an empty chunk comes after each `heartbeat` seconds
        of silence (a pending read is cancelled without losing data), so a
        caller can keep its client's stream alive.
        """
        idle = self.settings.idle_timeout
        wait = min(t for t in (idle, heartbeat) if t) if idle or heartbeat else None
        content = resp.content
        last = time.monotonic()
        try:
            while True:
                try:
                    async with asyncio.timeout(wait):
                        chunk = await content.readany()
                except TimeoutError:
                    if idle and time.monotonic() - last >= idle:
                        raise errors.Timeout(
                            f"upstream {self.name!r} went silent for {idle:g} s"
                        ) from None
                    yield b""
                    continue
                except aiohttp.ClientError as exc:
                    raise errors.UpstreamError(
                        f"upstream {self.name!r} broke off its answer ({exc})"
                    ) from None
                if not chunk:
                    return
                last = time.monotonic()
                yield chunk
        finally:
            self.release(resp)

    async def open_events(
        self, req: ir.Request, record: RequestRecord
    ) -> AsyncGenerator[ir.Event, None]:
        """Send `req` translated to this upstream's API; stream IR events.

        Errors before the first byte raise here; later ones arrive as a
        `StreamError` event, so a started stream always ends well-formed.
        """
        return flatten(await self.open_batches(req, record))

    async def open_batches(
        self, req: ir.Request, record: RequestRecord
    ) -> AsyncGenerator[list[ir.Event], None]:
        """Like `open_events`, one list of events per upstream read, so a
        caller can answer a whole read with one write.

        A Chat Completions upstream is asked for a whole answer when the
        client wants one (`req.stream` false) and no stop sequence needs
        watching (LM Bridge cuts the stream at a stop, which saves the
        model's time): no stream to decode.
        """
        if not req.stream and (self.api != "chat" or req.stop):
            req = msgspec.structs.replace(req, stream=True)
        codec = upstream_codec(self.api)
        try:
            resp = await self.post(
                codec.path, codec.encode_request(req), codec=codec, record=record
            )
        except errors.LMBridgeError as err:
            if not self._lacks_responses_api(err):
                raise
            # An LM Studio before 0.3.29: remember, and use Chat Completions.
            self.api = "chat"
            record.upstream_api = self.api
            record.notes.append(
                f"{self.name} has no /v1/responses; using chat completions from now on"
            )
            log.info("upstream %s has no Responses API; using chat", self.name)
            codec = upstream_codec(self.api)
            resp = await self.post(
                codec.path, codec.encode_request(req), codec=codec, record=record
            )
        if not req.stream:
            return self._whole(resp, req)
        return self._batches(resp, codec, req)

    async def _whole(
        self, resp: aiohttp.ClientResponse, req: ir.Request
    ) -> AsyncGenerator[list[ir.Event], None]:
        """A whole Chat Completions answer, as one batch of events."""
        try:
            try:
                async with asyncio.timeout(self.settings.idle_timeout):
                    body = await resp.read()
            except TimeoutError:
                raise errors.Timeout(
                    f"upstream {self.name!r} went silent for"
                    f" {self.settings.idle_timeout:g} s"
                ) from None
            except aiohttp.ClientError as exc:
                raise errors.UpstreamError(
                    f"upstream {self.name!r} broke off its answer ({exc})"
                ) from None
        except errors.LMBridgeError as exc:
            yield [ir.StreamError(exc.kind, exc.message, exc.status)]
            return
        finally:
            self.release(resp)
        yield ChatStreamDecoder().whole(body)

    def speaks(self, api: str) -> bool:
        """Whether a request in `api` can go to this upstream unchanged.

        LM Studio serves Chat Completions natively whatever API it is
        configured with for translated traffic, so Chat clients always get
        the pass-through when `api` is not set explicitly.
        """
        if api == self.api:
            return True
        return self.kind == "lmstudio" and not self.settings.api and api == "chat"

    def _lacks_responses_api(self, err: errors.LMBridgeError) -> bool:
        return (
            self.kind == "lmstudio"
            and self.api == "responses"
            and not self.settings.api
            and err.status in (404, 405)
            and "model" not in err.message.lower()
        )

    def encoded_size(self, req: ir.Request) -> int:
        """Bytes `req` takes on the wire to this upstream."""
        return len(upstream_codec(self.api).encode_request(req))

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
                    await self._drain(resp)
                if batch:
                    yield batch
            batch = decoder.close()
            if batch:
                yield batch
        except errors.LMBridgeError as exc:
            yield [ir.StreamError(exc.kind, exc.message, exc.status)]
        finally:
            await chunks.aclose()

    async def _drain(self, resp: aiohttp.ClientResponse) -> None:
        with contextlib.suppress(TimeoutError, aiohttp.ClientError):
            async with asyncio.timeout(0.05):
                while not resp.content.at_eof() and await resp.content.readany():
                    pass

    # ------------------------------------------------------------ discovery

    async def list_models(self, max_age: float = 5.0) -> list[str]:
        """Model ids the upstream serves (cached for `max_age` seconds)."""
        now = time.monotonic()
        if self._models_cache and now - self._models_cache[0] < max_age:
            return self._models_cache[1]
        try:
            async with asyncio.timeout(3):
                resp = await self.session.get(
                    self.url("/v1/models"), headers=await self.auth_headers()
                )
                async with resp:
                    if resp.status >= 400:
                        return []
                    payload: Any = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return []
        data = payload.get("data", []) if isinstance(payload, dict) else []
        ids = [
            m["id"]
            for m in data
            if isinstance(m, dict) and isinstance(m.get("id"), str)
        ]
        self._models_cache = (now, ids)
        return ids

    async def check(self) -> dict[str, Any]:
        """Health: reachable or not, and why."""
        try:
            async with asyncio.timeout(2):
                resp = await self.session.get(
                    self.url("/v1/models"), headers=await self.auth_headers()
                )
                resp.release()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return {
                "name": self.name,
                "kind": self.kind,
                "url": self.base_url,
                "reachable": False,
                "error": str(exc) or type(exc).__name__,
            }
        return {
            "name": self.name,
            "kind": self.kind,
            "url": self.base_url,
            "reachable": resp.status < 500,
            "status": resp.status,
        }
