"""The e2e tier works: the official openai SDK talks to llama.cpp directly."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from e2e.llama_server import MODEL_ID, start_llama_server

PROMPT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello"}]


def _client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)


def test_models_lists_the_smollm2_alias(llama_server: str) -> None:
    with _client(llama_server) as client:
        ids = [model.id for model in client.models.list()]
    assert ids == [MODEL_ID]


def test_chat_completion_answers(llama_server: str) -> None:
    with _client(llama_server) as client:
        completion = client.chat.completions.create(
            model=MODEL_ID, messages=PROMPT, max_tokens=20, temperature=0
        )
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= 20


def test_streaming_chat_completion_answers(llama_server: str) -> None:
    with (
        _client(llama_server) as client,
        client.chat.completions.create(
            model=MODEL_ID, messages=PROMPT, max_tokens=20, temperature=0, stream=True
        ) as stream,
    ):
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length")


def test_a_server_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="exited with status") as failure:
        start_llama_server(model=broken, timeout=30)
    assert "broken.gguf" in str(failure.value)
