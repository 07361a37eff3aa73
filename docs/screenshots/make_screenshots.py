"""Render every page of the desktop app offscreen, with data from the fakes.

    make screenshots        (or: QT_QPA_PLATFORM=offscreen python this-file)

Starts the fake LM Studio, a fake OpenAI-compatible upstream, a fake Azure
AI Foundry and the fake `az` from tests/fakes, runs the app against them,
sends the kind of traffic Claude Code, Codex and Continue send (and a week
of request history for the Usage page), and saves one PNG per page here,
the Load dialog, a download in progress, each step of first-run setup, and
the pages again in a dark palette.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
WORK = Path(tempfile.mkdtemp(prefix="lmbridge-screenshots-"))
os.environ["LMBRIDGE_HOME"] = str(WORK / "home")
os.environ["XDG_CONFIG_HOME"] = str(WORK / "xdg")
os.environ["FAKE_AZ_STATE"] = str(WORK / "az-state.json")
os.environ["FAKE_AZ_LOG"] = str(WORK / "az-calls.log")
os.environ["PATH"] = f"{ROOT / 'tests' / 'fakes'}{os.pathsep}{os.environ['PATH']}"

import aiohttp  # noqa: E402
import qasync  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QColor, QPalette  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QApplication,
    QScrollArea,
    QStyleFactory,
    QWidget,
)

from fakes.azure_fixtures import DEFAULT_STATE  # noqa: E402
from fakes.foundry import FakeFoundry  # noqa: E402
from fakes.lmstudio_server import FakeLMStudio  # noqa: E402
from fakes.openai_upstream import FakeOpenAIUpstream  # noqa: E402
from lmbridge import config  # noqa: E402
from lmbridge.core.events import Phase, RequestRecord  # noqa: E402
from lmbridge.core.sessions import SessionSettings  # noqa: E402
from lmbridge.gui.app import LMBridgeApp  # noqa: E402
from lmbridge.gui.prefs import Prefs  # noqa: E402
from lmbridge.store.conversations import (  # noqa: E402
    Chat,
    ConversationStore,
    StoredMessage,
)

SIZE = (1180, 760)
QWEN = "qwen/qwen3-coder-30b"
GEMMA = "google/gemma-3-4b"
ANSWER = (
    "The failing test expects `parse_port()` to reject 65536. Change the bound "
    "check in config.py from `<= 65536` to `<= 65535` and add a test for both "
    "edges."
)


def settings(lm: FakeLMStudio, cloud: FakeOpenAIUpstream, foundry: FakeFoundry) -> Any:
    return config.parse(f"""
[server]
port = 4680
port_fallback = true

[[upstream]]
name = "local"
kind = "lmstudio"
base_url = "{lm.base_url}"

[[upstream]]
name = "openai"
kind = "openai"
base_url = "{cloud.url}"
api = "responses"
api_key_env = "OPENAI_API_KEY"

[[upstream]]
name = "foundry"
kind = "azure-foundry"
base_url = "{foundry.url}"
api = "messages"

[[route]]
model = "claude-opus-*"
upstream = "foundry"
target = "claude-deploy"

[[route]]
model = "claude-sonnet-*"
upstream = "openai"
target = "gpt-5"

[[route]]
model = "claude-*"
upstream = "local"
target = "{QWEN}"

[[route]]
model = "gpt-5*"
upstream = "openai"
target = "gpt-5-mini"
fallback = ["local"]

