"""The event bus and the request record it carries.

Routes publish; the request log, the GUI, the store and metrics subscribe.
No route calls a subscriber directly. Subscribers are plain callables run
synchronously on the event loop: they must be quick and must not raise (an
exception is logged and the subscriber stays subscribed).
"""

from __future__ import annotations

import enum
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

log = logging.getLogger(__name__)

_ids = itertools.count(1)


class Phase(enum.StrEnum):
    STARTED = "started"
    ROUTED = "routed"
    STREAMING = "streaming"
    FINISHED = "finished"


class RequestRecord(msgspec.Struct, kw_only=True):
    """Everything observable about one proxied request, filled in as it goes."""

    id: int = msgspec.field(default_factory=lambda: next(_ids))
    client: str = ""
    protocol: str = ""
    path: str = ""
    model: str = ""
    route: str = ""
    upstream: str = ""
    target: str = ""
    upstream_api: str = ""
    stream: bool = False
    status: int = 0
    phase: Phase = Phase.STARTED
    received: float = msgspec.field(default_factory=time.time)
    # Monotonic offsets in seconds from `received`.
    upstream_connected: float | None = None
    first_token: float | None = None
    done: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    # Of `tokens_in`, the prompt tokens the upstream served from its cache
    # (the rest it evaluated anew); None when it did not say.
    cached_tokens: int | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    upstream_bytes: int = 0
    session_key: str | None = None
    notes: list[str] = msgspec.field(default_factory=list)
    error: str | None = None
    # What kind of error it was (a `core.errors.ErrorKind` value), if any.
    error_kind: str = ""
    client_gone: bool = False
    # Captured only when the app asks (ProxyServer(capture_bodies=True)):
    # size-capped; header values that carry secrets are redacted.
    capture: bool = False
    method: str = "POST"
    request_headers: dict[str, str] = msgspec.field(default_factory=dict)
    request_body: str = ""
    request_truncated: bool = False
    response_body: str = ""
    response_truncated: bool = False
    _t0: float = msgspec.field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def mark_connected(self) -> None:
        if self.upstream_connected is None:
            self.upstream_connected = self.elapsed()

    def mark_first_token(self) -> None:
        if self.first_token is None:
            self.first_token = self.elapsed()

    def mark_done(self) -> None:
        self.done = self.elapsed()
        self.phase = Phase.FINISHED


Subscriber = Callable[[str, Any], None]


class EventBus:
    """Topic-based publish/subscribe on the event loop thread."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}

    def subscribe(self, topic: str, fn: Subscriber) -> Callable[[], None]:
        """Call `fn(topic, payload)` for every event on `topic` ("*" for all).

        Returns a function that unsubscribes.
        """
        self._subscribers.setdefault(topic, []).append(fn)

        def unsubscribe() -> None:
            subs = self._subscribers.get(topic, [])
            if fn in subs:
                subs.remove(fn)

        return unsubscribe

    def publish(self, topic: str, payload: Any) -> None:
        for key in (topic, "*"):
            for fn in tuple(self._subscribers.get(key, ())):
                try:
                    fn(topic, payload)
                except Exception:
                    log.exception("event subscriber failed on %s", topic)

    def has_subscribers(self, topic: str) -> bool:
        return bool(self._subscribers.get(topic) or self._subscribers.get("*"))


# Topics
REQUEST_STARTED = "request.started"
REQUEST_UPDATED = "request.updated"
REQUEST_FINISHED = "request.finished"
# A stored chat was created, changed or deleted (payload: the chat's name);
# published by `store.conversations.ConversationStore` after the commit,
# whoever wrote (the /store API, the GUI, the CLI in this process).
CHATS_CHANGED = "chats.changed"
# The database's state changed (payload: store.dbstate.DatabaseState).
DATABASE_STATE = "database.state"
