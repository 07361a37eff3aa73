"""What LM Studio has on disk and in memory, read through the SDK.

`ModelCatalog` owns the connection, lists downloaded and loaded models,
keeps the loaded list cached (refreshed by the connection's periodic health
check, and after every load and unload) and unloads. `_call` is the one place
where SDK and transport exceptions become LM Bridge errors for every
operation. `LMStudioService` adds loading on top.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import lmstudio
import msgspec

from lmbridge.core.errors import NotFound
from lmbridge.core.events import EventBus

from . import sdk_calls
from .connection import LMStudioConnection
from .errors import Operation, is_connection_error, to_bridge_error
from .structs import (
    DEFAULT_ADDRESS,
    TOPIC_LOADED,
    TOPIC_STATE,
    ConnectionState,
    ConnectionStatus,
    DownloadedModel,
    DownloadedModels,
    LMStudioOptions,
    LoadedModel,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
SdkCall = Callable[[lmstudio.AsyncClient], Awaitable[T]]


class ModelCatalog:
    """Listing, the loaded-model cache and unloading, over one SDK connection.

    Start it with `start()` (or `async with`); it connects in the background
    and reconnects by itself. Operations wait briefly for a connection and
    raise `UpstreamUnavailable` when LM Studio cannot be reached.
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
        self._bus = bus
        self._options = opts = options or LMStudioOptions()
        self.connection = LMStudioConnection(
            bus,
            address=opts.address,
            home=home,
            health_check=self._refresh_with,
            probe_timeout=opts.probe_timeout,
            connect_timeout=opts.connect_timeout,
            health_interval=opts.health_interval,
            backoff_initial=opts.backoff_initial,
            backoff_max=opts.backoff_max,
            sdk_ports=sdk_ports,
            fallback=fallback,
        )
        self._loaded: tuple[LoadedModel, ...] = ()
        self._downloaded: dict[str, DownloadedModel] = {}
        self._ttls: dict[str, int | None] = {}
        self._requested: dict[str, int] = {}
        self._unsubscribe = bus.subscribe(TOPIC_STATE, self._on_state)

    # -- lifecycle ---------------------------------------------------------

    @property
    def status(self) -> ConnectionStatus:
        return self.connection.status

    @property
    def options(self) -> LMStudioOptions:
        return self._options

    def reconfigure(self, options: LMStudioOptions) -> bool:
        """Take a new load policy (context, TTL, load defaults, timeouts) now.

        False, changing nothing, when the connection settings differ (the
        address, probe and backoff timings): that needs a new service.
        """
        link = (
            "address",
            "probe_timeout",
            "connect_timeout",
            "health_interval",
            "backoff_initial",
            "backoff_max",
        )
        if any(getattr(options, f) != getattr(self._options, f) for f in link):
            return False
        self._options = options
        return True

    def start(self) -> None:
        """Connect in the background; safe to call more than once."""
        self.connection.start()

    async def connect(self) -> ConnectionStatus:
        """Wait until connected; raises UpstreamUnavailable if LM Studio is away."""
        await self.connection.client()
        return self.connection.status

    async def aclose(self) -> None:
        """Close the SDK client and stop reconnecting."""
        await self.connection.aclose()
        self._unsubscribe()

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- listing -----------------------------------------------------------

    async def list_downloaded(self) -> DownloadedModels:
        """The models on disk; unreadable entries are named in `skipped`."""
        result = await self._call(sdk_calls.fetch_downloaded)
        self._downloaded = {m.key: m for m in result.models}
        return result

    async def list_loaded(self) -> tuple[LoadedModel, ...]:
        """The loaded instances, fresh from LM Studio (refreshes the cache)."""
        loaded = await self._call(lambda c: sdk_calls.fetch_loaded(c, self._ttls))
        self._set_loaded(loaded)
        return loaded

    @property
    def loaded(self) -> tuple[LoadedModel, ...]:
        """The cached loaded instances (what a tray menu shows). No I/O.

        Kept fresh by the periodic health check and after every load and
        unload; empty while LM Studio is disconnected.
        """
        return self._loaded

    def loaded_model(self, model: str) -> LoadedModel | None:
        """The cached loaded instance named `model` (identifier, else key)."""
        for instance in self._loaded:
            if instance.identifier == model:
                return instance
        return next((i for i in self._loaded if i.key == model), None)

    def loaded_context(self, model: str) -> int | None:
        """Cached context length of a loaded model, None if not loaded. No I/O."""
        instance = self.loaded_model(model)
        return instance.context_length if instance else None

    async def context_length(self, model: str) -> int:
        """The context length of a loaded model, asked of LM Studio now."""
        instance = await self._loaded_or_raise(model)
        return await self._call(
            lambda c: sdk_calls.context_length(c, instance.kind, instance.identifier),
            model=model,
        )

    # -- unloading ---------------------------------------------------------

    async def unload(self, model: str) -> None:
        """Unload one instance, named by identifier or key."""
        await self._unload_instance(await self._loaded_or_raise(model, fresh=True))

    async def unload_all(self) -> tuple[str, ...]:
        """Unload every instance; returns the identifiers unloaded."""
        done: list[str] = []
        for instance in await self.list_loaded():
            with contextlib.suppress(NotFound):
                await self._unload_instance(instance)
                done.append(instance.identifier)
        return tuple(done)

    # -- internals ---------------------------------------------------------

    async def _call(
        self,
        fn: SdkCall[T],
        *,
        model: str | None = None,
        during: Operation = Operation.CALL,
    ) -> T:
        """Run one SDK call; the one place its exceptions are converted.

        A call that finds the link gone is retried once on the reconnected
        client, except a load or a download (LM Studio may still be at it).
        """
        retry = during not in (Operation.LOAD, Operation.DOWNLOAD)
        while True:
            client = await self.connection.client()
            try:
                return await fn(client)
            except Exception as exc:
                self.connection.report_failure(exc, client)
                if retry and is_connection_error(exc):
                    retry = False
                    continue
                raise to_bridge_error(
                    exc, address=self.connection.address, model=model, during=during
                ) from exc

    async def _refresh_with(self, client: lmstudio.AsyncClient) -> None:
        """Health check and periodic cache refresh in one cheap call."""
        self._set_loaded(await sdk_calls.fetch_loaded(client, self._ttls))

    def _set_loaded(self, loaded: tuple[LoadedModel, ...]) -> None:
        identifiers = {m.identifier for m in loaded}
        self._ttls = {k: v for k, v in self._ttls.items() if k in identifiers}
        self._requested = {k: v for k, v in self._requested.items() if k in identifiers}
        loaded = tuple(
            msgspec.structs.replace(
                m, requested_context_length=self._requested[m.identifier]
            )
            if m.identifier in self._requested
            else m
            for m in loaded
        )
        if loaded != self._loaded:
            self._loaded = loaded
            self._bus.publish(TOPIC_LOADED, loaded)

    def _on_state(self, topic: str, status: ConnectionStatus) -> None:
        if status is not self.connection.status:
            return  # another LM Studio's connection, on a shared bus
        if status.state is ConnectionState.DISCONNECTED:
            self._set_loaded(())

    async def _find_fresh(self, model: str) -> LoadedModel | None:
        await self.list_loaded()
        return self.loaded_model(model)

    async def _loaded_or_raise(self, model: str, fresh: bool = False) -> LoadedModel:
        instance = None if fresh else self.loaded_model(model)
        instance = instance or await self._find_fresh(model)
        if instance is None:
            raise NotFound(f"Model {model!r} is not loaded in LM Studio", param="model")
        return instance

    async def _downloaded_model(self, key: str) -> DownloadedModel:
        if key not in self._downloaded:
            await self.list_downloaded()
        model = self._downloaded.get(key)
        if model is None:
            raise NotFound(
                f"Model {key!r} is not downloaded in LM Studio — download it"
                " there first, or check the model name",
                param="model",
            )
        return model

    async def _unload_instance(self, instance: LoadedModel) -> None:
        await self._call(
            lambda c: sdk_calls.unload_model(c, instance.kind, instance.identifier),
            model=instance.identifier,
        )
        self._ttls.pop(instance.identifier, None)
        self._requested.pop(instance.identifier, None)
        self._set_loaded(
            tuple(m for m in self._loaded if m.identifier != instance.identifier)
        )
