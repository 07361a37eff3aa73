"""The first two pages of first-run setup: LM Studio, and the models to use.

`LMStudioPage` says whether LM Studio is installed, running and serving,
and starts its server with `lms server start` where the CLI exists.
`ModelsPage` lists the downloaded language models (context, tool and vision
badges) and takes a model per tool and the context to load it with.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWizardPage,
)

from lmbridge.gui.formats import size_text, tokens_text
from lmbridge.gui.icons import icon
from lmbridge.gui.setup.plan import DEFAULT_CONTEXT, SetupChoice
from lmbridge.gui.widgets import StatusDot, button, hint_label
from lmbridge.lmstudio import DownloadedModel, install

if TYPE_CHECKING:
    from lmbridge.gui.setup.wizard import SetupWizard

CHECKING = "Looking for LM Studio"
STARTING = "Starting LM Studio's server"
UNSET = "— leave unset —"
LISTING = "Listing LM Studio's models"


class LMStudioPage(QWizardPage):
    """Is LM Studio installed, running, serving? Start its server. Next is
    enabled once its server answers; until then the page says why."""

    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__()
        self.setup = wizard
        self.setTitle("LM Studio")
        self.setSubTitle(
            "LM Bridge serves the models of LM Studio on this machine "
            "(and, if you like, Azure AI Foundry's)."
        )
        self.found: install.LMStudioSetup | None = None
        self.installed = StatusDot("checking…")
        self.running = StatusDot("checking…")
        self.server = StatusDot("checking…")
        self.next_step = hint_label()
        self.start_button = button("Start LM Studio's server", "play")
        self.start_button.setToolTip("Runs “lms server start”")
        self.start_button.clicked.connect(self.start_server)
        self.check_button = button("Check again", "refresh")
        self.check_button.clicked.connect(self.check)
        self.why = StatusDot()
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.check_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        for widget in (self.installed, self.running, self.server, self.next_step):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        layout.addStretch(1)
        layout.addWidget(self.why)

    def initializePage(self) -> None:
        self.check()

    def isComplete(self) -> bool:
        return self.found is not None and self.found.server_on

    def blocked(self) -> str:
        """Why Next is disabled ("" when it is not)."""
        if self.found is None:
            return "Next is available once LM Bridge has looked for LM Studio."
        if not self.found.server_on:
            return (
                "Next is available once LM Studio's server answers at "
                f"{self.found.server_url}: do the step above, then Check again. "
                "(LM Studio's server at another address? Set it in Settings ▸ "
                "Upstreams.)"
            )
        return ""

    def _changed(self) -> None:
        reason = self.blocked()
        self.why.set_status("warning", reason)
        self.why.setVisible(bool(reason))
        self.completeChanged.emit()

    def check(self) -> None:
        if not self.setup.tasks.running(CHECKING):
            self.setup.tasks.start(self._check(), what=CHECKING)

    async def _check(self) -> None:
        self.check_button.setEnabled(False)
        self._changed()
        try:
            self.found = await install.check(
                self.setup.server_url(),
                home=self.setup.home,
                address=self.setup.controller.settings.lmstudio.address or None,
            )
        finally:
            self.check_button.setEnabled(True)
        self.show_found(self.found)

    def show_found(self, found: install.LMStudioSetup) -> None:
        self.installed.set_status(
            "ok" if found.installed else "error",
            "LM Studio is installed"
            if found.installed
            else "LM Studio is not installed",
        )
        self.running.set_status(
            "ok" if found.running else "warning",
            "LM Studio is running" if found.running else "LM Studio is not running",
        )
        self.server.set_status(
            "ok" if found.server_on else "warning",
            f"Its server answers at {found.server_url}"
            if found.server_on
            else f"Its server is off (expected at {found.server_url})",
        )
        self.next_step.setText(
            plain(found.next_step()) or "LM Studio is ready: click Next."
        )
        self.start_button.setVisible(bool(found.lms) and not found.server_on)
        self._changed()

    def start_server(self) -> None:
        found = self.found
        if found is None or not found.lms or self.setup.tasks.running(STARTING):
            return
        self.setup.tasks.start(self._start(found.lms), what=STARTING)

    async def _start(self, lms: str) -> None:
        self.start_button.setEnabled(False)
        self.next_step.setText("Running “lms server start”…")
        try:
            port = self.setup.server_port()
            result = await install.start_server(lms, port)
        finally:
            self.start_button.setEnabled(True)
        await self._check()
        found = self.found
        if found is not None and not found.server_on:
            said = result.output.splitlines()[-1] if result.output else ""
            self.next_step.setText(
                f"“lms server start” said “{said}”, but no server answers at "
                f"{found.server_url}. {install.CLICK_TO_START}"
            )


def plain(text: str) -> str:
    """`text` without Markdown's code backticks: `lms` -> “lms”."""
    return re.sub(r"`([^`]+)`", r"“\1”", text)


