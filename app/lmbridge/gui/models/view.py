"""Models: what LM Studio has downloaded and loaded, Load (with a dialog),
progress with Cancel, Unload, Unload all, the one-click context fix, and
downloads from LM Studio's catalog. All of it works with the proxy stopped:
it talks to the app's LM Studio service, not to the proxy."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from lmbridge.gui.controller import ProxyController
from lmbridge.gui.models.downloads import DownloadsManager
from lmbridge.gui.models.downloads_view import DownloadsBox
from lmbridge.gui.models.load_dialog import LoadDialog
from lmbridge.gui.models.manager import ModelRow, ModelsManager
from lmbridge.gui.models.model import ModelTableModel
from lmbridge.gui.widgets import (
    Banner,
    ConfirmBar,
    ProgressRow,
    StatusDot,
    button,
    hint_label,
    title_label,
)
from lmbridge.lmstudio import ConnectionState


class ModelsPanel(QWidget):
    """The Models page."""

    def __init__(
        self,
        controller: ProxyController,
        manager: ModelsManager,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.manager = manager
        self.downloads = DownloadsManager(controller, manager, self)
        self.tasks = self.downloads.tasks
        self.dialog: LoadDialog | None = None

        self.status = StatusDot()
        self.refresh_button = button("Refresh", "refresh")
        self.load_button = button("Load…", "play", "Load the selected model")
        self.unload_button = button("Unload", "stop", "Unload the selected model")
        self.unload_all_button = button("Unload all", "trash")
        self.fix_button = button(
            "Fix context", "warning", "Reload with the minimum context"
        )
        self.refresh_button.clicked.connect(manager.refresh)
        self.load_button.clicked.connect(self.open_load_dialog)
        self.unload_button.clicked.connect(self.unload_selected)
        self.unload_all_button.clicked.connect(self.confirm_unload_all)
        self.fix_button.clicked.connect(self.fix_selected)
        toolbar = QHBoxLayout()
        toolbar.addWidget(self.status, 1)
        for widget in (
            self.refresh_button,
            self.load_button,
            self.unload_button,
            self.fix_button,
            self.unload_all_button,
        ):
            toolbar.addWidget(widget)

        self.warning = Banner(closable=False)
        self.load_warning = Banner(closable=False)
        self.downloads_box = DownloadsBox(self.downloads)
        self.confirm = ConfirmBar()
        self.progress = ProgressRow()
        self.progress.cancelled.connect(self.cancel_loads)
        self.model = ModelTableModel(manager, self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.doubleClicked.connect(self.open_load_dialog)
        header = self.table.horizontalHeader()
        for position, column in enumerate(ModelTableModel.COLUMNS):
            header.setSectionResizeMode(
                position,
                QHeaderView.ResizeMode.Stretch
                if column.key == "model"
                else QHeaderView.ResizeMode.ResizeToContents,
            )
        self.skipped = hint_label()

        layout = QVBoxLayout(self)
        layout.addWidget(title_label("Models"))
        layout.addLayout(toolbar)
        layout.addWidget(self.warning)
        layout.addWidget(self.load_warning)
        layout.addWidget(self.confirm)
        layout.addWidget(self.progress)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.skipped)
        layout.addWidget(self.downloads_box)

        self._selected_key: str | None = None
        self._restore_key: str | None = None
        self.table.selectionModel().selectionChanged.connect(self._remember_selection)
        self.model.modelAboutToBeReset.connect(self._keep_selection)
        self.model.modelReset.connect(self._restore_selection)
        manager.changed.connect(self.refresh_view)
        manager.progressChanged.connect(self._on_progress)
        manager.loadEnded.connect(self._on_load_ended)
        controller.lmstudioChanged.connect(self.refresh_view)
        controller.settingsChanged.connect(self.refresh_view)
        self.refresh_view()

    # -- selection --------------------------------------------------------------

    def selected_row(self) -> ModelRow | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.model_row(rows[0].row()) if rows else None

    def select_key(self, key: str) -> None:
        for i in range(self.model.rowCount()):
            row = self.model.model_row(i)
            if row is not None and row.key == key:
                self.table.selectionModel().select(
                    self.model.index(i, 0),
                    QItemSelectionModel.SelectionFlag.ClearAndSelect
                    | QItemSelectionModel.SelectionFlag.Rows,
                )
                return

    def _remember_selection(self) -> None:
        row = self.selected_row()
        self._selected_key = row.key if row else None
        self.refresh_buttons()

    def _keep_selection(self) -> None:
        self._restore_key = self._selected_key

    def _restore_selection(self) -> None:
        if self._restore_key:
            self.select_key(self._restore_key)
        self.refresh_buttons()

    # -- actions ----------------------------------------------------------------

    def open_load_dialog(self) -> None:
        row = self.selected_row()
        if row is None or row.downloaded is None:
            return
        lm = self.controller.settings.lmstudio
        self.dialog = LoadDialog(
            row.downloaded,
            lm.load_context_length,
            self,
            default_ttl=lm.load_ttl_seconds,
        )
        self.dialog.accepted.connect(self._load_from_dialog)
        self.dialog.open()

    def _load_from_dialog(self) -> None:
        dialog = self.dialog
        if dialog is None:
            return
        self.manager.load(dialog.model.key, dialog.options())
        self.progress.start(f"Loading {dialog.model.display_name}…", determinate=True)
        self.dialog = None

    def cancel_loads(self) -> None:
        for key in self.manager.loading():
            self.manager.cancel_load(key)
        self.progress.cancel_button.setEnabled(False)

    def unload_selected(self) -> None:
        row = self.selected_row()
        if row is not None:
            for instance in row.instances:
                self.manager.unload(instance.identifier)

    def confirm_unload_all(self) -> None:
        count = len(self.manager.loaded)
        self.confirm.ask(
            f"Unload all {count} loaded model(s)? Requests will load them again "
            "on demand.",
            "Unload all",
            self.manager.unload_all,
        )

    def fix_selected(self) -> None:
        row = self.selected_row()
        low = {m.identifier for m in self.manager.below_minimum()}
        for instance in row.instances if row else []:
            if instance.identifier in low:
                self.manager.fix_context(instance.identifier)

    # -- view -------------------------------------------------------------------

    def show_load_warnings(self) -> None:
        """Loads that got less context than asked, while that holds."""
        warnings = list(self.manager.load_warnings.values())
        text = "\n".join(w.message for w in warnings)
        if not warnings:
            self.load_warning.hide()
        elif text != self.load_warning.label.text() or self.load_warning.isHidden():
            self.load_warning.show_message("warning", text)

    def _on_progress(self, key: str, fraction: float) -> None:
        if key in self.manager.loading():
            self.progress.set_fraction(fraction)

    def _on_load_ended(self, _key: str, _ok: bool) -> None:
        if not self.manager.loading():
            self.progress.finish()

    def refresh_view(self) -> None:
        status = self.controller.lmstudio_status
        if self.controller.lmstudio is None or status is None:
            self.status.set_status(
                "off", "No LM Studio upstream is managed (see Settings ▸ Upstreams)"
            )
        elif status.state is ConnectionState.CONNECTED and self.manager.list_error:
            self.status.set_status("error", self.manager.list_error)
        elif status.state is ConnectionState.CONNECTED:
            self.status.set_status("ok", f"LM Studio at {status.address}")
        elif status.state is ConnectionState.CONNECTING:
            self.status.set_status("warning", "Connecting to LM Studio…")
        else:
            where = f" at {status.address}" if status.address else ""
            self.status.set_status(
                "error",
                f"Model management is off: no LM Studio SDK answers{where}. Requests"
                " still go to the server by REST, without loads or context checks."
                " Start LM Studio and its server (Developer ▸ Start Server), or point"
                " the upstream at LM Studio in Settings.",
            )
        low = self.manager.below_minimum()
        if low:
            first = low[0]
            target = self.manager.target_context(first)
            more = f" (and {len(low) - 1} more)" if len(low) > 1 else ""
            self.warning.show_message(
                "warning",
                f"{first.identifier} is loaded with a context of "
                f"{first.context_length:,} tokens, below the minimum of "
                f"{target:,}{more}: long prompts will not fit.",
                [
                    (
                        f"Reload with {target:,}",
                        lambda: self.manager.fix_context(first.identifier),
                    )
                ],
            )
        else:
            self.warning.hide()
        skipped = self.manager.skipped
        self.skipped.setText(
            f"LM Studio lists models this version cannot read: {', '.join(skipped)}"
            if skipped
            else ""
        )
        self.skipped.setVisible(bool(skipped))
        self.show_load_warnings()
        self.downloads_box.refresh()
        self.refresh_buttons()

    def refresh_buttons(self) -> None:
        usable = self.controller.lmstudio is not None
        row = self.selected_row()
        low = {m.identifier for m in self.manager.below_minimum()}
        self.refresh_button.setEnabled(usable)
        self.load_button.setEnabled(usable and row is not None and bool(row.downloaded))
        self.unload_button.setEnabled(
            usable and row is not None and bool(row.instances)
        )
        self.fix_button.setEnabled(
            usable
            and row is not None
            and any(m.identifier in low for m in row.instances)
        )
        self.unload_all_button.setEnabled(usable and bool(self.manager.loaded))
