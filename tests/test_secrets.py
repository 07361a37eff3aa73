"""Known secret values pushed through every path never show up anywhere:
logs, the request log, records, the database, exported chats, error
messages (issue 9)."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from lmbridge import config, logs
from lmbridge.auth.secrets import SECRETS as KEY_STORE
from lmbridge.core.events import REQUEST_FINISHED, EventBus
from lmbridge.server.requestlog import RequestLogPrinter
from lmbridge.server.runner import ProxyServer
from support import settings_for, start_proxy

CLIENT_KEY = "sk-live-CLIENTSECRET-1234567890"
X_API_KEY = "xkey-SECRET-0987654321abc"
API_KEY = "apikey-SECRET-1122334455"
UPSTREAM_KEY = "upkey-SECRET-5555555555"
SECRETS = (CLIENT_KEY, X_API_KEY, API_KEY, UPSTREAM_KEY)


async def test_secrets_reach_no_log_record_database_export_or_error(
    fake_upstream: FakeOpenAIUpstream,
    lmbridge_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", UPSTREAM_KEY)
    settings = config.parse(f"""
[server]
port = 0
[[upstream]]
name = "fake"
kind = "openai"
base_url = "{fake_upstream.url}"
api_key_env = "FAKE_UPSTREAM_KEY"
[chat]
default_text_model = "fake-model"
""")
    log_path = tmp_path / "logs" / "lmbridge.log"
    logger = logging.getLogger("lmbridge")
    handler = logs.setup_file_logging(
        config.LoggingSettings(level="DEBUG"), path=log_path, logger=logger
    )
    printed = io.StringIO()
    bus = EventBus()
    records: list[Any] = []
    bus.subscribe(REQUEST_FINISHED, RequestLogPrinter(printed))
    bus.subscribe(REQUEST_FINISHED, lambda _t, r: records.append(r))
    server = ProxyServer(settings, bus, capture_bodies=True)
    await server.start()
    answers: list[str] = []
    try:
        async with aiohttp.ClientSession() as s:
            headers_sets = [
                {"Authorization": f"Bearer {CLIENT_KEY}"},
                {"x-api-key": X_API_KEY},
                {"api-key": API_KEY},
            ]
            chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            anthropic = {**chat, "max_tokens": 10}
            for headers in headers_sets:
                secret = next(iter(headers.values())).removeprefix("Bearer ")
                # The upstream echoes the key back, as OpenAI's 401 does.
                fake_upstream.script = Script(
                    status=401,
                    error_message=f"Incorrect API key provided: {secret} / {UPSTREAM_KEY}",
                )
                for path, body in (
                    ("/v1/chat/completions", chat),
                    ("/v1/messages", anthropic),
                    ("/v1/responses", {"model": "m", "input": "hi"}),
                ):
                    async with s.post(
                        server.url + path, json=body, headers=headers
                    ) as r:
                        answers.append(await r.text())
                        assert r.status == 401
                fake_upstream.script = Script(text=f"fine {secret[:3]}")
                async with s.post(
                    server.url + "/v1/chat/completions",
                    json={**chat, "stream": True},
                    headers=headers,
                ) as r:
                    answers.append(await r.text())
            # A stored conversation, created and continued with a key.
            store = {"Authorization": f"Bearer {CLIENT_KEY}"}
            async with s.post(
                server.url + "/store/chat",
                json={"name": "secret-test", "model": "fake-model"},
                headers=store,
            ) as r:
                assert r.status == 201
            async with s.put(
                server.url + "/store/chat",
                json={
                    "name": "secret-test",
                    "message": {"role": "user", "content": "x"},
                },
                headers=store,
            ) as r:
                answers.append(await r.text())
    finally:
        await server.stop()
        logger.removeHandler(handler)
        handler.close()
    # The upstream did get its own key (that is where it belongs).
    assert any(
        r.headers.get("Authorization") == f"Bearer {UPSTREAM_KEY}"
        for r in fake_upstream.requests
    )
    export = subprocess.run(  # noqa: ASYNC221 - the proxy is stopped
        [sys.executable, "-m", "lmbridge", "chats", "export", "secret-test"],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "LMBRIDGE_HOME": str(lmbridge_home)},
    ).stdout
    assert "secret-test" in export
    data_files = b"".join(p.read_bytes() for p in (lmbridge_home / "data").glob("*"))
    places = {
        "log file": log_path.read_text() if log_path.exists() else "",
        "request log": printed.getvalue(),
        "records": repr(records),
        "database": data_files.decode("utf-8", "replace"),
        "export": export,
        "answers": "\n".join(answers),
    }
    assert "Incorrect API key provided" in places["answers"]
    assert places["request log"].count("\n") >= 10
    for place, text in places.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} leaked into the {place}"


@pytest.mark.usefixtures("memory_keyring")
async def test_key_saved_in_the_keyring_is_sent_upstream(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    await KEY_STORE.set("fake", "stored-SECRET-4242424242")
    proxy = await start_proxy(settings_for(fake_upstream.url))
    try:
        fake_upstream.script = Script(
            status=401, error_message="bad key stored-SECRET-4242424242"
        )
        async with (
            aiohttp.ClientSession() as s,
            s.post(
                proxy.url + "/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            ) as r,
        ):
            answer = await r.text()
        record = await proxy.record()
    finally:
        await proxy.server.stop()
    sent = fake_upstream.requests[-1].headers["Authorization"]
    assert sent == "Bearer stored-SECRET-4242424242"
    assert "stored-SECRET" not in answer
    assert "stored-SECRET" not in repr(record)


@pytest.mark.usefixtures("no_keyring")
async def test_a_key_kept_for_the_session_is_said_whose_and_never_shown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without a keyring a key lives in memory for this run; the warning
    names whose key it is (an upstream's, or the web search provider's) and
    never the key."""
    caplog.set_level(logging.WARNING, logger="lmbridge.auth.secrets")
    await KEY_STORE.set("fake", "upkey-SECRET-session-1")
    await KEY_STORE.set("@web-search", "search-SECRET-session-2")
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("the key for upstream fake is kept") for m in said), said
    assert any(
        m.startswith("the key for the web search provider is kept") for m in said
    ), said
    assert not any("SECRET" in m for m in said), said
    assert await KEY_STORE.get("@web-search") == "search-SECRET-session-2"