class ModelsPage(QWizardPage):
    """The downloaded models, and which one each tool uses."""

    # The model table's columns: key -> header title.
    COLUMNS: ClassVar[dict[str, str]] = {
        "model": "Model",
        "size": "Size",
        "max_context": "Max context",
        "tools": "Tools",
        "vision": "Vision",
    }
    SLOTS = (
        ("opus", "Claude Code — opus"),
        ("sonnet", "Claude Code — sonnet (the default)"),
        ("haiku", "Claude Code — haiku (background tasks)"),
        ("codex", "Codex CLI"),
        ("ide", "IDE plugins (Continue)"),
    )

    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__()
        self.setup = wizard
        self.setTitle("Models")
        self.setSubTitle(
            "Pick a downloaded model for each tool you use, and the context to "
            "load it with. Tools left unset are not touched."
        )
        self.models: list[DownloadedModel] = []
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setObjectName("setup-models")
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS.values()))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.table.horizontalHeader()
        for position, key in enumerate(self.COLUMNS):
            header.setSectionResizeMode(
                position,
                QHeaderView.ResizeMode.Stretch
                if key == "model"
                else QHeaderView.ResizeMode.ResizeToContents,
            )
        self.empty = StatusDot()
        self.retry = button("List again", "refresh")
        self.retry.clicked.connect(self.list_models)
        empty_row = QHBoxLayout()
        empty_row.addWidget(self.empty, 1)
        empty_row.addWidget(self.retry, 0, Qt.AlignmentFlag.AlignTop)
        self.combos: dict[str, QComboBox] = {}
        form = QFormLayout()
        for slot, label in self.SLOTS:
            combo = self.combos[slot] = QComboBox()
            combo.setObjectName(f"setup-model-{slot}")
            combo.view().setObjectName(f"setup-model-{slot}-list")
            combo.currentIndexChanged.connect(self._on_pick)
            form.addRow(label, combo)
        self.context = QSpinBox()
        self.context.setRange(2048, 1_048_576)
        self.context.setSingleStep(4096)
        self.context.setGroupSeparatorShown(True)
        self.context.setSuffix(" tokens")
        self.context.setValue(DEFAULT_CONTEXT)
        form.addRow("Load with a context of", self.context)
        form.addRow(
            "",
            hint_label(
                "Claude Code's prompts are about 20,000 tokens; 32,768 or more "
                "is a good start. More context needs more memory."
            ),
        )
        self.starting = hint_label()
        self.why = StatusDot()
        layout = QVBoxLayout(self)
        layout.addWidget(self.starting)
        layout.addWidget(self.table, 1)
        layout.addLayout(empty_row)
        layout.addLayout(form)
        layout.addWidget(self.why)
        self._applied_start = False
        wizard.manager.modelsChanged.connect(self.show_models)

    def initializePage(self) -> None:
        start = self.setup.start
        self.starting.setVisible(start is not None)
        self.starting.setText(
            "Starting from your current setup (the routes in LM Bridge's settings "
            "and what the tools' files name now)."
        )
        if start is not None and not self._applied_start:
            self.context.setValue(start.context_length)
        self.list_models()
        self.show_models()

    def list_models(self) -> None:
        if not self.setup.tasks.running(LISTING):
            self.setup.tasks.start(self.setup.manager.list_models(), what=LISTING)

    def empty_reason(self) -> str:
        """Why the table is empty ("" when it is not)."""
        manager = self.setup.manager
        if self.models:
            return ""
        if manager.list_error:
            return (
                f"LM Studio's models could not be listed: {manager.list_error}. "
                "Go Back to check LM Studio, or list again."
            )
        if manager.listing or not manager.listed:
            return "Listing LM Studio's models…"
        return (
            "LM Studio has no language model yet: download one on the Models "
            "page (or in LM Studio), then list again."
        )

    def show_models(self) -> None:
        manager = self.setup.manager
        models = manager.language_models()
        if [m.key for m in models] != [m.key for m in self.models]:
            before = self.choice()
            self.models = models
            self._fill(models, before)
        reason = self.empty_reason()
        settled = manager.listed and not manager.listing
        self.empty.set_status(
            "warning" if manager.list_error or settled else "off", reason
        )
        self.empty.setVisible(bool(reason))
        self.retry.setVisible(bool(reason) and not manager.listing)
        self.table.setVisible(bool(models))
        self._on_pick()

    def _fill(self, models: list[DownloadedModel], before: SetupChoice) -> None:
        self.table.setRowCount(len(models))
        for row, model in enumerate(models):
            cells = {
                "model": QTableWidgetItem(model.display_name),
                "size": QTableWidgetItem(size_text(model.size_bytes)),
                "max_context": QTableWidgetItem(tokens_text(model.max_context_length)),
                "tools": QTableWidgetItem(
                    "tools" if model.trained_for_tool_use else ""
                ),
                "vision": QTableWidgetItem("vision" if model.vision else ""),
            }
            cells["model"].setToolTip(model.key)
            if model.trained_for_tool_use:
                cells["tools"].setIcon(icon("tools"))
            if model.vision:
                cells["vision"].setIcon(icon("vision"))
            for key, item in cells.items():
                self.table.setItem(row, list(self.COLUMNS).index(key), item)
        start = self.setup.start
        if start is not None and not self._applied_start:
            before, self._applied_start = start, True
        picked = {slot: str(getattr(before, slot)) for slot in self.combos}
        if not before.models():
            best = self._suggested()
            if best is not None:
                picked = {
                    slot: best.key if slot in ("sonnet", "opus", "haiku") else ""
                    for slot in self.combos
                }
        for slot, combo in self.combos.items():
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(UNSET, "")
            for model in models:
                combo.addItem(f"{model.display_name}  ({model.key})", model.key)
            combo.setCurrentIndex(max(0, combo.findData(picked.get(slot, ""))))
            combo.blockSignals(False)

    def _suggested(self) -> DownloadedModel | None:
        """The largest model trained for tool use (agents need tools)."""
        tools = [m for m in self.models if m.trained_for_tool_use]
        return max(tools, key=lambda m: m.size_bytes, default=None)

    def pick(self, slot: str, key: str) -> None:
        combo = self.combos[slot]
        combo.setCurrentIndex(combo.findData(key))

    def _on_pick(self) -> None:
        chosen = {str(c.currentData() or "") for c in self.combos.values()} - {""}
        limits = [m.max_context_length for m in self.models if m.key in chosen]
        if limits:
            self.context.setMaximum(max(2048, min(limits)))
        reason = self.blocked()
        self.why.set_status("warning", reason)
        self.why.setVisible(bool(reason) and bool(self.models))
        self.completeChanged.emit()

    def blocked(self) -> str:
        """Why Next is disabled ("" when it is not)."""
        if not self.models:
            return "Next is available once LM Studio lists a language model."
        if not self.choice().models():
            return "Choose a model for at least one tool to go on."
        return ""

    def choice(self) -> SetupChoice:
        picked = {slot: str(c.currentData() or "") for slot, c in self.combos.items()}
        return SetupChoice(context_length=self.context.value(), **picked)

    def isComplete(self) -> bool:
        return bool(self.choice().models())
