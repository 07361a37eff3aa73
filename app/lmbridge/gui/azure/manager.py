"""Azure sign-in as the GUI sees it: one account line per azure-foundry
upstream (or the Azure CLI alone when none is configured).

`AzureAccounts` owns that data and calls `auth/` for the work: `az login`
(browser or device code), `az account show`, `az logout`, the browser
sign-in of azure-identity, and the keyring for `api-key` upstreams. While
the proxy runs it uses the running upstream's own CLI / browser objects, so
a sign-in immediately replaces the tokens requests use.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from lmbridge import config
from lmbridge.auth.azure_cli import AzureCli
from lmbridge.auth.secrets import SECRETS
from lmbridge.auth.tokens import AccountInfo
from lmbridge.core import errors
from lmbridge.gui.controller import ProxyController
from lmbridge.upstreams.azure import AzureFoundryUpstream, browser_sign_in
from lmbridge.upstreams.factory import make_upstream

if TYPE_CHECKING:  # azure-identity (24 MB) is imported at the first sign-in
    from lmbridge.auth.browser import BrowserSignIn

CLI_ONLY = ""  # the name of the account line when no upstream is configured


@dataclass
class AzureAccount:
    """What is known about one upstream's Azure sign-in."""

    name: str
    auth: str
    info: AccountInfo | None = None
    checked: bool = False
    expires_on: float | None = None
    key_stored: bool = False
    error: str = ""
    tested: str = ""

    @property
    def title(self) -> str:
        return f"upstream {self.name}" if self.name else "Azure CLI"

    @property
    def signed_in(self) -> bool:
        return self.key_stored if self.auth == "api-key" else self.info is not None

    def describe(self) -> str:
        """One line for the overview and the tray."""
        if self.auth == "api-key":
            return "API key in the keyring" if self.key_stored else "no API key stored"
        if not self.checked:
            return "checking sign-in…"
        if self.error:
            return self.error
        if self.info is None:
            return "not signed in"
        return self.info.describe()


