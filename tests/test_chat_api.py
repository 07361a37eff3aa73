"""The simple chat service (/chat..., /help), driven over HTTP by aiohttp."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from fakes.lmstudio_server import FakeLMStudio
from fakes.openai_upstream import FakeOpenAIUpstream, Script
from lmbridge import config
from support import RunningProxy, settings_for, start_proxy

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(32)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(32)
GIF = b"GIF89a\x01\x00\x01\x00" + bytes(16)

CHAT_TABLE = """
[chat]
default_text_model = "text-model"
default_vision_model = "vision-model"
max_image_bytes = 1024
"""


def image(data: bytes, mime: str) -> dict[str, str]:
    return {"data_base64": base64.b64encode(data).decode(), "mime_type": mime}


def user(content: str, *images: dict[str, str]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "user", "content": content}
    if images:
        message["images"] = list(images)
    return message


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def chat_proxy(fake_upstream: FakeOpenAIUpstream) -> AsyncIterator[RunningProxy]:
    """A proxy with default text and vision models and a 1 KiB image cap."""
    running = await start_proxy(settings_for(fake_upstream.url, routes=CHAT_TABLE))
    yield running
    await running.server.stop()


async def post(
    http: aiohttp.ClientSession, proxy: RunningProxy, path: str, body: Any
) -> tuple[int, Any]:
    async with http.post(proxy.url + path, json=body) as r:
        return r.status, await r.json()


async def ndjson(
    http: aiohttp.ClientSession, proxy: RunningProxy, path: str, body: Any
) -> list[dict[str, Any]]:
    async with http.post(proxy.url + path, json=body) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("application/x-ndjson")
        raw = await r.read()
    return [json.loads(line) for line in raw.decode().splitlines()]


# ------------------------------------------------------------------ answers


async def test_chat_answers_with_model_content_stop_reason_and_tokens(
    proxy: RunningProxy, http: aiohttp.ClientSession, fake_upstream: FakeOpenAIUpstream
) -> None:
    body = {
        "model_key": "some-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            user("Hi"),
            {"role": "assistant", "content": "Hello"},
            user("Again"),
        ],
        "config": {
            "temperature": 0.4,
            "maxTokens": 64,
            "topP": 0.9,
            "presencePenalty": 0.5,
            "frequencyPenalty": -0.5,
        },
    }
    status, payload = await post(http, proxy, "/chat", body)
    assert status == 200
    assert payload == {
        "model": "some-model",
        "content": "Hello from the fake upstream.",
        "stop_reason": "eosFound",
        "predicted_tokens": 7,
    }
    sent = fake_upstream.requests[-1].body
    assert sent["model"] == "some-model"
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Again"},
    ]
    assert (sent["temperature"], sent["max_tokens"], sent["top_p"]) == (0.4, 64, 0.9)
    assert (sent["presence_penalty"], sent["frequency_penalty"]) == (0.5, -0.5)
    record = proxy.records[-1]
    assert (record.protocol, record.path, record.model, record.status) == (
        "chat-api",
        "/chat",
        "some-model",
        200,
    )
    assert record.tokens_out == 7 and record.bytes_out > 0


async def test_max_tokens_stop_reason_is_reported(
    proxy: RunningProxy, http: aiohttp.ClientSession, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(text="cut", finish_reason="length")
    _, payload = await post(
        http, proxy, "/chat", {"model_key": "m", "messages": [user("x")]}
    )
    assert payload["stop_reason"] == "maxPredictedTokensReached"


async def test_chat_stream_is_ndjson_fragments_then_done(
    proxy: RunningProxy, http: aiohttp.ClientSession, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(text="one two three")
    lines = await ndjson(
        http, proxy, "/chat/stream", {"model_key": "m", "messages": [user("x")]}
    )
    assert [line["type"] for line in lines] == ["fragment"] * 3 + ["done"]
    assert "".join(line["content"] for line in lines[:-1]) == "one two three"
    assert lines[-1] == {
        "type": "done",
        "model": "m",
        "predicted_tokens": 7,
        "stop_reason": "eosFound",
    }
    assert proxy.records[-1].path == "/chat/stream"


async def test_regular_uses_the_default_text_model(
    chat_proxy: RunningProxy,
    http: aiohttp.ClientSession,
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    status, payload = await post(
        http, chat_proxy, "/chat/regular", {"messages": [user("x")]}
    )
    assert status == 200 and payload["model"] == "text-model"
    assert fake_upstream.requests[-1].body["model"] == "text-model"
    lines = await ndjson(
        http, chat_proxy, "/chat/regular/stream", {"messages": [user("x")]}
    )
    assert lines[-1]["model"] == "text-model"
    # /chat without images or model_key takes the text default too.
    _, payload = await post(http, chat_proxy, "/chat", {"messages": [user("x")]})
    assert payload["model"] == "text-model"


async def test_vision_uses_the_default_vision_model_and_sends_images(
    chat_proxy: RunningProxy,
    http: aiohttp.ClientSession,
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    body = {"messages": [user("What is this?", image(PNG, "image/png"))]}
    status, payload = await post(http, chat_proxy, "/chat/vision", body)
    assert status == 200 and payload["model"] == "vision-model"
    sent = fake_upstream.requests[-1].body
    assert sent["model"] == "vision-model"
    content = sent["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "What is this?"}
    url = content[1]["image_url"]["url"]
    assert url == "data:image/png;base64," + base64.b64encode(PNG).decode()
    lines = await ndjson(http, chat_proxy, "/chat/vision/stream", body)
    assert lines[-1]["type"] == "done" and lines[-1]["model"] == "vision-model"
    # /chat with images and no model_key takes the vision default.
    _, payload = await post(http, chat_proxy, "/chat", body)
    assert payload["model"] == "vision-model"


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (JPEG, "image/jpg"),
        (WEBP, "image/webp"),
    ],
)
async def test_jpeg_png_and_webp_are_accepted(
    chat_proxy: RunningProxy, http: aiohttp.ClientSession, data: bytes, mime: str
) -> None:
    body = {"messages": [user("x", image(data, mime))]}
    status, _ = await post(http, chat_proxy, "/chat/vision", body)
    assert status == 200


async def test_a_data_url_prefix_on_the_base64_is_accepted(
    chat_proxy: RunningProxy, http: aiohttp.ClientSession
) -> None:
    img = image(PNG, "image/png")
    img["data_base64"] = "data:image/png;base64," + img["data_base64"]
    status, _ = await post(
        http, chat_proxy, "/chat/vision", {"messages": [user("x", img)]}
    )
    assert status == 200


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("img", "needle"),
    [
        (image(GIF, "image/gif"), "mime_type 'image/gif' is not supported"),
        (image(PNG, "text/plain"), "is not supported"),
        (
            {"data_base64": "not base64!!", "mime_type": "image/png"},
            "not valid base64",
        ),
        ({"data_base64": "", "mime_type": "image/png"}, "empty"),
        (image(GIF, "image/png"), "not a JPEG, PNG or WebP image"),
        (image(JPEG, "image/png"), "mime_type says PNG but the data is JPEG"),
        (image(PNG + bytes(2000), "image/png"), "chat.max_image_bytes"),
        ({"mime_type": "image/png"}, "data_base64"),
    ],
)
async def test_bad_images_are_400_naming_the_image(
    chat_proxy: RunningProxy,
    http: aiohttp.ClientSession,
    fake_upstream: FakeOpenAIUpstream,
    img: dict[str, str],
    needle: str,
) -> None:
    body = {"messages": [user("a"), user("b", image(PNG, "image/png"), img)]}
    for path in ("/chat/vision", "/chat/vision/stream", "/chat"):
        status, payload = await post(http, chat_proxy, path, body)
        assert status == 400
        assert payload["status"] == "error"
        assert needle in payload["message"], payload
        assert "messages[1].images[1]" in payload["message"], payload
    assert not fake_upstream.requests


async def test_images_on_a_non_user_message_are_400(
    chat_proxy: RunningProxy, http: aiohttp.ClientSession
) -> None:
    message = {"role": "assistant", "content": "x", "images": [image(PNG, "image/png")]}
    status, payload = await post(
        http, chat_proxy, "/chat/vision", {"messages": [message]}
    )
    assert status == 400 and "messages[0]: only user messages" in payload["message"]


async def test_regular_refuses_images(
    chat_proxy: RunningProxy, http: aiohttp.ClientSession
) -> None:
    body = {"messages": [user("x", image(PNG, "image/png"))]}
    status, payload = await post(http, chat_proxy, "/chat/regular", body)
    assert status == 400 and "/chat/vision" in payload["message"]


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/chat/regular", "chat.default_text_model"),
        ("/chat/regular/stream", "chat.default_text_model"),
        ("/chat", "chat.default_text_model"),
        ("/chat/vision", "chat.default_vision_model"),
        ("/chat/vision/stream", "chat.default_vision_model"),
    ],
)
async def test_no_default_model_is_400_naming_the_setting(
    proxy: RunningProxy, http: aiohttp.ClientSession, path: str, key: str
) -> None:
    status, payload = await post(http, proxy, path, {"messages": [user("x")]})
    assert status == 400
    assert key in payload["message"]


@pytest.fixture
async def lm_chat_proxy() -> AsyncIterator[tuple[RunningProxy, FakeLMStudio]]:
    """A proxy in front of the fake LM Studio, whose models say whether they
    see images: Gemma does, Qwen Coder does not."""
    fake = FakeLMStudio()
    await fake.start()
    settings = config.parse(f"""
