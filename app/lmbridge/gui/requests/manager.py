"""The live request log: a bounded history of requests and today's numbers.

`RequestLog` owns the data: the last `limit` records (the pipeline's own
`RequestRecord` objects, updated in place as requests progress) and today's
numbers. When the proxy starts it also reads the requests from before (the
history in the database, metadata only: no bodies) and puts them first.
`model.RequestTableModel` adapts it for views.
"""

from __future__ import annotations

import time
from collections import deque

from PySide6.QtCore import QObject, QTimer, Signal

from lmbridge.apiclient import ProxyClient, Reply
from lmbridge.core.events import Phase, RequestRecord
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.requests import bodies
from lmbridge.gui.stats import TodayStats
from lmbridge.gui.tasks import Tasks

HISTORY_LIMIT = 1000
STATS_MS = 250


def clock_text(received: float) -> str:
    """ "14:03:22" today, "05-31 14:03:22" on an earlier day."""
    when = time.localtime(received)
    today = time.localtime()
    same_day = (when.tm_year, when.tm_yday) == (today.tm_year, today.tm_yday)
    return time.strftime("%H:%M:%S" if same_day else "%m-%d %H:%M:%S", when)


def status_text(record: RequestRecord) -> str:
    if record.phase is not Phase.FINISHED:
        return "streaming…" if record.first_token is not None else "…"
    if record.client_gone:
        return "client left"
    if record.status:
        return str(record.status)
    return "error" if record.error else "—"


def route_text(record: RequestRecord) -> str:
    model = record.model or "—"
    if not record.upstream:
        return model
    return f"{model} → {record.upstream}/{record.target}"


class RequestLog(QObject):
    """The last `limit` requests and today's numbers.

    New records wait in `pending` until the table model takes them (never
    while paused); `dirty` names records that changed since.
    """

    changed = Signal()
    statsChanged = Signal()
    historyLoaded = Signal(int)  # how many older records went in front

    def __init__(
        self,
        controller: ProxyController,
        limit: int = HISTORY_LIMIT,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.limit = limit
        self.rows: list[RequestRecord] = []
        self.pending: deque[RequestRecord] = deque(maxlen=limit)
        self.dirty: set[int] = set()
        self.paused = False
        self.controller = controller
        self.tasks = Tasks("requests")
        self.history: list[RequestRecord] = []
        self._history_read = False
        self.stats = TodayStats()
        # Today's numbers are redrawn at most every STATS_MS, however busy.
        self._stats_timer = QTimer(self)
        self._stats_timer.setSingleShot(True)
        self._stats_timer.setInterval(STATS_MS)
        self._stats_timer.timeout.connect(self.statsChanged)
        controller.requestStarted.connect(self._on_started)
        controller.requestUpdated.connect(self._on_updated)
        controller.requestFinished.connect(self._on_finished)
        controller.phaseChanged.connect(self._on_phase)

    def _on_phase(self) -> None:
        if self.controller.usage is not None and not self._history_read:
            self._history_read = True
            self.tasks.start(self._read_history(), what="Reading the request history")

    async def _read_history(self) -> None:
        store = self.controller.usage
        if store is None:
            return
        room = self.limit - len(self.rows) - len(self.pending)
        if room <= 0:
            return
        stored = await store.recent(room, received_before=self.controller.started_at)
        older = [RequestRecord.from_summary(s) for s in reversed(stored)]
        for record in older:
            self.stats.add(record)
        self.history = older
        self.historyLoaded.emit(len(older))
        self.statsChanged.emit()

    def find(self, record_id: int) -> RequestRecord | None:
        for record in reversed(self.rows):
            if record.id == record_id:
                return record
        return None

    def session_records(self) -> list[RequestRecord]:
        """Records that carried a session key, newest last."""
        return [r for r in self.rows if r.session_key]

    def _on_started(self, record: RequestRecord) -> None:
        self.pending.append(record)
        self.changed.emit()

    def _on_updated(self, record: RequestRecord) -> None:
        self.dirty.add(record.id)
        self.changed.emit()

    def _on_finished(self, record: RequestRecord) -> None:
        self.stats.add(record)
        self.dirty.add(record.id)
        self.changed.emit()
        if not self._stats_timer.isActive():
            self._stats_timer.start()

    # -- acting on a request ------------------------------------------------

    def curl_command(self, record: RequestRecord) -> str:
        """`record` as a curl command against the running proxy (the access
        token read from an environment variable, never written out)."""
        server = self.controller.runtime_settings().server
        token_env = ""
        if server.token():
            token_env = server.access_token_env or "LMBRIDGE_ACCESS_TOKEN"
        return bodies.curl_command(
            self.controller.url,
            record.path,
            record.request_body,
            record.request_headers,
            token_env=token_env,
        )

    async def replay(self, record: RequestRecord) -> Reply:
        """Send `record`'s request through the proxy again."""
        client = ProxyClient(
            self.controller.url, token=self.controller.runtime_settings().server.token()
        )
        return await client.send(
            record.protocol,
            record.path,
            record.request_body.encode(),
            bodies.replay_headers(record.request_headers),
            user_agent="lmbridge-replay",
        )
