"""Summarise py-spy collapsed stacks (`bench_proxy.py --profile DIR`).

Prints, for each DIR/<phase>.txt: busy samples (the event loop waiting in
epoll is left out), the share of broad categories (socket syscalls, aiohttp
server, aiohttp client, LM Bridge codecs, LM Bridge pipeline, asyncio
machinery), the functions with the most self time, and the LM Bridge
functions with the most inclusive time.

Run: python bench/profile_report.py DIR [--top N]
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

IDLE = ("EpollSelector.select", "select (selectors.py")

# First match wins, tested on the innermost frame first, then outwards.
CATEGORIES = (
    ("socket send/recv (syscalls)", ("_SelectorSocketTransport.write", "sock.recv",
                                     "_read_ready__data_received (asyncio/selector_events.py:9")),
    ("LM Bridge codecs (protocols/, core/)", ("lmbridge/protocols/", "lmbridge/core/")),
    ("LM Bridge pipeline (server/, upstreams/)", ("lmbridge/server/", "lmbridge/upstreams/")),
    ("aiohttp client", ("aiohttp/client", "aiohttp/connector")),
    ("aiohttp server and HTTP", ("aiohttp/",)),
    ("asyncio machinery", ("asyncio/",)),
)  # fmt: skip


def category(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in CATEGORIES:
            if any(n in frame for n in needles):
                return name
    return "other"


def report(path: Path, top: int) -> None:
    selfs: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    cats: collections.Counter[str] = collections.Counter()
    busy = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        if any(i in frames[-1] for i in IDLE):
            idle += n
            continue
        busy += n
        selfs[frames[-1]] += n
        cats[category(frames)] += n
        for frame in set(frames):
            incl[frame] += n
    print(f"== {path.stem}: {busy} busy samples ({idle} idle in epoll)")
    print("  by category (innermost frame):")
    for name, n in cats.most_common():
        print(f"    {100 * n / busy:5.1f}%  {name}")
    print("  top self time:")
    for frame, n in selfs.most_common(top):
        print(f"    {100 * n / busy:5.1f}%  {frame}")
    print("  LM Bridge, inclusive:")
    shown = 0
    for frame, n in incl.most_common():
        if "lmbridge/" in frame and "cli.py" not in frame and "__main__" not in frame:
            print(f"    {100 * n / busy:5.1f}%  {frame}")
            shown += 1
            if shown == top:
                break
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    for path in sorted(args.dir.glob("*.txt")):
        report(path, args.top)


if __name__ == "__main__":
    main()
