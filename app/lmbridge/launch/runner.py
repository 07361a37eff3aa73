"""Running the client: its environment, its signals, its exit status.

The client inherits the terminal (stdin, stdout, stderr) and runs in
launch's process group, so a Ctrl-C typed in the terminal reaches it
directly, as it reaches any program a shell starts. Launch itself does not
die of it: it ignores SIGINT while the client runs and waits for the
client to end, then stops its headless LM Bridge. A signal sent to launch
alone (not from a terminal: `kill`, a parent process) is passed on to the
client: SIGTERM always, SIGINT and SIGHUP when no terminal is attached
(a terminal delivers those to the client itself, and twice would be a
second Ctrl-C, which Claude Code reads as "exit").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence

from lmbridge.launch.clients import ClientRun


def client_env(run: ClientRun, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The client's environment: ours, less `run.unset`, plus `run.env`."""
    env = dict(os.environ if base is None else base)
    for name in run.unset:
        env.pop(name, None)
    env.update(run.env)
    return env


def exit_status(returncode: int) -> int:
    """A process's status as a shell reports it (killed by signal N: 128+N)."""
    return 128 - returncode if returncode < 0 else returncode


def _forwarded() -> tuple[signal.Signals, ...]:
    names = ["SIGTERM"]
    if not (sys.stdin is not None and sys.stdin.isatty()):
        names += ["SIGINT", "SIGHUP"]
    return tuple(getattr(signal, n) for n in names if hasattr(signal, n))


async def run_client(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run the client to its end; its exit status."""
    proc = await asyncio.create_subprocess_exec(*argv, env=dict(env))
    with _signals_to(proc):
        try:
            return exit_status(await proc.wait())
        finally:
            if proc.returncode is None:  # launch itself is being cancelled
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                await proc.wait()


@contextlib.contextmanager
def _signals_to(proc: asyncio.subprocess.Process) -> Iterator[None]:
    """While the client runs: SIGINT does not stop launch, and the signals
    `_forwarded()` names are passed on to the client."""
    if sys.platform == "win32":
        # Ctrl-C reaches every process of the console, the client too.
        previous = signal.signal(signal.SIGINT, lambda _s, _f: None)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
        return
    loop = asyncio.get_running_loop()

    def forward(sig: signal.Signals) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    forwarded = _forwarded()
    watched = {signal.SIGINT, *forwarded}
    for sig in watched:
        if sig in forwarded:
            loop.add_signal_handler(sig, forward, sig)
        else:
            loop.add_signal_handler(sig, lambda: None)
    try:
        yield
    finally:
        for sig in watched:
            loop.remove_signal_handler(sig)
