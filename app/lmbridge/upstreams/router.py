"""Routing: which upstream and which target model answer a model name."""

from __future__ import annotations

from typing import NamedTuple

from lmbridge.config import Settings
from lmbridge.core.errors import InvalidRequest
from lmbridge.upstreams.http import HttpUpstream

# Claude model ids that clients' model pickers know; listed by /v1/models
# when a route's glob matches them, so a picker offers the alias.
CLAUDE_MODEL_IDS = (
    "claude-opus-5-5",
    "claude-sonnet-5-5",
    "claude-haiku-5-5",
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-opus-4-8",
    "claude-opus-4-7",
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-opus-4-5",
    "claude-haiku-4-5",
)

_GLOB_CHARS = frozenset("*?[")
_CACHED_MODELS = 256  # model names whose routes the router keeps

# Claude Code's /model picker keeps only the ids of a gateway's /v1/models
# that contain "claude" or "anthropic". In Anthropic's list shape every
# other model is offered as `claude/<id>`, and the router reads that name
# as `<id>`, so each routable model can be picked.
PICKER_PREFIX = "claude/"
_PICKER_KEEPS = ("claude", "anthropic")


def picker_id(model: str) -> str:
    """`model` as Claude Code's picker keeps it (unchanged if it would)."""
    if any(word in model.lower() for word in _PICKER_KEEPS):
        return model
    return PICKER_PREFIX + model


def unalias(model: str) -> str:
    """The model a picker id names (`claude/<id>` is `<id>`)."""
    if model.startswith(PICKER_PREFIX) and len(model) > len(PICKER_PREFIX):
        return model[len(PICKER_PREFIX) :]
    return model


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
        # Every request resolves its model: the glob matching is done once
        # per model name (bounded: clients choose the names).
        self._routes: dict[str, tuple[Resolved, ...]] = {}

    def resolve(self, model: str) -> Resolved:
        if not model:
            raise InvalidRequest("model is required", param="model")
        model = unalias(model)
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

    def candidates(self, model: str) -> tuple[Resolved, ...]:
        """The resolved route, then one entry per upstream in its `fallback`.

        A fallback upstream gets the target of the first route for `model`
        that names that upstream, or the client's model name unchanged.
        """
        found = self._routes.get(model)
        if found is None:
            found = tuple(self._candidates(model))
            if len(self._routes) >= _CACHED_MODELS:
                self._routes.clear()
            self._routes[model] = found
        return found

    def _candidates(self, model: str) -> list[Resolved]:
        first = self.resolve(model)
        model = unalias(model)
        out = [first]
        route = next((r for r in self.settings.route if r.matches(model)), None)
        for name in route.fallback if route else ():
            upstream = self.upstreams[name]
            target = next(
                (
                    r.target or model
                    for r in self.settings.route
                    if r.upstream == name and r.matches(model)
                ),
                model,
            )
            limit = upstream.settings.max_tokens_limit
            out.append(Resolved(upstream, target, f"fallback:{name}", limit))
        return out

    def aliases(self) -> list[str]:
        """Model ids that exist only as routes (exact names and Claude tiers)."""
        out: list[str] = []
        for route in self.settings.route:
            if not _GLOB_CHARS & set(route.model):
                out.append(route.model)
            else:
                out.extend(m for m in CLAUDE_MODEL_IDS if route.matches(m))
        return list(dict.fromkeys(out))
