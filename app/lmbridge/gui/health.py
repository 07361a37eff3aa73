"""Upstream reachability, checked in the background while the proxy runs.

`UpstreamHealth` asks every upstream's `check()` (a cheap GET, no model
call) when the proxy starts and then every `INTERVAL_MS`, and keeps the
answers for the overview. LM Studio's connection state comes from the
controller instead (the SDK's own link is watched continuously).
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import QObject, QTimer, Signal

from lmbridge.gui.controller import ProxyController
from lmbridge.gui.tasks import Tasks
from lmbridge.upstreams.health import Health

INTERVAL_MS = 30_000


class UpstreamHealth(QObject):
    """The latest `check()` answer per upstream name."""

    changed = Signal()

    def __init__(self, controller: ProxyController, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self.checks: dict[str, Health] = {}
        self.tasks = Tasks("health")
        self._timer = QTimer(self)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        controller.phaseChanged.connect(self._on_phase)

    def _on_phase(self) -> None:
        if self.controller.running:
            self.refresh()
        else:
            self.checks = {}
            self.changed.emit()

    def refresh(self) -> None:
        """Check every upstream now (unless a check is under way)."""
        if self.controller.services is not None and not self.tasks.running():
            self.tasks.start(self.check(), what="Checking the upstreams")

    async def check(self) -> None:
        state = self.controller.services
        if state is None:
            return
        upstreams = list(state.upstreams.values())
        results = await asyncio.gather(
            *(u.check() for u in upstreams), return_exceptions=True
        )
        checks: dict[str, Health] = {}
        for upstream, result in zip(upstreams, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                result = Health(
                    name=upstream.name,
                    kind=upstream.kind,
                    url=upstream.base_url,
                    reachable=False,
                    error=str(result),
                )
            checks[upstream.name] = result
        self.checks = checks
        self.changed.emit()

    async def aclose(self) -> None:
        self._timer.stop()
        await self.tasks.aclose()
