"""The proxy as the GUI sees it: one object that starts and stops it and
turns event-bus events into Qt signals.

`ProxyController` owns the `EventBus` for the app's lifetime and the
`ProxyServer` while it runs; widgets call its methods and connect to its
signals, never to the bus or the server directly. It also keeps what the
tray and the overview need without I/O: the LM Studio connection status,
the loaded models and the loads in progress.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from lmbridge import config
from lmbridge.core import events
from lmbridge.core.events import EventBus, RequestRecord
from lmbridge.gui import message
from lmbridge.gui.tasks import describe_failure
from lmbridge.lmstudio import (
    TOPIC_LOAD_PROGRESS,
    TOPIC_LOADED,
    TOPIC_STATE,
    ConnectionState,
    ConnectionStatus,
    LMStudioService,
    LoadedModel,
    LoadProgress,
)
from lmbridge.server.runner import PortInUse, ProxyServer
from lmbridge.server.state import STATE, ProxyState

log = logging.getLogger(__name__)

# A load that reported no progress for this long is no longer shown as busy.
STALE_LOAD = 120.0


class ProxyPhase(enum.StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    FAILED = "failed"


class ProxyController(QObject):
    """Start, stop and observe the embedded proxy."""

    phaseChanged = Signal()
    requestStarted = Signal(object)  # RequestRecord
    requestUpdated = Signal(object)  # RequestRecord
    requestFinished = Signal(object)  # RequestRecord
    lmstudioChanged = Signal(object)  # ConnectionStatus
    loadProgress = Signal(object)  # LoadProgress
    loadedChanged = Signal(object)  # tuple[LoadedModel, ...]
    busyChanged = Signal(bool)
    modelLoaded = Signal(object)  # LoadedModel, a load just finished
    portTaken = Signal(str)
    settingsChanged = Signal()

    def __init__(
        self,
        settings: config.Settings,
        config_path: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.config_path = config_path or config.default_config_path()
        self.bus = EventBus()
        self.phase = ProxyPhase.STOPPED
        self.error = ""
        self.server: ProxyServer | None = None
        self.lmstudio_status: ConnectionStatus | None = None
        self.loaded: tuple[LoadedModel, ...] = ()
        # model key -> (fraction, monotonic time of the last progress)
        self.loading: dict[str, tuple[float, float]] = {}
        self.restart_needed = False
        self._lock = asyncio.Lock()
        self.bus.subscribe("*", self._on_event)

    # -- what widgets read ---------------------------------------------------

    @property
    def running(self) -> bool:
        return self.phase is ProxyPhase.RUNNING and self.server is not None

    @property
    def url(self) -> str:
        """Where clients reach the proxy (the configured address if stopped)."""
        if self.server is not None and self.server.running:
            return self.server.url
        server = self.settings.server
        host = f"[{server.host}]" if ":" in server.host else server.host
        return f"http://{host}:{server.port}"

    @property
    def state(self) -> ProxyState | None:
        """The running proxy's state (upstreams, sessions, db, LM Studio)."""
        if self.server is None or self.server.app is None or not self.running:
            return None
        return self.server.app[STATE]

    @property
    def lmstudio(self) -> LMStudioService | None:
        state = self.state
        return state.lmstudio if state is not None else None

    @property
    def busy(self) -> bool:
        """A model is loading."""
        now = time.monotonic()
        return any(now - seen < STALE_LOAD for _f, seen in self.loading.values())

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> bool:
        """Start the proxy; on failure the phase is FAILED and `error` says why."""
        async with self._lock:
            if self.running:
                return True
            self._set_phase(ProxyPhase.STARTING)
            server = ProxyServer(self.settings, self.bus, capture_bodies=True)
            try:
                await server.start()
            except PortInUse as exc:
                self._fail(str(exc))
                self.portTaken.emit(str(exc))
                return False
            except Exception as exc:
                if not isinstance(exc, OSError):
                    log.exception("the proxy failed to start")
                self._fail(f"the proxy could not start: {describe_failure(exc)}")
                return False
            self.server = server
            self.error = ""
            self.restart_needed = False
            state = server.app[STATE] if server.app is not None else None
            if state is not None and state.lmstudio is not None:
                self.lmstudio_status = state.lmstudio.status
            self._set_phase(ProxyPhase.RUNNING)
            return True

    async def stop(self) -> None:
        """Stop accepting, let streams end briefly, close upstreams and the DB."""
        async with self._lock:
            server, self.server = self.server, None
            if server is None:
                if self.phase is ProxyPhase.FAILED:
                    self._set_phase(ProxyPhase.STOPPED)
                return
            self._set_phase(ProxyPhase.STOPPING)
            try:
                await server.stop()
            finally:
                self.loading.clear()
                self.loaded = ()
                self.lmstudio_status = None
                self.loadedChanged.emit(())
                self.busyChanged.emit(False)
                self._set_phase(ProxyPhase.STOPPED)

    async def restart(self) -> bool:
        await self.stop()
        return await self.start()

    def use_settings(self, settings: config.Settings) -> None:
        """Take saved settings; they apply at the next (re)start."""
        self.settings = settings
        self.restart_needed = self.running
        self.settingsChanged.emit()

    def forget_load(self, model_key: str) -> None:
        """A load the GUI started ended without a new model (failed, cancelled)."""
        if self.loading.pop(model_key, None) is not None:
            self.busyChanged.emit(self.busy)

    # -- internals -------------------------------------------------------------

    def _set_phase(self, phase: ProxyPhase) -> None:
        self.phase = phase
        self.phaseChanged.emit()

    def _fail(self, text: str) -> None:
        self.error = text
        self._set_phase(ProxyPhase.FAILED)
        message.error(text)

    def _on_event(self, topic: str, payload: Any) -> None:
        if isinstance(payload, RequestRecord):
            if topic == events.REQUEST_STARTED:
                self.requestStarted.emit(payload)
            elif topic == events.REQUEST_FINISHED:
                self.requestFinished.emit(payload)
            else:
                self.requestUpdated.emit(payload)
        elif topic == TOPIC_STATE and isinstance(payload, ConnectionStatus):
            self._on_lmstudio_state(payload)
        elif topic == TOPIC_LOAD_PROGRESS and isinstance(payload, LoadProgress):
            was_busy = self.busy
            self.loading[payload.model_key] = (payload.fraction, time.monotonic())
            self.loadProgress.emit(payload)
            if not was_busy:
                self.busyChanged.emit(True)
        elif topic == TOPIC_LOADED and isinstance(payload, tuple):
            self._on_loaded(payload)

    def _on_lmstudio_state(self, status: ConnectionStatus) -> None:
        if self.phase is not ProxyPhase.RUNNING and self.server is None:
            return
        self.lmstudio_status = status
        if status.state is ConnectionState.DISCONNECTED and self.loading:
            self.loading.clear()
            self.busyChanged.emit(False)
        self.lmstudioChanged.emit(status)

    def _on_loaded(self, loaded: tuple[LoadedModel, ...]) -> None:
        self.loaded = loaded
        finished = [m for m in loaded if m.key in self.loading]
        for model in finished:
            self.loading.pop(model.key, None)
        self.loadedChanged.emit(loaded)
        for model in finished:
            self.modelLoaded.emit(model)
        if finished:
            self.busyChanged.emit(self.busy)
