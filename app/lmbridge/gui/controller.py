"""The proxy as the GUI sees it: one object that starts and stops it and
turns event-bus events into Qt signals.

`ProxyController` owns the `EventBus` and the LM Studio service for the
app's lifetime, and the `Services` and `ProxyServer` while the proxy runs;
widgets call its methods and connect to its signals, never to the bus or
the server directly. Models are managed while the proxy is stopped too: the
one `LMStudioService` is handed to each run's `Services`. It also keeps what
the tray and the overview need without I/O: the LM Studio connection status,
the loaded models and the loads in progress.

Why the proxy is not running is the `PROXY_CONDITION` banner
(`message.condition`), with the way back on it (Start, or a free port from
`portfix.PortDoctor`); it clears when the proxy runs or the user stops it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from lmbridge import config
from lmbridge.core import events
from lmbridge.core.errors import LMBridgeError, PortInUse
from lmbridge.core.events import EventBus, RequestRecord
from lmbridge.gui import message
from lmbridge.gui.tasks import Tasks, describe_failure
from lmbridge.lmstudio import (
    TOPIC_DOWNLOAD_PROGRESS,
    TOPIC_LOAD_PROGRESS,
    TOPIC_LOAD_WARNING,
    TOPIC_LOADED,
    TOPIC_STATE,
    ConnectionState,
    ConnectionStatus,
    DownloadProgress,
    LMStudioService,
    LoadedModel,
    LoadProgress,
    LoadWarning,
)
from lmbridge.server.runner import ProxyServer
from lmbridge.server.services import (
    Services,
    lmstudio_options,
    lmstudio_service,
    managed_upstream,
)
from lmbridge.settings_edit import REMOVE, Changes, KeyPath
from lmbridge.settings_edit import diff as settings_diff
from lmbridge.settings_service import SettingsService, with_access_token
from lmbridge.settings_store import SavedSettings, SettingsChange, SettingsStore
from lmbridge.store.conversations import ConversationStore
from lmbridge.store.db import Database
from lmbridge.store.dbstate import DatabaseCondition, DatabaseState
from lmbridge.store.usage import UsageStore

log = logging.getLogger(__name__)

# A load that reported no progress for this long is no longer shown as busy.
STALE_LOAD = 120.0
# The message condition that says why the proxy is not running.
PROXY_CONDITION = "proxy"
# The message condition that says the settings file on disk does not parse.
CONFIG_CONDITION = "config-file"
# The message condition: settings changed on disk wait for a restart.
RESTART_CONDITION = "restart"
# The message condition: the database cannot be used (and the fix offered).
DATABASE_CONDITION = "database"


def key_paths(changes: Changes | Mapping[Any, Any]) -> dict[tuple[str, ...], Any]:
    """`changes` as the store's key paths: a table's keys become
    `(table, key)`, a whole list `(table,)`; key paths pass as they are."""
    paths: dict[tuple[str, ...], Any] = {}
    for name, value in changes.items():
        if isinstance(name, tuple):
            paths[name] = value
        elif isinstance(value, Mapping):
            for key, item in value.items():
                paths[(name, key)] = REMOVE if item is None else item
        else:
            paths[(name,)] = value
    return paths


def database_text(state: DatabaseState) -> str:
    """The database's state in the GUI's words (its buttons are the fix)."""
    if state.ok:
        return f"Database: {state.path}"
    if state.condition is DatabaseCondition.CORRUPT:
        why = f" ({state.detail})" if state.detail else ""
        return (
            f"The database {state.path} is damaged{why}. Stored chats and the "
            "request history cannot be used; model calls go on. Start a fresh "
            "database: the old file is kept beside it."
        )
    return state.message[:1].upper() + state.message[1:]


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
    loadWarning = Signal(object)  # LoadWarning: less context than asked
    downloadProgress = Signal(object)  # DownloadProgress
    portTaken = Signal(str)
    settingsChanged = Signal()
    chatsChanged = Signal(str)  # a stored chat's name: created, changed, deleted
    databaseChanged = Signal()  # `database_state` changed

    def __init__(
        self,
        settings: config.Settings,
        config_path: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.config_path = config_path or config.default_config_path()
        self.settings_service = SettingsService(self.config_path)
        # Every writer saves through the store; its announcements (saves,
        # edits on disk) become this app's settings.
        self._unsubscribe = self.settings_service.store.subscribe(
            self._on_settings_saved
        )
        self.bus = EventBus()
        self.phase = ProxyPhase.STOPPED
        self.error = ""
        self.server: ProxyServer | None = None
        self._services: Services | None = None
        # The access token from the keyring (read at `open()`).
        self.access_token = ""
        self.tasks = Tasks("controller")
        # One LM Studio service for the app's life (None: none is managed).
        self._lmstudio: LMStudioService | None = None
        self._lmstudio_started = False
        self._lmstudio_stale = False
        if managed_upstream(settings) is not None:
            self._lmstudio = lmstudio_service(settings, self.bus)
        # One database for the app's life: history and chats are readable
        # with the proxy stopped (opened in `open()`).
        self.db = Database.in_dir(config.data_dir())
        self._opened_at = time.time()
        self._conversations = ConversationStore(self.db, self.bus)
        self._usage = UsageStore(self.db)
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
    def services(self) -> Services | None:
        """The running proxy's services (upstreams, sessions, db, LM Studio)."""
        if self.server is None or not self.running:
            return None
        return self._services

    @property
    def lmstudio(self) -> LMStudioService | None:
        """The LM Studio service, running or stopped proxy alike (None: no
        LM Studio upstream is managed)."""
        return self._lmstudio

    @property
    def conversations(self) -> ConversationStore | None:
        """The stored chats (None: the database could not be opened)."""
        return self._conversations if self.db.is_open else None

    @property
    def usage(self) -> UsageStore | None:
        """The request history (None: the database could not be opened)."""
        return self._usage if self.db.is_open else None

    @property
    def started_at(self) -> float:
        """When this app run began (its database opened): the requests
        before it are history, the ones after it are this run's own."""
        return self._opened_at

    async def flush_usage(self) -> None:
        """Write the finished requests still queued to the history now."""
        services = self.services
        if services is not None and services.db.is_open:
            await services.recorder.flush()

    def runtime_settings(self) -> config.Settings:
        """The settings with the keyring's access token, as the proxy runs."""
        return with_access_token(self.settings, self.access_token)

    @property
    def busy(self) -> bool:
        """A model is loading."""
        now = time.monotonic()
        return any(now - seen < STALE_LOAD for _f, seen in self.loading.values())

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        """Open the database, read the access token and connect to LM Studio
        (in the background)."""
        self._opened_at = time.time()
        try:
            await self.db.open()
        except LMBridgeError as exc:
            log.error("the database is unavailable: %s", exc.message)
        self._on_database_state()
        try:
            self.access_token = await self.settings_service.access_token()
        except LMBridgeError as exc:
            log.warning("cannot read the access token: %s", exc.message)
        self._start_lmstudio()

    async def aclose(self) -> None:
        """Stop the proxy, then close the LM Studio service."""
        await self.tasks.aclose()
        await self.stop()
        await self._close_lmstudio()
        await self.db.close()

    async def start(self) -> bool:
        """Start the proxy; on failure the phase is FAILED and `error` says why."""
        async with self._lock:
            if self.running:
                return True
            self._set_phase(ProxyPhase.STARTING)
            if self._lmstudio_stale:
                await self._replace_lmstudio()
            settings = self.runtime_settings()
            services = Services(settings, self.bus, lmstudio=self._lmstudio, db=self.db)
            server = ProxyServer(
                settings, self.bus, capture_bodies=True, services=services
            )
            try:
                await services.start()
                await server.start()
            except PortInUse as exc:
                await services.close()
                log.info("the proxy could not listen: %s", exc)
                text = self._port_text(str(exc))
                self._fail(text)
                self.portTaken.emit(text)
                return False
            except Exception as exc:
                await services.close()
                if not isinstance(exc, OSError):
                    log.exception("the proxy failed to start")
                self._fail(f"the proxy could not start: {describe_failure(exc)}")
                return False
            self.server = server
            self._services = services
            self.error = ""
            self.restart_needed = False
            message.clear(PROXY_CONDITION)
            message.clear(RESTART_CONDITION)
            self._set_phase(ProxyPhase.RUNNING)
            return True

    async def stop(self) -> None:
        """Stop accepting, let streams end briefly, close upstreams and the DB.

        LM Studio's service stays: models are managed with the proxy stopped.
        """
        async with self._lock:
            server, self.server = self.server, None
            services, self._services = self._services, None
            message.clear(PROXY_CONDITION)  # stopped on purpose
            if server is None:
                if self.phase is ProxyPhase.FAILED:
                    self._set_phase(ProxyPhase.STOPPED)
                return
            self._set_phase(ProxyPhase.STOPPING)
            try:
                await server.stop()
            finally:
                if services is not None:
                    await services.close()
                self._set_phase(ProxyPhase.STOPPED)

    async def restart(self) -> bool:
        """Stop and start again; a failed start says why and how back (the
        proxy's condition banner)."""
        await self.stop()
        return await self.start()

    def start_again(self) -> None:
        """Start the proxy from a button (a banner's "Start proxy")."""
        if not self.running:
            self.tasks.start(self.start(), what="Starting the proxy")

    @property
    def store(self) -> SettingsStore:
        """The one owner of the settings file."""
        return self.settings_service.store

    def save_changes(self, changes: Changes | Mapping[str, Any]) -> SavedSettings:
        """Save `changes` over the settings file as it is now and use them.

        `changes` are the store's key paths (`("server", "port") -> 4681`),
        or for short tables of keys (`{"server": {"port": 4681}}`) and whole
        lists (`{"route": [...]}`). SettingsInvalid (each key's problem),
        ConfigError or OSError if not saved.
        """
        saved = self.store.apply(self.file_changes(changes))
        self.use_settings(saved.settings)  # also when nobody else listens
        return saved

    def file_changes(self, changes: Changes | Mapping[str, Any]) -> dict[KeyPath, Any]:
        """`changes` as the store applies them to the file. Without a file
        yet (the app runs on defaults or settings given to it), the first
        save also writes the settings the app runs with, so what the user
        sees is what gets saved."""
        paths = key_paths(changes)
        if self.config_path.exists():
            return paths
        running = settings_diff(self.store.settings, self.settings)
        for name, key in config.ENV_OVERRIDES.items():
            if os.environ.get(name):
                running.pop(key, None)  # the environment's, not the file's
        return {**running, **paths}

    def check_disk(self) -> bool:
        """Take the settings file as it is on disk now if someone else (a
        text editor, the CLI) changed it; True if the settings changed. A
        file that does not parse is reported (and kept in use as it was)."""
        try:
            change = self.store.check_disk()
        except config.ConfigError as exc:
            message.condition(
                CONFIG_CONDITION,
                message.Level.ERROR,
                "The settings file was changed and has an error; LM Bridge keeps "
                f"the settings it had until it is fixed. {exc.message}",
            )
            return False
        if change is not None:
            message.clear(CONFIG_CONDITION)
        return change is not None and bool(change.changed)

    def _on_settings_saved(self, change: SettingsChange) -> None:
        message.clear(CONFIG_CONDITION)
        self.use_settings(change.settings)
        if change.origin == "disk" and self.restart_needed:
            # No page asked for this change, so none offers the restart.
            message.condition(
                RESTART_CONDITION,
                message.Level.WARNING,
                "The settings file changed; the running proxy uses the old "
                "settings until it restarts.",
                [("Restart proxy now", self.restart_again)],
            )

    def restart_again(self) -> None:
        """Restart the proxy from a button (a banner's "Restart proxy now")."""
        self.tasks.start(self.restart(), what="Restarting the proxy")

    def use_settings(self, settings: config.Settings) -> None:
        """Take saved settings; they apply at the next (re)start.

        A changed LM Studio address or load policy gets a new LM Studio
        service: now if the proxy is stopped, else at its next start.
        """
        # The environment's overrides (LMBRIDGE_PORT, ...) hold for the whole
        # run, whatever a save or an edit on disk changed in the file.
        settings = config.with_env(settings)
        old = self.settings
        if settings == old:
            return  # announced twice (a save, then its writer): nothing new
        self.settings = settings
        self.restart_needed = self.running
        if self.phase is ProxyPhase.FAILED and old != settings:
            # The last failure was about the old settings: offer to try these.
            message.condition(
                PROXY_CONDITION,
                message.Level.WARNING,
                f"The proxy is not running (last try: {self.error}). The settings "
                f"changed since: start it to listen on {self.url}.",
                [("Start proxy", self.start_again)],
            )
        if self._lmstudio_changed(old, settings) and not self._reconfigure(settings):
            self._lmstudio_stale = True
            if not self.running:
                self.tasks.start(
                    self._replace_lmstudio(), what="Reconnecting to LM Studio"
                )
        self.settingsChanged.emit()

    # -- the database ----------------------------------------------------------

    @property
    def database_state(self) -> DatabaseState:
        """Whether the database works, and if not why (store/dbstate.py)."""
        return self.db.state

    @property
    def database_fixable(self) -> bool:
        """Whether starting a fresh database is the fix (not for a read-only
        or full disk, where a fresh file fails the same way)."""
        return self.db.state.condition not in (
            DatabaseCondition.OK,
            DatabaseCondition.READ_ONLY,
            DatabaseCondition.FULL,
        )

    async def reset_database(self) -> Path:
        """Move the database aside (kept under a dated name) and start a
        fresh one; returns where the old file went."""
        services = self.services
        try:
            if services is not None:
                return await services.reset_database()
            return await self.db.move_aside()
        finally:
            self._on_database_state()

    def start_fresh_database(self) -> None:
        """ "Start a fresh database" from a button."""
        self.tasks.start(self._start_fresh(), what="Starting a fresh database")

    async def _start_fresh(self) -> None:
        kept = await self.reset_database()
        message.info(f"A fresh database is in use; the old one is kept as {kept}")

    def _on_database_state(self) -> None:
        state = self.db.state
        if state.ok:
            message.clear(DATABASE_CONDITION)
        else:
            fix = [("Start a fresh database", self.start_fresh_database)]
            message.condition(
                DATABASE_CONDITION,
                message.Level.ERROR,
                database_text(state),
                fix if self.database_fixable else [],
            )
        self.databaseChanged.emit()

    # -- the LM Studio service -------------------------------------------------

    @staticmethod
    def _lmstudio_changed(old: config.Settings, new: config.Settings) -> bool:
        if (managed_upstream(old) is None) != (managed_upstream(new) is None):
            return True
        return lmstudio_options(old) != lmstudio_options(new)

    def _reconfigure(self, settings: config.Settings) -> bool:
        """Give the service the new load policy in place, if it can take it."""
        svc = self._lmstudio
        if svc is None or managed_upstream(settings) is None:
            return False
        return svc.reconfigure(lmstudio_options(settings))

    def _start_lmstudio(self) -> None:
        if self._lmstudio is not None and not self._lmstudio_started:
            self._lmstudio_started = True
            self._lmstudio.start()
            self.lmstudio_status = self._lmstudio.status

    async def _close_lmstudio(self) -> None:
        svc, self._lmstudio = self._lmstudio, None
        if svc is not None and self._lmstudio_started:
            self._lmstudio_started = False
            await svc.aclose()
        self.loading.clear()
        self.lmstudio_status = None
        if self.loaded:
            self.loaded = ()
            self.loadedChanged.emit(())
        self.busyChanged.emit(False)

    async def _replace_lmstudio(self) -> None:
        self._lmstudio_stale = False
        was_started = self._lmstudio_started
        await self._close_lmstudio()
        if managed_upstream(self.settings) is not None:
            self._lmstudio = lmstudio_service(self.settings, self.bus)
            if was_started:
                self._start_lmstudio()
        self.lmstudioChanged.emit(self.lmstudio_status)

    def forget_load(self, model_key: str) -> None:
        """A load the GUI started ended without a new model (failed, cancelled)."""
        if self.loading.pop(model_key, None) is not None:
            self.busyChanged.emit(self.busy)

    # -- internals -------------------------------------------------------------

    def _set_phase(self, phase: ProxyPhase) -> None:
        self.phase = phase
        self.phaseChanged.emit()

    def _port_text(self, error: str) -> str:
        """The GUI's words for a port the proxy could not take (the runner's
        message gives command-line advice; the GUI offers buttons)."""
        server = self.settings.server
        if "already in use" in error:
            return f"port {server.port} on {server.host} is already in use"
        return error

    def _fail(self, text: str) -> None:
        self.error = text
        self._set_phase(ProxyPhase.FAILED)
        message.condition(
            PROXY_CONDITION,
            message.Level.ERROR,
            f"The proxy is not running: {text}",
            [("Start proxy", self.start_again)],
        )

    def _on_event(self, topic: str, payload: Any) -> None:
        if isinstance(payload, RequestRecord):
            if topic == events.REQUEST_STARTED:
                self.requestStarted.emit(payload)
            elif topic == events.REQUEST_FINISHED:
                self.requestFinished.emit(payload)
            else:
                self.requestUpdated.emit(payload)
        elif topic == events.CHATS_CHANGED and isinstance(payload, str):
            self.chatsChanged.emit(payload)
        elif topic == events.DATABASE_STATE:
            self._on_database_state()
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
        elif topic == TOPIC_LOAD_WARNING and isinstance(payload, LoadWarning):
            self.loadWarning.emit(payload)
        elif topic == TOPIC_DOWNLOAD_PROGRESS and isinstance(payload, DownloadProgress):
            self.downloadProgress.emit(payload)

    def _on_lmstudio_state(self, status: ConnectionStatus) -> None:
        if self._lmstudio is None:
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
