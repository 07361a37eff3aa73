"""`lmbridge usage`: requests, tokens, errors and speed from the history.

Reads the request history in the database directly (store/usage.py), so
the proxy need not run. The figures are those of the GUI Usage page.
Names are printed terminal-safe (control characters escaped).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from lmbridge import config
from lmbridge.core import errors
from lmbridge.core.redact import printable, scrub
from lmbridge.store.db import Database
from lmbridge.store.usage import UsageStore
from lmbridge.store.usage_types import RequestStats, start_of_days

HEADERS = (
    "requests",
    "tokens in",
    "cached",
    "kept",
    "tokens out",
    "errors",
    "median TTFT",
    "tok/s",
)
MAX_KEY = 40


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if days < 1:
        raise argparse.ArgumentTypeError("--days must be at least 1")
    return days


def register(subparsers: Any) -> None:
    """Add the `usage` command to the `lmbridge` parser."""
    usage: argparse.ArgumentParser = subparsers.add_parser(
        "usage", help="requests, tokens, errors and speed of recent days"
    )
    usage.add_argument(
        "--days",
        type=_days,
        default=7,
        metavar="N",
        help="the last N days, today included (default 7)",
    )
    usage.add_argument(
        "--by",
        choices=("model", "client"),
        default="model",
        help="one row per model (default) or per client",
    )
    usage.set_defaults(run=run_usage)


def _ttft(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _row(label: str, stats: RequestStats) -> list[str]:
    label = printable(label)  # a model or client name may hold escapes
    if len(label) > MAX_KEY:
        label = label[: MAX_KEY - 1] + "…"
    return [
        label or "-",
        f"{stats.requests:,}",
        f"{stats.tokens_in:,}",
        "-" if stats.cache_share is None else f"{stats.cache_share:.0%}",
        "-" if stats.kept_share is None else f"{stats.kept_share:.0%}",
        f"{stats.tokens_out:,}",
        f"{stats.errors:,}",
        _ttft(stats.ttft_p50),
        "-" if stats.tps_p50 is None else f"{stats.tps_p50:.1f}",
    ]


def format_table(by: str, rows: list[RequestStats], total: RequestStats) -> str:
    """The table: a row per key, then the total when there are several."""
    lines = [[by, *HEADERS]] + [_row(r.key, r) for r in rows]
    if len(rows) > 1:
        lines.append(_row("total", total))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ).rstrip()
        for line in lines
    )


def _period(days: int) -> str:
    return "today" if days == 1 else f"in the last {days} days"


def run_usage(args: argparse.Namespace, settings: config.Settings) -> int:
    """Print the usage table of the last `--days` days."""
    days: int = args.days
    since = start_of_days(days)

    async def work() -> int:
        db = Database.in_dir(config.data_dir())
        try:
            await db.open()
            store = UsageStore(db)
            rows = await store.stats(since, by=args.by, bucket="all")
            totals = await store.stats(since, by=None, bucket="all")
        except errors.LMBridgeError as err:
            print(f"lmbridge: {printable(scrub(err.message))}", file=sys.stderr)
            return 1
        finally:
            await db.close()
        if not totals:
            hint = (
                "" if settings.usage.record else " (recording is off: [usage] record)"
            )
            print(f"No requests recorded {_period(days)}{hint}.")
            return 0
        print(f"Requests {_period(days)}, by {args.by}:")
        print(format_table(args.by, rows, totals[0]))
        return 0

    return asyncio.run(work())
