"""What Azure's error answers mean, in words that name the fix.

Azure answers in several shapes (`{"error": {"code", "message",
"innererror"}}`, `{"statusCode", "message"}`, Anthropic's on the Claude
route). `refine` turns the generic error the codec made of one into:

- 429: `RateLimited` with `retry_after` from `retry-after-ms` /
  `Retry-After` (already read by `HttpUpstream.post`) or else from the
  "retry after N seconds" text;
- 401, three shapes: a bad key -> `AuthenticationFailed` about the key; a
  bad, expired or wrong-audience token -> `AuthenticationFailed` about
  sign-in and scope; a missing role (`PermissionDenied`, "lacks the required
  data action") -> `PermissionDenied` naming the role to ask for;
- 404 `DeploymentNotFound` -> `NotFound` naming the deployment;
- a content-filter refusal (400 `content_filter`) -> `ContentFiltered`,
  which the upstream serves as a refusal in the client's protocol.

Refined errors drop the upstream body, so the client gets our message in
its own protocol even on pass-through; other errors are left as they are.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncGenerator
from typing import Any, NamedTuple

import msgspec

from lmbridge.core import errors, ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols.registry import front_door

ROLE_HINT = (
    "ask an owner of the resource to give your account the 'Azure AI User' "
    "role (or 'Cognitive Services OpenAI User' on Azure OpenAI); a new role "
    "takes up to 5 minutes to apply"
)
_RETRY_TEXT = re.compile(
    r"(?:retry|try again)\s+(?:after|in)\s+(\d+(?:\.\d+)?)\s*(?:seconds?|secs?|s\b)",
    re.IGNORECASE,
)


class AzureContext(NamedTuple):
    """What the message of a refined error names."""

    upstream: str
    host: str
    deployment: str
    auth: str
    scope: str
    sign_in: str
    project_route: bool = False


class _Inner(msgspec.Struct):
    code: str | None = None
    content_filter_result: dict[str, Any] | None = None


class _Detail(msgspec.Struct):
    code: str | int | None = None
    message: str = ""
    innererror: _Inner | None = None


class _Envelope(msgspec.Struct):
    error: _Detail | None = None
    message: str = ""
    code: str | int | None = None


_decode_envelope = msgspec.json.Decoder(_Envelope)


class AzureError(NamedTuple):
    code: str
    message: str
    inner_code: str
    filtered: list[str]


def parse(body: bytes | None) -> AzureError:
    """Code, message and content-filter categories of an Azure error body."""
    try:
        env = _decode_envelope.decode(body or b"")
    except DECODE_ERRORS:
        text = (body or b"")[:300].decode("utf-8", "replace").strip()
        return AzureError("", text, "", [])
    detail = env.error or _Detail(code=env.code, message=env.message)
    inner = detail.innererror or _Inner()
    filtered = [
        f"{name}: {result.get('severity', 'filtered')}"
        if isinstance(result, dict) and result.get("severity")
        else name
        for name, result in (inner.content_filter_result or {}).items()
        if isinstance(result, dict) and result.get("filtered")
    ]
    code = "" if detail.code is None else str(detail.code)
    return AzureError(code, detail.message or env.message, inner.code or "", filtered)


class ContentFiltered(errors.InvalidRequest):
    """Azure's content filter refused the request.

    A refusal is an answer, not a failure: translated requests get refusal
    events (`refusal_batches`), and on pass-through the upstream's `relay`
    returns it as data, a `Refusal` in the client's own protocol
    (`refusal_body`), which the proxy sends with status 200.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, code="content_filter")


def retry_hint(message: str) -> float | None:
    """Seconds named by "retry after N seconds" / "try again in N seconds"."""
    match = _RETRY_TEXT.search(message)
    return float(match.group(1)) if match else None


def _is_content_filter(found: AzureError) -> bool:
    codes = {found.code.lower(), found.inner_code.lower()}
    return bool(
        codes & {"content_filter", "responsibleaipolicyviolation"} or found.filtered
    )


def _lacks_role(found: AzureError) -> bool:
    text = found.message.lower()
    return (
        found.code.lower() in ("permissiondenied", "authorizationfailed")
        or "lacks the required data action" in text
        or "does not have permission" in text
    )


