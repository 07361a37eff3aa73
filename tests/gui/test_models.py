"""Models: list, load with the dialog (progress, cancel), unload, fix context,
against the fake LM Studio."""

from __future__ import annotations

import asyncio
from typing import Any

from fakes.lmstudio_server import FakeLMStudio
from gui.helpers import eventually, table_text
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.models.view import ModelsPanel
from lmbridge.lmstudio import LoadOptions

QWEN = "qwen/qwen3-coder-30b"
GEMMA = "google/gemma-3-4b"


async def models_page(app: LMBridgeApp) -> ModelsPanel:
    panel = app.page("models")
    assert isinstance(panel, ModelsPanel)
    app.window.show_page("models")
    await eventually(lambda: panel.model.rowCount() == 3, what="the model list")
    return panel


def cell(panel: ModelsPanel, key: str, column: str) -> str:
    position = panel.model.column_position(column)
    for row in range(panel.model.rowCount()):
        found = panel.model.model_row(row)
        if found is not None and found.key == key:
            return str(panel.model.index(row, position).data())
    raise AssertionError(f"no row for {key}")


async def test_lists_downloaded_models(
    gui_app: LMBridgeApp, qtmodeltester: Any
) -> None:
    panel = await models_page(gui_app)
    qtmodeltester.check(panel.model)
    assert cell(panel, QWEN, "model") == "Qwen3 Coder 30B"
    assert cell(panel, QWEN, "size") == "17.3 GB"
    assert cell(panel, QWEN, "format") == "GGUF"
    assert cell(panel, QWEN, "max_context") == "262,144"
    assert cell(panel, QWEN, "loaded_context") == "not loaded"
    assert (
        panel.model.index(1, panel.model.column_position("vision")).data(1) is not None
    )  # Gemma: vision badge
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
    assert cell(panel, QWEN, "loaded_context").startswith("loading")
    assert gui_app.controller.busy
    await eventually(lambda: panel.progress.isHidden(), what="the load to end")
    assert [m.key for m in gui_app.controller.loaded] == [QWEN]
    assert cell(panel, QWEN, "loaded_context") == "16,384"
    params = fake_lm.load_params[-1]
    assert params["ttlMs"] == 600_000
    assert not gui_app.controller.busy
    assert any(title == "Model loaded" for title, _t, _l in gui_app.notifications)

    panel.select_key(QWEN)
    panel.unload_button.click()
    await eventually(lambda: not gui_app.controller.loaded, what="the unload")
    assert fake_lm.unload_requests
    assert cell(panel, QWEN, "loaded_context") == "not loaded"


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
    loaded = panel.model.column_position("loaded_context")
    assert panel.model.index(0, loaded).data(1) is not None  # warning icon
    fix = panel.warning.action_buttons()[0]
    assert fix.text() == "Reload with 8,192"
    fix.click()
    await eventually(
        lambda: [m.context_length for m in gui_app.controller.loaded] == [8192],
        what="the reload",
    )
    await eventually(lambda: panel.warning.isHidden())


async def test_models_are_managed_with_the_proxy_stopped(
    gui_app: LMBridgeApp, fake_lm: FakeLMStudio
) -> None:
    await gui_app.controller.stop()
    panel = await models_page(gui_app)
    assert not gui_app.controller.running
    assert "LM Studio at" in panel.status.plain
    panel.manager.refresh()
    await eventually(lambda: panel.model.rowCount() == 3, what="the list, stopped")
    panel.select_key(GEMMA)
    assert panel.load_button.isEnabled()
    panel.load_button.click()
    assert panel.dialog is not None
    panel.dialog.accept()
    await eventually(
        lambda: [m.key for m in gui_app.controller.loaded] == [GEMMA],
        what="a load with the proxy stopped",
    )
    await eventually(
        lambda: cell(panel, GEMMA, "loaded_context") == "8,192", what="the load"
    )
    panel.select_key(GEMMA)
    panel.unload_button.click()
    await eventually(lambda: not gui_app.controller.loaded, what="the unload")
    assert fake_lm.unload_requests == [GEMMA]


async def test_a_load_started_by_a_request_shows_and_ends(
    gui_app: LMBridgeApp, fake_lm: FakeLMStudio
) -> None:
    panel = await models_page(gui_app)
    fake_lm.load_delay = 0.4
    svc = gui_app.models.service()
    load = asyncio.ensure_future(svc.ensure_loaded(GEMMA, 8192))  # as a request does
    await eventually(lambda: cell(panel, GEMMA, "loaded_context").startswith("loading"))
    await load
    await eventually(
        lambda: cell(panel, GEMMA, "loaded_context") == "8,192", what="the end of it"
    )
    assert not gui_app.controller.busy


