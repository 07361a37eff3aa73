"""Thin typed calls over the `lmstudio` SDK: raw frames in, our structs out.

No policy here (no caching, retries or error conversion): the service does
that. Listings are read with the SDK's raw `remote_call` and parsed one entry
at a time, because the SDK's own listing raises on the whole list when one
entry has a `format` it does not know.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import lmstudio
import msgspec
from lmstudio.json_api import LoadModelEndpoint

from .structs import (
    DownloadedModel,
    DownloadedModels,
    GpuOffload,
    KvCacheType,
    LoadedModel,
    LoadOptions,
    ModelKind,
    check_gpu_offload,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float], None]


class _WireInstance(msgspec.Struct, rename="camel"):
    """One `listLoaded` entry; lenient so an odd field hides nothing."""

    identifier: str
    model_key: str
    context_length: int
    max_context_length: int | None = None
    display_name: str = ""
    ttl_ms: int | None = None
    size_bytes: int | None = None


def _session(client: lmstudio.AsyncClient, kind: ModelKind) -> Any:
    return client.llm if kind is ModelKind.LLM else client.embedding


def _handle(client: lmstudio.AsyncClient, kind: ModelKind, identifier: str) -> Any:
    if kind is ModelKind.LLM:
        return lmstudio.AsyncLLM(identifier, client.llm)
    return lmstudio.AsyncEmbeddingModel(identifier, client.embedding)


def parse_downloaded_entry(entry: Any) -> DownloadedModel:
    """One `listDownloadedModels` entry, validated exactly as the SDK would."""
    kind = entry.get("type") if isinstance(entry, dict) else None
    if kind == ModelKind.LLM:
        llm = msgspec.convert(entry, lmstudio.LlmInfo)
        return DownloadedModel(
            key=llm.model_key,
            display_name=llm.display_name,
            kind=ModelKind.LLM,
            format=llm.format,
            size_bytes=llm.size_bytes,
            params=llm.params_string,
            architecture=llm.architecture,
            max_context_length=llm.max_context_length,
            vision=llm.vision,
            trained_for_tool_use=llm.trained_for_tool_use,
            path=llm.path,
        )
    if kind == ModelKind.EMBEDDING:
        emb = msgspec.convert(entry, lmstudio.EmbeddingModelInfo)
        return DownloadedModel(
            key=emb.model_key,
            display_name=emb.display_name,
            kind=ModelKind.EMBEDDING,
            format=emb.format,
            size_bytes=emb.size_bytes,
            params=emb.params_string,
            architecture=emb.architecture,
            max_context_length=emb.max_context_length,
            path=emb.path,
        )
    raise ValueError(f"unknown model type {kind!r}")


def parse_downloaded(raw: Any) -> DownloadedModels:
    """Every entry that parses; the keys of those that do not, in `skipped`."""
    models: list[DownloadedModel] = []
    skipped: list[str] = []
    for index, entry in enumerate(raw if isinstance(raw, list) else []):
        key = entry.get("modelKey") if isinstance(entry, dict) else None
        name = str(key) if key else f"<entry {index}>"
        try:
            models.append(parse_downloaded_entry(entry))
        except (msgspec.ValidationError, ValueError, TypeError) as exc:
            log.warning(
                "LM Studio listed a model LM Bridge cannot read: %s (%s)", name, exc
            )
            skipped.append(name)
    return DownloadedModels(tuple(models), tuple(skipped))


async def fetch_downloaded(client: lmstudio.AsyncClient) -> DownloadedModels:
    """The models on disk (system namespace `listDownloadedModels`)."""
    return parse_downloaded(await client.system.remote_call("listDownloadedModels"))


async def fetch_loaded(
    client: lmstudio.AsyncClient, ttls: dict[str, int | None]
) -> tuple[LoadedModel, ...]:
    """Loaded LLM and embedding instances; `ttls` fills in TTLs we set ourselves."""
    loaded: list[LoadedModel] = []
    for kind in ModelKind:
        raw = await _session(client, kind).remote_call("listLoaded")
        for entry in raw if isinstance(raw, list) else []:
            try:
                wire = msgspec.convert(entry, _WireInstance)
            except msgspec.ValidationError as exc:
                log.warning(
                    "LM Studio listed a loaded model LM Bridge cannot read: %s", exc
                )
                continue
            ttl = wire.ttl_ms // 1000 if wire.ttl_ms else ttls.get(wire.identifier)
            loaded.append(
                LoadedModel(
                    identifier=wire.identifier,
                    key=wire.model_key,
                    kind=kind,
                    context_length=wire.context_length,
                    max_context_length=wire.max_context_length,
                    ttl_seconds=ttl,
                    display_name=wire.display_name,
                    size_bytes=wire.size_bytes,
                )
            )
    return tuple(loaded)


def load_config(kind: ModelKind, options: LoadOptions) -> dict[str, Any]:
    """The SDK's load config (client names, camelCase) for `options`.

    The SDK maps it to LM Studio's wire names: `contextLength` ->
    `<kind>.load.contextLength`, `gpu.ratio` ->
    `<kind>.load.llama.acceleration.offloadRatio`, `flashAttention` ->
    `llm.load.llama.flashAttention`, `llamaK/VCacheQuantizationType` ->
    `llm.load.llama.k/vCacheQuantizationType` (as `{checked, value}`).
    """
    config: dict[str, Any] = {}
    if options.context_length is not None:
        config["contextLength"] = options.context_length
    if options.gpu_offload is not None:
        config["gpu"] = {"ratio": options.gpu_offload}
    if kind is not ModelKind.LLM:
        return config  # the rest are llama.cpp LLM settings
    if options.flash_attention is not None:
        config["flashAttention"] = options.flash_attention
    if options.k_cache_type is not None:
        config["llamaKCacheQuantizationType"] = str(options.k_cache_type)
    if options.v_cache_type is not None:
        config["llamaVCacheQuantizationType"] = str(options.v_cache_type)
    return config


async def load_model(
    client: lmstudio.AsyncClient,
    kind: ModelKind,
    key: str,
    *,
    identifier: str | None,
    options: LoadOptions,
    on_progress: ProgressCallback,
) -> str:
    """Load a new instance of `key`; returns its identifier.

    Cancelling the calling task also cancels the load in LM Studio. The SDK's
    `load_new_instance` only drops the channel, leaving LM Studio to finish
    loading, so this drives the same `loadModel` channel and sends its
    `cancel` message (SDK internals pinned to lmstudio 1.5.x).
    """
    session = _session(client, kind)
    types = session._API_TYPES
    endpoint = LoadModelEndpoint(
        key,
        identifier,
        options.ttl_seconds,
        types.REQUEST_NEW_INSTANCE,
        types.MODEL_LOAD_CONFIG,
        load_config(kind, options),
        on_progress,
    )
    async with session._create_channel(endpoint) as channel:
        try:
            result = await channel.wait_for_result()
        except asyncio.CancelledError:
            try:
                await channel.cancel()
            except Exception as exc:
                log.debug("could not cancel the load of %s in LM Studio: %s", key, exc)
            raise
    return str(result.identifier)


async def unload_model(
    client: lmstudio.AsyncClient, kind: ModelKind, identifier: str
) -> None:
    """Unload one instance."""
    await _session(client, kind).unload(identifier)


async def context_length(
    client: lmstudio.AsyncClient, kind: ModelKind, identifier: str
) -> int:
    """The context length the instance was loaded with (`getModelInfo`)."""
    return int(await _handle(client, kind, identifier).get_context_length())


async def load_options(
    client: lmstudio.AsyncClient, kind: ModelKind, identifier: str
) -> LoadOptions:
    """The settings the instance was loaded with (`getLoadConfig`).

    Context length and TTL are left unset: the caller decides those.
    """
    config = await _handle(client, kind, identifier).get_load_config()
    ratio = getattr(getattr(config, "gpu", None), "ratio", None)
    flash = getattr(config, "flash_attention", None)
    k_type = getattr(config, "llama_k_cache_quantization_type", None)
    v_type = getattr(config, "llama_v_cache_quantization_type", None)
    return LoadOptions(
        gpu_offload=_ratio(ratio),
        flash_attention=flash if isinstance(flash, bool) else None,
        k_cache_type=_cache_type(k_type),
        v_cache_type=_cache_type(v_type),
    )


def _ratio(value: Any) -> GpuOffload | None:
    if not isinstance(value, str | int | float):
        return None
    try:
        return check_gpu_offload(value)
    except ValueError:
        return None


def _cache_type(value: Any) -> KvCacheType | None:
    try:
        return KvCacheType(value) if isinstance(value, str) else None
    except ValueError:
        return None
