"""Azure: sign in (Azure CLI, with a device-code option, or a browser),
who is signed in, token expiry, sign out and a connection test.

Unused (no Azure AI Foundry upstream) the page is calm: it says in plain
words how to start using Azure, with the buttons that do it (get the Azure
CLI, open Settings to add an upstream), never config-file wording."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from lmbridge.gui import message
from lmbridge.gui.azure.manager import AzureAccount, AzureAccounts
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.widgets import (
    ProgressRow,
    StatusDot,
    button,
    hint_label,
    title_label,
)

AUTH_NAMES = {
    "azure-cli": "Azure CLI (az login)",
    "browser": "Browser sign-in (azure-identity)",
    "api-key": "API key in the keyring",
}
SIGN_IN = "Signing in to Azure"
INSTALL_URL = "https://aka.ms/installazurecli"
UNUSED = (
    "Azure is not in use: no Azure AI Foundry upstream is set up. To use "
    "models you deployed in Azure AI Foundry, add them as an upstream in "
    "Settings, then sign in here."
)
CLI_MISSING = "Signing in needs the Azure CLI, which is not installed on this computer."


def expiry_text(expires_on: float | None, now: float | None = None) -> str:
    if expires_on is None:
        return "no token in memory yet (Test connection gets one)"
    left = expires_on - (now or time.time())
    at = time.strftime("%H:%M", time.localtime(expires_on))
    if left <= 0:
        return f"expired at {at} (a new one is fetched on the next request)"
    return f"in {left / 60:.0f} min, at {at}"


class AzurePanel(QWidget):
    """The Azure page."""

    settingsRequested = Signal()  # "Add an Azure upstream…": open Settings

    def __init__(self, accounts: AzureAccounts, parent: QWidget | None = None):
        super().__init__(parent)
        self.accounts = accounts
        self.tasks = Tasks("azure")
        self.picker = QComboBox()
        self.picker.currentIndexChanged.connect(self.refresh_view)
        self.no_upstream = hint_label(UNUSED)
        self.cli_missing = hint_label(CLI_MISSING)
        self.install_button = button(
            "Get the Azure CLI…", "download", f"Opens {INSTALL_URL} in your browser"
        )
        self.install_button.clicked.connect(
            lambda: QDesktopServices.openUrl(QUrl(INSTALL_URL))
        )
        self.add_upstream_button = button("Add an Azure upstream…", "settings")
        self.add_upstream_button.clicked.connect(self.settingsRequested)
        guide_buttons = QHBoxLayout()
        guide_buttons.addWidget(self.add_upstream_button)
        guide_buttons.addWidget(self.install_button)
        guide_buttons.addStretch(1)
        self.status = StatusDot()
        self.auth = QLabel()
        self.account = QLabel()
        self.tenant = QLabel()
        self.subscription = QLabel()
        self.expiry = QLabel()
        self.tested = QLabel()
        for label in (self.account, self.tenant, self.subscription, self.expiry):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details = details = QGroupBox("Account")
        form = QFormLayout(details)
        form.addRow("Upstream", self.picker)
        form.addRow("Sign-in method", self.auth)
        form.addRow("Status", self.status)
        form.addRow("Account", self.account)
        form.addRow("Tenant", self.tenant)
        form.addRow("Subscription", self.subscription)
        form.addRow("Token expires", self.expiry)
        form.addRow("Last test", self.tested)

        self.device_code = QCheckBox("Use a device code (sign in on another device)")
        self.sign_in_button = button("Sign in", "play")
        self.sign_out_button = button("Sign out", "stop")
        self.test_button = button("Test connection", "send")
        self.refresh_button = button("Refresh", "refresh")
        self.sign_in_button.clicked.connect(self.sign_in)
        self.sign_out_button.clicked.connect(self.sign_out)
        self.test_button.clicked.connect(self.test)
        self.refresh_button.clicked.connect(self.refresh)
        self.action_row = QWidget()
        actions = QHBoxLayout(self.action_row)
        actions.setContentsMargins(0, 0, 0, 0)
        actions.addWidget(self.device_code, 1)
        for widget in (
            self.sign_in_button,
            self.sign_out_button,
            self.test_button,
            self.refresh_button,
        ):
            actions.addWidget(widget)
        self.progress = ProgressRow()
        self.progress.cancelled.connect(self.cancel_sign_in)
        self.instructions = QLabel()
        self.instructions.setWordWrap(True)
        self.instructions.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self.instructions.setOpenExternalLinks(True)
        self.instructions.hide()

        layout = QVBoxLayout(self)
        layout.addWidget(title_label("Azure"))
        layout.addWidget(self.no_upstream)
        layout.addWidget(self.cli_missing)
        layout.addLayout(guide_buttons)
        layout.addWidget(details)
        layout.addWidget(self.action_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.instructions)
        layout.addStretch(1)

        accounts.changed.connect(self._fill_picker)
        accounts.signInMessage.connect(self._on_sign_in_message)
        self._fill_picker()

    # -- state --------------------------------------------------------------------

    def current(self) -> AzureAccount | None:
        name = self.picker.currentData()
        return self.accounts.accounts.get(name) if isinstance(name, str) else None

    def _fill_picker(self) -> None:
        names = list(self.accounts.accounts)
        if [self.picker.itemData(i) for i in range(self.picker.count())] != names:
            current = self.picker.currentData()
            self.picker.blockSignals(True)
            self.picker.clear()
            for name in names:
                title = self.accounts.accounts[name].title
                self.picker.addItem(title, name)
            index = names.index(current) if current in names else 0
            self.picker.setCurrentIndex(index)
            self.picker.blockSignals(False)
        self.refresh_view()

    def refresh_view(self) -> None:
        account = self.current()
        configured = self.accounts.configured()
        self.no_upstream.setVisible(not configured)
        self.add_upstream_button.setVisible(not configured)
        self.picker.setEnabled(len(self.accounts.accounts) > 1)
        busy = self.tasks.running(SIGN_IN)
        missing = account is not None and account.cli_missing
        self.cli_missing.setVisible(missing)
        then = " Install it, then press Sign in." if configured else ""
        self.cli_missing.setText(CLI_MISSING + then)
        self.install_button.setVisible(missing)
        # Unused and nothing to sign in with: the guide above is the page.
        self.details.setVisible(configured or not missing)
        self.action_row.setVisible(configured or not missing)
        if account is None:
            return
        info = account.info
        self.auth.setText(AUTH_NAMES.get(account.auth, account.auth))
        if not configured and not account.signed_in:
            # Nothing uses Azure: not an error, whatever the CLI says.
            self.status.set_status("off", "not in use")
        elif missing:
            self.status.set_status("warning", "the Azure CLI is not installed")
        elif account.error:
            self.status.set_status("error", account.error)
        elif account.signed_in:
            self.status.set_status("ok", account.describe())
        elif account.checked:
            hint = (
                "enter the key in Settings ▸ API keys"
                if account.auth == "api-key"
                else "press Sign in"
            )
            self.status.set_status("warning", f"{account.describe()} — {hint}")
        else:
            self.status.set_status("off", account.describe())
        self.account.setText(info.account if info and info.account else "—")
        self.tenant.setText(info.tenant if info and info.tenant else "—")
        sub = "—"
        if info and (info.subscription or info.subscription_id):
            sub = info.subscription or info.subscription_id
            if info.subscription_id and info.subscription_id != sub:
                sub += f" ({info.subscription_id})"
        self.subscription.setText(sub)
        self.expiry.setText(
            "API key (does not expire)"
            if account.auth == "api-key"
            else expiry_text(account.expires_on)
        )
        self.tested.setText(account.tested or "—")
        can_sign_in = account.auth != "api-key" and not busy and not missing
        self.sign_in_button.setEnabled(can_sign_in)
        self.device_code.setVisible(account.auth == "azure-cli")
        self.device_code.setEnabled(not busy)
        self.sign_out_button.setEnabled(
            account.auth != "api-key" and info is not None and not busy
        )
        self.test_button.setEnabled(not busy and not missing)

    # -- actions ---------------------------------------------------------------

    def refresh(self) -> None:
        self.tasks.start(self.accounts.refresh(), what="Checking the Azure sign-in")

    def sign_in(self) -> None:
        account = self.current()
        if account is None or self.tasks.running(SIGN_IN):
            return
        device = self.device_code.isChecked() and account.auth == "azure-cli"
        how = "with a device code" if device else "in your browser"
        self.instructions.setText("")
        self.instructions.setVisible(device)
        self.progress.start(f"Signing in {how}… finish the sign-in there.")
        task = self.tasks.start(self._sign_in(account.name, device), what=SIGN_IN)
        task.add_done_callback(lambda _task: self._sign_in_ended())
        self.refresh_view()

    async def _sign_in(self, name: str, device_code: bool) -> None:
        info = await self.accounts.sign_in(name, device_code=device_code)
        message.info(f"Azure: {info.describe()}")
        await self.accounts.refresh(name)

    def _sign_in_ended(self) -> None:
        self.progress.finish()
        self.instructions.hide()
        self.refresh_view()

    def cancel_sign_in(self) -> None:
        self.tasks.cancel(SIGN_IN)
        message.info("Azure sign-in cancelled")

    def _on_sign_in_message(self, text: str) -> None:
        self.instructions.show()
        previous = self.instructions.text()
        self.instructions.setText(f"{previous}\n{text}".strip())

    def sign_out(self) -> None:
        account = self.current()
        if account is not None:
            self.tasks.start(self._sign_out(account.name), what="Signing out of Azure")

    async def _sign_out(self, name: str) -> None:
        await self.accounts.sign_out(name)
        message.info("Signed out of Azure")

    def test(self) -> None:
        account = self.current()
        if account is not None:
            self.test_button.setEnabled(False)
            self.tasks.start(
                self._test(account.name),
                what="Testing the Azure connection",
                on_error=lambda _exc: self.refresh_view(),
            )

    async def _test(self, name: str) -> None:
        result = await self.accounts.test(name)
        message.info(f"Azure connection works: {result}")
        self.refresh_view()
