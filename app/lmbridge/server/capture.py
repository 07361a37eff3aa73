"""Request and response bodies kept on records for the app's detail pane.

Only when the app asks (ProxyServer(capture_bodies=True)); size-capped, and
header values that carry secrets are masked.
"""

from __future__ import annotations

from aiohttp import web

from lmbridge.core.events import RequestRecord

BODY_CAP = 256 * 1024
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie"}
)


def capture_request(record: RequestRecord, request: web.Request, body: bytes) -> None:
    """Keep the request: headers with secrets masked, capped body."""
    record.capture = True
    record.request_headers = {
        k: ("***" if k.lower() in SECRET_HEADERS else v)
        for k, v in request.headers.items()
    }
    record.request_body = body[:BODY_CAP].decode("utf-8", "replace")


def capture_response(record: RequestRecord, data: bytes) -> None:
    """Append answer bytes to the record, up to BODY_CAP (only if capturing)."""
    if not record.capture:
        return
    room = BODY_CAP - len(record.response_body)
    if room <= 0:
        record.response_truncated = True
        return
    record.response_body += data[:room].decode("utf-8", "replace")
