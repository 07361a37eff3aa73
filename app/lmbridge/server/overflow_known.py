"""What LM Bridge knows of a model's window, for overflow messages.

An upstream that refuses a prompt as too long does not always say by how
much ("the input length exceeds the context length"). Claude Code needs
`N tokens > M maximum` to know how much to compact, so before each upstream
call the pipeline tells `protocols.overflow` (`known_for`) the model's
window, best source first:

1. the context LM Studio has the model loaded with (the window in force);
2. the window the server reports itself (llama.cpp's `/props`, as last
   read; no request is made here);
3. the route's `context_window` (what the user declared);
4. a window the server stated in an earlier refusal (`MaxTokensMemory`);

and how to count the prompt (LM Bridge's own estimate, counted only when
an overflow needs it).
"""

from __future__ import annotations

from lmbridge.core import ir
from lmbridge.protocols import overflow, tokens
from lmbridge.server.services import Services
from lmbridge.upstreams.router import Resolved


def known_window(services: Services, resolved: Resolved) -> int | None:
    """The model's context window as far as LM Bridge knows it (None: not)."""
    name, target = resolved.upstream.name, resolved.target
    preparer = services.preparers.get(name)
    if preparer is not None and preparer.connected:
        loaded = preparer.service.loaded_context(target)
        if loaded:
            return loaded
    reported = resolved.upstream.reported_window(target)
    if reported:
        return reported
    for route in services.settings.route:
        if route.model == resolved.rule and route.upstream == name:
            if route.context_window:
                return route.context_window
            break
    return services.max_tokens.window(name, target)


def tell(services: Services, req: ir.Request, resolved: Resolved) -> None:
    """Let overflow wording know `req`'s window and prompt count.

    Cheap on the answer path: the window is looked up and the prompt
    counted only if an overflow asks (closures, not functools.cache, whose
    wrapper costs tens of microseconds to build).
    """
    counted: list[int] = []

    def count() -> int:
        if not counted:
            counted.append(tokens.count_request(req))
        return counted[0]

    def window() -> int | None:
        return known_window(services, resolved)

    overflow.known_for(window, count)
