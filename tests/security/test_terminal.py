"""Terminal-safe output (issue 25, item 8): a model or chat name holding a
terminal escape (OSC 52 writes the clipboard in many terminals) is printed
escaped by `lmbridge usage`, `lmbridge chats list`, `--log-requests` and
the log; the store refuses such names and models with a 400."""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path

import aiohttp
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream
from lmbridge import cli, config, logs
from lmbridge.core.events import REQUEST_FINISHED
from lmbridge.core.redact import printable
from lmbridge.server.requestlog import RequestLogPrinter
from lmbridge.store.conversations import ConversationStore
from lmbridge.store.db import Database
from support import running, settings_for

OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
MODEL = f"local-{OSC52}x"  # no route: sent upstream (and kept) as is
ESCAPED = "\\x1b]52;c;ZWNobyBwd25lZA==\\x07"


def test_printable_escapes_every_control_character() -> None:
    assert printable(OSC52) == ESCAPED
    assert printable("a\r\nb\tc\x9bd\u202ee") == "a\\x0d\\x0ab\\x09c\\x9bd\\u202ee"
    assert printable("a\nb\tc", lines=True) == "a\nb\tc"
    assert printable("plain ünïcode ✓") == "plain ünïcode ✓"


@pytest.mark.parametrize(
    ("field", "value"),
    [("model", MODEL), ("name", f"chat{OSC52}"), ("name", "evil\u202egnp.exe")],
)
async def test_the_store_refuses_control_characters(
    fake_upstream: FakeOpenAIUpstream, field: str, value: str
) -> None:
    body = {"name": "ok-name", "model": "fake-model", field: value}
    settings = settings_for(fake_upstream.url)
    async with running(settings) as proxy, aiohttp.ClientSession() as s:
        async with s.post(proxy.url + "/store/chat", json=body) as r:
            assert r.status == 400
            answer = await r.json()
        async with s.get(proxy.url + "/store/chats") as r:
            listed = await r.json()
    assert answer["status"] == "error"
    assert "control character" in answer["message"] and field in answer["message"]
    assert "\x1b" not in str(listed) and "\u202e" not in str(listed)


async def test_a_model_name_with_an_escape_is_printed_escaped_everywhere(
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    printed = io.StringIO()
    log_path = tmp_path / "logs" / "lmbridge.log"
    logger = logging.getLogger("lmbridge")
    handler = logs.setup_file_logging(
        config.LoggingSettings(level="DEBUG"), path=log_path, logger=logger
    )
    try:
        async with running(settings_for(fake_upstream.url)) as proxy:
            proxy.bus.subscribe(REQUEST_FINISHED, RequestLogPrinter(printed))
            body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
            async with (
                aiohttp.ClientSession() as s,
                s.post(proxy.url + "/v1/chat/completions", json=body) as r,
            ):
                assert r.status == 200
            await proxy.record()
            logging.getLogger("lmbridge.test").warning("model %s asked", MODEL)
            await asyncio.sleep(0.3)  # the history is written off the request path
    finally:
        logger.removeHandler(handler)
        handler.close()
    # A chat whose model came in by an older version (or a file import).
    db = Database.in_dir(config.data_dir())
    await db.open()
    try:
        await ConversationStore(db).create_chat("chat\u202eevil", MODEL)
    finally:
        await db.close()
    capsys.readouterr()
    assert await asyncio.to_thread(cli.main, ["usage"]) == 0
    usage = capsys.readouterr().out
    assert await asyncio.to_thread(cli.main, ["chats", "list"]) == 0
    chats = capsys.readouterr().out
    outputs = {
        "usage": usage,
        "chats list": chats,
        "--log-requests": printed.getvalue(),
        "log file": log_path.read_text(),
    }
    for where, text in outputs.items():
        assert "\x1b" not in text and "\x07" not in text, where
    assert "\\x1b]52" in usage  # escaped, in the table (truncated after)
    assert f"chat\\u202eevil\tlocal-{ESCAPED}x" in chats
    assert f"local-{ESCAPED}x" in printed.getvalue()
    assert f"model local-{ESCAPED}x asked" in outputs["log file"]
