"""The proxy in front of a (fake) LM Studio: model endpoints, load on
demand, minimum context, the context-fit guard, Responses -> chat fallback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from fakes.lmstudio_fixtures import dead_address, eventually, lm_settings
from fakes.lmstudio_server import FakeLMStudio
from support import RunningProxy, start_proxy

QWEN = "qwen/qwen3-coder-30b"
GEMMA = "google/gemma-3-4b"


@pytest.fixture
async def fake_lm() -> AsyncIterator[FakeLMStudio]:
    fake = FakeLMStudio()
    await fake.start()
    yield fake
    await fake.stop()


async def proxy_for(fake: FakeLMStudio, extra: str = "") -> RunningProxy:
    running = await start_proxy(lm_settings(fake.address, extra))
    services = running.server.services
    assert services is not None
    svc = services.lmstudio
    assert svc is not None
    await eventually(
        lambda: svc.status.state == "connected", what="LM Studio connection"
    )
    return running


async def call(
    proxy: RunningProxy, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, proxy.url + path, json=body) as r,
    ):
        return r.status, await r.json()


async def test_model_endpoints(fake_lm: FakeLMStudio) -> None:
    proxy = await proxy_for(fake_lm)
    try:
        status, body = await call(proxy, "GET", "/models/downloaded")
        assert status == 200
        keys = [m["key"] for m in body["models"]]
        assert QWEN in keys and GEMMA in keys
        status, body = await call(proxy, "GET", "/models")
        assert (status, body["models"]) == (200, [])
        status, body = await call(
            proxy, "POST", "/models/load", {"model_key": QWEN, "context_length": 16384}
        )
        assert status == 200
        assert body["loaded"] is True
        assert (body["model_key"], body["context_length"]) == (QWEN, 16384)
        status, body = await call(
            proxy, "POST", "/models/load", {"model_key": GEMMA, "exclusive": True}
        )
        assert status == 200
        status, body = await call(proxy, "GET", "/models")
        assert [m["model_key"] for m in body["models"]] == [GEMMA]
        status, body = await call(proxy, "POST", "/models/unload", {"model_key": GEMMA})
        assert (status, body["unloaded"]) == (200, [GEMMA])
        await call(proxy, "POST", "/models/load", {"model_key": QWEN})
        status, body = await call(proxy, "POST", "/models/unload", {"unload_all": True})
        assert (status, body["unloaded"]) == (200, [QWEN])
    finally:
        await proxy.server.stop()


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/models/load", {"model_key": "no/such-model"}, 404, "no/such-model"),
        ("/models/unload", {"model_key": "no/such-model"}, 404, "no/such-model"),
        ("/models/load", {"context_length": 5}, 400, "model_key"),
        ("/models/unload", {}, 400, "model_key"),
    ],
)
async def test_model_endpoint_errors(
    fake_lm: FakeLMStudio, path: str, body: Any, status: int, needle: str
) -> None:
    proxy = await proxy_for(fake_lm)
    try:
        got, payload = await call(proxy, "POST", path, body)
    finally:
        await proxy.server.stop()
    assert got == status
    assert payload["status"] == "error"
    assert needle in payload["message"]


async def test_model_endpoints_without_lmstudio_are_503() -> None:
    proxy = await start_proxy(lm_settings(dead_address()))
    try:
        status, payload = await call(proxy, "GET", "/models")
    finally:
        await proxy.server.stop()
    assert status == 503
    assert payload["status"] == "error"
    assert "LM Studio" in payload["message"]


async def test_load_on_demand_loads_once_for_concurrent_requests(
    fake_lm: FakeLMStudio,
) -> None:
    fake_lm.load_delay = 0.3
    proxy = await proxy_for(fake_lm)
    try:
        async with openai.AsyncOpenAI(
            base_url=proxy.url + "/v1", api_key="x", max_retries=0
        ) as client:
            replies = await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model=QWEN, messages=[{"role": "user", "content": "hi"}]
                    )
                    for _ in range(4)
                )
            )
        assert all(r.choices[0].message.content for r in replies)
        assert fake_lm.load_requests == [QWEN]
        assert fake_lm.loaded[QWEN].context_length == 8192
        record = await proxy.record(4)
        assert any(n.startswith(f"loading {QWEN}") for n in record.note_texts) or any(
            any(n.startswith("loaded") for n in r.note_texts) for r in proxy.records
        )
    finally:
        await proxy.server.stop()


async def test_load_failure_is_503_naming_model(fake_lm: FakeLMStudio) -> None:
    fake_lm.fail_loads[QWEN] = "not enough memory"
    proxy = await proxy_for(fake_lm)
    try:
        async with openai.AsyncOpenAI(
            base_url=proxy.url + "/v1", api_key="x", max_retries=0
        ) as client:
            with pytest.raises(openai.APIStatusError) as info:
                await client.chat.completions.create(
                    model=QWEN, messages=[{"role": "user", "content": "hi"}]
                )
    finally:
        await proxy.server.stop()
    assert info.value.status_code == 503
    assert QWEN in str(info.value)
    assert "not enough memory" in str(info.value)


async def test_small_context_is_raised_to_the_minimum(fake_lm: FakeLMStudio) -> None:
    fake_lm.preload(QWEN, context_length=4096)
    proxy = await proxy_for(fake_lm)
    try:
        async with openai.AsyncOpenAI(
            base_url=proxy.url + "/v1", api_key="x", max_retries=0
        ) as client:
            await client.chat.completions.create(
                model=QWEN, messages=[{"role": "user", "content": "hi"}]
            )
        record = await proxy.record()
    finally:
        await proxy.server.stop()
    assert fake_lm.loaded[QWEN].context_length == 8192
    assert any("8192" in note for note in record.note_texts), record.note_texts


async def test_warn_policy_only_reports(fake_lm: FakeLMStudio) -> None:
    fake_lm.preload(QWEN, context_length=4096)
    proxy = await proxy_for(fake_lm, 'context_policy = "warn"')
    try:
        async with openai.AsyncOpenAI(
            base_url=proxy.url + "/v1", api_key="x", max_retries=0
        ) as client:
            await client.chat.completions.create(
                model=QWEN, messages=[{"role": "user", "content": "hi"}]
            )
        record = await proxy.record()
    finally:
        await proxy.server.stop()
    assert fake_lm.loaded[QWEN].context_length == 4096
    assert fake_lm.load_requests == []
    assert any("4096" in note for note in record.note_texts), record.note_texts


LONG = "The quick brown fox jumps over the lazy dog. " * 2000  # ~20K tokens


async def test_prompt_too_long_is_refused_before_sending(fake_lm: FakeLMStudio) -> None:
    fake_lm.preload(QWEN, context_length=8192)
    proxy = await proxy_for(fake_lm)
    try:
        async with openai.AsyncOpenAI(
            base_url=proxy.url + "/v1", api_key="x", max_retries=0
        ) as oa:
            with pytest.raises(openai.BadRequestError) as info:
                await oa.chat.completions.create(
                    model=QWEN, messages=[{"role": "user", "content": LONG}]
                )
        error = info.value.body
        assert isinstance(error, dict)
        assert error["code"] == "context_length_exceeded"
        assert QWEN in error["message"]
        assert "8192" in error["message"]
        async with anthropic.AsyncAnthropic(
            base_url=proxy.url, api_key="x", max_retries=0
        ) as an:
            with pytest.raises(anthropic.BadRequestError) as ainfo:
                await an.messages.create(
                    model=QWEN,
                    max_tokens=100,
                    messages=[{"role": "user", "content": LONG}],
                )
        body = ainfo.value.body
        assert isinstance(body, dict)
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["message"].startswith("prompt is too long:")
    finally:
        await proxy.server.stop()
    assert fake_lm.chat_requests == []


async def test_max_tokens_lowered_to_fit(fake_lm: FakeLMStudio) -> None:
    fake_lm.preload(QWEN, context_length=8192)
    proxy = await proxy_for(fake_lm)
    try:
        async with anthropic.AsyncAnthropic(
            base_url=proxy.url, api_key="x", max_retries=0
        ) as an:
            message = await an.messages.create(
                model=QWEN,
                max_tokens=20000,
                messages=[{"role": "user", "content": "hi"}],
            )
        record = await proxy.record()
    finally:
        await proxy.server.stop()
    assert message.content
    sent = fake_lm.chat_requests[-1]
    assert 512 <= sent["max_tokens"] < 8192
    assert any("max_tokens lowered" in n for n in record.note_texts)


async def test_responses_api_missing_falls_back_to_chat(fake_lm: FakeLMStudio) -> None:
    proxy = await proxy_for(fake_lm)
    try:
        async with anthropic.AsyncAnthropic(
            base_url=proxy.url, api_key="x", max_retries=0
        ) as an:
            for _ in range(2):
                message = await an.messages.create(
                    model=QWEN,
                    max_tokens=100,
                    messages=[{"role": "user", "content": "hi"}],
                )
                assert message.content
        first, second = proxy.records[0], await proxy.record(2)
    finally:
        await proxy.server.stop()
    assert any("no /v1/responses" in n for n in first.note_texts), first.note_texts
    assert not any("no /v1/responses" in n for n in second.note_texts)
    assert second.upstream_api == "openai"


async def run_cli(
    fake: FakeLMStudio, tmp_path: Any, *args: str
) -> tuple[int, str, str]:
    import os
    import sys

    cfg = tmp_path / "lm.toml"
    cfg.write_text(
        f'[[upstream]]\nname = "local"\nkind = "lmstudio"\n'
        f'base_url = "http://{fake.address}"\n'
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lmbridge",
        "--config",
        str(cfg),
        "models",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "LMBRIDGE_HOME": str(tmp_path)},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_models_cli(fake_lm: FakeLMStudio, tmp_path: Any) -> None:
    code, out, err = await run_cli(
        fake_lm, tmp_path, "load", QWEN, "--context", "16384"
    )
    assert code == 0, err
    assert f"loaded {QWEN}" in out
    assert "16384" in out
    code, out, err = await run_cli(fake_lm, tmp_path, "list")
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith(QWEN))
    assert "16384" in line
    assert "tools" in line
    assert "vision" in next(x for x in out.splitlines() if x.startswith(GEMMA))
    code, out, err = await run_cli(fake_lm, tmp_path, "unload", "--all")
    assert code == 0, err
    assert QWEN in out
    assert fake_lm.loaded == {}
    code, out, err = await run_cli(fake_lm, tmp_path, "load", "no/such")
    assert code == 1
    assert "no/such" in err


PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


async def test_vision_check_uses_the_model_manager(fake_lm: FakeLMStudio) -> None:
    proxy = await proxy_for(fake_lm)
    image = {"data_base64": PNG_1X1, "mime_type": "image/png"}
    message = {"role": "user", "content": "what is this?", "images": [image]}
    try:
        status, body = await call(
            proxy, "POST", "/chat", {"model_key": QWEN, "messages": [message]}
        )
        assert status == 400
        assert body["status"] == "error"
        assert "vision" in body["message"]
        status, body = await call(
            proxy, "POST", "/chat", {"model_key": GEMMA, "messages": [message]}
        )
        assert status == 200, body
        assert body["content"]
    finally:
        await proxy.server.stop()


async def test_unknown_simple_paths_answer_in_the_envelope(
    fake_lm: FakeLMStudio,
) -> None:
    proxy = await proxy_for(fake_lm)
    try:
        status, body = await call(proxy, "GET", "/store/nothing-here")
    finally:
        await proxy.server.stop()
    assert status == 404
    assert body["status"] == "error"