class AzureAccounts(QObject):
    """Sign-in state and actions for every Azure upstream."""

    changed = Signal()
    signInMessage = Signal(str)  # device-code instructions and az's notes

    def __init__(self, controller: ProxyController, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self.accounts: dict[str, AzureAccount] = {}
        self._cli_only: AzureCli | None = None
        self._browsers: dict[str, BrowserSignIn] = {}
        controller.settingsChanged.connect(self._rebuild)
        self._rebuild()

    # -- targets --------------------------------------------------------------

    def _upstream_settings(self) -> list[config.UpstreamSettings]:
        return [
            u for u in self.controller.settings.upstream if u.kind == "azure-foundry"
        ]

    def _rebuild(self) -> None:
        ups = self._upstream_settings()
        names = [u.name for u in ups] if ups else [CLI_ONLY]
        old = self.accounts
        auths = {u.name: u.auth for u in ups}
        self.accounts = {
            n: old.get(n) or AzureAccount(n, auths.get(n, "azure-cli")) for n in names
        }
        for name, account in self.accounts.items():
            account.auth = auths.get(name, "azure-cli")
        self.changed.emit()

    def configured(self) -> bool:
        """Whether any azure-foundry upstream is configured."""
        return bool(self._upstream_settings())

    def _settings(self, name: str) -> config.UpstreamSettings | None:
        return self.controller.settings.upstream_named(name) if name else None

    def _running(self, name: str) -> AzureFoundryUpstream | None:
        state = self.controller.services
        upstream = state.upstreams.get(name) if state is not None and name else None
        return upstream if isinstance(upstream, AzureFoundryUpstream) else None

    def _cli(self, name: str) -> AzureCli:
        running = self._running(name)
        if running is not None and running.cli is not None:
            return running.cli
        up = self._settings(name)
        if up is None:
            self._cli_only = self._cli_only or AzureCli()
            return self._cli_only
        return AzureCli(up.az_path)

    def _browser(self, name: str) -> BrowserSignIn:
        running = self._running(name)
        if running is not None and running.browser is not None:
            return running.browser
        up = self._settings(name)
        if up is None:
            raise errors.InvalidRequest(f"no azure-foundry upstream named {name!r}")
        if name not in self._browsers:
            self._browsers[name] = browser_sign_in(up)
        return self._browsers[name]

    # -- actions ----------------------------------------------------------------

    async def refresh(self, name: str | None = None) -> None:
        """Look up who is signed in (for one upstream, or all)."""
        for account in list(self.accounts.values()):
            if name is None or account.name == name:
                await self._refresh(account)
        self.changed.emit()

    async def _refresh(self, account: AzureAccount) -> None:
        account.error = ""
        try:
            if account.auth == "api-key":
                account.key_stored = await SECRETS.get(account.name) is not None
            elif account.auth == "browser":
                account.info = self._browser(account.name).account()
            else:
                account.info = await self._cli(account.name).account()
        except errors.LMBridgeError as exc:
            account.info = None
            account.error = exc.message
        account.checked = True
        running = self._running(account.name)
        token = running.tokens.cached() if running and running.tokens else None
        account.expires_on = token.expires_on if token is not None else None

    async def sign_in(self, name: str, *, device_code: bool = False) -> AccountInfo:
        """Run the upstream's sign-in (az login or the browser)."""
        account = self.accounts[name]
        up = self._settings(name)
        if account.auth == "api-key":
            raise errors.InvalidRequest(
                f"upstream {name!r} uses an API key — enter it in Settings ▸ API keys"
            )
        if account.auth == "browser":
            info = await self._browser(name).sign_in()
        else:
            info = await self._cli(name).login(
                device_code=device_code,
                tenant=up.tenant if up is not None else "",
                on_message=self.signInMessage.emit,
            )
        account.info, account.error, account.checked = info, "", True
        self._forget_running_token(name)
        self.changed.emit()
        return info

    async def sign_out(self, name: str) -> None:
        account = self.accounts[name]
        if account.auth == "browser":
            await self._browser(name).sign_out()
        elif account.auth == "azure-cli":
            await self._cli(name).logout()
        account.info, account.expires_on = None, None
        self._forget_running_token(name)
        self.changed.emit()

    async def test(self, name: str) -> str:
        """Get a token (or key) and reach the endpoint; a sentence on success,
        an `LMBridgeError` that says how to fix it otherwise."""
        account = self.accounts[name]
        up = self._settings(name)
        if up is None:
            token = await self._cli(name).get_access_token(
                "https://management.core.windows.net//.default"
            )
            account.expires_on = token.expires_on
            self.changed.emit()
            return "the Azure CLI gives tokens (no azure-foundry upstream to reach)"
        running = self._running(name)
        upstream = running or make_upstream(up)
        if not isinstance(upstream, AzureFoundryUpstream):
            raise errors.InvalidRequest(f"upstream {name!r} is not an Azure upstream")
        if running is None:
            await upstream.start()
        try:
            credential = await upstream.credential()
            health = await upstream.check()
        finally:
            if running is None:
                await upstream.close()
        if not isinstance(credential, str):
            account.expires_on = credential.expires_on
        if not health.reachable:
            raise errors.UpstreamUnavailable(
                f"signed in, but {health.url} cannot be reached "
                f"({health.error or 'no answer'}) — check the resource name "
                "and your network"
            )
        account.tested = time.strftime("%H:%M:%S")
        self.changed.emit()
        what = "key accepted locally" if isinstance(credential, str) else "token ok"
        return f"{account.title}: {what}; {health.url} answers"

    def _forget_running_token(self, name: str) -> None:
        running = self._running(name)
        if running is not None and running.cli is not None:
            running.cli.forget_tokens()
        elif running is not None and running.browser is not None:
            running.browser.tokens.forget()
