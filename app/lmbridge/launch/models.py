"""The model of a launched client: chosen, available, and its real window.

The model is `--model`, else the one model LM Studio has loaded (for a
configuration whose model goes to the managed LM Studio). Its route
decides where it goes (integrations/context.py reads the window the
same way):

- to the managed LM Studio: the route's target is loaded if it is not,
  with at least the context the client needs (Claude Code: 32768, else
  `lmstudio.min_context`) and reloaded with that if it has less; the
  window the client is told is the one LM Studio gave (or the route's
  `context_window`);
- elsewhere: the name must be one the bridge serves (a route matches it,
  or `/v1/models` lists it); the window is the route's `context_window`,
  else, for a llama.cpp server, one slot's context as its `/props` says
  (Claude Code refused below 32768), unknown otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from lmbridge import config
from lmbridge.core.errors import LaunchError, LMBridgeError
from lmbridge.core.events import EventBus
from lmbridge.launch.clients import LaunchClient, LaunchModels
from lmbridge.lmstudio import (
    ConnectionState,
    ContextPolicy,
    LMStudioService,
    ModelKind,
)

# How long a server may take to say its context window.
SERVER_WAIT = 5.0


@dataclass(frozen=True)
class Placement:
    """Where a model name goes: its route (None: the first upstream)."""

    route: config.RouteSettings | None
    upstream: config.UpstreamSettings | None
    target: str

    @property
    def lmstudio(self) -> bool:
        return self.upstream is not None and self.upstream.kind == "lmstudio"


def place(settings: config.Settings, model: str) -> Placement:
    route = next((r for r in settings.route if r.matches(model)), None)
    if route is not None:
        upstream = settings.upstream_named(route.upstream)
    else:
        upstream = settings.upstream[0] if settings.upstream else None
    target = (route.target if route is not None else None) or model
    return Placement(route, upstream, target)


def needed_context(settings: config.Settings, client: LaunchClient) -> int:
    """The least context `client` should run with here."""
    return max(client.min_context, settings.lmstudio.min_context)


def _managed(settings: config.Settings, placement: Placement) -> bool:
    return placement.lmstudio and settings.lmstudio.manage


def uses_lmstudio(settings: config.Settings, model: str) -> bool:
    """Whether `model` (or, for "", the first upstream) is a managed LM Studio's."""
    if not model:
        first = settings.upstream[0] if settings.upstream else None
        return bool(first and first.kind == "lmstudio" and settings.lmstudio.manage)
    return _managed(settings, place(settings, model))


@contextlib.asynccontextmanager
async def lmstudio_session(
    settings: config.Settings, model: str
) -> AsyncIterator[LMStudioService | None]:
    """A connected model service for the LM Studio `model` goes to (None
    when LM Bridge does not manage it), open for the whole session: the
    session's own LM Bridge uses it too."""
    if not uses_lmstudio(settings, model):
        yield None
        return
    from lmbridge.server.services import lmstudio_service

    upstream = place(settings, model).upstream if model else settings.upstream[0]
    name = upstream.name if upstream is not None else None
    service = lmstudio_service(settings, EventBus(), name)
    try:
        async with service:
            status = await service.connect()
            if status.state is not ConnectionState.CONNECTED:
                raise LaunchError(status.error or "LM Studio is not reachable")
            yield service
    except LaunchError:
        raise
    except LMBridgeError as exc:
        raise LaunchError(exc.message) from exc


async def prepare(
    settings: config.Settings,
    client: LaunchClient,
    service: LMStudioService | None,
    model: str,
    small: str = "",
) -> LaunchModels:
    """The models of this run, loaded where LM Bridge manages them
    (`service`, from `lmstudio_session`).

    Raises LaunchError (one line, with the fix) when no model is chosen and
    none can be told, or LM Studio cannot give the context the client needs.
    """
    if service is None:
        if not model:
            raise LaunchError(
                f"choose the model {client.name} should use: "
                f"lmbridge launch {client.id} --model NAME"
            )
        placement = place(settings, model)
        window = placement.route.context_window if placement.route else None
        if not window and placement.upstream is not None:
            window = await served_window(placement.upstream)
        if window and window < client.min_context:
            raise LaunchError(
                f"{model} has a context of {window} tokens on "
                f"{placement.upstream.name if placement.upstream else 'its server'};"
                f" {client.name} needs at least {client.min_context} — start the "
                "server with a larger context (llama-server -c, per slot)"
            )
        return LaunchModels(model, small, window or 0)
    try:
        if not model:
            model = await _the_loaded_model(service, client)
        window = await _ensure(settings, client, service, model)
        if small and small != model and uses_lmstudio(settings, small):
            await _ensure(settings, client, service, small)
    except LaunchError:
        raise
    except LMBridgeError as exc:
        raise LaunchError(exc.message) from exc
    return LaunchModels(model, small, window)


async def served_window(upstream: config.UpstreamSettings) -> int | None:
    """What a llama.cpp server gives one request (its `/props`), None for
    other upstreams or when it does not say (integrations/context.py reads
    the same for `lmbridge integrate`)."""
    if upstream.kind != "llamacpp":
        return None
    from lmbridge.upstreams.llamacpp import LlamaCppUpstream

    server = LlamaCppUpstream(upstream)
    try:
        await server.start()
        return await asyncio.wait_for(server.context_window(""), SERVER_WAIT)
    except TimeoutError:
        return None
    finally:
        await server.close()


async def _the_loaded_model(service: LMStudioService, client: LaunchClient) -> str:
    """The one language model LM Studio has loaded."""
    llms = [m for m in await service.list_loaded() if m.kind is ModelKind.LLM]
    if len(llms) == 1:
        return llms[0].identifier
    loaded = ", ".join(m.identifier for m in llms)
    which = f"LM Studio has {loaded} loaded" if llms else "LM Studio has none loaded"
    raise LaunchError(
        f"choose the model {client.name} should use ({which}): "
        f"lmbridge launch {client.id} --model NAME"
    )


async def _ensure(
    settings: config.Settings,
    client: LaunchClient,
    service: LMStudioService,
    model: str,
) -> int:
    """Load `model`'s target with the context `client` needs; its window."""
    placement = place(settings, model)
    need = needed_context(settings, client)
    wanted = max(need, settings.lmstudio.load_context_length)
    loaded = service.loaded_model(placement.target)
    fresh = loaded is None
    if loaded is None:
        if not settings.lmstudio.load_on_demand:
            raise LaunchError(
                f"{placement.target} is not loaded in LM Studio and "
                "lmstudio.load_on_demand is off — load it (lmbridge models load "
                f"{placement.target} --context {need})"
            )
        loaded = await service.ensure_loaded(placement.target, wanted)
    context = loaded.context_length
    if context < need and not fresh:  # a fresh load already asked for it
        result = await service.ensure_context(
            placement.target, minimum=need, policy=ContextPolicy.AUTO
        )
        context = result.current or context
    if context < need:
        raise LaunchError(
            f"{placement.target} is loaded with a context of {context} tokens; "
            f"{client.name} needs at least {need} — LM Studio did not give more "
            "(too little memory?): load a smaller model or quantization"
        )
    route_window = placement.route.context_window if placement.route else None
    return route_window or context
