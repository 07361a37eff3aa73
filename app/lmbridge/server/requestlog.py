"""One line per finished request, for `lmbridge serve --log-requests`.

The line is terminal-safe: a model or client name holding a control
character (a terminal escape) is printed escaped, and the record it comes
from was scrubbed of secrets before it was published."""

from __future__ import annotations

import time
from typing import Any, TextIO

from lmbridge.core.events import RequestRecord
from lmbridge.core.record import PrefixChange
from lmbridge.core.redact import printable


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}ms"


def format_record(record: RequestRecord) -> str:
    """time client protocol model -> upstream/target status ttfb duration in/out
    and, where the upstream said, the prompt's share served from cache; in
    a chain, the turn, the share of the prompt kept from the turn before and
    what changed."""
    stamp = time.strftime("%H:%M:%S", time.localtime(record.received))
    client = (record.client or "-").split(" ")[0][:32]
    target = f"{record.upstream}/{record.target}" if record.upstream else "-"
    status = str(record.status) if record.status else "-"
    if record.client_gone:
        status += " client-gone"
    line = (
        f"{stamp} {client} {record.protocol} {record.model or '-'} -> {target}"
        f" {status} ttfb={_ms(record.first_token)} dur={_ms(record.done)}"
        f" tokens={record.tokens_in}/{record.tokens_out}"
    )
    if record.cached_tokens is not None and record.tokens_in > 0:
        # The share of the prompt the upstream served from its cache.
        line += f" cache={record.cached_tokens * 100 // record.tokens_in}%"
    if record.chain_turn is not None:
        # The request's turn in its chain, how much of its prompt is as
        # the turn before had it, and what changed if not only appended.
        line += f" turn={record.chain_turn}"
        if (kept := record.kept_share) is not None:
            line += f" kept={kept:.0%}"
        change = record.prefix_change
        if change is not None and change is not PrefixChange.APPENDED:
            line += f" {change.value}"
    if record.notes:
        line += " [" + "; ".join(record.note_texts) + "]"
    if record.error:
        line += f" error={record.error[:200]!r}"
    return printable(line)


class RequestLogPrinter:
    """Event-bus subscriber printing a line per finished request."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, topic: str, payload: Any) -> None:
        if isinstance(payload, RequestRecord):
            print(format_record(payload), file=self.stream, flush=True)
