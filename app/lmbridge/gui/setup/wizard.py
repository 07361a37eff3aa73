"""First-run setup: from a fresh install to a tool answering through LM Bridge.

Pages: LM Studio (found? running? server on? start it), Models (a model per
tool and the context), Review (the routes and each tool's config file as
diffs; Next writes them: the settings through `SettingsService`, the tools'
files through the integration writers, each with a backup), Azure (an
optional sign-in), Test (the files written and their backups; a real
request through the proxy per configured tool, in its protocol). Shown on
first start; the tray and the Overview open it again, starting from the
current configuration. Next says why it is disabled, on the page and in its
tool tip.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from urllib.parse import urlsplit

from PySide6.QtWidgets import (
    QCheckBox,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from lmbridge import config, integrations
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.setup.manager import SetupManager
from lmbridge.gui.setup.pages import LMStudioPage, ModelsPage, plain
from lmbridge.gui.setup.plan import (
    SetupChoice,
    ToolPlan,
    lmstudio_upstream,
    planned_settings,
    tool_plans,
)
from lmbridge.gui.setup.sources import AzureSignIn, DownloadedModels
from lmbridge.gui.setup.test_page import TestPage
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.widgets import Banner, StatusDot, button, hint_label, mono_font


def diff_view(text: str) -> QPlainTextEdit:
    view = QPlainTextEdit(text)
    view.setReadOnly(True)
    view.setFont(mono_font())
    view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    view.setMinimumHeight(120)
    return view


class ReviewPage(QWizardPage):
    """The changes, as diffs; Next writes them."""

    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__()
        self.setup = wizard
        self.setTitle("Review and write")
        self.setSubTitle(
            "LM Bridge's routes and each tool's own config file change as shown. "
            "Next writes them; every changed file keeps a backup."
        )
        self.settings: config.Settings | None = None
        self.plans: list[ToolPlan] = []
        self.writes: dict[str, QCheckBox] = {}
        self.banner = Banner(closable=False)
        self.body = QVBoxLayout()
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addLayout(self.body, 1)
        self.written: list[str] = []

    def initializePage(self) -> None:
        self.banner.hide()
        while self.body.count():
            item = self.body.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.writes = {}
        choice = self.setup.choice()
        service = self.setup.controller.settings_service
        try:
            self.settings = planned_settings(
                self.setup.controller.settings, choice, str(service.path)
            )
        except config.ConfigError as exc:
            self.settings = None
            self.banner.show_message("error", str(exc))
            return
        try:
            change = self.setup.manager.settings_change(choice)
        except config.ConfigError as exc:
            self.settings = None
            self.banner.show_message("error", str(exc))
            return
        old, new = change.old_text, change.new_text
        where = f"LM Bridge's settings ({service.path}" + (
            ")" if old else ", a new file)"
        )
        diff = "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=str(service.path) if old else "/dev/null",
                tofile=str(service.path),
            )
        )
        self.body.addWidget(hint_label(f"{where}:"))
        self.body.addWidget(diff_view(diff or "(no change)"))
        clients = self.setup.client_settings(self.settings)
        self.plans = tool_plans(clients, choice, self.setup.home)
        for plan in self.plans:
            if plan.plan is None:
                self.body.addWidget(hint_label(f"{plan.name}: {plain(plan.problem)}"))
                continue
            box = QCheckBox(f"Write {plan.plan.path} ({plan.name})")
            box.setChecked(plan.plan.changed)
            box.setEnabled(plan.plan.changed)
            self.writes[plan.tool] = box
            self.body.addWidget(box)
            for note in plan.plan.notes:
                self.body.addWidget(hint_label(f"• {plain(note)}"))
            text = plan.plan.diff() if plan.plan.changed else "(already set up)"
            self.body.addWidget(diff_view(text))

    def validatePage(self) -> bool:
        """Write the settings and the checked tool files; stay on an error."""
        if self.settings is None:
            return False
        manager = self.setup.manager
        try:
            manager.save_settings(self.setup.choice())
        except (OSError, config.ConfigError) as exc:
            self.banner.show_message("error", f"Not saved: {exc}")
            return False
        for plan in self.plans:
            box = self.writes.get(plan.tool)
            if plan.plan is not None and not plan.plan.changed:
                manager.already_set_up(plan)
            if plan.plan is None or box is None or not box.isChecked():
                continue
            try:
                manager.write_tool(plan)
            except integrations.IntegrationError as exc:
                self.banner.show_message(
                    "error", f"{plan.name}: not written: {plain(str(exc))}"
                )
                return False
        self.written = [str(f.path) for f in manager.written]
        return True


class AzurePage(QWizardPage):
    """Optional: sign in to Azure for Azure AI Foundry upstreams."""

    def __init__(self, wizard: SetupWizard) -> None:
        super().__init__()
        self.setup = wizard
        self.setTitle("Azure AI Foundry (optional)")
        self.setSubTitle("Skip this unless you also use models in Azure AI Foundry.")
        self.box = QVBoxLayout()
        layout = QVBoxLayout(self)
        layout.addLayout(self.box)
        layout.addStretch(1)

    def initializePage(self) -> None:
        while self.box.count():
            item = self.box.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        azure = self.setup.azure
        if not azure.configured():
            self.box.addWidget(
                hint_label(
                    "No Azure AI Foundry upstream is configured. To use one, add an "
                    "upstream of kind azure-foundry in Settings ▸ Upstreams, then "
                    "sign in on the Azure page."
                )
            )
            return
        for name, account in azure.accounts.items():
            row = QWidget()
            line = QVBoxLayout(row)
            line.setContentsMargins(0, 0, 0, 0)
            line.addWidget(StatusDot(f"{account.title}: {account.describe()}"))
            if account.auth != "api-key":
                sign_in = button("Sign in", "azure")
                sign_in.clicked.connect(lambda _=False, n=name: self.sign_in(n))
                line.addWidget(sign_in)
            self.box.addWidget(row)

    def sign_in(self, name: str) -> None:
        self.setup.tasks.start(self._sign_in(name), what="Signing in to Azure")

    async def _sign_in(self, name: str) -> None:
        await self.setup.azure.sign_in(name)
        self.initializePage()


class SetupWizard(QWizard):
    """First-run setup. A re-run starts from the current configuration."""

    def __init__(
        self,
        controller: ProxyController,
        models: DownloadedModels,
        azure: AzureSignIn,
        parent: QWidget | None = None,
        *,
        home: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.azure = azure
        # The home directory whose LM Studio and tool configs setup uses
        # (tests point it at a temporary one).
        self.home = home
        self.manager = SetupManager(controller, models, home, self)
        # What the settings and the tools' files hold now (None: first run).
        self.start: SetupChoice | None = self.manager.starting_choice()
        self.tasks = Tasks("setup")
        self.setWindowTitle("Set up LM Bridge")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.resize(820, 640)
        self.lmstudio_page = LMStudioPage(self)
        self.models_page = ModelsPage(self)
        self.review_page = ReviewPage(self)
        self.azure_page = AzurePage(self)
        self.test_page = TestPage(self)
        for page in (
            self.lmstudio_page,
            self.models_page,
            self.review_page,
            self.azure_page,
            self.test_page,
        ):
            self.addPage(page)
        self._review_id = self.pageIds()[2]  # the page that writes
        for page in (self.lmstudio_page, self.models_page):
            page.completeChanged.connect(self._explain_next)
        self.currentIdChanged.connect(self._explain_next)

    def _explain_next(self) -> None:
        """The Next button's tool tip says why it is disabled."""
        page = self.currentPage()
        reason = page.blocked() if isinstance(page, LMStudioPage | ModelsPage) else ""
        next_button = self.button(QWizard.WizardButton.NextButton)
        next_button.setToolTip(reason)
        # Once the review page has written, Cancel would undo nothing: the
        # button says what it does then.
        written = self.currentId() > self._review_id
        self.setButtonText(
            QWizard.WizardButton.CancelButton, "Close" if written else "Cancel"
        )
        self.button(QWizard.WizardButton.CancelButton).setToolTip(
            "The settings and files are written; close setup here" if written else ""
        )

    # -- what the pages share ----------------------------------------------

    def choice(self) -> SetupChoice:
        return self.models_page.choice()

    def server_url(self) -> str:
        """The LM Studio upstream's base URL (LM Studio's default if none)."""
        settings = self.controller.settings
        name = lmstudio_upstream(settings)
        upstream = settings.upstream_named(name) if name else None
        return upstream.base_url if upstream is not None else "http://127.0.0.1:1234"

    def server_port(self) -> int | None:
        try:
            return urlsplit(self.server_url()).port
        except ValueError:
            return None

    def client_settings(self, settings: config.Settings) -> config.Settings:
        """`settings` as clients reach the proxy: the port it listens on now."""
        return self.manager.client_settings(settings)

    async def aclose(self) -> None:
        await self.tasks.aclose()

    def done(self, result: int) -> None:
        self.tasks.cancel()
        super().done(result)
