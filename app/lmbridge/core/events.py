"""The event bus and the live request record it carries.

`RequestRecord` is the request's `core.record.RequestSummary` (declared
once there) as it progresses, plus what only the live app keeps.

Routes publish; the request log, the GUI, the store and metrics subscribe.
No route calls a subscriber directly. Subscribers are plain callables run
synchronously on the event loop: they must be quick and must not raise (an
exception is logged and the subscriber stays subscribed).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

from lmbridge.core.record import (
    SUMMARY_FIELDS,
    Note,
    NoteKind,
    RequestSummary,
)

log = logging.getLogger(__name__)


class Phase(enum.StrEnum):
    """Whether a request is still going. Where it has got to is read from
    its fields (`upstream` once routed, `first_token` once the answer
    streams), as the request log shows it."""

    STARTED = "started"
    FINISHED = "finished"


class RequestRecord(RequestSummary, frozen=False, kw_only=True):
    """One request as it goes: its `RequestSummary`, filled in as it
    progresses, plus what only the live app keeps (phase, bodies)."""

    phase: Phase = Phase.STARTED
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

    @classmethod
    def from_summary(cls, summary: RequestSummary) -> RequestRecord:
        """A finished record of a kept summary (for the request log), with
        a fresh id (live ids restart with each run) and no bodies."""
        fields = {name: getattr(summary, name) for name in SUMMARY_FIELDS}
        del fields["id"]
        return cls(**fields, phase=Phase.FINISHED)

    def summary(self) -> RequestSummary:
        """The record as it stands, frozen."""
        return RequestSummary(**{name: getattr(self, name) for name in SUMMARY_FIELDS})

    def note(self, kind: NoteKind, text: str) -> None:
        """Add a note, once: the same note added again changes nothing."""
        note = Note(kind, text)
        if note not in self.notes:
            self.notes = (*self.notes, note)

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
        # Replaced, never changed in place, on (un)subscribing: `publish`
        # (several times per request) iterates them without a copy.
        self._subscribers: dict[str, tuple[Subscriber, ...]] = {}
        # Per topic, its subscribers then those of "*": what `publish` calls.
        # Replaced (not cleared) after `_subscribers` changes, so a publish
        # that read the old lists can only fill the dict no one reads.
        self._called: dict[str, tuple[Subscriber, ...]] = {}

    def subscribe(self, topic: str, fn: Subscriber) -> Callable[[], None]:
        """Call `fn(topic, payload)` for every event on `topic` ("*" for all).

        Returns a function that unsubscribes.
        """
        self._subscribers[topic] = (*self._subscribers.get(topic, ()), fn)
        self._called = {}

        def unsubscribe() -> None:
            subs = list(self._subscribers.get(topic, ()))
            if fn in subs:
                subs.remove(fn)
                self._subscribers[topic] = tuple(subs)
                self._called = {}

        return unsubscribe

    def publish(self, topic: str, payload: Any) -> None:
        cache = self._called
        called = cache.get(topic)
        if called is None:
            subscribers = self._subscribers
            called = (*subscribers.get(topic, ()), *subscribers.get("*", ()))
            cache[topic] = called
        for fn in called:
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