[lmstudio]
min_context = 32768
load_context_length = 32768
""")


async def traffic(url: str) -> None:
    """What Claude Code, Codex and Continue send on a working morning."""
    claude = {
        "User-Agent": "claude-cli/2.0.14 (external, cli)",
        "anthropic-version": "2023-06-01",
        "X-Claude-Code-Session-Id": "7f3c9a2e-claude-code",
    }
    codex = {"User-Agent": "codex_cli_rs/0.46.0 (Ubuntu 24.04; x86_64)"}
    cont = {"User-Agent": "Continue/1.2.8"}
    async with aiohttp.ClientSession() as session:

        async def post(
            path: str, body: dict[str, Any], headers: dict[str, str]
        ) -> None:
            async with session.post(url + path, json=body, headers=headers) as resp:
                await resp.read()

        history: list[dict[str, Any]] = []
        await post(
            "/v1/messages",
            {
                "model": "claude-haiku-4-5",
                "max_tokens": 512,
                "stream": True,
                "messages": [{"role": "user", "content": "Summarize: fix port check"}],
            },
            claude,
        )
        for turn in ("Why does test_config fail?", "Fix it", "Run the tests"):
            history.append({"role": "user", "content": turn})
            await post(
                "/v1/messages",
                {
                    "model": "claude-sonnet-4-6",
                    "max_tokens": 32000,
                    "stream": True,
                    "system": "You are Claude Code.",
                    "messages": history,
                },
                claude,
            )
            history.append({"role": "assistant", "content": "Done."})
        inputs: list[dict[str, Any]] = []
        for turn in ("Refactor the router", "Add type hints", "Explain the diff"):
            inputs.append({"role": "user", "content": turn})
            await post(
                "/v1/responses",
                {
                    "model": "gpt-5-codex",
                    "stream": True,
                    "input": inputs,
                    "prompt_cache_key": "codex-0199-a1f2",
                },
                codex,
            )
            inputs.append({"role": "assistant", "content": ANSWER})
        for text in ("Explain this regex", "Write a docstring"):
            await post(
                "/v1/chat/completions",
                {
                    "model": "gpt-5-mini",
                    "stream": True,
                    "messages": [{"role": "user", "content": text}],
                },
                cont,
            )
        await post(
            "/v1/messages",
            {
                "model": "claude-opus-4-1",
                "max_tokens": 4096,
                "messages": [{"role": "user", "content": "Review this design"}],
            },
            claude,
        )
        await post(
            "/v1/chat/completions",
            {"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "hi"}]},
            cont,
        )


async def chats(app: LMBridgeApp) -> None:
    state = app.controller.services
    assert state is not None
    assert state.db is not None
    store = ConversationStore(state.db)
    await store.import_chat(
        Chat(
            name="release checklist",
            model=QWEN,
            messages=[
                StoredMessage(
                    role="system", content="You are a careful release manager."
                ),
                StoredMessage(
                    role="user", content="What do I check before tagging 1.4?"
                ),
                StoredMessage(
                    role="assistant",
                    content="1. CI green on main\n2. CHANGELOG has the 1.4 section\n"
                    "3. Version bumped in __init__.py\n4. Wheel and bundle built "
                    "from the tag",
                ),
                StoredMessage(role="user", content="And after tagging?"),
                StoredMessage(
                    role="assistant",
                    content="Upload the wheel, attach the bundles to the GitHub "
                    "release, and announce it.",
                ),
            ],
        )
    )
    await store.create_chat("sql tuning", GEMMA)
    await store.import_chat(
        Chat(
            name="german emails",
            model=GEMMA,
            messages=[
                StoredMessage(role="user", content="Translate: see you on Monday"),
                StoredMessage(role="assistant", content="Bis Montag!"),
            ],
        )
    )


def history() -> list[RequestRecord]:
    """Six days of requests before today, as the recorder would have kept."""
    rng = random.Random(16)
    clients = {
        "claude-cli/2.0.14 (external, cli)": ("anthropic", "/v1/messages"),
        "codex_cli_rs/0.46.0": ("responses", "/v1/responses"),
        "Continue/1.2.8": ("openai", "/v1/chat/completions"),
    }
    targets = [(QWEN, "local", 1.0), ("gpt-5", "openai", 0.45), (GEMMA, "local", 0.6)]
    records = []
    now = time.time()
    for day in range(6, 0, -1):
        for _ in range(rng.randint(25, 60)):
            client = rng.choice(list(clients))
            protocol, path = clients[client]
            target, upstream, speed = rng.choice(targets)
            ttft = rng.uniform(0.25, 1.4) / speed
            out = rng.randint(40, 900)
            status = 200 if rng.random() > 0.05 else rng.choice([429, 502, 400])
            records.append(
                RequestRecord(
                    client=client,
                    protocol=protocol,
                    path=path,
                    model=target,
                    route="",
                    upstream=upstream,
                    target=target,
                    stream=True,
                    status=status,
                    phase=Phase.FINISHED,
                    received=now - day * 86400 + rng.uniform(-3 * 3600, 3 * 3600),
                    first_token=ttft,
                    done=ttft + out / (rng.uniform(30, 60) * speed),
                    tokens_in=rng.randint(2_000, 24_000),
                    tokens_out=out,
                    error=None if status == 200 else "upstream refused",
                )
            )
    return records


def page_scroll(app: LMBridgeApp) -> QScrollArea:
    scroll = app.window.stack.currentWidget()
    assert isinstance(scroll, QScrollArea)
    return scroll


async def shoot_widget(widget: QWidget, name: str) -> None:
    await asyncio.sleep(0.3)
    path = HERE / f"{name}.png"
    widget.grab().save(str(path))
    print(f"wrote {path.relative_to(ROOT)}")


async def until(condition: Any, seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the screenshot data did not appear")


async def shoot(app: LMBridgeApp, name: str) -> None:
    app.window.banner.hide()
    await asyncio.sleep(0.3)
    path = HERE / f"{name}.png"
    app.window.grab().save(str(path))
    print(f"wrote {path.relative_to(ROOT)}")


def dark_palette() -> QPalette:
    palette = QPalette()
    colors = {
        QPalette.ColorRole.Window: "#202124",
        QPalette.ColorRole.WindowText: "#E8EAED",
        QPalette.ColorRole.Base: "#171717",
        QPalette.ColorRole.AlternateBase: "#26272B",
        QPalette.ColorRole.Text: "#E8EAED",
        QPalette.ColorRole.Button: "#2D2E31",
        QPalette.ColorRole.ButtonText: "#E8EAED",
        QPalette.ColorRole.Highlight: "#4F46E5",
        QPalette.ColorRole.HighlightedText: "#FFFFFF",
        QPalette.ColorRole.PlaceholderText: "#9AA0A6",
        QPalette.ColorRole.ToolTipBase: "#2D2E31",
        QPalette.ColorRole.ToolTipText: "#E8EAED",
    }
    for role, color in colors.items():
        palette.setColor(role, QColor(color))
    palette.setColor(
        QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#6B6F75")
    )
    palette.setColor(
        QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#6B6F75")
    )
    return palette


async def setup_flow(app: LMBridgeApp) -> None:
    """First-run setup, step by step (its files go to a scratch home)."""
    user_home = WORK / "user-home"
    (user_home / ".lmstudio").mkdir(parents=True, exist_ok=True)
    wizard = app.open_setup(user_home)
    wizard.resize(820, 640)
    await until(lambda: wizard.lmstudio_page.found is not None)
    await shoot_widget(wizard, "setup-1-lmstudio")
    wizard.next()
    await until(lambda: wizard.models_page.table.rowCount() == 2)
    wizard.models_page.pick("haiku", GEMMA)
    wizard.models_page.pick("codex", QWEN)
    await shoot_widget(wizard, "setup-2-models")
    wizard.next()
    await shoot_widget(wizard, "setup-3-review")
    wizard.next()
    wizard.next()
    await until(lambda: wizard.test_page.ok, 30)
    await shoot_widget(wizard, "setup-4-test")
    wizard.accept()
    app.window.banner.hide()


async def main() -> None:
    (WORK / "az-state.json").write_text(json.dumps(DEFAULT_STATE))
    lm, cloud, foundry = FakeLMStudio(), FakeOpenAIUpstream(), FakeFoundry()
    for fake in (lm, cloud, foundry):
        await fake.start()
    cloud.script.text = ANSWER
    cloud.script.first_byte_delay = 0.31
    cloud.script.chunk_delay = 0.02
    foundry.script.text = "The design is sound; split the router module next."
    foundry.script.first_byte_delay = 0.74
    lm.preload(GEMMA, context_length=4096)
    app = LMBridgeApp(
        settings(lm, cloud, foundry),
        WORK / "config.toml",
        tray_available=False,
        prefs=Prefs(WORK / "gui.ini"),
        setup=False,
    )
    app.window.resize(*SIZE)
    app.prefs.first_time("no-tray")  # no first-run notice in the pictures
    await app.startup()
    app.window.banner.hide()
    await until(lambda: app.controller.lmstudio is not None)
    svc = app.controller.lmstudio
    assert svc is not None
    await svc.connect()
    await svc.load(QWEN, context_length=32768)
    await traffic(app.controller.url)
    await chats(app)
    state = app.controller.services
    assert state is not None
    await state.usage.add(history())
    await state.sessions.configure(
        SessionSettings(
            key="7f3c9a2e-claude-code", allowed_tools=["Read", "Edit", "Bash", "Grep"]
        )
    )
    await app.azure.refresh()
    await app.azure.test("foundry")
    app.health.refresh()
    await until(lambda: len(app.health.checks) == 3)
    await until(lambda: len(app.log.rows) >= 10)
    await asyncio.sleep(0.5)
    app.window.banner.hide()

    await shoot(app, "overview")
    app.window.show_page("models")
    await until(lambda: app.page("models").model.rowCount() == 3)  # type: ignore[attr-defined]
    models: Any = app.page("models")
    models.select_key(QWEN)
    await asyncio.sleep(0.2)
    await shoot(app, "models")

    models.select_key(GEMMA)
    models.open_load_dialog()
    dialog = models.dialog
    dialog.kv_cache.setCurrentIndex(1)
    await shoot_widget(dialog, "load-dialog")
    dialog.reject()

    box = models.downloads_box
    box.query.setText("qwen3 4b")
    box.search()
    await until(lambda: box.results.count() == 2)
    box.results.setCurrentRow(0)
    await until(lambda: box.options.rowCount() == 2)
    lm.repository.download_delay = 40.0
    lm.repository.download_steps = 40
    box.option_button(1).click()
    await until(lambda: box.rows and next(iter(box.rows.values())).bar.value() >= 5)
    page_scroll(app).ensureWidgetVisible(box)
    await shoot(app, "models-downloads")
    for key in list(box.rows):
        models.downloads.cancel(key)
    await until(lambda: not box.rows)
    page_scroll(app).verticalScrollBar().setValue(0)

    usage: Any = app.page("usage")
    app.window.show_page("usage")
    usage.refresh()
    await until(lambda: usage.data is not None and usage.data.requests > 100)
    await shoot(app, "usage")

    requests = app.page("requests")
    app.window.show_page("requests")
    rows = app.log.rows
    codex_row = next(i for i, r in enumerate(rows) if r.path == "/v1/responses")
    requests.select_row(codex_row + 1)  # type: ignore[attr-defined]
    requests.detail.tabs.setCurrentIndex(1)  # type: ignore[attr-defined]
    await asyncio.sleep(0.2)
    await shoot(app, "requests")

    sessions = app.page("sessions")
    app.window.show_page("sessions")
    sessions.refresh()  # type: ignore[attr-defined]
    await until(lambda: sessions.model.rowCount() >= 2)  # type: ignore[attr-defined]
    sessions.select_key("7f3c9a2e-claude-code")  # type: ignore[attr-defined]
    await asyncio.sleep(0.2)
    await shoot(app, "sessions")

    conversations = app.page("conversations")
    app.window.show_page("conversations")
    conversations.refresh()  # type: ignore[attr-defined]
    await until(lambda: conversations.model.rowCount() == 3)  # type: ignore[attr-defined]
    conversations.select("release checklist")  # type: ignore[attr-defined]
    await until(lambda: conversations.chat is not None)  # type: ignore[attr-defined]
    await shoot(app, "conversations")

    app.window.show_page("azure")
    await asyncio.sleep(0.2)
    await shoot(app, "azure")

    app.window.show_page("settings")
    await asyncio.sleep(0.3)
    await shoot(app, "settings")

    integrations = app.page("integrations")
    integrations.home = WORK / "user-home"  # type: ignore[attr-defined]
    app.window.show_page("integrations")
    integrations.select("claude-code")  # type: ignore[attr-defined]
    integrations.model.setCurrentText("claude-sonnet-4-6")  # type: ignore[attr-defined]
    integrations.test()  # type: ignore[attr-defined]
    await until(lambda: integrations.last_reply is not None)  # type: ignore[attr-defined]
    app.window.banner.hide()
    await asyncio.sleep(0.2)
    await shoot(app, "integrations")

    await setup_flow(app)

    qt = QApplication.instance()
    assert isinstance(qt, QApplication)
    qt.setPalette(dark_palette())
    for page in ("overview", "requests", "models", "usage"):
        app.window.show_page(page)
        await asyncio.sleep(0.3)
        await shoot(app, f"{page}-dark")
    wizard = app.open_setup()
    wizard.resize(820, 640)
    await until(lambda: wizard.lmstudio_page.found is not None)
    await shoot_widget(wizard, "setup-dark")
    wizard.reject()

    await app.shutdown()
    for fake in (lm, cloud, foundry):
        await fake.stop()


if __name__ == "__main__":
    qt_app = QApplication(sys.argv[:1])
    qt_app.setStyle(QStyleFactory.create("Fusion"))
    qt_app.setAttribute(Qt.ApplicationAttribute.AA_DontShowIconsInMenus, False)
    loop = qasync.QEventLoop(qt_app)
    with loop:
        loop.run_until_complete(main())
