"""LM Bridge in front of a real model: `lmbridge serve --config X` (a real
subprocess) before llama.cpp serving SmolLM2-135M, driven by the official
SDKs. The model is tiny, so the tests check shape, not wisdom."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from e2e.llama_server import MODEL_ID


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def bridge(
    llama_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    home = tmp_path_factory.mktemp("bridge-home")
    cfg = home / "config.toml"
    cfg.write_text(
        f"""
[[upstream]]
name = "llama"
kind = "openai"
base_url = "{llama_server}"

[[route]]
model = "claude-*"
upstream = "llama"
target = "{MODEL_ID}"
max_tokens_limit = 48
"""
    )
    port = _free_port()
    log = (home / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lmbridge",
            "serve",
            "--config",
            str(cfg),
            "--port",
            str(port),
            "--log-requests",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LMBRIDGE_HOME": str(home)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(Path(log.name).read_text()) from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
    assert "tokens=" in Path(log.name).read_text()


def test_models_lists_the_real_model(bridge: str) -> None:
    with openai.OpenAI(base_url=bridge + "/v1", api_key="x") as client:
        ids = [m.id for m in client.models.list()]
    assert MODEL_ID in ids
    assert "claude-sonnet-4-6" in ids


def test_openai_sdk_completion(bridge: str) -> None:
    with openai.OpenAI(base_url=bridge + "/v1", api_key="x", max_retries=0) as client:
        reply = client.chat.completions.create(
            model=MODEL_ID,
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=16,
            temperature=0,
        )
        assert reply.choices[0].message.content
        assert reply.usage is not None
        assert reply.usage.completion_tokens > 0
        stream = client.chat.completions.create(
            model=MODEL_ID,
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=16,
            temperature=0,
            stream=True,
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.strip()


def test_anthropic_sdk_translated(bridge: str) -> None:
    with anthropic.Anthropic(base_url=bridge, api_key="x", max_retries=0) as client:
        message = client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=1000,
            system="You are brief.",
            messages=[{"role": "user", "content": "Say hello."}],
        )
        block = message.content[0]
        assert block.type == "text"
        assert block.text.strip()
        assert message.stop_reason in ("end_turn", "max_tokens")
        assert message.usage.output_tokens > 0
        with client.messages.stream(
            model="claude-haiku-4-5",
            max_tokens=1000,
            messages=[{"role": "user", "content": "Say hello."}],
        ) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
    assert text.strip()
    assert final.usage.input_tokens > 0
    count = anthropic.Anthropic(base_url=bridge, api_key="x").messages.count_tokens(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Say hello."}]
    )
    assert count.input_tokens > 0


def test_responses_sdk_translated(bridge: str) -> None:
    with openai.OpenAI(base_url=bridge + "/v1", api_key="x", max_retries=0) as client:
        response = client.responses.create(
            model="claude-sonnet-4-6", input="Say hello.", max_output_tokens=16
        )
        assert response.output_text.strip()
        follow = client.responses.create(
            model="claude-sonnet-4-6",
            input="And again.",
            previous_response_id=response.id,
            max_output_tokens=16,
        )
    assert follow.output_text.strip()