async def test_load_dialog_offers_the_load_config(
    gui_app: LMBridgeApp, fake_lm: FakeLMStudio
) -> None:
    panel = await models_page(gui_app)
    panel.select_key(QWEN)
    panel.load_button.click()
    dialog = panel.dialog
    assert dialog is not None
    # Sensible defaults: the configured context, the rest left to LM Studio.
    assert dialog.options() == LoadOptions(context_length=8192)
    dialog.kv_cache.setCurrentIndex(1)  # Q8_0: needs flash attention, so on
    assert dialog.flash.currentIndex() == 1
    dialog.gpu.setCurrentIndex(2)  # 75 %
    dialog.context.setValue(32768)
    dialog.accept()
    await eventually(lambda: gui_app.controller.loaded, what="the load")
    config = fake_lm.load_configs[-1]
    assert config["llm.load.contextLength"] == 32768
    assert config["llm.load.llama.flashAttention"] is True
    assert config["llm.load.llama.kCacheQuantizationType"]["value"] == "q8_0"
    assert config["llm.load.llama.vCacheQuantizationType"]["value"] == "q8_0"


async def test_less_context_than_asked_is_shown(
    gui_app: LMBridgeApp, fake_lm: FakeLMStudio
) -> None:
    panel = await models_page(gui_app)
    fake_lm.context_limit = 8192
    panel.select_key(QWEN)
    panel.load_button.click()
    assert panel.dialog is not None
    panel.dialog.context.setValue(65536)
    panel.dialog.accept()
    await eventually(lambda: not panel.load_warning.isHidden(), what="the warning")
    text = panel.load_warning.label.text()
    assert "8192" in text and "65536" in text and "KV cache" in text
    # The warning holds while its cause does: gone with the model.
    panel.select_key(QWEN)
    await eventually(lambda: panel.unload_button.isEnabled(), what="Unload")
    panel.unload_button.click()
    await eventually(lambda: panel.load_warning.isHidden(), what="the warning to go")
    assert not panel.manager.load_warnings


async def test_search_and_download_with_progress(
    gui_app: LMBridgeApp, fake_lm: FakeLMStudio, messages: list[Any]
) -> None:
    panel = await models_page(gui_app)
    box = panel.downloads_box
    box.query.setText("qwen3 4b")
    box.search_button.click()
    await eventually(lambda: box.results.count() == 2, what="the results")
    assert "staff pick" in box.results.item(0).text()
    box.results.setCurrentRow(0)
    await eventually(lambda: box.options.rowCount() == 2, what="the options")
    assert table_text(box.options, 0, 0) == "Q4_K_M  (recommended)"
    assert table_text(box.options, 0, 1) == "2.3 GB"
    assert table_text(box.options, 0, 2) == "fits in GPU"
    assert table_text(box.options, 1, 2) == "partly in GPU"
    fake_lm.repository.download_delay = 1.0
    box.option_button(0).click()
    await eventually(lambda: box.rows, what="the progress row")
    (row,) = box.rows.values()
    await eventually(lambda: row.bar.value() > 0, what="progress")
    assert row.label.text().endswith(("B/s", "KB/s", "MB/s", "GB/s"))
    await eventually(lambda: not box.rows, what="the download to end")
    await eventually(lambda: panel.model.rowCount() == 4, what="the new model")
    assert any("Downloaded" in text for _level, text in messages)


async def test_cancel_a_download(gui_app: LMBridgeApp, fake_lm: FakeLMStudio) -> None:
    panel = await models_page(gui_app)
    box = panel.downloads_box
    fake_lm.repository.download_delay = 10.0
    box.query.setText("qwen3 4b")
    box.search()
    await eventually(lambda: box.results.count() == 2, what="the results")
    box.results.setCurrentRow(0)
    await eventually(lambda: box.options.rowCount() == 2, what="the options")
    box.option_button(1).click()
    await eventually(lambda: box.rows, what="the progress row")
    (row,) = box.rows.values()
    row.cancel_button.click()
    await eventually(
        lambda: fake_lm.repository.cancelled_downloads, what="the cancel in LM Studio"
    )
    await eventually(lambda: not box.rows, what="the row to go")
    assert panel.model.rowCount() == 3
