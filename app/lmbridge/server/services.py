"""The long-lived parts of LM Bridge, built in one place from the settings.

The proxy app, the command line and the desktop app all take their
services from a `Services`: the database (conversations, sessions, request
history), LM Studio's model service and the preparer that uses it, the
upstream clients and the router, session chains and Responses memory.
`start()` opens them and `close()` closes them in reverse, once.

The desktop app keeps its LM Studio service and its database for its whole
life, so models can be managed and the history and stored chats read while
the proxy is stopped: it passes them in (`lmstudio=`, `db=`), and a
`Services` never opens or closes what it was given.

The database may be unusable (locked by another program, damaged,
read-only, on a full disk): model calls go on regardless, and
`database_state` says what is wrong and how to fix it (see its docstring
for the API the GUI uses).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from urllib.parse import urlsplit

from lmbridge import config
from lmbridge.config import Settings
from lmbridge.core import errors
from lmbridge.core.events import DATABASE_STATE, EventBus
from lmbridge.core.writer import BackgroundWriter
from lmbridge.lmstudio import (
    ConnectionState,
    ContextPolicy,
    KvCacheType,
    LMStudioOptions,
    LMStudioService,
    LoadOptions,
)
from lmbridge.server.maxtokens import MaxTokensMemory
from lmbridge.server.origins import ReasoningOrigins, anthropic_platform
from lmbridge.server.prefix import PrefixTracker
from lmbridge.server.responses_memory import ResponsesMemory
from lmbridge.server.websearch import WebSearch
from lmbridge.store.conversations import ConversationStore
from lmbridge.store.db import Database
from lmbridge.store.dbjobs import background_jobs
from lmbridge.store.dbstate import DatabaseState
from lmbridge.store.sessions import SqliteSessionStore
from lmbridge.store.usage import UsageStore
from lmbridge.store.usage_recorder import UsageRecorder
from lmbridge.upstreams.factory import make_upstream
from lmbridge.upstreams.http import HttpUpstream
from lmbridge.upstreams.modelprep import ModelPreparer
from lmbridge.upstreams.router import Router
from lmbridge.upstreams.sessions import SessionManager

log = logging.getLogger(__name__)


def managed_upstreams(settings: Settings) -> list[str]:
    """The names of the upstreams whose LM Studio models LM Bridge manages.

    Every `kind = "lmstudio"` upstream, each through its own server, when
    `lmstudio.manage` is on; the first is the one the GUI and CLI show.
    """
    if not settings.lmstudio.manage:
        return []
    return [u.name for u in settings.upstream if u.kind == "lmstudio"]


def managed_upstream(settings: Settings) -> str | None:
    """The name of the upstream whose LM Studio the GUI and the CLI manage."""
    names = managed_upstreams(settings)
    return names[0] if names else None


def lmstudio_options(
    settings: Settings, upstream: str | None = None
) -> LMStudioOptions:
    """LM Studio's address and load policy from the settings.

    The address is the upstream's own `base_url` host and port (for the
    first managed upstream, `lmstudio.address` when set): model lists, loads
    and context checks go to the server the upstream's requests go to.
    """
    lm = settings.lmstudio
    first = managed_upstream(settings)
    name = upstream or first
    found = settings.upstream_named(name) if name else None
    base = found.base_url if found is not None else ""
    named = lm.address if name == first else ""
    kv = lm.load_kv_cache_type
    cache = KvCacheType(kv) if kv is not None else None
    return LMStudioOptions(
        address=named or urlsplit(base).netloc or None,
        min_context=lm.min_context,
        context_policy=ContextPolicy(lm.context_policy),
        load_context_length=lm.load_context_length,
        load_ttl_seconds=lm.load_ttl_seconds,
        load_defaults=LoadOptions(
            gpu_offload=lm.load_gpu_offload,
            flash_attention=lm.load_flash_attention,
            k_cache_type=cache,
            v_cache_type=cache,
        ),
        load_timeout=lm.load_timeout,
    )


def lmstudio_service(
    settings: Settings, bus: EventBus, upstream: str | None = None
) -> LMStudioService:
    """A model service for an LM Studio upstream (default: the first; not started)."""
    return LMStudioService(bus, lmstudio_options(settings, upstream))


class Services:
    """Everything the routes, the CLI and the GUI use, built once per run."""

    def __init__(
        self,
        settings: Settings,
        bus: EventBus | None = None,
        *,
        lmstudio: LMStudioService | None = None,
        db: Database | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus or EventBus()
        self.started = time.time()
        # The desktop app keeps its database for its whole life (the Usage
        # and Conversations pages read it with the proxy stopped).
        self._owns_db = db is None
        self.db = db or Database.in_dir(config.data_dir())
        self.conversations = ConversationStore(self.db, self.bus)
        # The request history (metadata only), written off the request path.
        self.usage = UsageStore(self.db)
        self.recorder = UsageRecorder(self.bus, self.usage, settings.usage)
        self.upstreams: dict[str, HttpUpstream] = {
            u.name: make_upstream(u) for u in settings.upstream
        }
        for upstream in self.upstreams.values():
            upstream.ping_interval = settings.server.ping_interval
        self.router = Router(settings, self.upstreams)
        self.sessions = SessionManager(
            writer=BackgroundWriter("session chains", context=background_jobs)
        )
        self.responses = ResponsesMemory()
        # Web search for models that cannot search (server/websearch.py).
        self.web_search = WebSearch(settings.web_search)
        self.max_tokens = MaxTokensMemory()
        self.prefixes = PrefixTracker()
        self.origins = ReasoningOrigins(
            platform=anthropic_platform(
                [(u.name, u.kind, u.base_url) for u in settings.upstream]
            )
        )
        # LM Studio model management: one service per lmstudio upstream, on
        # that upstream's server; `lmstudio` is the first one's (the GUI's).
        self.models_upstream = managed_upstream(settings)
        self.lmstudio: LMStudioService | None = None
        self.models: ModelPreparer | None = None
        self.preparers: dict[str, ModelPreparer] = {}
        self._own_services: list[LMStudioService] = []
        for name in managed_upstreams(settings):
            if name == self.models_upstream and lmstudio is not None:
                service = lmstudio
            else:
                # Only the first upstream's LM Studio speaks on the app's bus
                # (the GUI shows that one); the others keep their own.
                bus = self.bus if name == self.models_upstream else EventBus()
                service = lmstudio_service(settings, bus, name)
                self._own_services.append(service)
            self.preparers[name] = ModelPreparer(service, settings.lmstudio, name)
        if self.models_upstream is not None:
            self.models = self.preparers[self.models_upstream]
            self.lmstudio = self.models.service
        self._running = False

    async def start(self) -> None:
        """Open the database, the upstream clients and LM Studio's link.

        A database that cannot open fails the chat APIs (each answer says
        why), not the whole proxy: sessions then stay in memory.
        """
        if self._running:
            return
        self._running = True
        self.db.on_state = self._database_state_changed
        if self._owns_db:
            try:
                await self.db.open()
            except errors.LMBridgeError as err:
                # Said once; model calls go on. `database_state` has it.
                log.warning("the database is unavailable: %s", err.message)
        if self.db.is_open:
            self.sessions.store = SqliteSessionStore(self.db)
        await self.sessions.start()
        # Started either way: it retries, and the database is tried again
        # on use (a lock released, space freed).
        self.recorder.start()
        for upstream in self.upstreams.values():
            await upstream.start()
        await self.web_search.start()
        for service in self._own_services:
            service.start()

    async def close(self) -> None:
        """Close what `start()` opened, in reverse order."""
        if not self._running:
            return
        self._running = False
        for service in reversed(self._own_services):
            await service.aclose()
        for upstream in self.upstreams.values():
            await upstream.close()
        await self.web_search.close()
        await self.sessions.close()
        await self.recorder.close()
        if self._owns_db:
            await self.db.close()

    @property
    def database_state(self) -> DatabaseState:
        """What state LM Bridge's database is in, for the Overview page and
        `lmbridge serve`.

        A `DatabaseState` (store/dbstate.py): `condition` is one of ok,
        locked, corrupt, read-only, full (or unavailable, for anything
        else); `path` is the file; `message` is a sentence for the user that
        names the file and the fix; `detail` is SQLite's own words; `since`
        when it began. `ok` is true when it works. It changes as the
        database is used (a lock held by another program shows on the next
        write, and clears on the next write that succeeds); each change is
        also published on the bus as `DATABASE_STATE` with the new state.
        Whatever it says, model calls are served; only the `/store` API
        answers 503 while the database cannot be used.
        """
        return self.db.state

    async def reset_database(self) -> Path:
        """Move the database file aside and start a fresh, empty one.

        For a damaged (`corrupt`) database: the old file is kept next to
        the new one, renamed with the date and time
        (`lmbridge-broken-YYYYMMDD-HHMMSS.db`, with its write-ahead log), and
        its path returned, to show the user. Stored chats, session chains
        and history start empty; nothing of the old file is deleted. Raises
        `StorageUnavailable` when the file cannot be moved or the fresh one
        created (a read-only or full disk); `database_state` then says why.
        """
        kept = await self.db.move_aside()
        self.sessions.store = SqliteSessionStore(self.db)
        return kept

    def _database_state_changed(self, state: DatabaseState) -> None:
        self.bus.publish(DATABASE_STATE, state)

    async def supports_vision(self, model: str) -> bool | None:
        """Whether LM Studio's model `model` takes images (None: unknown)."""
        svc = self.lmstudio
        if svc is None or svc.status.state is not ConnectionState.CONNECTED:
            return None
        loaded = svc.loaded_model(model)
        key = loaded.key if loaded is not None else model
        downloaded = await svc.list_downloaded()
        for info in downloaded.models:
            if info.key == key:
                return info.vision
        return None
