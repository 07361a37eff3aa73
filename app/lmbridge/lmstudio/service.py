"""Loading LM Studio models: on demand, single-flight, and to a minimum context.

`LMStudioService` is the service routes, the router and the GUI call. On top
of `ModelCatalog` (listing, the loaded-model cache, unloading) it loads
models with progress events and cancel, loads on demand with one shared load
per model (`ensure_loaded`), and reloads a model whose context is below the
configured minimum (`ensure_context`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from lmbridge.core.errors import LMBridgeError
from lmbridge.core.events import EventBus

from . import sdk_calls
from .catalog import ModelCatalog
from .errors import load_cancelled, load_failed
from .structs import (
    DEFAULT_ADDRESS,
    TOPIC_LOAD_PROGRESS,
    ContextPolicy,
    EnsureAction,
    EnsureResult,
    GpuOffload,
    LMStudioOptions,
    LoadedModel,
    LoadProgress,
)

log = logging.getLogger(__name__)

LoadFactory = Callable[[], Coroutine[Any, Any, LoadedModel]]


class LMStudioService(ModelCatalog):
    """Model management for the LM Studio on this machine.

    Everything `ModelCatalog` does, plus loading. Load progress goes out on
    the bus as `TOPIC_LOAD_PROGRESS` (`LoadProgress`). Loads of one model key
    are single-flight: a second caller waits for the load under way.
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
        self._flights: dict[str, asyncio.Task[LoadedModel]] = {}

    async def aclose(self) -> None:
        """Cancel loads in flight (in LM Studio too), then close."""
        flights = list(self._flights.values())
        for task in flights:
            task.cancel()
        await asyncio.gather(*flights, return_exceptions=True)
        await super().aclose()

    # -- loading -----------------------------------------------------------

    async def load(
        self,
        model_key: str,
        *,
        context_length: int | None = None,
        ttl: int | None = None,
        gpu_offload: GpuOffload | None = None,
        identifier: str | None = None,
    ) -> LoadedModel:
        """Load a new instance; progress goes out on `TOPIC_LOAD_PROGRESS`.

        `ttl` is in seconds (None: stay loaded). If a load of this model is
        already under way, this waits for that one instead.
        """
        return await self._single_flight(
            model_key,
            lambda: self._load_now(
                model_key,
                identifier=identifier,
                context_length=context_length,
                ttl=ttl,
                gpu_offload=gpu_offload,
            ),
        )

    def cancel_load(self, model_key: str) -> bool:
        """Cancel the load of `model_key` in flight (in LM Studio too)."""
        task = self._flights.get(model_key)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def ensure_loaded(
        self, model_key: str, context_length: int | None = None
    ) -> LoadedModel:
        """The loaded instance of `model_key`, loading it first if needed.

        Loads with `context_length` or the configured one (capped at the
        model's maximum). Concurrent callers share one load.
        """
        found = self.loaded_model(model_key)
        if found is not None:
            return found
        wanted = context_length or self._options.load_context_length
        return await self._single_flight(
            model_key, lambda: self._load_if_missing(model_key, wanted)
        )

    async def ensure_context(
        self,
        model_key: str,
        minimum: int | None = None,
        policy: ContextPolicy | None = None,
    ) -> EnsureResult:
        """Make sure a loaded model's context is at least `minimum`.

        AUTO reloads it with the minimum (same identifier, key, TTL and GPU
        offload); WARN only reports; OFF does not look.
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
        target = minimum
        if current.max_context_length:
            target = min(target, current.max_context_length)
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
        reloaded = await self._single_flight(
            model_key, lambda: self._reload(current, target)
        )
        after = reloaded.context_length
        message = f"reloaded {model_key} from context {before} to {after}"
        log.info("%s", message)
        return EnsureResult(
            model_key=model_key,
            action=EnsureAction.RELOADED,
            previous=before,
            current=after,
            message=message,
        )

    # -- internals ---------------------------------------------------------

    async def _single_flight(self, key: str, factory: LoadFactory) -> LoadedModel:
        task = self._flights.get(key)
        if task is None:
            task = asyncio.create_task(factory(), name=f"lmstudio-load:{key}")
            self._flights[key] = task
            task.add_done_callback(functools.partial(self._flight_done, key))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if task.cancelled() and (me is None or me.cancelling() == 0):
                raise load_cancelled(key) from None
            raise

    def _flight_done(self, key: str, task: asyncio.Task[LoadedModel]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved here; every waiter gets it via shield

    async def _load_if_missing(self, key: str, context_length: int) -> LoadedModel:
        found = await self._find_fresh(key)
        if found is not None:
            return found
        model = await self._downloaded_model(key)
        return await self._load_now(
            key,
            identifier=None,
            context_length=min(context_length, model.max_context_length),
            ttl=self._options.load_ttl_seconds,
            gpu_offload=None,
        )

    async def _load_now(
        self,
        key: str,
        *,
        identifier: str | None,
        context_length: int | None,
        ttl: int | None,
        gpu_offload: GpuOffload | None,
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
                        context_length=context_length,
                        ttl=ttl,
                        gpu_offload=gpu_offload,
                        on_progress=progress,
                    ),
                    model=key,
                    loading=True,
                )
        except TimeoutError:
            raise load_failed(key, f"it did not finish within {timeout:g} s") from None
        self._ttls[new_id] = ttl
        await self.list_loaded()
        for instance in self._loaded:
            if instance.identifier == new_id:
                return instance
        return LoadedModel(
            identifier=new_id,
            key=key,
            kind=kind,
            context_length=context_length or 0,
            ttl_seconds=ttl,
        )

    async def _reload(self, current: LoadedModel, target: int) -> LoadedModel:
        kind, identifier = current.kind, current.identifier
        try:
            gpu = await self._call(
                lambda c: sdk_calls.gpu_offload(c, kind, identifier), model=identifier
            )
        except LMBridgeError as exc:
            log.info("could not read %s's load config: %s", identifier, exc)
            gpu = None
        await self._unload_instance(current)
        again = functools.partial(
            self._load_now,
            current.key,
            identifier=identifier,
            ttl=current.ttl_seconds,
            gpu_offload=gpu,
        )
        try:
            return await again(context_length=target)
        except LMBridgeError as exc:
            log.warning(
                "reloading %s with context %d failed (%s); restoring context %d",
                identifier,
                target,
                exc,
                current.context_length,
            )
            with contextlib.suppress(LMBridgeError):
                await again(context_length=current.context_length)
            raise
