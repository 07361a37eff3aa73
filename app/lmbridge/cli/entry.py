"""The `lmbridge` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from lmbridge import __version__, config, logs
from lmbridge.cli import eventloop
from lmbridge.cli.terminal import make_output_terminal_safe
from lmbridge.core.events import REQUEST_FINISHED, EventBus

log = logging.getLogger("lmbridge")


def has_display() -> bool:
    """Whether a GUI can be shown here."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


# Modules adding command groups: each has `register(subparsers)`, which adds
# its parsers with `set_defaults(run=callable(args, settings) -> int)`.
COMMAND_MODULES: tuple[str, ...] = (
    "lmbridge.cli.models",
    "lmbridge.cli.chats",
    "lmbridge.cli.azure",
    "lmbridge.cli.integrate",
    "lmbridge.cli.config_cmd",
    "lmbridge.cli.desktop",
    "lmbridge.cli.usage",
    "lmbridge.cli.launch",
)


def add_global_options(parser: argparse.ArgumentParser, *, here: bool) -> None:
    """The options every command takes, before or after its name.

    `here` is the top-level parser, which holds the defaults; every
    subcommand's parser repeats the options with SUPPRESS defaults, so a
    value given before the subcommand is not reset by the subcommand's
    parser, and one given after it wins.
    """

    def default(value: object) -> object:
        return value if here else argparse.SUPPRESS

    parser.add_argument(
        "--config", type=Path, default=default(None), help="config file (TOML)"
    )
    parser.add_argument(
        "--log-level",
        default=default("WARNING"),
        help="log level on stderr (default WARNING)",
    )


