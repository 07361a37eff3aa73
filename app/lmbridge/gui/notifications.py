"""What needs the user, as desktop notifications.

`Notifier` watches the services and emits `notify(title, text, level)` for:
LM Studio going away or coming back, an Azure sign-in that no longer works
(a request got 401 from an Azure upstream), a model that finished loading,
and the port being taken. The app shows them through the tray, or in the
window's banner where there is no tray.

What lasts is also a condition of `message`: "LM Studio went away" stays as
the `LMSTUDIO_CONDITION` banner until LM Studio is connected again.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Signal

from lmbridge.core.events import RequestRecord
from lmbridge.gui import message
from lmbridge.gui.controller import ProxyController
from lmbridge.lmstudio import ConnectionState, ConnectionStatus, LoadedModel

# Seconds between two "Azure sign-in expired" notifications.
AZURE_QUIET = 600.0
LMSTUDIO_CONDITION = "lmstudio"
LMSTUDIO_LOST = (
    "LM Studio went away",
    "Requests for local models fail until it is back — start LM Studio and its "
    "server (Developer ▸ Start Server).",
)


class Notifier(QObject):
    """Turns service events into at most one notification each."""

    notify = Signal(str, str, str)  # title, text, level

    def __init__(self, controller: ProxyController, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self._was_connected = False
        self._lost = False
        self._azure_said = -AZURE_QUIET
        controller.lmstudioChanged.connect(self._on_lmstudio)
        controller.modelLoaded.connect(self._on_model_loaded)
        controller.portTaken.connect(self._on_port_taken)
        controller.requestFinished.connect(self._on_request)
        controller.phaseChanged.connect(self._on_phase)

    def _on_phase(self) -> None:
        if not self.controller.running:
            self._was_connected = self._lost = False

    def _on_lmstudio(self, status: ConnectionStatus | None) -> None:
        if status is None or status.state is ConnectionState.CONNECTED:
            message.clear(LMSTUDIO_CONDITION)
        if status is None or not self.controller.running:
            return
        if status.state is ConnectionState.CONNECTED:
            if self._lost:
                self.notify.emit(
                    "LM Studio is back",
                    f"Connected again at {status.address}.",
                    "info",
                )
            self._was_connected, self._lost = True, False
        elif status.state is ConnectionState.DISCONNECTED and self._was_connected:
            self._was_connected, self._lost = False, True
            title, text = LMSTUDIO_LOST
            message.condition(LMSTUDIO_CONDITION, "warning", f"{title}: {text}")
            self.notify.emit(title, text, "warning")

    def _on_model_loaded(self, model: LoadedModel) -> None:
        self.notify.emit(
            "Model loaded",
            f"{model.display_name or model.identifier} is ready "
            f"(context {model.context_length:,} tokens).",
            "info",
        )

    def _on_port_taken(self, text: str) -> None:
        self.notify.emit("LM Bridge could not start", text, "error")

    def _on_request(self, record: RequestRecord) -> None:
        if record.status != 401 or not record.upstream:
            return
        upstream = self.controller.settings.upstream_named(record.upstream)
        if upstream is None or upstream.kind != "azure-foundry":
            return
        now = time.monotonic()
        if now - self._azure_said < AZURE_QUIET:
            return
        self._azure_said = now
        self.notify.emit(
            "Azure sign-in expired",
            f"Requests to {record.upstream} are refused — sign in again on the "
            "Azure page.",
            "warning",
        )
