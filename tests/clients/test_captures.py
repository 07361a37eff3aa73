"""The recorded first turns of the newer CLIs (tests/clients/captures/) are
those of the pinned versions, hold no secret, and still say what LM Bridge
and its docs rely on. A moved pin fails here until `python
tests/clients/first_turns.py tests/clients/captures` has recorded the new
version's first turn. Runs without the CLIs: it reads files only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clients import harness
from clients.first_turns import VERSIONS, pinned

MISSING = None  # never skipped
CAPTURES = Path(__file__).with_name("captures")
CHAT_CLIENTS = ("opencode", "cline", "qwen", "cn")


def capture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CAPTURES / f"{name}.json").read_text())
    return data


@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_each_capture_is_of_the_pinned_version(name: str) -> None:
    recorded = capture(name)
    assert recorded["client"] == name
    assert recorded["version"] == pinned(VERSIONS[name]), (
        f"the Makefile pins another {name}: run "
        "`python tests/clients/first_turns.py tests/clients/captures`"
    )


@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_captures_hold_no_secret(name: str) -> None:
    text = (CAPTURES / f"{name}.json").read_text()
    assert harness.FAKE_KEY not in text
    for header, value in capture(name)["first_turn"]["headers"].items():
        if header.lower() in ("authorization", "x-goog-api-key", "x-api-key"):
            assert value in ("<key>", "Bearer <key>"), header


@pytest.mark.parametrize("name", CHAT_CLIENTS)
def test_the_chat_clients_stream_chat_completions_with_a_bearer_key(
    name: str,
) -> None:
    turn = capture(name)["first_turn"]
    assert (turn["method"], turn["path"]) == ("POST", "/v1/chat/completions")
    assert turn["headers"]["Authorization"] == "Bearer <key>"
    body = turn["body"]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"][:2] == ["system", "user"]
    assert body["tools"]


def test_gemini_cli_streams_generate_content_with_a_goog_key() -> None:
    turn = capture("gemini")["first_turn"]
    assert turn["path"] == "/v1beta/models/fake-model:streamGenerateContent"
    assert turn["query"] == {"alt": "sse"}
    assert turn["headers"]["x-goog-api-key"] == "<key>"
    assert turn["body"]["contents"] == ["user"]
    assert "run_shell_command" in turn["body"]["tools"]
