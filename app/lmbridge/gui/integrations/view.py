"""Integrations: for each tool, the exact settings that point it at this
proxy (environment, config snippets, steps) with Copy; Test sends a real
request in the tool's protocol through the proxy; Write merges into the
tool's config file after showing the diff, keeping a backup; "Open <client>
in a terminal" runs a coding CLI on LM Bridge (`lmbridge launch`).

The knowledge of each tool lives in `lmbridge.integrations`; this page
renders it and calls it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from lmbridge import config, integrations
from lmbridge.apiclient import Reply
from lmbridge.gui import message
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.formats import duration
from lmbridge.gui.integrations.manager import IntegrationsManager
from lmbridge.gui.integrations.texts import code_view, plain, rich
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.terminal import client_for_tool, open_client
from lmbridge.gui.widgets import (
    Banner,
    StatusDot,
    button,
    copy_text,
    hint_label,
    mono_font,
    title_label,
)
from lmbridge.integrations import Integration, ModelChoice, WritePlan

TESTING = "Testing the integration"


def configured_model(choice: ModelChoice) -> str:
    """The model a tool asks for by default, as its file names it."""
    return choice.model or choice.sonnet


class IntegrationsPanel(QWidget):
    """The Integrations page."""

    def __init__(self, controller: ProxyController, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.manager = IntegrationsManager(controller, self)
        self.tasks = Tasks("integrations")
        self.plan: WritePlan | None = None
        self.last_reply: Reply | None = None
        self.tools = QListWidget()
        self.tools.setMaximumWidth(220)
        self.tools.setSpacing(3)
        for tool in integrations.TOOL_IDS:
            item = QListWidgetItem(tool)
            item.setData(Qt.ItemDataRole.UserRole, tool)
            self.tools.addItem(item)
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.setMinimumWidth(260)
        editor = self.model.lineEdit()
        if editor is not None:
            editor.setPlaceholderText("the model the tool asks for")
        self.model.currentTextChanged.connect(self._on_model)

        self.heading = title_label("")
        self.summary = hint_label()
        self.now = StatusDot()
        # The model the tool's file named when the field was filled from it.
        self._prefilled = ""
        self.snippet_box = QVBoxLayout()
        self.steps = QLabel()
        self.steps.setWordWrap(True)
        self.steps.setTextFormat(Qt.TextFormat.RichText)
        self.test_button = button(
            "Test", "send", "Send a real request through LM Bridge"
        )
        self.write_button = button("Write to config file…", "check")
        self.open_button = button("Open in a terminal", "terminal")
        self.test_button.clicked.connect(self.test)
        self.write_button.clicked.connect(self.prepare_write)
        self.open_button.clicked.connect(self.open_terminal)
        self.answer = hint_label()
        # Test results by (tool, model): a result shows only beside the tool
        # and model it was obtained with.
        self.answers: dict[tuple[str, str], str] = {}
        self.review = Banner(closable=False)
        self.diff = QPlainTextEdit()
        self.diff.setReadOnly(True)
        self.diff.setFont(mono_font())
        self.diff.setFixedHeight(200)
        self.diff.hide()

        options = QFormLayout()
        options.addRow("Model", self.model)
        actions = QHBoxLayout()
        actions.addWidget(self.test_button)
        actions.addWidget(self.write_button)
        actions.addWidget(self.open_button)
        actions.addWidget(self.answer, 1)
        detail = QVBoxLayout()
        detail.addWidget(self.heading)
        detail.addWidget(self.summary)
        detail.addWidget(self.now)
        detail.addLayout(options)
        detail.addLayout(self.snippet_box)
        steps_box = QGroupBox("Steps")
        QVBoxLayout(steps_box).addWidget(self.steps)
        self.steps_box = steps_box
        detail.addWidget(steps_box)
        detail.addLayout(actions)
        detail.addWidget(self.review)
        detail.addWidget(self.diff)
        detail.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.tools)
        row.addLayout(detail, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(title_label("Integrations"))
        layout.addLayout(row, 1)

        self.tools.currentRowChanged.connect(self._on_tool)
        controller.phaseChanged.connect(self.refresh)
        controller.settingsChanged.connect(self.refresh)
        controller.loadedChanged.connect(self._fill_models)
        self.manager.changed.connect(self._on_files)
        self._labels_done = False
        self.tools.setCurrentRow(0)

    # -- data ------------------------------------------------------------------

    def tool(self) -> str:
        item = self.tools.currentItem()
        return str(item.data(Qt.ItemDataRole.UserRole)) if item else ""

    @property
    def home(self) -> Path | None:
        """The home directory whose tool configs are shown and written
        (tests point it at a temporary directory)."""
        return self.manager.home

    @home.setter
    def home(self, home: Path | None) -> None:
        self.manager.set_home(home)

    def choice(self) -> ModelChoice:
        model = self.model.currentText().strip()
        now = self.manager.now(self.tool())
        if now is not None and model and model == configured_model(now.choice):
            return now.choice  # all of Claude Code's tiers as the file has them
        if self.tool() == "claude-code":
            return ModelChoice(sonnet=model, haiku=model) if model else ModelChoice()
        return ModelChoice(model=model)

    def settings(self) -> config.Settings:
        """The settings as clients see them: the port actually listened on."""
        return self.manager.client_settings()

    def integration(self) -> Integration:
        return self.manager.describe(self.tool(), self.choice())

    def select(self, tool: str) -> None:
        self.tools.setCurrentRow(list(integrations.TOOL_IDS).index(tool))

    # -- view -------------------------------------------------------------------

    def _on_tool(self) -> None:
        self.cancel_write()
        self._fill_models()
        self._prefill(force=True)
        self.refresh()

    def _on_files(self) -> None:
        """A tool's file changed on disk: show what it says now."""
        self._prefill(force=False)
        self.refresh()

    def _prefill(self, *, force: bool) -> None:
        """Put the model the tool's file names into the field: always on
        choosing a tool; after a change on disk only if the user did not
        type another one meanwhile."""
        now = self.manager.now(self.tool()) if self.tool() else None
        model = configured_model(now.choice) if now is not None else ""
        typed = self.model.currentText().strip()
        if force or typed in ("", self._prefilled):
            self._prefilled = model
            self.model.blockSignals(True)
            self.model.setCurrentText(model)
            self.model.blockSignals(False)

    def _on_model(self) -> None:
        self.cancel_write()
        self.refresh()

    def _fill_models(self) -> None:
        if not self.tool():
            return
        current = self.model.currentText()
        self.model.blockSignals(True)
        self.model.clear()
        self.model.addItems(self.manager.model_names(self.tool()))
        self.model.setCurrentText(current)
        self.model.blockSignals(False)

    def test_problem(self) -> str:
        """Why Test cannot run now ("" when it can)."""
        if not self.controller.running:
            return "Start the proxy first (Overview ▸ Start)"
        try:
            self.manager.test_request(self.tool(), self.choice())
        except integrations.IntegrationError as exc:
            return str(exc)
        return ""

    def _show_answer(self) -> None:
        """The line beside Test: under way, why it cannot run, or the result
        for this tool and model; never one left from another condition."""
        if self.tasks.running(TESTING):
            self.answer.setText("Sending…")
            return
        key = (self.tool(), self.model.currentText().strip())
        self.answer.setText(self.answers.get(key) or self.test_problem())

    def refresh(self) -> None:
        if not self._labels_done:
            self._label_tools()
        if not self.tool():
            return
        info = self.integration()
        self.heading.setText(info.name)
        where = f"; writes {info.config_path}" if info.config_path else ""
        self.summary.setText(
            f"Speaks {info.protocol_name}; base URL {info.base_url}{where}."
        )
        self._show_now(info)
        while self.snippet_box.count():
            item = self.snippet_box.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        for snippet in info.snippets:
            box = QGroupBox(snippet.title)
            copy = button("Copy", "copy")
            copy.clicked.connect(lambda _=False, t=snippet.text: self._copy(t))
            inner = QHBoxLayout(box)
            inner.addWidget(code_view(snippet.text.rstrip("\n")), 1)
            inner.addWidget(copy, 0, Qt.AlignmentFlag.AlignTop)
            self.snippet_box.addWidget(box)
        self.steps.setText(
            "<ol>" + "".join(f"<li>{rich(s)}</li>" for s in info.steps) + "</ol>"
        )
        self.steps_box.setVisible(bool(info.steps))
        self.write_button.setVisible(info.writable)
        self._show_open_button()
        testing = self.tasks.running(TESTING)
        problem = self.test_problem()
        self.test_button.setText("Cancel test" if testing else "Test")
        self.test_button.setEnabled(testing or not problem)
        self.test_button.setToolTip(problem or "Send a real request through LM Bridge")
        self._show_answer()

    def _show_open_button(self) -> None:
        """The button for a coding CLI `lmbridge launch` runs: enabled when
        it is installed, else its tool tip says how to install it."""
        client = client_for_tool(self.tool())
        self.open_button.setVisible(client is not None)
        if client is None:
            return
        self.open_button.setText(f"Open {client.name} in a terminal")
        found = client.find() is not None
        self.open_button.setEnabled(found)
        self.open_button.setToolTip(
            f"Run {client.name} on LM Bridge with the model above "
            f"(lmbridge launch {client.id})"
            if found
            else f"`{client.binary}` is not on PATH — npm install -g {client.package}"
        )

    def open_terminal(self) -> None:
        client = client_for_tool(self.tool())
        if client is not None:
            model = self.model.currentText().strip()
            open_client(client.id, self.controller.config_path, model)

    def _show_now(self, info: Integration) -> None:
        """What the tool's file points at now, beside what it should."""
        line = self.manager.now_line(info)
        self.now.setVisible(line is not None)
        if line is not None:
            self.now.set_status(*line)

    def _label_tools(self) -> None:
        for row in range(self.tools.count()):
            item = self.tools.item(row)
            tool = str(item.data(Qt.ItemDataRole.UserRole))
            info = self.manager.describe(tool, None)
            item.setText(f"{info.name}\n{info.protocol_name}")
        self._labels_done = True

    def _copy(self, text: str) -> None:
        copy_text(text)
        message.info("Copied to the clipboard")

    # -- Test ------------------------------------------------------------------

    def test(self) -> None:
        """Send the tool's test request; while that runs the button cancels."""
        key = (self.tool(), self.model.currentText().strip())
        if self.tasks.running(TESTING):
            self.tasks.cancel(TESTING)
            self.answers[key] = "Test cancelled"
            return
        try:
            request = self.manager.test_request(self.tool(), self.choice())
        except integrations.IntegrationError:
            self.refresh()  # the line beside Test says why
            return
        self.answers.pop(key, None)
        info = self.integration()
        task = self.tasks.start(self._test(key, info, request), what=TESTING)
        task.add_done_callback(lambda _task: self.refresh())
        self.refresh()

    async def _test(
        self,
        key: tuple[str, str],
        info: Integration,
        request: integrations.TestRequest,
    ) -> None:
        reply = await self.manager.send_test(info, request)
        self.last_reply = reply
        if reply.ok:
            self.answers[key] = (
                f"✓ {info.name} works: {reply.status} in {duration(reply.elapsed)} — "
                f"“{reply.text.strip()[:200]}”"
            )
        else:
            self.answers[key] = (
                f"✗ {info.name} failed: {reply.status or 'no answer'}: "
                f"{reply.text[:300]}"
            )

    # -- Write -----------------------------------------------------------------

    def prepare_write(self) -> None:
        try:
            plan = self.manager.plan_write(self.tool(), self.choice())
        except integrations.IntegrationError as exc:
            message.error(f"Cannot write the configuration: {exc}")
            return
        if not plan.changed:
            message.info(f"{plan.path} already points at LM Bridge")
            return
        self.plan = plan
        notes = "".join(f"\n• {plain(note)}" for note in plan.notes)
        what = "create" if plan.old_text is None else "change"
        backup = (
            "" if plan.old_text is None else " A backup of the current file is kept."
        )
        self.review.show_message(
            "warning",
            f"This will {what} {plan.path} as shown below.{backup}{notes}",
            [("Write", self.write), ("Cancel", self.cancel_write)],
        )
        self.diff.setPlainText(plan.diff())
        self.diff.show()

    def write(self) -> None:
        plan, self.plan = self.plan, None
        self.diff.hide()
        if plan is None:
            return
        try:
            result = self.manager.write(plan)
        except integrations.IntegrationError as exc:
            message.error(f"Not written: {exc}")
            return
        kept = f"; the old file is {result.backup}" if result.backup else ""
        message.info(f"Wrote {result.path}{kept}")

    def cancel_write(self) -> None:
        self.plan = None
        self.review.hide()
        self.diff.hide()
