"""Load settings reaching LM Studio, and what LM Studio really loaded."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fakes.lmstudio_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.lmstudio_server import FakeLMStudio
from lmbridge.core.errors import InvalidRequest
from lmbridge.core.events import EventBus
from lmbridge.lmstudio import (
    TOPIC_LOAD_WARNING,
    KvCacheType,
    LMStudioOptions,
    LMStudioService,
    LoadOptions,
    LoadWarning,
)

QWEN = "qwen/qwen3-coder-30b"
GEMMA = "google/gemma-3-4b"
EMBED = "text-embedding-nomic-embed-text-v1.5"

CONTEXT = "llm.load.contextLength"
GPU = "llm.load.llama.acceleration.offloadRatio"
FLASH = "llm.load.llama.flashAttention"
K_CACHE = "llm.load.llama.kCacheQuantizationType"
V_CACHE = "llm.load.llama.vCacheQuantizationType"

Events = list[tuple[str, Any]]


def warnings_in(events: Events) -> list[LoadWarning]:
    return [p for t, p in events if t == TOPIC_LOAD_WARNING]


async def test_options_reach_lmstudio_in_its_wire_names(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    options = LoadOptions(
        context_length=16384,
        gpu_offload="max",
        flash_attention=True,
        k_cache_type=KvCacheType.Q8_0,
        v_cache_type=KvCacheType.Q4_0,
        ttl_seconds=300,
    )
    loaded = await lmstudio_service.load(QWEN, options)
    config = fake_lmstudio.load_configs[-1]
    assert config[CONTEXT] == 16384
    assert config[GPU] == "max"
    assert config[FLASH] is True
    assert config[K_CACHE] == {"checked": True, "value": "q8_0"}
    assert config[V_CACHE] == {"checked": True, "value": "q4_0"}
    assert fake_lmstudio.load_params[-1]["ttlMs"] == 300_000
    assert (loaded.context_length, loaded.ttl_seconds) == (16384, 300)
    assert loaded.requested_context_length == 16384
    assert loaded.context_shortfall == 0


async def test_unset_options_leave_lmstudio_its_defaults(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    loaded = await lmstudio_service.load(GEMMA)
    assert fake_lmstudio.load_configs[-1] == {}
    assert "ttlMs" not in fake_lmstudio.load_params[-1]
    assert loaded.requested_context_length is None
    assert loaded.context_length == 4096  # LM Studio's own choice


async def test_keywords_override_options_and_defaults_fill_in(
    fake_lmstudio: FakeLMStudio,
    lmstudio_bus: EventBus,
    lmstudio_home: Path,
    lmstudio_options: LMStudioOptions,
) -> None:
    defaults = LoadOptions(flash_attention=True, gpu_offload=0.25)
    options = msgspec.structs.replace(lmstudio_options, load_defaults=defaults)
    async with LMStudioService(
        lmstudio_bus, options, home=lmstudio_home, sdk_ports=()
    ) as service:
        await service.load(
            QWEN,
            LoadOptions(context_length=8192, flash_attention=False, ttl_seconds=60),
            context_length=12288,
            ttl=90,
        )
        config = fake_lmstudio.load_configs[-1]
        assert (config[CONTEXT], config[FLASH], config[GPU]) == (12288, False, 0.25)
        assert fake_lmstudio.load_params[-1]["ttlMs"] == 90_000
        # Loads on demand use the defaults too.
        await service.ensure_loaded(GEMMA)
        config = fake_lmstudio.load_configs[-1]
        assert (config[CONTEXT], config[FLASH], config[GPU]) == (32768, True, 0.25)


async def test_embedding_models_get_only_what_applies(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    await lmstudio_service.load(
        EMBED,
        LoadOptions(
            context_length=1024,
            gpu_offload="off",
            flash_attention=True,
            k_cache_type=KvCacheType.Q8_0,
        ),
    )
    assert fake_lmstudio.load_configs[-1] == {
        "embedding.load.contextLength": 1024,
        "embedding.load.llama.acceleration.offloadRatio": "off",
        "load.gpuSplitConfig": {
            "disabledGpus": [],
            "strategy": "evenly",
            "priority": [],
            "customRatio": [],
        },
    }


async def test_bad_values_are_refused_before_lmstudio_sees_them(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    with pytest.raises(InvalidRequest, match="GPU offload"):
        await lmstudio_service.load(QWEN, gpu_offload=1.5)
    with pytest.raises(InvalidRequest, match="context"):
        await lmstudio_service.load(QWEN, context_length=0)
    with pytest.raises(ValueError, match="GPU offload"):
        LoadOptions(gpu_offload="most")
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"k_cache_type": "q3"}, LoadOptions)
    assert fake_lmstudio.load_count == 0


async def test_less_context_than_asked_is_reported(
    lmstudio_service: LMStudioService,
    fake_lmstudio: FakeLMStudio,
    lmstudio_events: Events,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_lmstudio.context_limit = 8192
    with caplog.at_level(logging.WARNING, logger="lmbridge.lmstudio"):
        loaded = await lmstudio_service.load(QWEN, context_length=65536)
    assert (loaded.requested_context_length, loaded.context_length) == (65536, 8192)
    assert loaded.context_shortfall == 65536 - 8192
    (warning,) = warnings_in(lmstudio_events)
    assert (warning.model_key, warning.identifier) == (QWEN, QWEN)
    assert (warning.requested_context_length, warning.context_length) == (65536, 8192)
    assert "8192" in warning.message
    assert "65536" in warning.message
    assert warning.message in caplog.text
    # The cache (what the tray shows) remembers what was asked, across refreshes.
    await lmstudio_service.list_loaded()
    (cached,) = lmstudio_service.loaded
    assert cached.requested_context_length == 65536
    assert cached.context_length == 8192


async def test_on_demand_loads_report_a_short_context_too(
    lmstudio_service: LMStudioService,
    fake_lmstudio: FakeLMStudio,
    lmstudio_events: Events,
) -> None:
    fake_lmstudio.context_limit = 16384
    loaded = await lmstudio_service.ensure_loaded(QWEN, 32768)
    assert loaded.context_length == 16384
    assert [w.requested_context_length for w in warnings_in(lmstudio_events)] == [32768]
    result = await lmstudio_service.ensure_context(QWEN, 32768)
    assert "asked for 32768" in result.message
    assert len(warnings_in(lmstudio_events)) == 2


async def test_no_warning_when_lmstudio_gives_what_was_asked(
    lmstudio_service: LMStudioService, lmstudio_events: Events
) -> None:
    await lmstudio_service.load(QWEN, context_length=32768)
    assert warnings_in(lmstudio_events) == []


async def test_reload_to_the_minimum_keeps_the_other_settings(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    await lmstudio_service.load(
        QWEN,
        LoadOptions(
            context_length=4096,
            gpu_offload=0.5,
            flash_attention=True,
            k_cache_type=KvCacheType.Q8_0,
            v_cache_type=KvCacheType.Q8_0,
            ttl_seconds=600,
        ),
    )
    result = await lmstudio_service.ensure_context(QWEN, 32768)
    assert result.current == 32768
    first, second = fake_lmstudio.load_configs
    assert second == {**first, CONTEXT: 32768}
    assert fake_lmstudio.load_params[-1]["ttlMs"] == 600_000


async def test_tray_data_needs_no_io(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    before = lmstudio_service.loaded  # a name: mypy would keep `.loaded` as ()
    assert before == ()
    await lmstudio_service.load(QWEN, context_length=8192)
    fake_lmstudio.preload(GEMMA, context_length=2048)
    await lmstudio_service.list_loaded()
    by_key = {m.key: m for m in lmstudio_service.loaded}
    assert by_key[QWEN].size_bytes == 18556686752
    assert by_key[QWEN].context_length == 8192
    assert by_key[GEMMA].size_bytes == 3341081472
    assert by_key[GEMMA].requested_context_length is None
    await lmstudio_service.unload(QWEN)
    assert [m.key for m in lmstudio_service.loaded] == [GEMMA]
    assert await lmstudio_service.unload_all() == (GEMMA,)
    assert lmstudio_service.loaded == ()
