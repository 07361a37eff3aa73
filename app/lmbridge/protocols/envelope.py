"""The simple services' error shape: `{"status": "error", "message": ...}`.

The chat service (`/chat`), the conversation store (`/store`) and the model
management routes answer errors in this envelope, with the error's HTTP
status; their successful answers carry `"status": "success"`.
"""

from __future__ import annotations

import msgspec

from lmbridge.core import errors


class Envelope(msgspec.Struct, omit_defaults=True):
    """`{"status": ..., "message": ...}`; success payload fields ride alongside."""

    status: str
    message: str | None = None


_ENCODE = msgspec.json.Encoder().encode


def encode_error(error: errors.LMBridgeError) -> bytes:
    """`error` in the envelope."""
    return _ENCODE(Envelope(status="error", message=error.message))
