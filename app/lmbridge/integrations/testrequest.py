"""The smallest real request of each protocol, for the Test buttons (the
Integrations page, the set-up wizard): the one test-request builder.

Built here from the front door's own facts, sent elsewhere (the GUI sends
it through the running proxy and shows the answer): method, path, headers
and a JSON body, as the tool would send them, with a User-Agent that marks
it in the request log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lmbridge import __version__
from lmbridge.integrations.base import ClientProtocol, Endpoint
from lmbridge.protocols.registry import front_door

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
    """A one-turn request of `protocol` asking `model` for a short reply:
    the front door's own example request, path and headers (its key header
    and version strings, `protocols/<api>/`)."""
    door = front_door(protocol)
    headers = door.wire.request_headers(endpoint.token if endpoint else "")
    headers["User-Agent"] = f"lmbridge-test/{__version__}" + (
        f" ({tool})" if tool else ""
    )
    body = door.example_request(model, PROMPT, max_tokens=MAX_TOKENS, stream=stream)
    path = door.wire.request_path(model, stream=stream)
    return TestRequest("POST", path, headers, body)
