"""Start and stop the benchmark's processes: the fake upstream, the floor
relay, LM Bridge (`python -m lmbridge serve`) and the load generator.

Each server binds 127.0.0.1 port 0 and prints its port; nothing here guesses
free ports. Used by bench_proxy.py and soak.py.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
RESULTS = BENCH / "results"


class Server:
    """One server process and the port it listens on."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], port: int) -> None:
        self.name = name
        self.proc = proc
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _wait_for_port(
    proc: subprocess.Popen[bytes], pattern: str, name: str, timeout: float = 30.0
) -> int:
    """Read the process's stdout until a line matches `pattern` (group 1: port)."""
    assert proc.stdout is not None
    out: IO[bytes] = proc.stdout
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([out], [], [], 0.2)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        line = out.readline().decode(errors="replace")
        if not line:
            break
        seen.append(line)
        if m := re.search(pattern, line):
            return int(m.group(1))
    proc.kill()
    raise RuntimeError(f"{name} did not start; its output: {''.join(seen)!r}")


def start(
    name: str,
    argv: list[str],
    pattern: str = r"listening (\d+)",
    env: dict[str, str] | None = None,
    stderr: IO[bytes] | None = None,
) -> Server:
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )
    return Server(name, proc, _wait_for_port(proc, pattern, name))


def start_fake() -> Server:
    return start("fake", [PYTHON, str(BENCH / "fake_upstream_server.py")])


def start_floor(upstream: str, loop: str = "asyncio") -> Server:
    argv = [PYTHON, str(BENCH / "floor_relay.py"), "--upstream", upstream]
    return start("floor", [*argv, "--loop", loop])


def lmbridge_config(fake_url: str, loop: str = "auto") -> str:
    """Pass-through for OpenAI Chat; `claude-*` translated to Chat on the fake.
    `loop`: `[server] event_loop` (auto: uvloop where installed), written
    only when not the default, so a tree from before the key (`--app`) can
    still read the file."""
    event_loop = f'event_loop = "{loop}"' if loop != "auto" else ""
    return f"""
[server]
host = "127.0.0.1"
port = 0
{event_loop}

[[upstream]]
name = "fake"
kind = "openai"
api = "chat"
base_url = "{fake_url}"

[[route]]
model = "claude-*"
upstream = "fake"
"""


def start_lmbridge(fake_url: str, home: Path, loop: str = "auto") -> Server:
    """`python -m lmbridge serve --config <tmp toml> --port 0` in `home`."""
    cfg = home / "config.toml"
    cfg.write_text(lmbridge_config(fake_url, loop))
    log = (home / "lmbridge.stderr").open("wb")
    env = {"LMBRIDGE_HOME": str(home), "PYTHONPATH": str(ROOT / "app")}
    argv = [PYTHON, "-m", "lmbridge", "serve", "--config", str(cfg), "--port", "0"]
    return start("lmbridge", argv, r"listening on http://[^:]+:(\d+)", env, log)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def run_loadgen(plan: dict[str, Any], workdir: Path, timeout: float = 600) -> Any:
    """Run bench/loadgen.py on `plan` in its own process; its JSON result."""
    path = workdir / "plan.json"
    path.write_text(json.dumps(plan))
    done = subprocess.run(
        [PYTHON, str(BENCH / "loadgen.py"), str(path)],
        stdout=subprocess.PIPE,
        check=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return json.loads(done.stdout)
