"""The one place where `lmstudio` SDK and transport errors become LM Bridge errors.

    LMBridgeError                      passed through unchanged
    LMStudioModelNotFoundError      -> NotFound            names the model
    connection lost / refused        -> UpstreamUnavailable "LM Studio is not
    (LMStudioWebsocketError, httpx,                         running on <addr> — ..."
     OSError, aiohttp, "not reachable")
    TimeoutError                     -> UpstreamUnavailable (load) / Timeout
    LMStudioServerError on a load    -> UpstreamUnavailable names model + reason
    LMStudioServerError otherwise    -> UpstreamError
    anything else from the SDK       -> UpstreamError

`is_connection_error` tells the connection supervisor which failures mean the
websocket is gone (the SDK never reconnects by itself).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx
import lmstudio

from lmbridge.core.errors import (
    LMBridgeError,
    NotFound,
    Timeout,
    UpstreamError,
    UpstreamUnavailable,
)

try:  # httpx_ws is the SDK's websocket library; its errors are not httpx's.
    from httpx_ws import HTTPXWSException as _WSError
except ImportError:  # pragma: no cover - the SDK depends on it
    _WSError = OSError  # type: ignore[assignment,misc]

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    lmstudio.LMStudioWebsocketError,
    httpx.TransportError,
    _WSError,
    aiohttp.ClientError,
    ConnectionError,
    OSError,
)


def not_running(address: str) -> UpstreamUnavailable:
    """The error for 'nothing answers at this address', naming the fix."""
    return UpstreamUnavailable(
        f"LM Studio is not running on {address} — start its server,"
        " or set the address in Settings",
        code="lmstudio_unavailable",
    )


def load_failed(model: str, reason: str) -> UpstreamUnavailable:
    """The error for a model that did not load, naming it and why."""
    return UpstreamUnavailable(
        f"LM Studio could not load model {model!r}: {reason}",
        code="lmstudio_load_failed",
    )


def load_cancelled(model: str) -> UpstreamUnavailable:
    """The error callers waiting on a cancelled load receive."""
    return UpstreamUnavailable(
        f"Loading model {model!r} in LM Studio was cancelled",
        code="lmstudio_load_cancelled",
    )


def is_connection_error(exc: BaseException) -> bool:
    """True when `exc` means the link to LM Studio is down."""
    if isinstance(exc, _CONNECTION_ERRORS):
        return True
    # The SDK reports a failed probe as a plain client error.
    return isinstance(exc, lmstudio.LMStudioClientError) and "not reachable" in str(exc)


def server_reason(exc: BaseException) -> str:
    """The server's one-line reason for an SDK server error."""
    details: Any = getattr(exc, "server_error", None)
    parts: list[str] = []
    if details is not None:
        for attr in ("title", "cause"):
            value = getattr(details, attr, None)
            if value and str(value) not in parts:
                parts.append(str(value))
    if parts:
        return ": ".join(parts)
    first_line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    return first_line or type(exc).__name__


def to_bridge_error(
    exc: BaseException,
    *,
    address: str,
    model: str | None = None,
    loading: bool = False,
) -> LMBridgeError:
    """Convert any exception met while talking to LM Studio."""
    if isinstance(exc, LMBridgeError):
        return exc
    if isinstance(exc, lmstudio.LMStudioModelNotFoundError):
        name = f"Model {model!r}" if model else "The model"
        where = "loaded in" if not loading else "downloaded to"
        return NotFound(f"{name} is not {where} LM Studio", param="model")
    if is_connection_error(exc):
        error = not_running(address)
        if loading and model:
            error = load_failed(model, f"the connection to {address} was lost")
        return error
    if isinstance(exc, TimeoutError):
        if loading and model:
            return load_failed(model, "it took too long")
        return Timeout(f"LM Studio at {address} did not answer in time")
    if loading and model:
        return load_failed(model, server_reason(exc))
    if isinstance(exc, lmstudio.LMStudioServerError):
        return UpstreamError(f"LM Studio: {server_reason(exc)}")
    return UpstreamError(f"LM Studio SDK error: {server_reason(exc)}")
