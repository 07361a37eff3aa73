"""How the request log shows bodies: redacted, pretty, streams assembled.

Pure functions (no Qt, no I/O) so they are easy to test: `redact` hides
secrets in a body, `pretty` indents JSON, `assembled_text` folds a captured
SSE answer into the text a user would have seen (`apiclient.stream_text`),
and `curl_command` writes a request as a shell command.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from typing import Any

from lmbridge.apiclient import stream_text

REDACTED = "«redacted»"

# JSON keys whose values are secrets (whole key, case-insensitive).
_SECRET_KEY = re.compile(
    r"^(.*[_-])?(api[_-]?key|authorization|password|passwd|secret|client[_-]?secret"
    r"|access[_-]?token|refresh[_-]?token|id[_-]?token|bearer|cookie)$",
    re.IGNORECASE,
)
# Secret-looking values anywhere in text: provider keys, bearer tokens, JWTs.
_SECRET_VALUE = re.compile(
    r"(sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{12,}"
    r"|(?<=Bearer )[A-Za-z0-9._~+/=\-|]{12,}"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{4,})"
)
# Headers worth repeating in curl / replay (never credentials).
SAFE_HEADERS = ("content-type", "anthropic-version", "anthropic-beta", "openai-beta")


def redact_value(text: str) -> str:
    """`text` with secret-looking substrings replaced."""
    return _SECRET_VALUE.sub(REDACTED, text)


def _redact_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (
                REDACTED
                if _SECRET_KEY.match(k) and isinstance(v, str | int) and v != ""
                else _redact_json(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact_json(v) for v in value]
    if isinstance(value, str):
        return redact_value(value)
    return value


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def redact(text: str) -> str:
    """`text` (JSON or not) with its secrets replaced by «redacted»."""
    data = _parse_json(text)
    if isinstance(data, dict | list):
        return json.dumps(_redact_json(data), ensure_ascii=False)
    return redact_value(text)


def pretty(text: str) -> str:
    """JSON indented for reading, secrets redacted; other text as is."""
    if not text:
        return ""
    data = _parse_json(text)
    if isinstance(data, dict | list):
        return json.dumps(_redact_json(data), indent=2, ensure_ascii=False)
    return redact_value(text)


def raw_events(body: str) -> str:
    """The captured SSE answer as it went over the wire (secrets redacted)."""
    return redact_value(body)


def assembled_text(protocol: str, request_body: str, response_body: str) -> str | None:
    """The text a client assembled from a captured stream (None if the
    answer is not a stream of a model protocol), secrets redacted."""
    text = stream_text(protocol, request_body, response_body)
    return None if text is None else redact_value(text)


def curl_command(
    base_url: str,
    path: str,
    body: str,
    headers: Mapping[str, str] | None = None,
    *,
    token_env: str = "",
) -> str:
    """A shell command that sends the same request through the proxy.

    Only harmless headers are repeated; credentials never are. With an
    access token, the command reads it from `$token_env`.
    """
    lines = [f"curl -sS {shlex.quote(base_url.rstrip('/') + path)}"]
    if token_env:
        lines.append(f'-H "Authorization: Bearer ${token_env}"')
    sent = {k.lower(): v for k, v in (headers or {}).items()}
    sent.setdefault("content-type", "application/json")
    for name in SAFE_HEADERS:
        if name in sent:
            lines.append(f"-H {shlex.quote(f'{name}: {sent[name]}')}")
    data = _parse_json(body)
    compact = (
        json.dumps(_redact_json(data), ensure_ascii=False)
        if data is not None
        else redact(body)
    )
    lines.append(f"--data-binary {shlex.quote(compact)}")
    return " \\\n  ".join(lines)


def replay_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The headers a replay sends: the harmless ones the client sent."""
    sent = {k.lower(): v for k, v in (headers or {}).items()}
    out = {name: sent[name] for name in SAFE_HEADERS if name in sent}
    out.setdefault("content-type", "application/json")
    return out
