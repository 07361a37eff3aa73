"""A stand-in for a coding CLI, installed on PATH under the client's name.

It records what `lmbridge launch` gave it — its arguments, its environment,
the contents of every file a variable or an argument names (the run's
temporary files are gone once launch returns) — and asks the LM Bridge
whose address it was given for `/health`, then exits as told:

- LAUNCH_PROBE: where to write the record (JSON);
- FAKE_CLIENT_EXIT: its exit status (default 0);
- FAKE_CLIENT_WAIT=1: write "ready" beside the record and wait for SIGINT;
  it then exits 130 after counting the SIGINTs delivered within 0.5 s.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import urllib.request
from pathlib import Path

URL = re.compile(r"http://127\.0\.0\.1:\d+")


def _files(values: list[str]) -> dict[str, str]:
    found = {}
    for value in values:
        # The run's own files, in launch's temporary directory.
        if "lmbridge-launch-" in value and Path(value).is_file():
            found[value] = Path(value).read_text()
    return found


def _health(texts: list[str]) -> object:
    for text in texts:
        match = URL.search(text)
        if match is not None:
            with urllib.request.urlopen(match.group(0) + "/health", timeout=10) as r:
                return json.loads(r.read())
    return None


def main() -> int:
    probe = Path(os.environ["LAUNCH_PROBE"])
    values = [*sys.argv[1:], *os.environ.values()]
    files = _files(values)
    record = {
        "name": Path(sys.argv[0]).name,
        "argv": sys.argv[1:],
        "env": dict(os.environ),
        "files": files,
        "health": _health([*values, *files.values()]),
        "pgrp_same": os.getpgrp() == os.getpgid(os.getppid()),
    }
    probe.write_text(json.dumps(record))
    if os.environ.get("FAKE_CLIENT_WAIT") == "1":
        signals: list[int] = []
        # Python runs its handler once for signals that come close together;
        # the wakeup fd gets a byte for every delivery.
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        signal.signal(signal.SIGINT, lambda s, f: signals.append(s))
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        (probe.parent / "ready").write_text("ready")
        while not signals:
            time.sleep(0.02)
        time.sleep(0.5)
        delivered = len(os.read(read_end, 100))
        (probe.parent / "sigints").write_text(str(delivered))
        return 130
    return int(os.environ.get("FAKE_CLIENT_EXIT", "0"))


if __name__ == "__main__":
    sys.exit(main())