[server]
port = 0

[[upstream]]
name = "local"
kind = "lmstudio"
base_url = "http://{fake.address}"

[[route]]
model = "coder"
upstream = "local"
target = "qwen/qwen3-coder-30b"

[lmstudio]
min_context = 4096
load_context_length = 4096

[chat]
default_text_model = "qwen/qwen3-coder-30b"
default_vision_model = "qwen/qwen3-coder-30b"
""")
    running = await start_proxy(settings)
    services = running.server.services
    assert services is not None and services.lmstudio is not None
    svc = services.lmstudio
    deadline = time.monotonic() + 10
    while svc.status.state != "connected" and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    yield running, fake
    await running.server.stop()
    await fake.stop()


async def test_vision_on_a_model_without_vision_is_400(
    lm_chat_proxy: tuple[RunningProxy, FakeLMStudio], http: aiohttp.ClientSession
) -> None:
    proxy, fake = lm_chat_proxy
    body = {"messages": [user("x", image(PNG, "image/png"))]}
    for path in ("/chat/vision", "/chat/vision/stream", "/chat"):
        status, payload = await post(http, proxy, path, body)
        assert status == 400
        assert "'qwen/qwen3-coder-30b' does not support images" in payload["message"]
    # Even without images, /chat/vision insists on a vision model.
    status, _ = await post(http, proxy, "/chat/vision", {"messages": [user("x")]})
    assert status == 400
    # Text requests go through.
    status, _ = await post(http, proxy, "/chat/regular", {"messages": [user("x")]})
    assert status == 200
    assert len(fake.chat_requests) == 1


async def test_a_vision_model_takes_images(
    lm_chat_proxy: tuple[RunningProxy, FakeLMStudio], http: aiohttp.ClientSession
) -> None:
    proxy, fake = lm_chat_proxy
    body = {
        "model_key": "google/gemma-3-4b",
        "messages": [user("x", image(PNG, "image/png"))],
    }
    status, payload = await post(http, proxy, "/chat/vision", body)
    assert status == 200, payload
    [sent] = fake.chat_requests
    assert sent["model"] == "google/gemma-3-4b"
    assert any(
        part.get("type") == "image_url" for part in sent["messages"][-1]["content"]
    )


async def test_the_vision_check_is_asked_about_the_routed_target(
    lm_chat_proxy: tuple[RunningProxy, FakeLMStudio], http: aiohttp.ClientSession
) -> None:
    proxy, fake = lm_chat_proxy
    # "coder" routes to Qwen Coder, which cannot see: refused by its target.
    body = {"model_key": "coder", "messages": [user("x", image(PNG, "image/png"))]}
    status, payload = await post(http, proxy, "/chat", body)
    assert status == 400 and "'coder' does not support images" in payload["message"]
    assert fake.chat_requests == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages is empty"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "content"),
        (
            {"messages": [{"role": "user", "content": ""}]},
            "messages[0]: content is empty",
        ),
        ({"messages": [user("x")], "config": {"temperature": 3}}, "config.temperature"),
        ({"messages": [user("x")], "config": {"topP": 1.5}}, "config.topP"),
        ({"messages": [user("x")], "config": {"maxTokens": 0}}, "config.maxTokens"),
        ({"messages": [user("x")], "config": {"maxTokens": "a"}}, "maxTokens"),
        (
            {"messages": [user("x")], "config": {"presencePenalty": 9}},
            "presencePenalty",
        ),
        ({"messages": [user("x")], "model_key": 5}, "model_key"),
    ],
)
async def test_bad_bodies_are_400_naming_the_field(
    proxy: RunningProxy,
    http: aiohttp.ClientSession,
    fake_upstream: FakeOpenAIUpstream,
    body: dict[str, Any],
    needle: str,
) -> None:
    body.setdefault("model_key", "m")
    for path in ("/chat", "/chat/stream"):
        status, payload = await post(http, proxy, path, body)
        assert status == 400, payload
        assert payload["status"] == "error"
        assert needle in payload["message"], payload
    assert not fake_upstream.requests


async def test_unparsable_body_is_400(
    proxy: RunningProxy, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        proxy.url + "/chat", data=b"{", headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 400
        assert "not valid JSON" in (await r.json())["message"]


@pytest.mark.parametrize(("upstream_status", "status"), [(500, 502), (429, 429)])
async def test_upstream_errors_keep_status_in_the_envelope(
    proxy: RunningProxy,
    http: aiohttp.ClientSession,
    fake_upstream: FakeOpenAIUpstream,
    upstream_status: int,
    status: int,
) -> None:
    fake_upstream.script = Script(
        status=upstream_status, error_message="busy busy", retry_after="3"
    )
    body = {"model_key": "m", "messages": [user("x")]}
    for path in ("/chat", "/chat/stream"):
        async with http.post(proxy.url + path, json=body) as r:
            assert r.status == status
            assert (await r.json()) == {"status": "error", "message": "busy busy"}
            if upstream_status == 429:
                assert r.headers["Retry-After"] == "3"
        assert proxy.records[-1].status == status


async def test_unreachable_upstream_is_503(http: aiohttp.ClientSession) -> None:
    running = await start_proxy(settings_for("http://127.0.0.1:9"))
    try:
        status, payload = await post(
            http, running, "/chat", {"model_key": "m", "messages": [user("x")]}
        )
    finally:
        await running.server.stop()
    assert status == 503
    assert "127.0.0.1:9" in payload["message"]


async def test_upstream_failing_mid_answer(
    proxy: RunningProxy, http: aiohttp.ClientSession, fake_upstream: FakeOpenAIUpstream
) -> None:
    # A whole answer is asked for whole (Chat upstream): a broken one is a 502.
    fake_upstream.script = Script(garbage_body=b"<html>Bad Gateway</html>")
    body = {"model_key": "m", "messages": [user("x")]}
    status, payload = await post(http, proxy, "/chat", body)
    assert status == 502 and payload["status"] == "error"
    fake_upstream.script = Script(text="a b c d", close_after_chunks=3)
    lines = await ndjson(http, proxy, "/chat/stream", body)
    assert lines[0] == {"type": "fragment", "content": "a "}
    assert lines[-1]["type"] == "error" and lines[-1]["message"]
    assert proxy.records[-1].error


async def test_client_disconnect_closes_the_upstream(
    proxy: RunningProxy, http: aiohttp.ClientSession, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(text="a b c", stall_after_chunks=2)
    resp = await http.post(
        proxy.url + "/chat/stream", json={"model_key": "m", "messages": [user("x")]}
    )
    await resp.content.readline()
    resp.close()
    deadline = time.perf_counter() + 2
    while (
        fake_upstream.active or not proxy.records
    ) and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    assert fake_upstream.active == 0 and fake_upstream.cancelled == 1
    assert proxy.records[-1].client_gone


# ------------------------------------------------------------------ help, health


async def test_help_lists_every_route_from_the_route_table(
    proxy: RunningProxy, http: aiohttp.ClientSession
) -> None:
    async with http.get(proxy.url + "/help") as r:
        assert r.status == 200
        payload = await r.json()
    assert payload["status"] == "success"
    listed = {(e["method"], e["path"]): e["description"] for e in payload["endpoints"]}
    assert proxy.server.app is not None
    routes = {
        (route.method, route.resource.canonical)
        for route in proxy.server.app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    assert set(listed) == routes
    for key in [
        ("GET", "/help"),
        ("GET", "/health"),
        ("POST", "/chat"),
        ("POST", "/chat/stream"),
        ("POST", "/chat/regular"),
        ("POST", "/chat/regular/stream"),
        ("POST", "/chat/vision"),
        ("POST", "/chat/vision/stream"),
        ("GET", "/store/chats"),
        ("PUT", "/store/chat"),
        ("DELETE", "/store/chat/message"),
    ]:
        assert key in listed, key
    assert "NDJSON" in listed[("POST", "/chat/vision/stream")]
    assert "default vision model" in listed[("POST", "/chat/vision")]
    assert "stream the reply as SSE" in listed[("PUT", "/store/chat")]


async def test_health_still_answers(
    proxy: RunningProxy, http: aiohttp.ClientSession
) -> None:
    async with http.get(proxy.url + "/health") as r:
        assert r.status == 200
        assert (await r.json())["status"] == "ok"
