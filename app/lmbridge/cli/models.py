"""`lmbridge models list|load|unload|search|download`.

    list                          downloaded and loaded models
    load KEY [--context N] [--gpu R|max|off] [--flash-attention]
             [--kv-cache TYPE] [--ttl S]
    unload KEY | --all
    search QUERY [--limit N] [--options]
    download KEY                  KEY as search prints it; Ctrl-C cancels

Talks to LM Studio directly through the model service, so it works whether
or not the proxy is running.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from lmbridge import config
from lmbridge.core.errors import LMBridgeError
from lmbridge.core.events import EventBus
from lmbridge.lmstudio import (
    TOPIC_DOWNLOAD_PROGRESS,
    TOPIC_LOAD_PROGRESS,
    TOPIC_LOAD_WARNING,
    CatalogSource,
    ConnectionState,
    DownloadOption,
    DownloadProgress,
    DownloadState,
    GpuOffload,
    KvCacheType,
    LMStudioService,
    LoadOptions,
    LoadProgress,
    LoadWarning,
    check_gpu_offload,
    pick_download,
)

INTERRUPTED = 130


def register(sub: Any) -> None:
    """Add `models` and its actions to the `lmbridge` command line."""
    models = sub.add_parser(
        "models", help="list, load, unload, search and download LM Studio models"
    )
    actions = models.add_subparsers(dest="models_action", required=True)
    actions.add_parser("list", help="downloaded and loaded models").set_defaults(
        run=run
    )
    load = actions.add_parser("load", help="load a model")
    load.add_argument("key", help="model key, e.g. qwen/qwen3-coder-30b")
    load.add_argument("--context", type=int, help="context length in tokens")
    load.add_argument(
        "--gpu",
        type=_gpu_offload,
        metavar="RATIO|max|off",
        help="GPU offload: a ratio 0.0 ... 1.0, max or off",
    )
    load.add_argument(
        "--flash-attention",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="turn flash attention on or off (default: LM Studio's choice)",
    )
    load.add_argument(
        "--kv-cache",
        type=KvCacheType,
        choices=list(KvCacheType),
        metavar="TYPE",
        help="quantize the K and V caches: "
        + ", ".join(KvCacheType)
        + " (V needs flash attention)",
    )
    load.add_argument("--ttl", type=int, help="unload after this many idle seconds")
    load.set_defaults(run=run)
    unload = actions.add_parser("unload", help="unload a model, or --all")
    unload.add_argument("key", nargs="?", help="model key or identifier")
    unload.add_argument("--all", action="store_true", help="unload every model")
    unload.set_defaults(run=run)
    search = actions.add_parser("search", help="search LM Studio's model catalog")
    search.add_argument("query", help="what to look for, e.g. qwen3 coder")
    search.add_argument(
        "--limit", type=int, default=10, help="at most this many models (1 ... 25)"
    )
    search.add_argument(
        "--options", action="store_true", help="every file of each model, not one"
    )
    search.set_defaults(run=run)
    download = actions.add_parser("download", help="download a model (Ctrl-C cancels)")
    download.add_argument(
        "key", help="MODEL or MODEL@QUANTIZATION, as `models search` prints it"
    )
    download.set_defaults(run=run)


def run(args: argparse.Namespace, settings: config.Settings) -> int:
    """Run one `models` action; Ctrl-C stops it (and cancels a download)."""
    try:
        return asyncio.run(_run(args, settings))
    except KeyboardInterrupt:
        print("\nlmbridge: interrupted", file=sys.stderr)
        return INTERRUPTED


def _gpu_offload(text: str) -> GpuOffload:
    try:
        return check_gpu_offload(text if text in ("max", "off") else float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a ratio 0.0 ... 1.0, max or off, not {text!r}"
        ) from None


def _service(settings: config.Settings, bus: EventBus) -> LMStudioService:
    from lmbridge.server.services import lmstudio_service

    return lmstudio_service(settings, bus)


async def _run(args: argparse.Namespace, settings: config.Settings) -> int:
    bus = EventBus()
    svc = _service(settings, bus)
    try:
        async with svc:
            status = await svc.connect()
            if status.state is not ConnectionState.CONNECTED:
                print(
                    f"lmbridge: {status.error or 'LM Studio is not reachable'}",
                    file=sys.stderr,
                )
                return 1
            return await _act(args, svc, bus)
    except LMBridgeError as exc:
        print(f"lmbridge: {exc.message}", file=sys.stderr)
        return 1


async def _act(args: argparse.Namespace, svc: LMStudioService, bus: EventBus) -> int:
    action = args.models_action
    if action == "list":
        return await _list(svc)
    if action == "load":
        return await _load(args, svc, bus)
    if action == "search":
        return await _search(args, svc)
    if action == "download":
        return await _download(args, svc, bus)
    if args.all:
        names = await svc.unload_all()
        print("unloaded " + (", ".join(names) if names else "nothing"))
        return 0
    if not args.key:
        print("lmbridge: name a model to unload, or use --all", file=sys.stderr)
        return 2
    await svc.unload(args.key)
    print(f"unloaded {args.key}")
    return 0


async def _list(svc: LMStudioService) -> int:
    downloaded = await svc.list_downloaded()
    loaded = {m.key: m for m in await svc.list_loaded()}
    print(f"{'MODEL':48} {'SIZE':>8} {'MAX CTX':>8} {'LOADED CTX':>10}  TAGS")
    for m in downloaded.models:
        tags = ",".join(
            t
            for t, on in (("vision", m.vision), ("tools", m.trained_for_tool_use))
            if on
        )
        ctx = str(loaded[m.key].context_length) if m.key in loaded else "-"
        size = _size(m.size_bytes)
        print(f"{m.key:48} {size:>8} {m.max_context_length:>8} {ctx:>10}  {tags}")
    for name in downloaded.skipped:
        print(f"(could not read {name})")
    return 0


async def _load(args: argparse.Namespace, svc: LMStudioService, bus: EventBus) -> int:
    def progress(_topic: str, payload: Any) -> None:
        if isinstance(payload, LoadProgress):
            print(
                f"\rloading {payload.model_key}: {payload.fraction:4.0%}",
                end="",
                flush=True,
            )

    def warn(_topic: str, payload: Any) -> None:
        if isinstance(payload, LoadWarning):
            print(f"\nlmbridge: warning: {payload.message}", file=sys.stderr)

    options = LoadOptions(
        flash_attention=args.flash_attention,
        k_cache_type=args.kv_cache,
        v_cache_type=args.kv_cache,
    )
    bus.subscribe(TOPIC_LOAD_PROGRESS, progress)
    bus.subscribe(TOPIC_LOAD_WARNING, warn)
    model = await svc.load(
        args.key,
        options,
        context_length=args.context,
        ttl=args.ttl,
        gpu_offload=args.gpu,
    )
    asked = ""
    if model.context_shortfall:
        asked = f" (asked for {model.requested_context_length})"
    print(
        f"\rloaded {model.key} as {model.identifier}"
        f" with context {model.context_length}{asked}"
    )
    return 0


async def _search(args: argparse.Namespace, svc: LMStudioService) -> int:
    found = await svc.downloads.search(args.query, args.limit)
    if not found:
        print(f"LM Studio found nothing for {args.query!r}")
        return 0
    print(f"{'KEY':56} {'QUANT':8} {'SIZE':>7}  {'FIT':14} BADGES")
    for model in found:
        options = await svc.downloads.download_options(model)
        badges = [
            b
            for b, on in (
                ("staff pick", model.staff_pick),
                ("exact", model.exact),
                ("hugging face", model.source is CatalogSource.HUGGING_FACE),
            )
            if on
        ]
        if args.options:
            for option in options:
                _option_row(option.key, option, badges)
            continue
        chosen = pick_download(options)
        if chosen is None:
            print(f"{model.name:56} {'-':8} {'-':>7}  {'no files':14}")
        else:
            _option_row(model.name, chosen, badges)
    return 0


def _option_row(key: str, option: DownloadOption, badges: list[str]) -> None:
    marks = [*badges, "recommended"] if option.recommended else badges
    quant = option.quantization or "-"
    size = _size(option.size_bytes)
    print(f"{key:56} {quant:8} {size:>7}  {option.fit.label:14} {', '.join(marks)}")


async def _download(
    args: argparse.Namespace, svc: LMStudioService, bus: EventBus
) -> int:
    option = await svc.downloads.resolve(args.key)
    print(
        f"downloading {option.key} ({option.name}, {_size(option.size_bytes)},"
        f" {option.fit.label}) — Ctrl-C cancels",
        flush=True,
    )

    def progress(_topic: str, payload: Any) -> None:
        if isinstance(payload, DownloadProgress) and payload.key == option.key:
            _progress_line(payload)

    bus.subscribe(TOPIC_DOWNLOAD_PROGRESS, progress)
    try:
        result = await svc.downloads.download(option)
    except asyncio.CancelledError:
        print(f"\ncancelling the download of {option.key}", file=sys.stderr)
        svc.downloads.cancel_download(option.key)
        raise
    print(
        f"\rdownloaded {option.key} as {result.model_key} — load it with:"
        f" lmbridge models load {result.model_key}"
    )
    return 0


def _progress_line(step: DownloadProgress) -> None:
    if step.state is DownloadState.DOWNLOADING:
        line = (
            f"{step.fraction:4.0%} {_size(step.downloaded_bytes)}"
            f" of {_size(step.total_bytes)} at {_size(step.speed_bytes_per_second)}/s"
        )
    elif step.state is DownloadState.FINALIZING:
        line = "finalizing"
    else:
        return
    print(f"\r{step.key}: {line:40}", end="", flush=True)


def _size(size: float) -> str:
    if size >= 1e9:
        return f"{size / 1e9:.1f}G"
    return f"{size / 1e6:.1f}M"
