"""The last page of setup: what was written, and a real test of each tool.

It lists every file setup wrote with the backup of its previous text, then
sends one real request through the proxy per configured tool (Claude Code,
Codex, the IDE plugins), in that tool's protocol, and gives each its own
result line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QVBoxLayout, QWizardPage

from lmbridge.gui.setup.manager import ToolTest, written_lines
from lmbridge.gui.setup.plan import tool_name
from lmbridge.gui.widgets import StatusDot, button, hint_label

if TYPE_CHECKING:
    from lmbridge.gui.setup.wizard import SetupWizard

TESTING = "Testing LM Bridge"


class ToolLine(QVBoxLayout):
    """One tool's result: a status line and the answer or error below it."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.status = StatusDot()
        self.detail = hint_label()
        self.addWidget(self.status)
        self.addWidget(self.detail)
        self.waiting()

    def waiting(self) -> None:
        self.status.set_status("off", f"{self.name}: waiting for its test")
        self.detail.hide()

    def clear(self) -> None:
        """Delete the line's widgets (the page is shown again)."""
        for widget in (self.status, self.detail):
            self.removeWidget(widget)
            widget.deleteLater()

    def show_result(self, result: ToolTest) -> None:
        self.status.set_status("ok" if result.ok else "error", result.summary)
        self.detail.setText(result.detail)
        self.detail.setVisible(bool(result.detail))


class TestPage(QWizardPage):
    """The files written, and a real request through the proxy per tool."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__()
        self.setup = wizard
        self.setTitle("Test")
        self.setSubTitle(
            "A real request for each tool you set up goes through LM Bridge to "
            "LM Studio, which loads the model first if needed (that can take a "
            "while)."
        )
        self.files = QGroupBox("Files written")
        self.files_list = QLabel()
        self.files_list.setWordWrap(True)
        QVBoxLayout(self.files).addWidget(self.files_list)
        self.result = StatusDot("")
        self.lines: dict[str, ToolLine] = {}
        self.results: dict[str, ToolTest] = {}
        self.tools_box = QVBoxLayout()
        self.after = hint_label()
        self.again = button("Test again", "send")
        self.again.clicked.connect(self.test)
        self.ok = False
        row = QHBoxLayout()
        row.addWidget(self.again)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.files)
        layout.addWidget(self.result)
        layout.addLayout(self.tools_box)
        layout.addWidget(self.after)
        layout.addLayout(row)
        layout.addStretch(1)

    def initializePage(self) -> None:
        lines = written_lines(self.setup.manager.written)
        self.files.setVisible(bool(lines))
        self.files_list.setText("\n".join(lines))
        for line in self.lines.values():
            line.clear()
            self.tools_box.removeItem(line)
        self.lines = {}
        for tool in self.setup.choice().tools():
            line = self.lines[tool] = ToolLine(tool_name(tool))
            self.tools_box.addLayout(line)
        self.test()

    def test(self) -> None:
        if not self.setup.tasks.running(TESTING):
            self.setup.tasks.start(self._test(), what=TESTING)

    async def _test(self) -> None:
        self.ok = False
        self.results = {}
        self.after.setText("")
        self.again.setEnabled(False)
        try:
            await self._run()
        finally:
            self.again.setEnabled(True)

    async def _run(self) -> None:
        choice = self.setup.choice()
        tools = choice.tools()
        if not tools:
            self.result.set_status("warning", "No tool was set up, nothing to test.")
            return
        for line in self.lines.values():
            line.waiting()
        self.result.set_status("warning", "Starting the proxy…")
        problem = await self.setup.manager.ensure_running()
        if problem:
            self.result.set_status("error", problem)
            return
        for tool in tools:
            self.result.set_status("warning", f"Testing {tool_name(tool)}…")
            result = await self.setup.manager.test_tool(tool, choice)
            self.results[tool] = result
            self.lines[tool].show_result(result)
        failed = [r.name for r in self.results.values() if not r.ok]
        self.ok = not failed
        if failed:
            self.result.set_status("error", f"Not working yet: {', '.join(failed)}")
            self.after.setText(
                "Each line says what went wrong; the Requests page has the "
                "details. Fix it and Test again, or Finish and come back later."
            )
        else:
            names = [tool_name(t) for t in tools]
            self.result.set_status(
                "ok",
                f"{names[0]} works through LM Bridge."
                if len(names) == 1
                else f"All {len(names)} tools work through LM Bridge.",
            )
            self.after.setText(
                "Start your tools as usual; their requests show on the Requests page."
            )
