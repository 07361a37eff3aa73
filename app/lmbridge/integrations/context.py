"""The context window a tool should compact within, for the models it uses.

Claude Code and Codex compact a conversation before it outgrows the model's
context window, but they only know their own vendors' models: for a local
model behind LM Bridge they assume a window of 200K tokens or more, and the
conversation overflows the model long before they compact. `lmbridge
integrate` therefore writes the real window, found here, first match:

1. `context_window` of the route the model name takes;
2. when that route goes to the managed LM Studio upstream: the context LM
   Studio has the route's target loaded with (the caller passes what LM
   Studio reports, `loaded`), raised to `lmstudio.min_context` when LM
   Bridge reloads short contexts (`context_policy = "auto"`);
3. there, for a model not loaded: `lmstudio.load_context_length`, the
   context LM Bridge loads it with on demand;
4. when the route goes to a `llamacpp` upstream: one slot's context as
   the server's `/props` reports it (the caller passes what the servers
   report by upstream name, `served`).

Otherwise the window is unknown and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from lmbridge import config

LoadedContext = Callable[[str], int | None]
"""The context a model is loaded with in LM Studio, None if not loaded."""

ServedWindow = Callable[[str], int | None]
"""The window an upstream's server reports for one request (by upstream
name; llama.cpp's one slot), None if it does not say."""


def context_window(
    settings: config.Settings,
    model: str,
    loaded: LoadedContext | None = None,
    served: ServedWindow | None = None,
) -> int | None:
    """The context window of `model` as LM Bridge routes it, if known."""
    route = next((r for r in settings.route if r.matches(model)), None)
    if route is not None and route.context_window:
        return route.context_window
    if route is not None:
        upstream = settings.upstream_named(route.upstream)
    else:
        upstream = settings.upstream[0] if settings.upstream else None
    if upstream is not None and upstream.kind == "llamacpp":
        return served(upstream.name) if served is not None else None
    lmstudio = settings.lmstudio
    if upstream is None or upstream.kind != "lmstudio" or not lmstudio.manage:
        return None
    target = (route.target if route is not None else None) or model
    current = loaded(target) if loaded is not None else None
    if current:
        if lmstudio.context_policy == "auto":
            return max(current, lmstudio.min_context)
        return current
    return lmstudio.load_context_length if lmstudio.load_on_demand else None


def smallest_window(
    settings: config.Settings,
    models: Iterable[str],
    loaded: LoadedContext | None = None,
    served: ServedWindow | None = None,
) -> int:
    """The smallest known window of `models` (0: none known)."""
    windows = [
        window
        for model in dict.fromkeys(m for m in models if m)
        if (window := context_window(settings, model, loaded, served))
    ]
    return min(windows, default=0)


def compact_limit(window: int) -> int:
    """Where a tool should compact in a `window`: at 80%, which leaves the
    model room for its answer (local windows are small, answers are not)."""
    return window * 4 // 5