def _subcommand_parsers(
    parser: argparse.ArgumentParser,
) -> list[argparse.ArgumentParser]:
    """Every subcommand's parser below `parser`, nested ones included."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += [child, *_subcommand_parsers(child)]
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lmbridge",
        description="One local endpoint for Claude Code, Codex, IDE plugins and "
        "SDKs, in front of LM Studio, Azure AI Foundry or any OpenAI server.",
    )
    parser.add_argument(
        "--version", action="version", version=f"lmbridge {__version__}"
    )
    add_global_options(parser, here=True)
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the proxy headless")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help=f"port (default {config.DEFAULT_PORT})")
    serve.add_argument(
        "--log-requests", action="store_true", help="print one line per request"
    )
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    # Global options are accepted after any subcommand too.
    for child in _subcommand_parsers(parser):
        add_global_options(child, here=False)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """`argv` parsed; for `launch`, what follows `--` is the client's own
    (argparse would read options there as ours)."""
    from lmbridge.cli.launch import split_client_args

    head, tail = split_client_args(argv)
    if tail is not None and "launch" in head:
        args = parser.parse_args(head)
        if args.command == "launch":
            args.client_args = tail
            return args
    return parser.parse_args(argv)


def load_settings(args: argparse.Namespace) -> config.Settings:
    settings = config.load(args.config)
    if getattr(args, "host", None):
        settings.server.host = args.host
    if getattr(args, "port", None) is not None:
        settings.server.port = args.port
    if getattr(args, "log_requests", False):
        settings.server.log_requests = True
    config.check_exposure(settings.server, "--host")
    return settings


async def with_saved_token(settings: config.Settings) -> config.Settings:
    """`settings` with the access token saved in the app's Settings (the
    keyring), unless the file or its environment variable sets one."""
    from lmbridge.auth.secrets import SECRETS
    from lmbridge.core.errors import LMBridgeError
    from lmbridge.settings_service import ACCESS_TOKEN_SECRET, with_access_token

    try:
        token = await SECRETS.get(ACCESS_TOKEN_SECRET) or ""
    except LMBridgeError as exc:
        print(f"lmbridge: the saved access token is unreadable: {exc}", file=sys.stderr)
        return settings
    return with_access_token(settings, token)


async def serve(settings: config.Settings) -> int:
    """Run the proxy until SIGINT/SIGTERM."""
    from lmbridge.core.errors import LocalError
    from lmbridge.core.urls import Url
    from lmbridge.server.requestlog import RequestLogPrinter
    from lmbridge.server.runner import ProxyServer

    settings = await with_saved_token(settings)
    bus = EventBus()
    if settings.server.log_requests:
        bus.subscribe(REQUEST_FINISHED, RequestLogPrinter(sys.stdout))
    server = ProxyServer(settings, bus)
    try:
        await server.start()
    except LocalError as exc:  # the port is taken, or the token too weak
        print(f"lmbridge: {exc}", file=sys.stderr)
        return 2
    print(f"LM Bridge {__version__} listening on {server.url}", flush=True)
    for up in settings.upstream:
        url = Url(up.base_url)  # shown as user:***@host
        print(f"  upstream {up.name}: {up.kind} {url}", flush=True)
        if url.has_credentials:
            log.warning(
                "upstream %s: base_url holds a password, which config.toml keeps"
                " in plain text (it is never shown) — remove it from base_url"
                " and save the key in the app's Settings, which keeps it in the"
                " keyring",
                up.name,
            )
    if server.services is not None:  # the file, or what is wrong and the fix
        print(f"  {server.services.database_state.summary()}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    settle_heap()
    # The last start-up line, once SIGINT and SIGTERM stop it cleanly.
    print(f"  event loop: {eventloop.loop_name(loop)}", flush=True)
    try:
        await stop.wait()
    finally:
        try:
            await server.stop()
        finally:
            # The default handlers back while the loop still runs: uvloop
            # cannot remove its own once closed, and Ctrl-C and SIGTERM
            # would do nothing while the process exits.
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.remove_signal_handler(sig)
    print("LM Bridge stopped", flush=True)
    return 0


# Tracked objects allocated (net of those freed) between two collections of
# the young generation; Python's default is 700.
YOUNG_GENERATION_THRESHOLD = 10_000


def settle_heap() -> int:
    """Set what is alive once serve has started (modules, the server, its
    stores: about 300k objects) aside from the garbage collector with
    `gc.freeze`, after one collection of start-up's garbage, and collect
    the young generation less often; returns how many objects were set
    aside.

    Python's full collections walk every tracked object, and serve's start
    leaves many: on the 2-core VM each took 60-77 ms, a stall of every
    answer in flight (under 50 concurrent requests, p99 latency 110-130 ms
    against the floor relay's 55-65). Frozen, a full collection takes
    0.4-3 ms (p99 61 ms). A cycle among the frozen objects that becomes
    garbage later is never freed; they live as long as serve does. The
    desktop app does the same once its window is up (`MainThreadGC.settle`).

    The requests in flight at concurrency 50 hold more tracked objects than
    the default threshold of 700, so the young generation was collected
    every ~14 requests, each time walking live requests that it could not
    free: ~430 collections and 330 ms in 5 s, 7% of the proxy's CPU. At
    `YOUNG_GENERATION_THRESHOLD` it was collected once. Cyclic garbage
    waits a little longer to be freed: at most that many tracked objects
    (what they hold can be more: a traceback's frames, a request's body).
    """
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    _young, *older = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *older)
    log.debug(
        "%d objects set aside from garbage collection; the young generation"
        " is collected every %d new objects",
        frozen,
        YOUNG_GENERATION_THRESHOLD,
    )
    return frozen


def run_desktop_app(settings: config.Settings, args: argparse.Namespace) -> int:
    """The tray app and its window; the headless proxy, said in one line,
    if Qt cannot start here (a system library or PySide6 missing)."""
    from lmbridge.cli.desktop import qt_platform_problem

    problem = qt_platform_problem()
    if problem is None:
        try:
            from lmbridge.gui.app import run
        except ImportError as exc:
            problem = str(exc)
    if problem is not None:
        print(
            f"lmbridge: the desktop app cannot start: {problem}; running the "
            "proxy headless (as `lmbridge serve`)",
            file=sys.stderr,
            flush=True,
        )
        return serve_headless(settings)
    return run(settings, args.config)


def serve_headless(settings: config.Settings) -> int:
    """`serve` on the loop `[server] event_loop` names (cli/eventloop.py)."""
    try:
        return eventloop.run(serve(settings), settings.server.event_loop)
    except eventloop.LoopUnavailable as exc:
        print(f"lmbridge: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    make_output_terminal_safe()
    parser = build_parser()
    args = parse_args(parser, sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(args)
    except config.ConfigError as exc:
        print(f"lmbridge: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.setup_for_command(settings)
    command = args.command
    if command is None:
        if has_display():
            return run_desktop_app(settings, args)
        print(
            "lmbridge: no display found; running the proxy headless (as "
            "`lmbridge serve`): neither DISPLAY nor WAYLAND_DISPLAY is set",
            file=sys.stderr,
            flush=True,
        )
        command = "serve"
    if command == "serve":
        return serve_headless(settings)
    run: Callable[[argparse.Namespace, config.Settings], int] = args.run
    return run(args, settings)


if __name__ == "__main__":
    sys.exit(main())
