"""A stand-in for the LM Studio of a developer's machine, to prove the suite
hermetic (`.ci/run` starts it, runs `make test`, then stops it).

It serves the fake LM Studio (greeting, REST and the SDK's websocket
protocol, with a model loaded) on 127.0.0.1:1234 and on every port the
SDK's discovery probes, and writes a `~/.lmstudio` whose server file names
1234 into the given home. A test that reaches any of them sees an LM Studio
it did not start, and its assertions about "nothing running" fail. A port
that is taken already (a real LM Studio) is left to whatever listens there:
that one is the stand-in.

    python tests/standin_lmstudio.py --home DIR [--ready FILE]

Runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

# Run as a script, this file's directory (tests/) is on sys.path.
from fakes.lmstudio_server import FakeLMStudio
from lmbridge.lmstudio.discovery import sdk_default_ports

DEFAULT_PORT = 1234
LOADED = "qwen/qwen3-coder-30b"


def write_home(home: Path) -> None:
    """A `~/.lmstudio` as LM Studio leaves it: a server file and `lms`."""
    lms_home = home / ".lmstudio"
    (lms_home / ".internal").mkdir(parents=True, exist_ok=True)
    server = {"port": DEFAULT_PORT, "networkInterface": "127.0.0.1", "cors": False}
    (lms_home / ".internal" / "http-server-config.json").write_text(
        json.dumps(server), encoding="utf-8"
    )
    (lms_home / "bin").mkdir(exist_ok=True)
    lms = lms_home / "bin" / "lms"
    lms.write_text("#!/bin/sh\necho 'stand-in lms'\n", encoding="utf-8")
    lms.chmod(0o755)


async def serve(home: Path, ready: Path | None) -> int:
    await asyncio.to_thread(write_home, home)
    fakes: list[FakeLMStudio] = []
    for port in (DEFAULT_PORT, *sdk_default_ports()):
        fake = FakeLMStudio()
        try:
            await fake.start(port)
        except OSError as exc:
            await fake.stop()
            print(
                f"stand-in: 127.0.0.1:{port} is taken ({exc.strerror});"
                " what listens there stands in",
                flush=True,
            )
            continue
        fake.preload(LOADED)
        fakes.append(fake)
    ports = ", ".join(str(f.port) for f in fakes) or "none"
    print(f"stand-in LM Studio on 127.0.0.1 ports {ports}; home {home}", flush=True)
    if ready is not None:
        await asyncio.to_thread(ready.write_text, "ready\n", encoding="utf-8")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    reached = {f.port: f.ws_connections + len(f.chat_requests) for f in fakes}
    for fake in fakes:
        await fake.stop()
    touched = {port: n for port, n in reached.items() if n}
    if touched:
        print(f"stand-in: reached during the run: {touched}", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="the fake HOME")
    parser.add_argument("--ready", type=Path, help="written once serving")
    args = parser.parse_args()
    return asyncio.run(serve(args.home, args.ready))


if __name__ == "__main__":
    sys.exit(main())
