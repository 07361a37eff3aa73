"""Azure: sign in with the fake az (device code), account details, token
expiry, Test connection against the fake Foundry, sign out, cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton

from fakes.azure_fixtures import FakeAz, fake_az, fake_foundry, foundry_settings
from fakes.foundry import FakeFoundry
from gui.helpers import close_app, eventually, make_app
from lmbridge.auth.azure_cli import find_az
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.azure.view import AzurePanel
from lmbridge.gui.overview.view import OverviewPanel

__all__ = ["fake_az", "fake_foundry"]


@pytest.fixture
async def azure_app(
    fake_az: FakeAz, fake_foundry: FakeFoundry, tmp_path: Path
) -> AsyncIterator[LMBridgeApp]:
    fake_az.update(logged_in=False)
    app = await make_app(foundry_settings(fake_foundry), tmp_path)
    yield app
    await close_app(app)


def azure_page(app: LMBridgeApp) -> AzurePanel:
    panel = app.page("azure")
    assert isinstance(panel, AzurePanel)
    app.window.show_page("azure")
    return panel


async def test_sign_in_with_device_code_then_test_and_sign_out(
    azure_app: LMBridgeApp, fake_az: FakeAz, messages: list[Any]
) -> None:
    panel = azure_page(azure_app)
    await eventually(lambda: panel.current() and panel.current().checked)  # type: ignore[union-attr]
    assert panel.status.kind == "warning"
    assert "not signed in" in panel.status.plain
    assert panel.auth.text() == "Azure CLI (az login)"
    assert panel.no_upstream.isHidden()

    panel.device_code.setChecked(True)
    panel.sign_in_button.click()
    assert not panel.progress.isHidden()
    await eventually(lambda: "FAKE-CODE1" in panel.instructions.text(), what="the code")
    await eventually(lambda: panel.account.text() == "dev@contoso.example")
    assert fake_az.calls("login", "--output", "json", "--use-device-code")
    assert panel.tenant.text() == "72f988bf-0000-4000-8000-00000000c0de"
    assert panel.subscription.text().startswith("Contoso Dev")
    assert panel.status.kind == "ok"
    await eventually(lambda: panel.progress.isHidden())
    assert panel.instructions.isHidden()

    panel.test_button.click()
    await eventually(lambda: any("connection works" in t for _l, t in messages))
    assert panel.expiry.text().startswith("in ")  # a token from az, ~60 min
    assert fake_az.token_calls() == 1
    overview = azure_app.page("overview")
    assert isinstance(overview, OverviewPanel)
    assert any(
        "signed in as dev@contoso.example" in d.plain
        for d in overview.upstream_dots.values()
    )

    panel.sign_out_button.click()
    await eventually(lambda: panel.account.text() == "—", what="the sign-out")
    assert fake_az.calls("logout")
    assert not fake_az.state()["logged_in"]


async def test_cancel_a_slow_sign_in(
    azure_app: LMBridgeApp, fake_az: FakeAz, messages: list[Any]
) -> None:
    panel = azure_page(azure_app)
    await eventually(lambda: panel.current() and panel.current().checked)  # type: ignore[union-attr]
    fake_az.update(delay=5.0)
    panel.sign_in_button.click()
    await eventually(lambda: fake_az.calls("login"), what="az login to start")
    panel.progress.cancel_button.click()
    await eventually(lambda: not panel.tasks.running())
    assert panel.progress.isHidden()
    assert panel.sign_in_button.isEnabled()
    assert ("info", "Azure sign-in cancelled") in messages


async def test_failed_sign_in_names_the_fix(
    azure_app: LMBridgeApp, fake_az: FakeAz, messages: list[Any]
) -> None:
    panel = azure_page(azure_app)
    await eventually(lambda: panel.current() and panel.current().checked)  # type: ignore[union-attr]
    fake_az.update(login_fails="AADSTS50076: multi-factor authentication required")
    panel.sign_in_button.click()
    await eventually(lambda: messages and messages[-1][0] == "error")
    assert "az login" in messages[-1][1] and "AADSTS50076" in messages[-1][1]
    assert panel.progress.isHidden()


@pytest.fixture
def no_az(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Azure CLI on this (test) machine."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    if find_az() is not None:
        pytest.skip("an Azure CLI is installed in a usual place on this machine")


def page_texts(panel: AzurePanel) -> str:
    labels = [w.text() for w in panel.findChildren(QLabel) if w.isVisibleTo(panel)]
    buttons = [
        w.text() for w in panel.findChildren(QPushButton) if w.isVisibleTo(panel)
    ]
    return "\n".join(labels + buttons)


async def test_an_unused_azure_page_is_calm_and_says_how_to_start(
    no_az: None, gui_app: LMBridgeApp
) -> None:
    """Issue 20, point 8: no red, no config-file wording; plain words and
    the buttons that do it."""
    panel = azure_page(gui_app)
    await eventually(lambda: panel.current() and panel.current().checked)  # type: ignore[union-attr]
    assert panel.status.kind == "off"
    assert panel.status.plain == "not in use"
    texts = page_texts(panel)
    for wording in ("az_path", "auth =", '"browser"', "azure-foundry", ".toml"):
        assert wording not in texts
    assert "no Azure AI Foundry upstream is set up" in texts
    assert "not installed" in texts
    assert panel.install_button.isVisibleTo(panel)
    assert not panel.sign_in_button.isVisibleTo(panel)  # nothing to sign in with
    assert not panel.details.isVisibleTo(panel)
    panel.add_upstream_button.click()
    item = gui_app.window.sidebar.currentItem()
    assert item is not None
    assert item.data(Qt.ItemDataRole.UserRole) == "settings"
    overview = gui_app.page("overview")
    assert isinstance(overview, OverviewPanel)
    assert all(d.kind != "error" for d in overview.upstream_dots.values())


async def test_a_used_azure_upstream_without_the_cli_is_a_warning(
    no_az: None, fake_foundry: FakeFoundry, tmp_path: Path
) -> None:
    app = await make_app(foundry_settings(fake_foundry), tmp_path)
    try:
        panel = azure_page(app)
        await eventually(lambda: panel.current() and panel.current().checked)  # type: ignore[union-attr]
        assert panel.status.kind == "warning"
        assert panel.status.plain == "the Azure CLI is not installed"
        assert panel.install_button.isVisibleTo(panel)
        assert not panel.add_upstream_button.isVisibleTo(panel)
        assert not panel.sign_in_button.isEnabled()
        assert panel.details.isVisibleTo(panel)
        assert "az_path" not in page_texts(panel)
    finally:
        await close_app(app)
