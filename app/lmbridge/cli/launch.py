"""`lmbridge launch <client> [--model M] [-- client args]`: a coding CLI on
LM Bridge, for one run.

Uses the LM Bridge running at the configured address (the tray app's or
`lmbridge serve`), else runs one in this process on a free port for the
session; makes sure the model is there (loaded in LM Studio with the
context the client needs); runs the client with the environment and
flags of this run (`lmbridge.launch.clients`), writing none of the user's
files; and exits with the client's status. `--list` shows the clients and
whether each is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from lmbridge import config
from lmbridge.core.errors import LaunchError
from lmbridge.launch import bridge as bridges
from lmbridge.launch import clients, models
from lmbridge.launch.runner import client_env, run_client
from lmbridge.lmstudio import LMStudioService

# Exit statuses of launch itself (the client's own status otherwise).
SETUP_FAILED = 2
NOT_INSTALLED = 127
DEFAULT_LOG_LEVEL = "WARNING"  # entry.py's default for --log-level


def register(subparsers: Any) -> None:
    """Add `launch`."""
    parser = subparsers.add_parser(
        "launch",
        help="run a coding CLI (claude, codex, ...) on LM Bridge",
        usage="lmbridge launch [options] CLIENT [-- CLIENT ARGS]\n"
        "       lmbridge launch --list",
        description="Run a coding CLI on LM Bridge for this run only: its "
        "base URL, key, models and context window are set in its environment "
        "and flags, none of its files are written. Arguments after -- go to "
        "the client.",
    )
    parser.add_argument(
        "client", nargs="?", choices=clients.CLIENT_IDS, help="the client to run"
    )
    parser.add_argument(
        "--list", action="store_true", help="list the clients and where they are"
    )
    parser.add_argument("--model", default="", help="the model the client uses")
    parser.add_argument(
        "--small-model",
        default="",
        help="the model for background work (titles, summaries; default --model)",
    )
    parser.add_argument(
        "--hold",
        action="store_true",
        help="when the client or launch fails, wait for Enter before exiting "
        "(for a terminal window opened just for this run)",
    )
    parser.set_defaults(run=run, client_args=[])


def split_client_args(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """`argv` before the first `--` and the client's arguments after it
    (None: no `--`)."""
    if "--" not in argv:
        return argv, None
    at = argv.index("--")
    return argv[:at], argv[at + 1 :]


def list_clients() -> str:
    """What `lmbridge launch --list` prints."""
    lines = []
    for client in clients.CLIENTS.values():
        where = client.find()
        state = (
            f"installed: {where}"
            if where
            else f"not installed (npm install -g {client.package})"
        )
        lines.append(f"{client.id:9} {client.name:13} {state}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, settings: config.Settings) -> int:
    status = _run_launch(args, settings)
    if args.hold and status != 0:
        _wait_for_enter(status)
    return status


def _wait_for_enter(status: int) -> None:
    """Keep a terminal window opened for this run until the user read why
    it failed."""
    print(f"\n[exit status {status}] Press Enter to close.", file=sys.stderr)
    with contextlib.suppress(EOFError, KeyboardInterrupt, OSError):
        input()


def _run_launch(args: argparse.Namespace, settings: config.Settings) -> int:
    if args.list or args.client is None:
        sys.stdout.write(list_clients())
        return 0
    client = clients.CLIENTS[args.client]
    executable = client.find()
    if executable is None:
        print(
            f"lmbridge: {client.name} is not installed: `{client.binary}` is not "
            f"on PATH — npm install -g {client.package}",
            file=sys.stderr,
        )
        return NOT_INSTALLED
    try:
        with _log_to_file_only(args.log_level):
            return asyncio.run(_launch(args, settings, client, executable))
    except LaunchError as exc:
        print(f"lmbridge: {exc.message}", file=sys.stderr)
        return SETUP_FAILED


@contextlib.contextmanager
def _log_to_file_only(level: str) -> Iterator[None]:
    """Keep log lines off the terminal the client draws on (they still go
    to the log file), unless --log-level asked for them; launch says what
    matters in its own lines."""
    if level.upper() != DEFAULT_LOG_LEVEL:
        yield
        return
    root = logging.getLogger()
    terminal = [
        h
        for h in root.handlers
        if isinstance(h, logging.StreamHandler)
        and not isinstance(h, logging.FileHandler)
    ]
    levels = [h.level for h in terminal]
    for handler in terminal:
        handler.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for handler, old in zip(terminal, levels, strict=True):
            handler.setLevel(old)


@contextlib.asynccontextmanager
async def session_bridge(
    settings: config.Settings, lmstudio: LMStudioService | None
) -> AsyncIterator[bridges.Bridge]:
    """The running LM Bridge, else one of ours for the session."""
    found = await bridges.running_bridge(settings)
    if found is not None:
        yield found
        return
    async with bridges.headless_bridge(settings, lmstudio) as ours:
        yield ours


async def _launch(
    args: argparse.Namespace,
    settings: config.Settings,
    client: clients.LaunchClient,
    executable: str,
) -> int:
    from lmbridge.cli.entry import with_saved_token

    settings = await with_saved_token(settings)
    async with models.lmstudio_session(settings, args.model) as lmstudio:
        chosen = await models.prepare(
            settings, client, lmstudio, args.model, args.small_model
        )
        async with session_bridge(settings, lmstudio) as bridge:
            return await _run(args, settings, client, executable, chosen, bridge)


async def _run(
    args: argparse.Namespace,
    settings: config.Settings,
    client: clients.LaunchClient,
    executable: str,
    chosen: clients.LaunchModels,
    bridge: bridges.Bridge,
) -> int:
    """Run the client on `bridge`, with the run's files in a private
    temporary directory removed afterwards."""
    if not models.uses_lmstudio(settings, chosen.model):
        await _check_offered(settings, bridge, chosen.model)
    how = "started for this session" if bridge.ours else "running"
    window = f", context {chosen.window:,}" if chosen.window else ""
    print(
        f"lmbridge: {client.name} on LM Bridge {bridge.version} at "
        f"{bridge.endpoint.root} ({how}), model {chosen.model}{window}",
        file=sys.stderr,
        flush=True,
    )
    with tempfile.TemporaryDirectory(
        prefix="lmbridge-launch-", dir=scratch_root()
    ) as scratch:
        plan = client.build(bridge.endpoint, chosen, Path(scratch))
        argv = [executable, *plan.args, *args.client_args]
        return await run_client(argv, client_env(plan))


def scratch_root() -> Path:
    """Where the runs' private temporary directories go: LM Bridge's data
    folder, not /tmp — Gemini CLI skips a settings file below a folder
    others can write to (/tmp is one)."""
    root = config.data_dir() / "launch"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


async def _check_offered(
    settings: config.Settings, bridge: bridges.Bridge, model: str
) -> None:
    """A model outside LM Studio must be one the bridge serves: routed by
    name, or listed by its /v1/models."""
    if any(route.matches(model) for route in settings.route):
        return
    offered = await bridges.offered_models(bridge)
    if not offered or model in offered:
        return
    shown = ", ".join(offered[:8]) + (", …" if len(offered) > 8 else "")
    raise LaunchError(
        f"LM Bridge does not offer the model {model!r} (it offers {shown}) — "
        "choose one with --model, or add a [[route]] for it"
    )
