"""What a record keeps of a request, with secrets taken out.

Bodies are kept only when the app asks (ProxyServer(capture_bodies=True)),
size-capped, with secret header values masked. Whatever a record or an
error message carries is scrubbed (`core/redact.py`) of every secret LM
Bridge holds, of the request's own credentials (the exact values of its
auth headers) and of anything that looks like a key or token, since
upstreams echo keys back in their errors.
"""

from __future__ import annotations

from aiohttp import web

from lmbridge.core.events import RequestRecord
from lmbridge.core.record import Note
from lmbridge.core.redact import SECRETS
from lmbridge.protocols.registry import addressed_doors

BODY_CAP = 256 * 1024
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie"}
)


def capture_request(record: RequestRecord, request: web.Request, body: bytes) -> None:
    """Keep the request: headers with secrets masked, capped body."""
    record.capture = True
    secrets = request_secrets(request)
    record.request_headers = {
        k: ("***" if k.lower() in SECRET_HEADERS or v in secrets else v)
        for k, v in request.headers.items()
    }
    record.method = request.method
    record.request_body = body[:BODY_CAP].decode("utf-8", "replace")
    record.request_truncated = len(body) > BODY_CAP


def capture_response(record: RequestRecord, data: bytes) -> None:
    """Append answer bytes to the record, up to BODY_CAP (only if capturing)."""
    if not record.capture:
        return
    room = BODY_CAP - len(record.response_body)
    if room <= 0:
        record.response_truncated = True
        return
    record.response_body += data[:room].decode("utf-8", "replace")


_NO_QUERY: dict[str, str] = {}
_CREDENTIAL_HEADERS = ("Authorization", "x-api-key", "api-key", "Proxy-Authorization")


def request_secrets(request: web.Request) -> tuple[str, ...]:
    """The credential values a request carries (to scrub them out)."""
    headers = request.headers
    given = [value for name in _CREDENTIAL_HEADERS if (value := headers.get(name))]
    found = []
    for value in given:  # most requests to a local proxy carry none or one
        if value[:7].lower() == "bearer ":
            value = value[7:]
        value = value.strip()
        if value:
            found.append(value)
    # The query is parsed only when there is one (most requests have none).
    query = request.query if "?" in request.raw_path else _NO_QUERY
    for door in addressed_doors():  # a protocol's own key (x-goog-api-key, ?key=)
        key = door.presented_key(request.headers, query)
        if key:
            found.append(key)
    return tuple(found)


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` without LM Bridge's secrets, the given ones, and anything
    key-like."""
    return SECRETS.scrub(text, secrets)


def scrub_record(record: RequestRecord, secrets: tuple[str, ...]) -> None:
    """Take secrets out of everything a finished record shows.

    Bodies lose the exact credential values only (cheap on 256 KB); the
    app's detail pane applies the pattern redaction when it shows them.
    """
    if record.error:
        record.error = scrub(record.error, secrets)
    if record.notes:
        record.notes = tuple(
            Note(note.kind, scrub(note.text, secrets)) for note in record.notes
        )
    if record.capture:
        record.request_body = SECRETS.scrub_literal(record.request_body, secrets)
        record.response_body = SECRETS.scrub_literal(record.response_body, secrets)