def _bad_key(found: AzureError, ctx: AzureContext) -> bool:
    text = found.message.lower()
    return ctx.auth == "api-key" or "subscription key" in text or "api key" in text


def refine(err: errors.LMBridgeError, ctx: AzureContext) -> errors.LMBridgeError:
    """`err` (from an Azure answer) re-made to say what happened and the fix."""
    found = parse(err.upstream_body)
    said = found.message or err.message
    who = f"upstream {ctx.upstream!r}"
    refined: errors.LMBridgeError
    if err.status == 400 and _is_content_filter(found):
        what = ", ".join(found.filtered) or "the prompt"
        refined = ContentFiltered(
            f"Azure's content filter blocked this request ({what}); rephrase it,"
            " or ask the resource owner about the deployment's content filter."
        )
    elif err.status in (401, 403) and _lacks_role(found):
        refined = errors.PermissionDenied(
            f"Azure refused {who}: the signed-in account may not use "
            f"{ctx.deployment or 'this deployment'} on {ctx.host} ({said}) — "
            f"{ROLE_HINT}",
            code="PermissionDenied",
        )
    elif err.status == 401 and _bad_key(found, ctx):
        extra = (
            '; if the project refuses keys, sign in with auth = "azure-cli"'
            ' or "browser"'
            if ctx.project_route
            else ""
        )
        refined = errors.AuthenticationFailed(
            f"Azure rejected the API key of {who} ({said}) — store the key of "
            f"resource {ctx.host} with `lmbridge keys set {ctx.upstream}`{extra}",
            code="invalid_api_key",
        )
    elif err.status == 401:
        refined = errors.AuthenticationFailed(
            f"Azure rejected the access token of {who}: it is expired, revoked "
            f"or for another audience than {ctx.host} (scope {ctx.scope}) "
            f"({said}) — {ctx.sign_in}; on *.openai.azure.com set scope = "
            '"https://cognitiveservices.azure.com/.default"',
            code="invalid_token",
        )
    elif err.status == 404 and (
        found.code == "DeploymentNotFound" or "deployment" in said.lower()
    ):
        refined = errors.NotFound(
            f"Azure has no deployment named {ctx.deployment!r} on {ctx.host} "
            f"({said}) — deploy the model in the Foundry portal, or set the "
            "route's target to an existing deployment name",
            code="DeploymentNotFound",
        )
    elif err.status == 429:
        refined = errors.RateLimited(
            f"Azure rate-limited deployment {ctx.deployment!r} of {who}: {said}",
            code="rate_limit_exceeded",
            retry_after=err.retry_after or retry_hint(said),
        )
    else:
        return err
    return refined


# ------------------------------------------------------------------ refusals


def _refusal(model: str, text: str) -> list[ir.Event]:
    return [
        ir.MessageStart(id=f"msg_{secrets.token_hex(12)}", model=model),
        ir.BlockStart(0, ir.BlockKind.TEXT),
        ir.TextDelta(0, text),
        ir.BlockStop(0),
        ir.Finish(ir.StopReason.REFUSAL, ir.Usage()),
    ]


async def refusal_batches(
    req: ir.Request, text: str
) -> AsyncGenerator[list[ir.Event], None]:
    """A refusal as an IR stream (one batch), for translated requests."""
    yield list(_refusal(req.model, text))


def refusal_body(protocol: str, body: bytes, text: str) -> bytes | None:
    """A refusal in `protocol` (the client's, on pass-through) answering the
    request `body`: SSE when it asked for a stream. None if unparsable."""
    door = front_door(protocol)
    try:
        req = door.parse_request(body)
    except errors.LMBridgeError:
        return None
    if req.stream:
        encoder = door.stream_encoder(req)
        return b"".join(encoder.encode(e) for e in _refusal(req.model, text))
    response = ir.Response(
        id=f"msg_{secrets.token_hex(12)}",
        model=req.model,
        parts=[ir.Text(text)],
        stop_reason=ir.StopReason.REFUSAL,
    )
    return door.encode_response(response)
