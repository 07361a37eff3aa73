"""Typed application state shared by the routes (aiohttp AppKeys)."""

from __future__ import annotations

import time

from aiohttp import web

from lmbridge.config import Settings
from lmbridge.core.events import EventBus
from lmbridge.lmstudio import LMStudioService
from lmbridge.server.responses_memory import ResponsesMemory
from lmbridge.store.db import Database
from lmbridge.upstreams.factory import make_upstream
from lmbridge.upstreams.modelprep import ModelPreparer
from lmbridge.upstreams.router import Router
from lmbridge.upstreams.sessions import SessionManager


class ProxyState:
    """Everything the routes need, built once per app."""

    def __init__(self, settings: Settings, bus: EventBus) -> None:
        self.settings = settings
        self.bus = bus
        self.upstreams = {u.name: make_upstream(u) for u in settings.upstream}
        for upstream in self.upstreams.values():
            upstream.ping_interval = settings.server.ping_interval
        self.router = Router(settings, self.upstreams)
        self.sessions = SessionManager()
        self.responses = ResponsesMemory()
        self.started = time.time()
        # Keep request/response bodies on records (the GUI's detail pane).
        self.capture_bodies = False

        # The shared SQLite database, opened with the app (store_api.setup).
        self.db: Database | None = None
        # LM Studio model management, when an lmstudio upstream is managed
        # (models_api.setup); `models_upstream` names that upstream.
        self.lmstudio: LMStudioService | None = None
        self.models: ModelPreparer | None = None
        self.models_upstream: str | None = None

    @property
    def upstream_secrets(self) -> tuple[str, ...]:
        """Keys LM Bridge itself sends upstream, to scrub from what it shows."""
        return tuple(
            key for u in self.upstreams.values() if len(key := u.own_key()) >= 6
        )


STATE = web.AppKey("state", ProxyState)
