"""Models: list, load with the dialog (progress, cancel), unload, fix context,
against the fake LM Studio."""

from __future__ import annotations

import asyncio
from typing import Any

from fakes.lmstudio_server import FakeLMStudio
from gui.helpers import eventually
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.models_panel import ModelsPanel

QWEN = "qwen/qwen3-coder-30b"
GEMMA = "google/gemma-3-4b"


async def models_page(app: LMBridgeApp) -> ModelsPanel:
    panel = app.page("models")
    assert isinstance(panel, ModelsPanel)
    app.window.show_page("models")
    await eventually(lambda: panel.model.rowCount() == 3, what="the model list")
    return panel


def cell(panel: ModelsPanel, key: str, column: int) -> str:
    for row in range(panel.model.rowCount()):
        found = panel.model.row_at(row)
        if found is not None and found.key == key:
            return str(panel.model.index(row, column).data())
    raise AssertionError(f"no row for {key}")


async def test_lists_downloaded_models(
    gui_app: LMBridgeApp, qtmodeltester: Any
) -> None:
    panel = await models_page(gui_app)
    qtmodeltester.check(panel.model)
    assert cell(panel, QWEN, 0) == "Qwen3 Coder 30B"
    assert cell(panel, QWEN, 1) == "17.3 GB"
    assert cell(panel, QWEN, 2) == "GGUF"
    assert cell(panel, QWEN, 3) == "262,144"
    assert cell(panel, QWEN, 4) == "not loaded"
    assert panel.model.index(1, 5).data(1) is not None  # Gemma: vision badge
    assert "LM Studio at" in panel.status.plain


async def test_load_with_dialog_then_unload(
    gui_app: LMBridgeApp, fake_lm: FakeLMStudio
) -> None:
    panel = await models_page(gui_app)
    fake_lm.load_delay = 0.4
    panel.select_key(QWEN)
    assert panel.load_button.isEnabled()
    panel.load_button.click()
    dialog = panel.dialog
    assert dialog is not None
    assert dialog.context.maximum() == 262144  # bounded by the model's maximum
    assert dialog.context.value() == 8192  # the configured load context
    dialog.context.setValue(16384)
    dialog.ttl.setValue(10)
    dialog.gpu.setCurrentIndex(1)  # max
    dialog.accept()

    assert not panel.progress.isHidden()
    await eventually(lambda: panel.progress.bar.value() > 0, what="load progress")
    assert cell(panel, QWEN, 4).startswith("loading")
    assert gui_app.controller.busy
    await eventually(lambda: panel.progress.isHidden(), what="the load to end")
    assert [m.key for m in gui_app.controller.loaded] == [QWEN]
    assert cell(panel, QWEN, 4) == "16,384"
    params = fake_lm.load_params[-1]
    assert params["ttlMs"] == 600_000
    assert not gui_app.controller.busy
    assert any(title == "Model loaded" for title, _t, _l in gui_app.notifications)

    panel.select_key(QWEN)
    panel.unload_button.click()
    await eventually(lambda: not gui_app.controller.loaded, what="the unload")
    assert fake_lm.unload_requests
    assert cell(panel, QWEN, 4) == "not loaded"


async def test_cancel_a_load(
    gui_app: LMBridgeApp, fake_lm: FakeLMStudio, messages: list[Any]
) -> None:
    panel = await models_page(gui_app)
    fake_lm.load_delay = 5.0
    gui_app.models.load(GEMMA, context_length=4096)
    panel.progress.start("Loading Gemma…", determinate=True)
    await eventually(lambda: fake_lm.load_requests, what="the load to begin")
    panel.progress.cancel_button.click()
    await eventually(lambda: fake_lm.cancelled_loads == [GEMMA], what="the cancel")
    await eventually(lambda: not gui_app.models.loading(), what="the load task")
    assert panel.progress.isHidden()
    assert not gui_app.controller.loaded
    assert not gui_app.controller.busy
    assert any("cancelled" in text for _level, text in messages)


async def test_unload_all_asks_first(
    gui_app: LMBridgeApp, fake_lm: FakeLMStudio
) -> None:
    panel = await models_page(gui_app)
    for key in (QWEN, GEMMA):
        await gui_app.models.service().load(key, context_length=8192)
    await eventually(lambda: len(gui_app.controller.loaded) == 2)
    panel.unload_all_button.click()
    assert not panel.confirm.isHidden()
    assert gui_app.controller.loaded  # nothing happened yet
    panel.confirm.confirm_button().click()
    await eventually(lambda: not gui_app.controller.loaded, what="unload all")


async def test_context_below_minimum_has_a_one_click_fix(
    gui_app: LMBridgeApp, fake_lm: FakeLMStudio
) -> None:
    fake_lm.preload(QWEN, context_length=4096)
    panel = await models_page(gui_app)
    await gui_app.models.service().list_loaded()
    await eventually(lambda: not panel.warning.isHidden(), what="the warning")
    assert "4,096" in panel.warning.label.text()
    assert panel.model.index(0, 4).data(1) is not None  # warning icon
    fix = panel.warning.action_buttons()[0]
    assert fix.text() == "Reload with 8,192"
    fix.click()
    await eventually(
        lambda: [m.context_length for m in gui_app.controller.loaded] == [8192],
        what="the reload",
    )
    await eventually(lambda: panel.warning.isHidden())


async def test_models_page_without_proxy(gui_app: LMBridgeApp) -> None:
    panel = await models_page(gui_app)
    await gui_app.controller.stop()
    assert panel.model.rowCount() == 0
    assert "Start the proxy" in panel.status.plain
    assert not panel.load_button.isEnabled()


async def test_a_load_started_by_a_request_shows_and_ends(
    gui_app: LMBridgeApp, fake_lm: FakeLMStudio
) -> None:
    panel = await models_page(gui_app)
    fake_lm.load_delay = 0.4
    svc = gui_app.models.service()
    load = asyncio.ensure_future(svc.ensure_loaded(GEMMA, 8192))  # as a request does
    await eventually(lambda: cell(panel, GEMMA, 4).startswith("loading"))
    await load
    await eventually(lambda: cell(panel, GEMMA, 4) == "8,192", what="the end of it")
    assert not gui_app.controller.busy
