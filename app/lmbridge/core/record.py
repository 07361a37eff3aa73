"""The request's record: one frozen struct that every view of a request shares.

`RequestSummary` is declared once. The live `events.RequestRecord` is a
mutable subclass of it (the pipeline fills it in as the request goes, and
adds what only the live app keeps: its phase and captured bodies); the
request history derives its columns from these fields and reads rows back
into this struct by name (`store/usage.py`); the GUI's request log and
`--log-requests` render it. Adding a field is one edit here plus a
migration step that adds its column (`store/migrations.py`);
`tests/test_request_record.py` checks that the two agree.

Notes say what LM Bridge did to a request (a fallback, a load, a field
dropped, ...). Each is a `Note` (a kind and its words); a record holds
each note once, whoever adds it and however often (`RequestRecord.note`).
"""

from __future__ import annotations

import enum
import itertools
import time
from typing import Any

import msgspec

_ids = itertools.count(1)


class NoteKind(enum.StrEnum):
    """What a note is about (the GUI groups and marks notes by it)."""

    SESSION = "session"  # response chains: chained, diverged, lost, not saved
    FALLBACK = "fallback"  # another upstream answered
    DROPPED = "dropped"  # a field, tool or block the upstream could not take
    LIMIT = "limit"  # max_tokens lowered to fit
    LOAD = "load"  # LM Studio loaded or reloaded a model
    QUEUE = "queue"  # waited for a free slot of the upstream
    UPSTREAM = "upstream"  # what the upstream did: refused, token refreshed, ...
    STORAGE = "storage"  # the request's history row could not be written
    CACHE = "cache"  # the server's prompt cache: why a prefix broke
    SEARCH = "search"  # web searches LM Bridge ran for the model
    OTHER = "other"


class Note(msgspec.Struct, frozen=True):
    """One thing LM Bridge did to a request, in words for the user."""

    kind: NoteKind
    text: str

    def __str__(self) -> str:
        return self.text


class PrefixChange(enum.StrEnum):
    """How a request's prompt differs from its chain's previous one.

    The server's prompt cache reuses the longest unchanged start of the
    prompt; everything after the first change is evaluated again.
    """

    FIRST = "first"  # no earlier request of this chain seen
    APPENDED = "appended"  # the previous prompt, with new messages after it
    REWOUND = "rewound"  # a start of the previous prompt (a retry, a rewind)
    SETTING = "setting"  # the model or a setting the template depends on
    SYSTEM = "system"  # the system prompt changed
    TOOLS = "tools"  # the tool definitions changed
    EDITED = "edited"  # an earlier message was rewritten, later ones kept
    COMPACTED = "compacted"  # the history was replaced by a shorter one
    REORDERED = "reordered"  # earlier messages moved


# Frozen at run time. Passed this way because the live record
# (`events.RequestRecord`) is its mutable subclass, which msgspec allows and
# mypy's dataclass model does not (it would call every field read-only there).
_FROZEN: dict[str, Any] = {"frozen": True}


class RequestSummary(msgspec.Struct, kw_only=True, **_FROZEN):
    """Everything kept about one request: metadata, never bodies or headers.

    Timings are monotonic seconds after `received` (epoch seconds). The
    history stores one column per field (`id` is its row id there).
    """

    id: int = msgspec.field(default_factory=_ids.__next__)
    received: float = msgspec.field(default_factory=time.time)
    client: str = ""  # the user agent
    protocol: str = ""  # the front door
    path: str = ""
    model: str = ""  # as asked
    route: str = ""
    upstream: str = ""
    target: str = ""  # the model that ran
    upstream_api: str = ""
    stream: bool = False
    status: int = 0
    error: str | None = None
    # What kind of error it was (a `core.errors.ErrorKind` value), if any.
    error_kind: str = ""
    client_gone: bool = False
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
    # The chain (session, and subagent within it) the request belongs to.
    session_key: str | None = None
    notes: tuple[Note, ...] = ()
    # Prefix reuse within the chain (server/prefix.py): the request's turn
    # in its chain (1 for the first seen), how its prompt differs from the
    # previous turn's, the first message that differs (0-based; None when
    # the change is ahead of the messages: system, tools, a setting), what
    # changed there in words, and how many prompt tokens are the same as
    # before (of `tokens_in`; an estimate from per-message hashes).
    chain_turn: int | None = None
    prefix_change: PrefixChange | None = None
    prefix_at: int | None = None
    prefix_detail: str = ""
    kept_tokens: int | None = None

    @property
    def note_texts(self) -> list[str]:
        """The notes' words, in the order they were added."""
        return [note.text for note in self.notes]

    @property
    def new_tokens(self) -> int | None:
        """Prompt tokens the upstream evaluated anew (None: it did not say)."""
        if self.cached_tokens is None:
            return None
        return max(self.tokens_in - self.cached_tokens, 0)

    @property
    def cache_share(self) -> float | None:
        """The share (0..1) of the prompt served from the upstream's cache."""
        if self.cached_tokens is None or self.tokens_in <= 0:
            return None
        return min(self.cached_tokens / self.tokens_in, 1.0)

    @property
    def kept_share(self) -> float | None:
        """The share (0..1) of the prompt unchanged since the chain's last turn."""
        if self.kept_tokens is None or self.tokens_in <= 0:
            return None
        return min(self.kept_tokens / self.tokens_in, 1.0)

    def change_text(self) -> str:
        """What changed since the chain's previous turn, in a few words."""
        change = self.prefix_change
        if change is None:
            return ""
        if self.prefix_detail:
            return f"{change.value}: {self.prefix_detail}"
        return change.value


SUMMARY_FIELDS: tuple[str, ...] = RequestSummary.__struct_fields__
"""The names of the record's fields, in declaration order."""
