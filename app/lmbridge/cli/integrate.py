"""`lmbridge integrate [TOOL] [--write]`: point an AI tool at LM Bridge.

Without --write it only prints: the protocol, the variables, the config
fragment and the steps. With --write it shows the diff of the tool's config
file, asks before writing (on a terminal, unless --yes), writes it with a
timestamped backup of the old file and prints the backup's path.

Claude Code and Codex are told the context window of their models
(integrations/context.py): --context-window, else the route's
`context_window`, else what LM Studio has the model loaded with (asked
here, when the model goes to the managed LM Studio and it is running).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
from pathlib import Path
from typing import Any

from lmbridge import config, integrations
from lmbridge.core.errors import LMBridgeError
from lmbridge.core.events import EventBus
from lmbridge.integrations import Integration, IntegrationError, ModelChoice

# How long to wait for LM Studio's loaded models; past it, none are known.
LMSTUDIO_WAIT = 5.0


def register(subparsers: Any) -> None:
    """Add `integrate`."""
    parser = subparsers.add_parser(
        "integrate",
        help="show (or write) the settings that point a tool at LM Bridge",
        description="Show the environment variables and config that point a "
        "tool at LM Bridge; --write merges them into the tool's config file.",
    )
    parser.add_argument(
        "tool",
        nargs="?",
        choices=integrations.TOOL_IDS,
        help="the tool; without it, list the tools",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="merge into the tool's config file (with a backup of the old one)",
    )
    parser.add_argument("--yes", "-y", action="store_true", help="write without asking")
    parser.add_argument("--model", default="", help="the model the tool should use")
    parser.add_argument("--opus", default="", help="Claude Code: model for opus")
    parser.add_argument("--sonnet", default="", help="Claude Code: model for sonnet")
    parser.add_argument("--haiku", default="", help="Claude Code: model for haiku")
    parser.add_argument(
        "--small-fast",
        default="",
        help="Claude Code: ANTHROPIC_SMALL_FAST_MODEL (default: --haiku)",
    )
    parser.add_argument(
        "--context-window",
        type=int,
        default=0,
        metavar="TOKENS",
        help="the models' context window, for the tools' auto-compaction "
        "(default: the route's context_window, else LM Studio's loaded context)",
    )
    parser.add_argument(
        "--home", type=Path, help="home directory holding the tool's config"
    )
    parser.set_defaults(run=run)


def _choice(args: argparse.Namespace) -> ModelChoice:
    return ModelChoice(
        model=args.model,
        opus=args.opus,
        sonnet=args.sonnet,
        haiku=args.haiku,
        small_fast=args.small_fast,
        context_window=max(0, args.context_window),
    )


def loaded_contexts(settings: config.Settings) -> dict[str, int]:
    """What LM Studio has loaded, by identifier and key: its context length.

    Empty when LM Studio is not managed, not running or slow to answer.
    """
    if not settings.lmstudio.manage or not any(
        u.kind == "lmstudio" for u in settings.upstream
    ):
        return {}
    from lmbridge.server.services import lmstudio_service

    async def fetch() -> dict[str, int]:
        async with lmstudio_service(settings, EventBus()) as svc:
            await svc.connect()
            models = await svc.list_loaded()
        found = {m.key: m.context_length for m in models}
        found.update({m.identifier: m.context_length for m in models})
        return found

    async def bounded() -> dict[str, int]:
        try:
            return await asyncio.wait_for(fetch(), LMSTUDIO_WAIT)
        except (LMBridgeError, TimeoutError):
            return {}

    return asyncio.run(bounded())


def served_windows(settings: config.Settings) -> dict[str, int]:
    """One slot's window of each `llamacpp` upstream, by name, as its
    server's `/props` says (missing where the server does not answer)."""
    from lmbridge.upstreams.llamacpp import LlamaCppUpstream

    servers = [u for u in settings.upstream if u.kind == "llamacpp"]
    if not servers:
        return {}

    async def ask(upstream: LlamaCppUpstream) -> int | None:
        try:
            await upstream.start()
            return await asyncio.wait_for(upstream.context_window(""), LMSTUDIO_WAIT)
        except TimeoutError:
            return None
        finally:
            await upstream.close()

    async def fetch() -> dict[str, int]:
        windows = await asyncio.gather(*(ask(LlamaCppUpstream(u)) for u in servers))
        return {
            u.name: window for u, window in zip(servers, windows, strict=True) if window
        }

    return asyncio.run(fetch())


def render(integration: Integration) -> str:
    """The text `lmbridge integrate TOOL` prints."""
    out = [
        f"{integration.name} — speaks {integration.protocol_name}",
        f"base URL: {integration.base_url}",
    ]
    for snippet in integration.snippets:
        out += ["", f"{snippet.title}:", textwrap.indent(snippet.text.rstrip(), "  ")]
    if integration.steps:
        out += ["", "Steps:"]
        out += [f"  {n}. {step}" for n, step in enumerate(integration.steps, 1)]
    if integration.writable:
        out += [
            "",
            f"`lmbridge integrate {integration.id} --write` merges this into "
            f"{integration.config_path}.",
        ]
    return "\n".join(out) + "\n"


def now_configured(tool: str, settings: config.Settings, home: Path | None) -> str:
    """One line on what the tool's files point at now ("" if nothing)."""
    found = integrations.current(tool, home=home)
    if found is None:
        return ""
    where = found.base_url or "its own default server"
    whose = (
        "LM Bridge"
        if found.points_at(integrations.Endpoint.from_settings(settings))
        else where
    )
    models = [m for m in (found.choice.model, found.choice.sonnet) if m]
    model = f", model {models[0]}" if models else ""
    return f"Now: {found.path} points it at {whose}{model}."


def _list(settings: config.Settings) -> int:
    for item in integrations.describe_all(settings):
        writer = f"  (--write: {item.config_path})" if item.writable else ""
        print(f"{item.id:14} {item.name:15} {item.protocol_name}{writer}")
    return 0


def _confirm(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def run(args: argparse.Namespace, settings: config.Settings) -> int:
    if args.tool is None:
        return _list(settings)
    choice = _choice(args)
    if args.tool in ("claude-code", "codex") and not choice.context_window:
        choice = integrations.with_context_window(
            args.tool,
            settings,
            choice,
            loaded_contexts(settings).get,
            served_windows(settings).get,
        )
    try:
        integration = integrations.describe(args.tool, settings, choice, home=args.home)
        if not args.write:
            sys.stdout.write(render(integration))
            now = now_configured(args.tool, settings, args.home)
            if now:
                print(f"\n{now}")
            return 0
        plan = integrations.plan_write(args.tool, settings, choice, home=args.home)
        for note in plan.notes:
            print(f"note: {note}")
        if not plan.changed:
            print(f"{plan.path} already points {integration.name} at LM Bridge")
            return 0
        sys.stdout.write(plan.diff())
        if not args.yes:
            if not sys.stdin.isatty():
                print(
                    "lmbridge: not writing without confirmation; run on a "
                    "terminal, or add --yes",
                    file=sys.stderr,
                )
                return 1
            if not _confirm(f"Write {plan.path}?"):
                print("nothing written")
                return 1
        result = integrations.write(plan)
    except IntegrationError as exc:
        print(f"lmbridge: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {result.path}")
    if result.backup is not None:
        print(f"backup of the previous file: {result.backup}")
    return 0
