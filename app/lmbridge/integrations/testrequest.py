"""The smallest real request of each protocol, for the Integrations Test button.

Built here, sent elsewhere (the GUI sends it through the running proxy and
shows the answer): method, path, headers and a JSON body, as the tool would
send them, with a User-Agent that marks it in the request log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lmbridge import __version__
from lmbridge.integrations.base import ClientProtocol, Endpoint

PROMPT = "Reply with the single word: ok"
MAX_TOKENS = 16  # the Responses API's minimum for max_output_tokens


@dataclass(frozen=True)
class TestRequest:
    """One HTTP request: send `body` as JSON to `path` on the proxy."""

    __test__ = False  # not a pytest test class, despite the name

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)

    def url(self, root: str) -> str:
        """The full URL on the proxy at `root` (http://127.0.0.1:4680)."""
        return root.rstrip("/") + self.path


def build(
    protocol: ClientProtocol,
    model: str,
    endpoint: Endpoint | None = None,
    *,
    tool: str = "",
    stream: bool = False,
) -> TestRequest:
    """A one-turn request of `protocol` asking `model` for a short reply."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"lmbridge-test/{__version__}" + (f" ({tool})" if tool else ""),
    }
    key = endpoint.token if endpoint else ""
    if protocol == "anthropic":
        headers["anthropic-version"] = "2023-06-01"
        if key:
            headers["x-api-key"] = key
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": MAX_TOKENS,
            "messages": [{"role": "user", "content": PROMPT}],
        }
        path = "/v1/messages"
    elif protocol == "gemini":
        if key:
            headers["x-goog-api-key"] = key
        body = {
            "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
            "generationConfig": {"maxOutputTokens": MAX_TOKENS},
        }
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return TestRequest("POST", f"/v1beta/models/{model}:{method}", headers, body)
    elif protocol == "responses":
        if key:
            headers["Authorization"] = f"Bearer {key}"
        body = {"model": model, "input": PROMPT, "max_output_tokens": MAX_TOKENS}
        path = "/v1/responses"
    else:
        if key:
            headers["Authorization"] = f"Bearer {key}"
        body = {
            "model": model,
            "max_tokens": MAX_TOKENS,
            "messages": [{"role": "user", "content": PROMPT}],
        }
        path = "/v1/chat/completions"
    if stream:
        body["stream"] = True
    return TestRequest("POST", path, headers, body)
