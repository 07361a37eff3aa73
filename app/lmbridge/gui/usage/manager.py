"""Usage: the Usage page's one way to the request history, kept current.

`UsageManager` owns what the page draws (`data`, for the last `days`) and
reads it from the app's `UsageStore`, there whenever LM Bridge's database
could be opened. It stays current without a Refresh and without costing
the app anything while nobody looks:

- while the page is shown (`set_active(True)`), finished requests update
  today's figures, at most once every `UPDATE_MS` however busy the proxy
  is, and only today is read again (`data.update_today`);
- while it is hidden, a finished request only marks the figures stale;
  they are brought up to date when the page is shown again.

`loaded` tells the view that `data` changed (None: the history is
unavailable).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from lmbridge.core.events import RequestRecord
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.usage.data import UsageData, load_usage, update_today

LOADING = "Reading the request history"
UPDATE_MS = 1500


class UsageManager(QObject):
    """The last `days` days of usage, for the page while it is shown."""

    loaded = Signal()

    def __init__(
        self,
        controller: ProxyController,
        days: int = 7,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.tasks = Tasks("usage")
        self.days = days
        self.data: UsageData | None = None
        self.active = False
        self.stale = True
        self.reads = 0  # full reads of the range (today-only updates not counted)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(UPDATE_MS)
        self._timer.timeout.connect(self._update)
        controller.requestFinished.connect(self._on_finished)
        controller.phaseChanged.connect(self._on_phase)

    @property
    def available(self) -> bool:
        """False when LM Bridge's database could not be opened."""
        return self.controller.usage is not None

    def set_active(self, active: bool) -> None:
        """The page is shown (True) or hidden; shown, stale figures are read."""
        self.active = active
        if active and self.stale:
            self._update()

    def set_days(self, days: int) -> None:
        """Show the last `days` days (read the whole range again)."""
        self.days = days
        self.reload()

    def reload(self) -> None:
        """Read the whole range again, now (latest wins)."""
        self.stale = False
        self._timer.stop()
        self.tasks.cancel(LOADING)
        if not self.available:
            self.data = None
            self.loaded.emit()
            return
        self.tasks.start(self._load(), what=LOADING)

    async def _load(self) -> None:
        store = self.controller.usage
        await self.controller.flush_usage()
        if store is not None:
            self.reads += 1
            self.data = await load_usage(store, self.days)
        self.loaded.emit()

    def _on_finished(self, _record: RequestRecord) -> None:
        self.stale = True
        if self.active and not self._timer.isActive():
            self._timer.start()

    def _on_phase(self) -> None:
        self.stale = True
        if self.active:
            self.reload()

    def _update(self) -> None:
        data = self.data
        if data is None or len(data.days) != self.days or not self.available:
            self.reload()
            return
        if self.tasks.running(LOADING):
            self._timer.start()  # try again when this read is over
            return
        self.stale = False
        self.tasks.start(self._update_today(data), what=LOADING)

    async def _update_today(self, data: UsageData) -> None:
        store = self.controller.usage
        await self.controller.flush_usage()
        if store is not None:
            self.data = await update_today(store, data)
        self.loaded.emit()
