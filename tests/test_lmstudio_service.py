"""LMStudioService through the real `lmstudio` SDK against the fake LM Studio."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fakes.lmstudio_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.lmstudio_fixtures import dead_address, eventually
from fakes.lmstudio_server import MALFORMED_ENTRY, FakeLMStudio
from lmbridge.core.errors import NotFound, UpstreamUnavailable
from lmbridge.core.events import EventBus
from lmbridge.lmstudio import (
    TOPIC_LOAD_PROGRESS,
    ContextPolicy,
    DownloadedModel,
    EnsureAction,
    LMStudioOptions,
    LMStudioService,
    LoadedModel,
    LoadProgress,
    ModelKind,
)

QWEN = "qwen/qwen3-coder-30b"
GEMMA = "google/gemma-3-4b"
EMBED = "text-embedding-nomic-embed-text-v1.5"

Events = list[tuple[str, Any]]


def load_fields(params: dict[str, Any]) -> dict[str, Any]:
    layers = params["loadConfigStack"]["layers"]
    return {kv["key"]: kv["value"] for kv in layers[0]["config"]["fields"]}


async def test_list_downloaded_with_metadata(lmstudio_service: LMStudioService) -> None:
    listed = await lmstudio_service.list_downloaded()
    assert listed.skipped == ()
    by_key = {m.key: m for m in listed.models}
    assert set(by_key) == {QWEN, GEMMA, EMBED}
    assert by_key[QWEN] == DownloadedModel(
        key=QWEN,
        display_name="Qwen3 Coder 30B",
        kind=ModelKind.LLM,
        format="gguf",
        size_bytes=18556686752,
        params="30B-A3B",
        architecture="qwen3moe",
        max_context_length=262144,
        vision=False,
        trained_for_tool_use=True,
        path=by_key[QWEN].path,
    )
    assert by_key[GEMMA].vision
    assert by_key[EMBED].kind is ModelKind.EMBEDDING
    assert by_key[EMBED].params is None


async def test_one_malformed_entry_hides_nothing(
    lmstudio_service: LMStudioService,
    fake_lmstudio: FakeLMStudio,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_lmstudio.malformed_entry = True
    # The SDK's own listing fails on the whole list ...
    client = await lmstudio_service.connection.client()
    with pytest.raises(msgspec.ValidationError, match="format"):
        await client.list_downloaded_models()
    # ... the service lists the rest and names the bad one.
    with caplog.at_level(logging.WARNING, logger="lmbridge.lmstudio"):
        listed = await lmstudio_service.list_downloaded()
    assert [m.key for m in listed.models] == [QWEN, GEMMA, EMBED]
    assert listed.skipped == (MALFORMED_ENTRY["modelKey"],)
    assert MALFORMED_ENTRY["modelKey"] in caplog.text


async def test_list_loaded(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    assert await lmstudio_service.list_loaded() == ()
    fake_lmstudio.preload(GEMMA, context_length=8192)
    fake_lmstudio.preload(EMBED, context_length=2048)
    loaded = {m.identifier: m for m in await lmstudio_service.list_loaded()}
    assert loaded[GEMMA] == LoadedModel(
        identifier=GEMMA,
        key=GEMMA,
        kind=ModelKind.LLM,
        context_length=8192,
        max_context_length=131072,
        ttl_seconds=None,
        display_name="Gemma 3 4B",
        size_bytes=3341081472,
    )
    assert loaded[GEMMA].requested_context_length is None
    assert loaded[GEMMA].context_shortfall == 0
    assert loaded[EMBED].kind is ModelKind.EMBEDDING
    assert lmstudio_service.loaded_context(GEMMA) == 8192
    assert lmstudio_service.loaded_context(QWEN) is None


async def test_load_with_progress_ttl_and_gpu(
    lmstudio_service: LMStudioService,
    fake_lmstudio: FakeLMStudio,
    lmstudio_events: Events,
) -> None:
    loaded = await lmstudio_service.load(
        QWEN, context_length=65536, ttl=600, gpu_offload=0.5
    )
    assert (loaded.identifier, loaded.key, loaded.context_length) == (QWEN, QWEN, 65536)
    assert loaded.ttl_seconds == 600
    progress = [p for t, p in lmstudio_events if t == TOPIC_LOAD_PROGRESS]
    assert progress == [LoadProgress(QWEN, f) for f in (0.25, 0.5, 0.75, 1.0)]
    params = fake_lmstudio.load_params[-1]
    assert params["ttlMs"] == 600_000
    fields = load_fields(params)
    assert fields["llm.load.contextLength"] == 65536
    assert fields["llm.load.llama.acceleration.offloadRatio"] == 0.5
    # The cache is fresh right after a load: the guard needs no I/O.
    assert lmstudio_service.loaded_context(QWEN) == 65536
    assert await lmstudio_service.context_length(QWEN) == 65536


async def test_load_without_ttl_sends_none(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    loaded = await lmstudio_service.load(EMBED)
    assert loaded.kind is ModelKind.EMBEDDING
    assert "ttlMs" not in fake_lmstudio.load_params[-1]
    assert loaded.ttl_seconds is None


async def test_load_unknown_model_is_not_found(
    lmstudio_service: LMStudioService,
) -> None:
    with pytest.raises(NotFound, match="acme/nope"):
        await lmstudio_service.load("acme/nope")
    with pytest.raises(NotFound, match="acme/nope"):
        await lmstudio_service.context_length("acme/nope")


async def test_cancel_a_slow_load(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    fake_lmstudio.load_delay = 5.0
    loading = asyncio.create_task(lmstudio_service.load(QWEN))
    await eventually(lambda: fake_lmstudio.load_count == 1, what="the load to start")
    assert lmstudio_service.cancel_load(QWEN)
    with pytest.raises(UpstreamUnavailable, match="cancelled"):
        await loading
    await eventually(lambda: fake_lmstudio.cancelled_loads == [QWEN], what="cancel")
    assert fake_lmstudio.loaded == {}
    assert not lmstudio_service.cancel_load(QWEN)


async def test_unload_one_and_all(
    lmstudio_service: LMStudioService,
    fake_lmstudio: FakeLMStudio,
) -> None:
    fake_lmstudio.preload(QWEN)
    fake_lmstudio.preload(GEMMA)
    fake_lmstudio.preload(EMBED)
    await lmstudio_service.unload(GEMMA)
    assert set(fake_lmstudio.loaded) == {QWEN, EMBED}
    assert lmstudio_service.loaded_context(GEMMA) is None
    with pytest.raises(NotFound, match=GEMMA):
        await lmstudio_service.unload(GEMMA)
    assert set(await lmstudio_service.unload_all()) == {QWEN, EMBED}
    assert fake_lmstudio.loaded == {}
    assert await lmstudio_service.list_loaded() == ()


async def test_ensure_context_reloads_keeping_identity(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    fake_lmstudio.preload(QWEN, context_length=4096, gpu_ratio=0.75)
    result = await lmstudio_service.ensure_context(QWEN, 32768)
    assert result.action is EnsureAction.RELOADED
    assert (result.previous, result.current) == (4096, 32768)
    assert "4096" in result.message
    assert "32768" in result.message
    instance = fake_lmstudio.loaded[QWEN]
    assert (instance.identifier, instance.model_key) == (QWEN, QWEN)
    assert instance.context_length == 32768
    assert instance.gpu_ratio == 0.75
    assert fake_lmstudio.unload_requests == [QWEN]
    assert lmstudio_service.loaded_context(QWEN) == 32768

    again = await lmstudio_service.ensure_context(QWEN, 32768)
    assert again.action is EnsureAction.UNCHANGED
    assert fake_lmstudio.load_count == 1


async def test_ensure_context_policies(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    not_loaded = await lmstudio_service.ensure_context(GEMMA, 32768)
    assert not_loaded.action is EnsureAction.NOT_LOADED
    fake_lmstudio.preload(GEMMA, context_length=4096)
    warned = await lmstudio_service.ensure_context(GEMMA, 32768, ContextPolicy.WARN)
    assert warned.action is EnsureAction.BELOW_MINIMUM
    off = await lmstudio_service.ensure_context(GEMMA, 32768, ContextPolicy.OFF)
    assert off.action is EnsureAction.SKIPPED
    assert fake_lmstudio.load_count == 0
    # A minimum above the model's maximum reloads with the maximum.
    fake_lmstudio.preload(EMBED, context_length=512)
    capped = await lmstudio_service.ensure_context(EMBED, 32768)
    assert capped.action is EnsureAction.RELOADED
    assert capped.current == 2048


async def test_ensure_loaded_single_flight(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    fake_lmstudio.load_delay = 0.3
    results = await asyncio.gather(
        *(lmstudio_service.ensure_loaded(QWEN) for _ in range(5))
    )
    assert fake_lmstudio.load_count == 1
    assert {r.identifier for r in results} == {QWEN}
    # The configured context length, not LM Studio's JIT default.
    assert load_fields(fake_lmstudio.load_params[0])["llm.load.contextLength"] == 32768
    assert lmstudio_service.loaded_context(QWEN) == 32768
    # Already loaded: no second load.
    assert (await lmstudio_service.ensure_loaded(QWEN)).identifier == QWEN
    assert fake_lmstudio.load_count == 1


async def test_ensure_loaded_caps_context_at_the_model_maximum(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    loaded = await lmstudio_service.ensure_loaded(EMBED, 32768)
    assert loaded.context_length == 2048


async def test_load_failure_names_model_and_reason(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    fake_lmstudio.fail_loads[QWEN] = "not enough memory for 262144 tokens"
    with pytest.raises(UpstreamUnavailable) as caught:
        await lmstudio_service.ensure_loaded(QWEN)
    assert QWEN in caught.value.message
    assert "not enough memory" in caught.value.message
    assert caught.value.status == 503


async def test_load_timeout(
    fake_lmstudio: FakeLMStudio,
    lmstudio_bus: EventBus,
    lmstudio_home: Path,
    lmstudio_options: LMStudioOptions,
) -> None:
    fake_lmstudio.load_delay = 3.0
    options = msgspec.structs.replace(lmstudio_options, load_timeout=0.2)
    async with LMStudioService(
        lmstudio_bus, options, home=lmstudio_home, sdk_ports=()
    ) as service:
        with pytest.raises(UpstreamUnavailable, match=f"{QWEN}.*0.2 s"):
            await service.ensure_loaded(QWEN)
        await eventually(lambda: fake_lmstudio.cancelled_loads == [QWEN])


async def test_not_running_message(lmstudio_bus: EventBus, lmstudio_home: Path) -> None:
    address = dead_address()
    options = LMStudioOptions(address=address, backoff_initial=0.05)
    async with LMStudioService(
        lmstudio_bus, options, home=lmstudio_home, sdk_ports=(), fallback=address
    ) as service:
        with pytest.raises(UpstreamUnavailable) as caught:
            await service.list_loaded()
    assert caught.value.message == (
        f"LM Studio is not running on {address} — start its server,"
        " or set the address in Settings"
    )
