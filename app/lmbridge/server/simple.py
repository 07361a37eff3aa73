"""What the simple services' routes share (chat, store, model management).

Their errors are rendered in the envelope by the app's error middleware
(`server/app.py`), like every other route's in its own protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from lmbridge.core import errors

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_encode = msgspec.json.Encoder()


def json_body(payload: msgspec.Struct, status: int = 200) -> web.Response:
    """A JSON response with `payload` encoded as is."""
    return web.Response(
        status=status, body=_encode.encode(payload), content_type="application/json"
    )


def query_param(request: web.Request, name: str) -> str:
    """A required query parameter; InvalidRequest if it is missing."""
    value = request.query.get(name)
    if value is None:
        raise errors.InvalidRequest(
            f"the query parameter {name!r} is required", param=name
        )
    return value
