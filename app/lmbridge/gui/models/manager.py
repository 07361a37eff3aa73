"""LM Studio's models for the GUI: the manager (its table model is `model`).

`ModelsManager` holds the downloaded list and the loads the user started,
and calls the app's `LMStudioService` (the controller keeps one for the
app's life, so this works with the proxy stopped) for loading, cancelling,
unloading and fixing a too-small context. The loaded list and
load progress come from the controller (bus events), so on-demand loads by
requests show up too. `model.ModelTableModel` adapts it for views.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from lmbridge.core import errors
from lmbridge.gui import message
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.tasks import Tasks
from lmbridge.lmstudio import (
    ConnectionState,
    ContextPolicy,
    DownloadedModel,
    EnsureAction,
    GpuOffload,
    LMStudioService,
    LoadedModel,
    LoadOptions,
    LoadProgress,
    LoadWarning,
    below_minimum,
    context_target,
)


@dataclass
class ModelRow:
    """One model: what is on disk and its loaded instances."""

    key: str
    downloaded: DownloadedModel | None
    instances: list[LoadedModel] = field(default_factory=list)

    @property
    def name(self) -> str:
        if self.downloaded is not None:
            return self.downloaded.display_name
        return self.instances[0].display_name or self.key

    @property
    def max_context(self) -> int | None:
        if self.downloaded is not None:
            return self.downloaded.max_context_length
        return self.instances[0].max_context_length if self.instances else None


class ModelsManager(QObject):
    """Downloaded and loaded models, and the actions on them."""

    changed = Signal()
    progressChanged = Signal(str, float)  # model key, fraction
    loadEnded = Signal(str, bool)  # model key, loaded?

    def __init__(self, controller: ProxyController, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self.tasks = Tasks("models")
        self.downloaded: tuple[DownloadedModel, ...] = ()
        self.skipped: tuple[str, ...] = ()
        self.progress: dict[str, float] = {}
        self._loads: dict[str, asyncio.Task[Any]] = {}
        self._cancelled: set[str] = set()
        # Conditions the page shows while they hold: why the list could not
        # be read (None: it was), and loads that got less context than asked
        # (by identifier, until that instance is unloaded or reloaded).
        self.list_error: str | None = None
        self.load_warnings: dict[str, LoadWarning] = {}
        self._warned_loaded: set[str] = set()
        controller.loadWarning.connect(self._on_load_warning)
        controller.loadedChanged.connect(self._on_loaded)
        controller.busyChanged.connect(self._on_loaded)
        controller.loadProgress.connect(self._on_progress)
        controller.lmstudioChanged.connect(self._on_lmstudio)

    # -- data -----------------------------------------------------------------

    @property
    def loaded(self) -> tuple[LoadedModel, ...]:
        return self.controller.loaded

    @property
    def min_context(self) -> int:
        return self.controller.settings.lmstudio.min_context

    def rows(self) -> list[ModelRow]:
        rows = {m.key: ModelRow(m.key, m) for m in self.downloaded}
        for instance in self.loaded:
            row = rows.setdefault(instance.key, ModelRow(instance.key, None))
            row.instances.append(instance)
        return list(rows.values())

    def target_context(self, model: LoadedModel) -> int:
        """The minimum this model should have (capped at its maximum)."""
        return context_target(model, self.min_context)

    def below_minimum(self) -> list[LoadedModel]:
        """Loaded language models whose context is below the minimum."""
        policy = ContextPolicy(self.controller.settings.lmstudio.context_policy)
        return below_minimum(self.loaded, self.min_context, policy)

    def service(self) -> LMStudioService:
        svc = self.controller.lmstudio
        if svc is not None:
            return svc
        raise errors.UpstreamUnavailable(
            'no LM Studio upstream is managed — add an upstream with kind "lmstudio"'
            " in Settings (and keep LM Studio management on)"
        )

    # -- actions ----------------------------------------------------------------

    def refresh(self) -> None:
        if self.controller.lmstudio is not None:
            self.tasks.start(self._refresh(), what="Listing LM Studio's models")

    async def _refresh(self) -> None:
        """Read the lists; a failure is the page's condition, shown there
        until a later read works (not a message that outlives it)."""
        svc = self.service()
        try:
            result = await svc.list_downloaded()
            await svc.list_loaded()  # publishes the loaded list if it changed
        except errors.LMBridgeError as exc:
            self.list_error = f"Listing LM Studio's models failed: {exc.message}"
        else:
            self.downloaded, self.skipped = result.models, result.skipped
            self.list_error = None
        self.changed.emit()

    def load(
        self,
        key: str,
        options: LoadOptions | None = None,
        *,
        context_length: int | None = None,
        ttl: int | None = None,
        gpu_offload: GpuOffload | None = None,
    ) -> asyncio.Task[Any]:
        """Start loading `key`; progress arrives as `progressChanged`.

        The keywords override `options` (see `LMStudioService.load`).
        """
        self._cancelled.discard(key)
        self.progress[key] = 0.0
        self.progressChanged.emit(key, 0.0)
        task = self.tasks.start(
            self._load(key, options, context_length, ttl, gpu_offload),
            what=f"Loading {key}",
        )
        self._loads[key] = task
        return task

    async def _load(
        self,
        key: str,
        options: LoadOptions | None,
        context_length: int | None,
        ttl: int | None,
        gpu_offload: GpuOffload | None,
    ) -> None:
        ok = False
        try:
            await self.service().load(
                key,
                options,
                context_length=context_length,
                ttl=ttl,
                gpu_offload=gpu_offload,
            )
            ok = True
        except errors.LMBridgeError:
            if key not in self._cancelled:
                raise
            message.info(f"Loading {key} was cancelled")
        finally:
            self._loads.pop(key, None)
            self.progress.pop(key, None)
            if not ok:
                self.controller.forget_load(key)
            self.loadEnded.emit(key, ok)
            self.changed.emit()

    def loading(self) -> list[str]:
        return list(self._loads)

    def cancel_load(self, key: str) -> None:
        """Cancel a load in flight, in LM Studio too."""
        self._cancelled.add(key)
        svc = self.controller.lmstudio
        if svc is None or not svc.cancel_load(key):
            task = self._loads.get(key)
            if task is not None:
                task.cancel()

    def unload(self, identifier: str) -> None:
        self.tasks.start(self._unload(identifier), what=f"Unloading {identifier}")

    async def _unload(self, identifier: str) -> None:
        await self.service().unload(identifier)
        message.info(f"Unloaded {identifier}")

    def unload_all(self) -> None:
        self.tasks.start(self._unload_all(), what="Unloading every model")

    async def _unload_all(self) -> None:
        done = await self.service().unload_all()
        message.info(f"Unloaded {len(done)} model(s)")

    def fix_context(self, identifier: str) -> None:
        """Reload a model with the minimum context (same TTL and GPU offload)."""
        self.tasks.start(
            self._fix(identifier), what=f"Reloading {identifier} with a larger context"
        )

    async def _fix(self, identifier: str) -> None:
        result = await self.service().ensure_context(
            identifier, self.min_context, ContextPolicy.AUTO
        )
        if result.action is EnsureAction.RELOADED:
            message.info(result.message)

    # -- events -----------------------------------------------------------------

    def _on_load_warning(self, warning: LoadWarning) -> None:
        self.load_warnings[warning.identifier] = warning
        if any(m.identifier == warning.identifier for m in self.loaded):
            self._warned_loaded.add(warning.identifier)
        self.changed.emit()

    def _on_loaded(self, _payload: object) -> None:
        # A load warning holds while its instance is loaded with less context.
        contexts = {m.identifier: m.context_length for m in self.loaded}
        for name, warning in list(self.load_warnings.items()):
            context = contexts.get(name)
            if context is None:
                if name in self._warned_loaded:  # it was unloaded
                    del self.load_warnings[name]
                    self._warned_loaded.discard(name)
            elif context >= warning.requested_context_length:  # reloaded
                del self.load_warnings[name]
                self._warned_loaded.discard(name)
            else:
                self._warned_loaded.add(name)
        # Loads started elsewhere (a request loading on demand) end here: the
        # controller saw the model appear, or gave up on a stale load.
        self.progress = {
            key: fraction
            for key, fraction in self.progress.items()
            if key in self._loads or key in self.controller.loading
        }
        self.changed.emit()

    def _on_progress(self, progress: LoadProgress) -> None:
        self.progress[progress.model_key] = progress.fraction
        self.progressChanged.emit(progress.model_key, progress.fraction)

    def _on_lmstudio(self, _status: object) -> None:
        status = self.controller.lmstudio_status
        if status is not None and status.state is ConnectionState.CONNECTED:
            self.refresh()
        elif self.controller.lmstudio is None and (self.downloaded or self.list_error):
            self.downloaded, self.skipped = (), ()
            self.list_error = None
            self.changed.emit()
