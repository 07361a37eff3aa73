"""Loading LM Studio models: on demand, single-flight, and to a minimum context.

`LMStudioService` is the service routes, the router and the GUI call. On top
of `ModelCatalog` (listing, the loaded-model cache, unloading) it loads
models with `LoadOptions`, progress events and cancel, loads on demand with
one shared load per model (`ensure_loaded`), reloads a model whose context is
below the configured minimum (`ensure_context`), and says so when LM Studio
loads less context than asked (`TOPIC_LOAD_WARNING`). Searching LM Studio's
catalog and downloading live in `service.downloads` (`ModelDownloads`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from pathlib import Path

import msgspec

from lmbridge.core.errors import InvalidRequest, LMBridgeError
from lmbridge.core.events import EventBus

from . import sdk_calls
from .catalog import ModelCatalog
from .context_rule import context_target
from .downloads import ModelDownloads
from .errors import Operation, load_cancelled, load_failed
from .flights import Flights
from .structs import (
    DEFAULT_ADDRESS,
    TOPIC_LOAD_PROGRESS,
    TOPIC_LOAD_WARNING,
    ContextPolicy,
    EnsureAction,
    EnsureResult,
    GpuOffload,
    LMStudioOptions,
    LoadedModel,
    LoadOptions,
    LoadProgress,
    LoadWarning,
)

log = logging.getLogger(__name__)


class LMStudioService(ModelCatalog):
    """Model management for the LM Studio on this machine.

    Everything `ModelCatalog` does, plus loading. Load progress goes out on
    the bus as `TOPIC_LOAD_PROGRESS` (`LoadProgress`), a load that got less
    context than asked as `TOPIC_LOAD_WARNING` (`LoadWarning`). Loads of one
    model key are single-flight: a second caller waits for the load under way.
    `downloads` searches LM Studio's catalog and downloads models.
    """

    def __init__(
        self,
        bus: EventBus,
        options: LMStudioOptions | None = None,
        *,
        home: Path | None = None,
        sdk_ports: tuple[int, ...] | None = None,
        fallback: str = DEFAULT_ADDRESS,
    ) -> None:
        super().__init__(
            bus, options, home=home, sdk_ports=sdk_ports, fallback=fallback
        )
        self._loads: Flights[LoadedModel] = Flights("load", load_cancelled)
        self.downloads = ModelDownloads(bus, self._call, self.list_downloaded)

    async def aclose(self) -> None:
        """Cancel loads and downloads in flight (in LM Studio too), then close."""
        await self._loads.cancel_all()
        await self.downloads.aclose()
        await super().aclose()

    # -- loading -----------------------------------------------------------

    async def load(
        self,
        model_key: str,
        options: LoadOptions | None = None,
        *,
        context_length: int | None = None,
        ttl: int | None = None,
        gpu_offload: GpuOffload | None = None,
        identifier: str | None = None,
    ) -> LoadedModel:
        """Load a new instance; progress goes out on `TOPIC_LOAD_PROGRESS`.

        The keyword arguments override `options` (`ttl` in seconds); what
        neither sets comes from the configured `load_defaults`, then from
        LM Studio. The result carries the context asked for and the context
        LM Studio gave. If a load of this model is already under way, this
        waits for that one instead. Raises InvalidRequest for bad values.
        """
        try:
            given = LoadOptions(
                context_length=context_length, ttl_seconds=ttl, gpu_offload=gpu_offload
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        wanted = given.over(options or LoadOptions()).over(self._options.load_defaults)
        return await self._loads.join(
            model_key, lambda: self._load_now(model_key, identifier, wanted)
        )

    def cancel_load(self, model_key: str) -> bool:
        """Cancel the load of `model_key` in flight (in LM Studio too)."""
        return self._loads.cancel(model_key)

    async def ensure_loaded(
        self, model_key: str, context_length: int | None = None
    ) -> LoadedModel:
        """The loaded instance of `model_key`, loading it first if needed.

        Loads with `context_length` or the configured one (capped at the
        model's maximum) and the configured TTL and load defaults. Concurrent
        callers share one load.
        """
        found = self.loaded_model(model_key)
        if found is not None:
            return found
        wanted = context_length or self._options.load_context_length
        return await self._loads.join(
            model_key, lambda: self._load_if_missing(model_key, wanted)
        )

    async def ensure_context(
        self,
        model_key: str,
        minimum: int | None = None,
        policy: ContextPolicy | None = None,
    ) -> EnsureResult:
        """Make sure a loaded model's context is at least `minimum`.

        AUTO reloads it with the minimum (same identifier, key, TTL, GPU
        offload, flash attention and KV-cache types); WARN only reports; OFF
        does not look.
        """
        policy = policy or self._options.context_policy
        minimum = minimum or self._options.min_context
        if policy is ContextPolicy.OFF:
            return EnsureResult(model_key=model_key, action=EnsureAction.SKIPPED)
        current = self.loaded_model(model_key) or await self._find_fresh(model_key)
        if current is None:
            return EnsureResult(
                model_key=model_key,
                action=EnsureAction.NOT_LOADED,
                message=f"{model_key} is not loaded",
            )
        target = context_target(current, minimum)
        before = current.context_length
        if before >= target:
            return EnsureResult(
                model_key=model_key,
                action=EnsureAction.UNCHANGED,
                previous=before,
                current=before,
            )
        if policy is ContextPolicy.WARN:
            message = f"{model_key} is loaded with context {before} < {target}"
            log.warning("%s", message)
            return EnsureResult(
                model_key=model_key,
                action=EnsureAction.BELOW_MINIMUM,
                previous=before,
                current=before,
                message=message,
            )
        reloaded = await self._loads.join(
            model_key, lambda: self._reload(current, target)
        )
        after = reloaded.context_length
        message = f"reloaded {model_key} from context {before} to {after}"
        if after < target:
            message += f" (asked for {target})"
        log.info("%s", message)
        return EnsureResult(
            model_key=model_key,
            action=EnsureAction.RELOADED,
            previous=before,
            current=after,
            message=message,
        )

    # -- internals ---------------------------------------------------------

    async def _load_if_missing(self, key: str, context_length: int) -> LoadedModel:
        found = await self._find_fresh(key)
        if found is not None:
            return found
        model = await self._downloaded_model(key)
        wanted = LoadOptions(
            context_length=min(context_length, model.max_context_length),
            ttl_seconds=self._options.load_ttl_seconds,
        )
        return await self._load_now(key, None, wanted.over(self._options.load_defaults))

    async def _load_now(
        self, key: str, identifier: str | None, options: LoadOptions
    ) -> LoadedModel:
        kind = (await self._downloaded_model(key)).kind

        def progress(fraction: float) -> None:
            self._bus.publish(TOPIC_LOAD_PROGRESS, LoadProgress(key, fraction))

        timeout = self._options.load_timeout
        try:
            async with asyncio.timeout(timeout):
                new_id = await self._call(
                    lambda c: sdk_calls.load_model(
                        c,
                        kind,
                        key,
                        identifier=identifier,
                        options=options,
                        on_progress=progress,
                    ),
                    model=key,
                    during=Operation.LOAD,
                )
        except TimeoutError:
            raise load_failed(key, f"it did not finish within {timeout:g} s") from None
        self._ttls[new_id] = options.ttl_seconds
        if options.context_length is not None:
            self._requested[new_id] = options.context_length
        await self.list_loaded()  # what LM Studio really loaded
        instance = next((m for m in self._loaded if m.identifier == new_id), None)
        if instance is None:  # unloaded again already (a TTL of seconds)
            instance = LoadedModel(
                identifier=new_id,
                key=key,
                kind=kind,
                context_length=options.context_length or 0,
                ttl_seconds=options.ttl_seconds,
                requested_context_length=options.context_length,
            )
        if instance.context_shortfall:
            self._warn_short_context(instance)
        return instance

    def _warn_short_context(self, instance: LoadedModel) -> None:
        asked = instance.requested_context_length or 0
        message = (
            f"LM Studio loaded {instance.key} with a context of"
            f" {instance.context_length} tokens, not the {asked} asked for — it"
            " may not fit in memory: ask for less context, offload more to the"
            " GPU, or quantize the KV cache"
        )
        log.warning("%s", message)
        self._bus.publish(
            TOPIC_LOAD_WARNING,
            LoadWarning(
                model_key=instance.key,
                identifier=instance.identifier,
                requested_context_length=asked,
                context_length=instance.context_length,
                message=message,
            ),
        )

    async def _reload(self, current: LoadedModel, target: int) -> LoadedModel:
        kind, identifier = current.kind, current.identifier
        try:
            kept = await self._call(
                lambda c: sdk_calls.load_options(c, kind, identifier), model=identifier
            )
        except LMBridgeError as exc:
            log.info("could not read %s's load config: %s", identifier, exc)
            kept = LoadOptions()
        kept = msgspec.structs.replace(kept, ttl_seconds=current.ttl_seconds)
        await self._unload_instance(current)
        again = functools.partial(self._load_now, current.key, identifier)
        try:
            return await again(msgspec.structs.replace(kept, context_length=target))
        except LMBridgeError as exc:
            log.warning(
                "reloading %s with context %d failed (%s); restoring context %d",
                identifier,
                target,
                exc,
                current.context_length,
            )
            with contextlib.suppress(LMBridgeError):
                await again(
                    msgspec.structs.replace(kept, context_length=current.context_length)
                )
            raise
