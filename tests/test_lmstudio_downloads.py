"""Catalog search and downloads: the real `lmstudio` SDK against the fake."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from fakes.lmstudio_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.lmstudio_fixtures import eventually
from fakes.lmstudio_server import FakeLMStudio
from lmbridge.core.errors import (
    InvalidRequest,
    NotFound,
    UpstreamError,
    UpstreamUnavailable,
)
from lmbridge.core.events import EventBus
from lmbridge.lmstudio import (
    TOPIC_DOWNLOAD_PROGRESS,
    CatalogModel,
    CatalogSource,
    DownloadProgress,
    DownloadState,
    FitEstimate,
    LMStudioOptions,
    LMStudioService,
    ModelKind,
)

QWEN4 = "qwen/qwen3-4b-2507"
QWEN4_HF = "lmstudio-community/Qwen3-4B-Instruct-2507-GGUF"
DEVSTRAL = "mistralai/devstral-small-2507"
Q4_FILE = f"{QWEN4_HF}/Qwen3-4B-Instruct-2507-Q4_K_M.gguf"

Events = list[tuple[str, Any]]


def steps(events: Events) -> list[DownloadProgress]:
    return [p for t, p in events if t == TOPIC_DOWNLOAD_PROGRESS]


async def test_search(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    found = await lmstudio_service.downloads.search("qwen3 4b")
    assert found == [
        CatalogModel(
            name=QWEN4,
            source=CatalogSource.CATALOG,
            identifier=QWEN4,
            staff_pick=True,
        ),
        CatalogModel(
            name=QWEN4_HF, source=CatalogSource.HUGGING_FACE, identifier=QWEN4_HF
        ),
    ]
    assert fake_lmstudio.repository.search_requests == [
        {"searchTerm": "qwen3 4b", "limit": 10}
    ]
    assert await lmstudio_service.downloads.search("no such model") == []


async def test_search_limit_is_clamped_and_query_required(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    assert len(await lmstudio_service.downloads.search("qwen", limit=1)) == 1
    await lmstudio_service.downloads.search("qwen", limit=500)
    limits = [r["limit"] for r in fake_lmstudio.repository.search_requests]
    assert limits == [1, 25]
    with pytest.raises(InvalidRequest, match="search"):
        await lmstudio_service.downloads.search("  ")


async def test_search_failure_names_the_likely_fix(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    fake_lmstudio.repository.search_failure = "getaddrinfo ENOTFOUND"
    with pytest.raises(UpstreamError) as caught:
        await lmstudio_service.downloads.search("qwen")
    assert "ENOTFOUND" in caught.value.message
    assert "internet" in caught.value.message


async def test_download_options_carry_the_fit_verdict(
    lmstudio_service: LMStudioService,
) -> None:
    qwen, hf = await lmstudio_service.downloads.search("qwen3 4b")
    options = await lmstudio_service.downloads.download_options(qwen)
    assert [(o.key, o.fit, o.recommended) for o in options] == [
        (f"{QWEN4}@Q4_K_M", FitEstimate.FULL_GPU, True),
        (f"{QWEN4}@Q8_0", FitEstimate.PARTIAL_GPU, False),
    ]
    assert options[0].download_identifier == Q4_FILE
    assert options[0].size_bytes == 2497280256
    assert options[0].quantization == "Q4_K_M"
    (only,) = await lmstudio_service.downloads.download_options(hf)
    assert only.fit is FitEstimate.CPU_ONLY
    assert only.key == f"{QWEN4_HF}@Q3_K_L"
    assert FitEstimate.WILL_NOT_FIT.label == "will not fit"


async def test_odd_download_options_hide_nothing(
    lmstudio_service: LMStudioService,
    fake_lmstudio: FakeLMStudio,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_lmstudio.repository.odd_options = True
    qwen = (await lmstudio_service.downloads.search(QWEN4))[0]
    with caplog.at_level(logging.WARNING, logger="lmbridge.lmstudio"):
        options = await lmstudio_service.downloads.download_options(qwen)
    assert [o.fit for o in options] == [
        FitEstimate.FULL_GPU,
        FitEstimate.PARTIAL_GPU,
        FitEstimate.UNKNOWN,
    ]
    assert "cannot read" in caplog.text


async def test_resolve_a_key(lmstudio_service: LMStudioService) -> None:
    downloads = lmstudio_service.downloads
    assert (await downloads.resolve(QWEN4)).key == f"{QWEN4}@Q4_K_M"
    assert (await downloads.resolve(f"{QWEN4}@q8_0")).key == f"{QWEN4}@Q8_0"
    # Nothing recommended: the first that fits, not the first.
    assert (await downloads.resolve(DEVSTRAL)).key == f"{DEVSTRAL}@Q4_K_M"
    with pytest.raises(NotFound, match="Q2_K"):
        await downloads.resolve(f"{QWEN4}@Q2_K")
    with pytest.raises(NotFound, match="acme/none"):
        await downloads.resolve("acme/none")


async def test_download_with_progress(
    lmstudio_service: LMStudioService,
    fake_lmstudio: FakeLMStudio,
    lmstudio_events: Events,
) -> None:
    option = await lmstudio_service.downloads.resolve(QWEN4)
    result = await lmstudio_service.downloads.download(option)
    assert (result.key, result.model_key) == (option.key, QWEN4)
    assert result.model is not None
    assert result.model.kind is ModelKind.LLM
    assert fake_lmstudio.repository.download_requests == [Q4_FILE]
    seen = steps(lmstudio_events)
    assert {s.key for s in seen} == {option.key}
    states = [s.state for s in seen]
    assert states == [DownloadState.DOWNLOADING] * 5 + [
        DownloadState.FINALIZING,
        DownloadState.DONE,
    ]
    fractions = [s.fraction for s in seen if s.state is DownloadState.DOWNLOADING]
    assert fractions == [0.0, 0.25, 0.5, 0.75, 1.0]
    total = option.size_bytes
    assert seen[2].downloaded_bytes == total // 2
    assert seen[2].total_bytes == total
    assert seen[2].speed_bytes_per_second > 0
    assert seen[-1].model_key == QWEN4
    assert seen[-1].finished
    assert not seen[-2].finished
    assert lmstudio_service.downloads.active == ()
    # Downloaded means loadable.
    listed = await lmstudio_service.list_downloaded()
    assert QWEN4 in [m.key for m in listed.models]
    loaded = await lmstudio_service.load(QWEN4, context_length=8192)
    assert loaded.context_length == 8192


async def test_cancel_a_download(
    lmstudio_service: LMStudioService,
    fake_lmstudio: FakeLMStudio,
    lmstudio_events: Events,
) -> None:
    fake_lmstudio.repository.download_delay = 20.0
    fake_lmstudio.repository.download_steps = 100
    option = await lmstudio_service.downloads.resolve(QWEN4)
    downloading = asyncio.create_task(lmstudio_service.downloads.download(option))
    await eventually(
        lambda: len(steps(lmstudio_events)) >= 2, what="the first progress"
    )
    (active,) = lmstudio_service.downloads.active
    assert active.key == option.key
    assert active.state is DownloadState.DOWNLOADING
    assert lmstudio_service.downloads.cancel_download(option.key)
    with pytest.raises(UpstreamUnavailable, match="cancelled"):
        await downloading
    await eventually(
        lambda: fake_lmstudio.repository.cancelled_downloads == [Q4_FILE],
        what="LM Studio to see the cancel",
    )
    assert steps(lmstudio_events)[-1].state is DownloadState.CANCELLED
    assert lmstudio_service.downloads.active == ()
    assert not lmstudio_service.downloads.cancel_download(option.key)
    assert QWEN4 not in [m["modelKey"] for m in fake_lmstudio.downloaded]


async def test_a_second_download_of_the_same_key_joins_the_first(
    lmstudio_service: LMStudioService, fake_lmstudio: FakeLMStudio
) -> None:
    fake_lmstudio.repository.download_delay = 0.3
    option = await lmstudio_service.downloads.resolve(QWEN4)
    first, second = await asyncio.gather(
        lmstudio_service.downloads.download(option),
        lmstudio_service.downloads.download(option),
    )
    assert first == second
    assert fake_lmstudio.repository.download_requests == [Q4_FILE]


async def test_download_failure_names_download_and_reason(
    lmstudio_service: LMStudioService,
    fake_lmstudio: FakeLMStudio,
    lmstudio_events: Events,
) -> None:
    fake_lmstudio.repository.fail_downloads[Q4_FILE] = "disk full"
    option = await lmstudio_service.downloads.resolve(QWEN4)
    with pytest.raises(UpstreamError) as caught:
        await lmstudio_service.downloads.download(option)
    assert option.key in caught.value.message
    assert "disk full" in caught.value.message
    last = steps(lmstudio_events)[-1]
    assert last.state is DownloadState.FAILED
    assert last.error is not None
    assert "disk full" in last.error


async def test_closing_the_service_cancels_downloads(
    fake_lmstudio: FakeLMStudio,
    lmstudio_bus: EventBus,
    lmstudio_home: Path,
    lmstudio_options: LMStudioOptions,
    lmstudio_events: Events,
) -> None:
    fake_lmstudio.repository.download_delay = 20.0
    fake_lmstudio.repository.download_steps = 100
    async with LMStudioService(
        lmstudio_bus, lmstudio_options, home=lmstudio_home, sdk_ports=()
    ) as service:
        option = await service.downloads.resolve(QWEN4)
        waiting = asyncio.create_task(service.downloads.download(option))
        await eventually(lambda: len(steps(lmstudio_events)) >= 2)
    with pytest.raises(UpstreamUnavailable, match="cancelled"):
        await waiting
    await eventually(
        lambda: fake_lmstudio.repository.cancelled_downloads == [Q4_FILE],
        what="LM Studio to see the cancel",
    )
