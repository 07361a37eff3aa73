"""Bytecodes per request, by function: where LM Bridge's own time goes.

Runs the fake upstream, a proxy (LM Bridge's `ProxyServer` on the bench's
config, or the floor relay) and an aiohttp client in ONE process, as
`count_instructions.py` does, and counts with `sys.settrace`'s opcode
events the bytecodes each function runs over `--n` requests after a
warm-up. Python's time on the answer path is mostly bytecodes (a call, an
attribute, a branch), so this shows where a pass-through request's cost
is, function by function and line by line, in seconds, with nothing to
install. It does not see C: msgspec, regular expressions, SQLite (in the
history's writer thread, which is not traced) count as the one bytecode
that calls them; `count_instructions.py` counts those.

Only frames created while tracing are counted: the per-request ones. The
client's and the fake's bytecodes are in the totals of both runs alike, so
`LM Bridge - floor` is what LM Bridge adds.

Run: python bench/count_bytecodes.py [--kind pass|stream|translate]
         [--n 300] [--top 40] [--lines FUNCTION ...] [--app DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import linecache
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


import count_instructions

BENCH = Path(__file__).resolve().parent
WARM_UP = 100

_counts: collections.Counter[tuple[CodeType, int]] = collections.Counter()


def _trace(frame: FrameType, event: str, _arg: Any) -> Any:
    if event == "call":
        frame.f_trace_opcodes = True
        return _trace
    if event == "opcode":
        _counts[frame.f_code, frame.f_lineno] += 1
    return _trace


def _tracing(on: bool) -> None:
    sys.settrace(_trace if on else None)


def counted(kind: str, n: int, floor: bool) -> dict[tuple[str, int, str, int], float]:
    """Bytecodes per request by (file, first line, function, line)."""
    with tempfile.TemporaryDirectory(prefix="lmbridge-bytecodes-") as tmp:
        os.environ["LMBRIDGE_HOME"] = tmp
        _counts.clear()
        run = count_instructions.serve_requests(
            kind, n, floor, Path(tmp), timed=_tracing, warm_up=WARM_UP
        )
        asyncio.run(run)
    return {
        (code.co_filename, code.co_firstlineno, code.co_name, line or 0): count / n
        for (code, line), count in _counts.items()
    }


def _short(filename: str) -> str:
    """A file under lmbridge/ by its path there."""
    return filename.split("/lmbridge/", 1)[-1]


def report(kind: str, n: int, top: int, lines: list[str]) -> None:
    floor = counted(kind, n, floor=True)
    ours = counted(kind, n, floor=False)
    total_floor, total_ours = sum(floor.values()), sum(ours.values())
    by_function: dict[tuple[str, int, str], float] = collections.defaultdict(float)
    for (filename, first, name, _line), count in ours.items():
        if "/lmbridge/" in filename:
            by_function[filename, first, name] += count
    print(
        f"bytecodes per {kind} request: floor {total_floor:,.0f}, LM Bridge"
        f" {total_ours:,.0f}, LM Bridge - floor {total_ours - total_floor:+,.0f}"
        f" (of which in lmbridge/: {sum(by_function.values()):,.0f}; n={n})"
    )
    print(f"\nLM Bridge's functions, most bytecodes first (top {top}):")
    ranked = sorted(by_function.items(), key=lambda item: -item[1])
    for (filename, first, name), count in ranked[:top]:
        print(f"{count:8.0f}  {_short(filename)}:{first} {name}")
    for wanted in lines:
        print(f"\n{wanted}, by line:")
        for (filename, _first, name, line), count in sorted(ours.items()):
            if name == wanted and "/lmbridge/" in filename and count >= 1:
                text = linecache.getline(filename, line).strip()[:80]
                print(f"{count:8.1f}  {_short(filename)}:{line}  {text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kind", choices=sorted(count_instructions.KINDS), default="pass"
    )
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--lines", nargs="*", default=[], metavar="FUNCTION")
    parser.add_argument(
        "--app",
        type=Path,
        default=None,
        help="LM Bridge's source (default: this tree's)",
    )
    args = parser.parse_args()
    if args.app is not None and os.environ.get("PYTHONPATH") != str(args.app):
        # Run again with that tree first on the path (it is imported lazily).
        env = {**os.environ, "PYTHONPATH": str(args.app)}
        argv = [sys.executable, __file__, *(a for a in sys.argv[1:])]
        return subprocess.run(argv, env=env, check=False).returncode
    if args.app is None:
        sys.path.insert(1, str(BENCH.parent / "app"))
    report(args.kind, args.n, args.top, args.lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
