"""`lmbridge models list|load KEY [--context N]|unload KEY|--all`.

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
from lmbridge.lmstudio import ConnectionState, LMStudioService, LoadProgress
from lmbridge.lmstudio.structs import TOPIC_LOAD_PROGRESS


def register(sub: Any) -> None:
    models = sub.add_parser("models", help="list, load and unload LM Studio models")
    actions = models.add_subparsers(dest="models_action", required=True)
    actions.add_parser("list", help="downloaded and loaded models").set_defaults(
        run=run
    )
    load = actions.add_parser("load", help="load a model")
    load.add_argument("key", help="model key, e.g. qwen/qwen3-coder-30b")
    load.add_argument("--context", type=int, help="context length in tokens")
    load.add_argument("--ttl", type=int, help="unload after this many idle seconds")
    load.set_defaults(run=run)
    unload = actions.add_parser("unload", help="unload a model, or --all")
    unload.add_argument("key", nargs="?", help="model key or identifier")
    unload.add_argument("--all", action="store_true", help="unload every model")
    unload.set_defaults(run=run)


def run(args: argparse.Namespace, settings: config.Settings) -> int:
    return asyncio.run(_run(args, settings))


def _service(settings: config.Settings, bus: EventBus) -> LMStudioService:
    from lmbridge.server.models_api import service_for

    found = service_for(settings, bus)
    if found is None:
        return LMStudioService(bus)
    return found[0]


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
            size = f"{m.size_bytes / 1e9:.1f}G"
            print(f"{m.key:48} {size:>8} {m.max_context_length:>8} {ctx:>10}  {tags}")
        for name in downloaded.skipped:
            print(f"(could not read {name})")
        return 0
    if action == "load":

        def progress(_topic: str, payload: Any) -> None:
            if isinstance(payload, LoadProgress):
                print(
                    f"\rloading {payload.model_key}: {payload.fraction:4.0%}",
                    end="",
                    flush=True,
                )

        bus.subscribe(TOPIC_LOAD_PROGRESS, progress)
        model = await svc.load(args.key, context_length=args.context, ttl=args.ttl)
        print(
            f"\rloaded {model.key} as {model.identifier}"
            f" with context {model.context_length}"
        )
        return 0
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
