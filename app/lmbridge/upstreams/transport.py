"""HTTP to one upstream: its aiohttp session, its queue, and the one place
where aiohttp's failures become LM Bridge's errors.

The transport knows nothing of protocols but what a codec gives it: how to
read an error answer (`UpstreamCodec.parse_error`). Every read and write of
an upstream goes through here, so a refused connection, a timeout or a
connection that breaks mid-answer reads the same whatever the caller.

Redirects: aiohttp would follow them and drop only `Authorization` when
the origin changes, so an `x-api-key` or Azure's `api-key` would go
wherever a 307 points. The transport follows a redirect itself, and only
within the upstream's origin (scheme, host and port), with the same
headers; a redirect elsewhere is an upstream error that names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping

import aiohttp
from yarl import URL

from lmbridge.config import UpstreamSettings
from lmbridge.core import errors
from lmbridge.core.events import RequestRecord
from lmbridge.core.record import NoteKind
from lmbridge.core.urls import masked
from lmbridge.protocols.base import UpstreamCodec

log = logging.getLogger(__name__)

# Builds the "not reachable" error for a reason ("Connection refused").
Unreachable = Callable[[str], errors.UpstreamUnavailable]

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
# How many parsed URLs a transport keeps (its paths; model ids in Gemini's).
URLS_REMEMBERED = 64


def redirect_target(url: URL, location: str) -> URL:
    """Where a redirect from `url` to `location` leads, keeping `url`'s
    credentials when the target is on the same origin."""
    target = url.join(URL(location))
    if target.origin() == url.origin() and url.user and not target.user:
        target = target.with_user(url.user).with_password(url.password)
    return target


def converted(
    exc: aiohttp.ClientError | TimeoutError, name: str, unreachable: Unreachable
) -> errors.LMBridgeError:
    """An aiohttp failure while reaching upstream `name` (before any answer)
    as our error; a failure in the middle of an answer is `_broke_off`."""
    if isinstance(exc, TimeoutError):
        return errors.Timeout(f"upstream {name!r} did not answer in time")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return unreachable(str(exc.os_error or exc))
    return unreachable(type(exc).__name__)


class Transport:
    """One upstream's HTTP session, with `max_concurrent` as a FIFO queue."""

    def __init__(
        self, settings: UpstreamSettings, loopback: bool, unreachable: Unreachable
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.loopback = loopback
        self.unreachable = unreachable
        connect = settings.connect_timeout
        if connect is None:
            connect = 2.0 if loopback else 10.0
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect, sock_connect=connect
        )
        self._session: aiohttp.ClientSession | None = None
        limit = settings.max_concurrent
        self._slots = asyncio.Semaphore(limit) if limit else None
        self._leases: set[aiohttp.ClientResponse] = set()
        self._warned_credentials = False
        # Parsed request URLs, and whether each carries credentials: an
        # upstream is asked at a handful of paths.
        self._urls: dict[str, tuple[URL, bool]] = {}

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
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

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        codec: UpstreamCodec,
        record: RequestRecord | None,
    ) -> Awaitable[aiohttp.ClientResponse]:
        """POST `body`; a response whose status is below 400 (hold its slot
        until `release`). Error statuses are read by `codec`."""
        if self._slots is None:  # no queue: one coroutine layer less
            return self._post_once(url, body, headers, codec, record)
        return self._post_queued(self._slots, url, body, headers, codec, record)

    async def _post_queued(
        self,
        slots: asyncio.Semaphore,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        codec: UpstreamCodec,
        record: RequestRecord | None,
    ) -> aiohttp.ClientResponse:
        """`post` through the `max_concurrent` queue."""
        await self._acquire(slots, record)
        try:
            resp = await self._post_once(url, body, headers, codec, record)
        except BaseException:
            self._release_slot()
            raise
        self._leases.add(resp)
        return resp

    async def _post_once(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        codec: UpstreamCodec,
        record: RequestRecord | None,
    ) -> aiohttp.ClientResponse:
        timeout = self.settings.first_byte_timeout
        try:
            if timeout is None:  # no limit (the default): no timer at all
                resp = await self._request("POST", url, headers, body)
            else:
                async with asyncio.timeout(timeout):
                    resp = await self._request("POST", url, headers, body)
        except aiohttp.ClientError as exc:  # first: a connect timeout is both
            raise converted(exc, self.name, self.unreachable) from None
        except TimeoutError:
            raise errors.Timeout(
                f"upstream {self.name!r} sent nothing for {timeout:g} s"
                " — raise first_byte_timeout for slow models"
            ) from None
        if record is not None:
            record.mark_connected()
            record.upstream_bytes += len(body)
        if resp.status < 400:
            return resp
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

    async def get(
        self, url: str, headers: Mapping[str, str], within: float
    ) -> tuple[int, bytes]:
        """GET `url` within `within` seconds: its status and body."""
        try:
            async with asyncio.timeout(within):
                resp = await self._request("GET", url, headers)
                try:
                    return resp.status, await resp.read()
                finally:
                    resp.release()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise converted(exc, self.name, self.unreachable) from None

    async def _request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
    ) -> aiohttp.ClientResponse:
        """One request; redirects followed only within the upstream's origin,
        with the same method, body and headers (see the module docstring)."""
        parsed = self._urls.get(url)
        if parsed is None:
            target = URL(url)
            parsed = (target, target.user is not None)
            if len(self._urls) < URLS_REMEMBERED:
                self._urls[url] = parsed
        target, has_user = parsed
        if has_user and any(name.lower() == "authorization" for name in headers):
            # A key and base_url credentials both want Authorization: the
            # key wins (aiohttp would refuse the request).
            target = target.with_user(None)
            if not self._warned_credentials:
                self._warned_credentials = True
                log.warning(
                    "upstream %s has a key and credentials in its base_url; only"
                    " the key is sent — remove one of them",
                    self.name,
                )
        for _hop in range(MAX_REDIRECTS + 1):
            resp = await self.session.request(
                method, target, data=body, headers=headers, allow_redirects=False
            )
            if resp.status not in REDIRECTS:
                return resp
            location = resp.headers.get("Location", "")
            resp.release()
            try:
                following = redirect_target(target, location)
            except ValueError:
                following = None
            if following is None or following.origin() != target.origin():
                where = masked(str(following)) if following else repr(location)
                raise errors.UpstreamError(
                    f"upstream {self.name!r} redirected {method} {masked(str(target))}"
                    f" to {where} ({resp.status}); LM Bridge follows no redirect to"
                    " another address, which would take the upstream's key along"
                    f" — set base_url of upstream {self.name!r} to the address"
                    " that answers"
                )
            if method != "GET" and resp.status in (301, 302, 303):
                raise errors.UpstreamError(
                    f"upstream {self.name!r} redirected {method}"
                    f" {masked(str(target))} to {masked(str(following))}"
                    f" ({resp.status}, which turns it into a GET) — set base_url"
                    f" of upstream {self.name!r} to the address that answers"
                )
            target = following
        raise errors.UpstreamError(
            f"upstream {self.name!r} redirected more than {MAX_REDIRECTS} times"
            f" from {masked(url)} — set base_url of upstream {self.name!r} to"
            " the address that answers"
        )

    async def _acquire(
        self, slots: asyncio.Semaphore, record: RequestRecord | None
    ) -> None:
        """Wait for a free slot of `slots` (max_concurrent: a FIFO queue)."""
        if slots.locked() and record is not None:
            started = time.monotonic()
            await slots.acquire()
            record.note(
                NoteKind.QUEUE,
                f"queued {time.monotonic() - started:.2f}s for {self.name}"
                f" (max_concurrent = {self.settings.max_concurrent})",
            )
            return
        await slots.acquire()

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

    # ------------------------------------------------------------ answers

    async def read(self, resp: aiohttp.ClientResponse) -> bytes:
        """A whole answer's body, within the idle timeout; releases `resp`."""
        idle = self.settings.idle_timeout
        try:
            async with asyncio.timeout(idle):
                return await resp.read()
        except TimeoutError:
            raise errors.Timeout(
                f"upstream {self.name!r} went silent for {idle:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise self._broke_off(exc) from None
        finally:
            self.release(resp)

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
        # The first read takes what has arrived without arming a timer: a
        # whole small answer came with its headers. Later reads of a stream
        # find nothing waiting, so they go straight to the timed wait.
        first = True
        try:
            while True:
                try:
                    chunk = content.read_nowait() if first else b""
                    first = False
                    if not chunk and not content.at_eof():
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
                    raise self._broke_off(exc) from None
                if not chunk:
                    return
                last = time.monotonic()
                yield chunk
        finally:
            self.release(resp)

    async def drain(self, resp: aiohttp.ClientResponse) -> None:
        """Read the little that follows an answer's end ([DONE], the end of
        the body) so the connection can be reused."""
        with contextlib.suppress(TimeoutError, aiohttp.ClientError):
            async with asyncio.timeout(0.05):
                while not resp.content.at_eof() and await resp.content.readany():
                    pass

    def _broke_off(self, exc: aiohttp.ClientError) -> errors.UpstreamError:
        return errors.UpstreamError(
            f"upstream {self.name!r} broke off its answer ({exc})"
        )
