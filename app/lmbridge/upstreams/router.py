"""Routing: which upstream and which target model answer a model name."""

from __future__ import annotations

from typing import NamedTuple

from lmbridge.config import Settings
from lmbridge.core.errors import InvalidRequest
from lmbridge.upstreams.http import HttpUpstream

# Claude model ids that clients' model pickers know; listed by /v1/models
# when a route's glob matches them, so a picker offers the alias.
CLAUDE_MODEL_IDS = (
    "claude-opus-4-5",
    "claude-opus-4-1",
    "claude-sonnet-4-5",
    "claude-sonnet-4-0",
    "claude-haiku-4-5",
    "claude-3-5-haiku-latest",
)

_GLOB_CHARS = frozenset("*?[")


class Resolved(NamedTuple):
    upstream: HttpUpstream
    target: str
    rule: str
    max_tokens_limit: int | None


class Router:
    """Matches the model a client asks for against `[[route]]` globs in order.

    A model no route matches goes, unchanged, to the first upstream.
    """

    def __init__(self, settings: Settings, upstreams: dict[str, HttpUpstream]) -> None:
        self.settings = settings
        self.upstreams = upstreams
        self.default = upstreams[settings.upstream[0].name]

    def resolve(self, model: str) -> Resolved:
        if not model:
            raise InvalidRequest("model is required", param="model")
        for route in self.settings.route:
            if route.matches(model):
                upstream = self.upstreams[route.upstream]
                return Resolved(
                    upstream,
                    route.target or model,
                    route.model,
                    route.max_tokens_limit or upstream.settings.max_tokens_limit,
                )
        return Resolved(
            self.default, model, "default", self.default.settings.max_tokens_limit
        )

    def aliases(self) -> list[str]:
        """Model ids that exist only as routes (exact names and Claude tiers)."""
        out: list[str] = []
        for route in self.settings.route:
            if not _GLOB_CHARS & set(route.model):
                out.append(route.model)
            else:
                out.extend(m for m in CLAUDE_MODEL_IDS if route.matches(m))
        return list(dict.fromkeys(out))
