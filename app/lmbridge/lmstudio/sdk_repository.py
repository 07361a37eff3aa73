"""Typed calls over the SDK's `repository` namespace: search, options, download.

The SDK (lmstudio 1.5.x) speaks, on `ws://<host>/repository`:

- rpc `searchModels` `{"opts": {"searchTerm", "limit" (1 ... 25)}}` ->
  `{"results": [{"name", "identifier": {"type": "catalog"|"hf",
  "identifier"}, "exact"?, "staffPick"?}]}` (`client.repository.search_models`);
- rpc `getModelDownloadOptions` `{"modelSearchResultIdentifier": {...}}` ->
  `{"results": [{"name", "sizeBytes", "fitEstimation", "downloadIdentifier",
  "indexedModelIdentifier", "quantization"?, "recommended"?}]}`
  (`AsyncAvailableModel.get_download_options`);
- channel `downloadModel` `{"downloadIdentifier"}` -> `downloadProgress`
  `{"update": {"downloadedBytes", "totalBytes", "speedBytesPerSecond"}}`...,
  `startFinalizing`, `success` `{"defaultIdentifier"}`; the client may send
  `{"type": "cancel"}` (`AsyncModelDownloadOption.download`).

Options are read with the raw `remote_call` and parsed one at a time (a
`fitEstimation` this SDK does not know becomes UNKNOWN, hiding nothing), and
the download drives the SDK's `downloadModel` endpoint itself, because the
SDK's `download()` drops the channel on cancel without telling LM Studio.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import lmstudio
import msgspec
from lmstudio._sdk_models import (
    ModelSearchResultIdentifier,
    ModelSearchResultIdentifierCatalog,
    ModelSearchResultIdentifierHf,
    RepositoryRpcGetModelDownloadOptionsParameter,
)
from lmstudio.json_api import ModelDownloadEndpoint

from .structs import (
    CatalogModel,
    CatalogSource,
    DownloadOption,
    FitEstimate,
)

log = logging.getLogger(__name__)

MAX_SEARCH_LIMIT = 25
"""The most results LM Studio returns for one search (the SDK checks it)."""

BytesProgress = Callable[[int, int, float], None]
"""Called with downloaded bytes, total bytes, speed in bytes per second."""


class _WireOption(msgspec.Struct, rename="camel"):
    """One `getModelDownloadOptions` entry; lenient about the verdict."""

    name: str
    size_bytes: int
    download_identifier: str
    fit_estimation: str = FitEstimate.UNKNOWN.value
    quantization: str | None = None
    recommended: bool | None = None


def option_key(model: str, quantization: str | None, name: str) -> str:
    """The key of one download option: `<model>@<quantization or file name>`."""
    return f"{model}@{quantization or name}"


async def search(
    client: lmstudio.AsyncClient, query: str, limit: int
) -> list[CatalogModel]:
    """Models in LM Studio's catalog (and Hugging Face) matching `query`."""
    found = await client.repository.search_models(query or None, limit)
    models: list[CatalogModel] = []
    for entry in found:
        data = entry.search_result
        models.append(
            CatalogModel(
                name=data.name,
                source=CatalogSource(data.identifier.type),
                identifier=data.identifier.identifier,
                exact=bool(data.exact),
                staff_pick=bool(data.staff_pick),
            )
        )
    return models


def parse_options(model: str, raw: Any) -> list[DownloadOption]:
    """Every download option that parses; the others are logged and left out."""
    results = raw.get("results") if isinstance(raw, dict) else None
    options: list[DownloadOption] = []
    for entry in results if isinstance(results, list) else []:
        try:
            wire = msgspec.convert(entry, _WireOption)
        except msgspec.ValidationError as exc:
            log.warning("LM Studio offered a download LM Bridge cannot read: %s", exc)
            continue
        try:
            fit = FitEstimate(wire.fit_estimation)
        except ValueError:
            fit = FitEstimate.UNKNOWN
        options.append(
            DownloadOption(
                key=option_key(model, wire.quantization, wire.name),
                model=model,
                name=wire.name,
                size_bytes=wire.size_bytes,
                fit=fit,
                download_identifier=wire.download_identifier,
                quantization=wire.quantization,
                recommended=bool(wire.recommended),
            )
        )
    return options


async def download_options(
    client: lmstudio.AsyncClient, model: CatalogModel
) -> list[DownloadOption]:
    """The files LM Studio offers for `model`, with its fit verdict for each."""
    identifier: ModelSearchResultIdentifier
    if model.source is CatalogSource.HUGGING_FACE:
        identifier = ModelSearchResultIdentifierHf(identifier=model.identifier)
    else:
        identifier = ModelSearchResultIdentifierCatalog(identifier=model.identifier)
    params = RepositoryRpcGetModelDownloadOptionsParameter(
        model_search_result_identifier=identifier
    )
    raw = await client.repository.remote_call("getModelDownloadOptions", params)
    return parse_options(model.name, raw)


async def download(
    client: lmstudio.AsyncClient,
    download_identifier: str,
    *,
    on_progress: BytesProgress,
    on_finalize: Callable[[], None],
) -> str:
    """Download one option; returns the model key LM Studio loads it by.

    Cancelling the calling task sends the channel's `cancel` to LM Studio,
    which stops the download (SDK internals pinned to lmstudio 1.5.x).
    """

    def progress(update: Any) -> None:
        on_progress(
            int(update.downloaded_bytes),
            int(update.total_bytes),
            float(update.speed_bytes_per_second),
        )

    endpoint = ModelDownloadEndpoint(download_identifier, progress, on_finalize)
    async with client.repository._create_channel(endpoint) as channel:
        try:
            result = await channel.wait_for_result()
        except asyncio.CancelledError:
            try:
                await channel.cancel()
            except Exception as exc:
                log.debug(
                    "could not cancel downloading %s in LM Studio: %s",
                    download_identifier,
                    exc,
                )
            raise
    return str(result)
