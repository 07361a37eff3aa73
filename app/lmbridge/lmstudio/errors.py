"""The one place where `lmstudio` SDK and transport errors become LM Bridge errors.

    LMBridgeError                      passed through unchanged
    LMStudioModelNotFoundError      -> NotFound            names the model
    connection lost / refused        -> UpstreamUnavailable "LM Studio is not
    (LMStudioWebsocketError, httpx,                         running on <addr> — ..."
     OSError, aiohttp, "not reachable")
    TimeoutError                     -> UpstreamUnavailable (load) / Timeout
    LMStudioValueError               -> InvalidRequest      the SDK refused a value
    any failure during a load        -> UpstreamUnavailable names model + reason
    any failure during a download    -> UpstreamError       names download + reason
    (connection lost: Unavailable)
    any failure during a search      -> UpstreamError       names the search + reason
    LMStudioServerError otherwise    -> UpstreamError
    anything else from the SDK       -> UpstreamError

`Operation` says what was under way, so the message names it.
`is_connection_error` tells the connection supervisor which failures mean the
websocket is gone (the SDK never reconnects by itself).
"""

from __future__ import annotations

import enum
from typing import Any

import aiohttp
import httpx
import lmstudio

from lmbridge.core.errors import (
    InvalidRequest,
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


class Operation(enum.Enum):
    """What LM Bridge asked LM Studio to do when an error came back."""

    CALL = "call"
    LOAD = "load"
    DOWNLOAD = "download"
    SEARCH = "search"


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


def download_failed(name: str, reason: str) -> UpstreamError:
    """The error for a download that did not finish, naming it and why."""
    return UpstreamError(
        f"LM Studio could not download {name!r}: {reason}",
        code="lmstudio_download_failed",
    )


def download_cancelled(name: str) -> UpstreamUnavailable:
    """The error callers waiting on a cancelled download receive."""
    return UpstreamUnavailable(
        f"Downloading {name!r} in LM Studio was cancelled",
        code="lmstudio_download_cancelled",
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
    during: Operation = Operation.CALL,
) -> LMBridgeError:
    """Convert any exception met while talking to LM Studio.

    `model` names what the operation was about (a model key, a download key
    or a search query).
    """
    if isinstance(exc, LMBridgeError):
        return exc
    loading = during is Operation.LOAD and model is not None
    if isinstance(exc, lmstudio.LMStudioModelNotFoundError):
        name = f"Model {model!r}" if model else "The model"
        where = "downloaded to" if during is Operation.LOAD else "loaded in"
        return NotFound(f"{name} is not {where} LM Studio", param="model")
    if is_connection_error(exc):
        if loading and model:
            return load_failed(model, f"the connection to {address} was lost")
        if during is Operation.DOWNLOAD and model:
            return UpstreamUnavailable(
                f"The download of {model!r} stopped: the connection to LM Studio"
                f" on {address} was lost — check that LM Studio is running",
                code="lmstudio_download_failed",
            )
        return not_running(address)
    if isinstance(exc, TimeoutError):
        if loading and model:
            return load_failed(model, "it took too long")
        return Timeout(f"LM Studio at {address} did not answer in time")
    if isinstance(exc, lmstudio.LMStudioValueError):
        return InvalidRequest(f"LM Studio SDK: {server_reason(exc)}")
    reason = server_reason(exc)
    if loading and model:
        return load_failed(model, reason)
    if during is Operation.DOWNLOAD and model:
        return download_failed(model, reason)
    if during is Operation.SEARCH:
        return UpstreamError(
            f"LM Studio could not search for models ({model!r}): {reason}"
            " — model search needs an internet connection",
            code="lmstudio_search_failed",
        )
    if isinstance(exc, lmstudio.LMStudioServerError):
        return UpstreamError(f"LM Studio: {reason}")
    return UpstreamError(f"LM Studio SDK error: {reason}")
