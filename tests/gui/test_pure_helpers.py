"""The GUI's pure helpers: redaction, curl, answer text, today's numbers,
sizes and client names, and the PySide workaround."""

from __future__ import annotations

import datetime
import json
import sys

from lmbridge import apiclient
from lmbridge.core.events import RequestRecord
from lmbridge.gui import qtfix
from lmbridge.gui.formats import size_text
from lmbridge.gui.models.downloads import speed_text
from lmbridge.gui.requests import bodies
from lmbridge.gui.stats import TodayStats
from lmbridge.store.usage_types import client_name


def test_redact_hides_keys_and_tokens_in_json_and_text() -> None:
    body = json.dumps(
        {
            "model": "m",
            "api_key": "abc",
            "max_tokens": 5,
            "headers": {"Authorization": "Bearer eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl"},
            "messages": [
                {"role": "user", "content": "my key is sk-ant-api03-abcdefghijklmnop"}
            ],
        }
    )
    shown = bodies.pretty(body)
    assert "abc" not in shown.replace("abcdefghijklmnop", "")
    assert "sk-ant-api03" not in shown and "eyJhbGciOi" not in shown
    assert '"max_tokens": 5' in shown  # not a secret, despite "token"
    assert (
        bodies.redact_value("x Bearer abcdefghijklmnopqrstu y")
        == "x Bearer «redacted» y"
    )


def test_curl_repeats_harmless_headers_and_names_the_token_variable() -> None:
    command = bodies.curl_command(
        "http://127.0.0.1:4680",
        "/v1/messages",
        '{"model": "m"}',
        {"Authorization": "Bearer secret-value", "anthropic-version": "2023-06-01"},
        token_env="LMBRIDGE_ACCESS_TOKEN",
    )
    assert "secret-value" not in command
    assert '-H "Authorization: Bearer $LMBRIDGE_ACCESS_TOKEN"' in command
    assert "-H 'anthropic-version: 2023-06-01'" in command


def test_answer_text_of_each_protocol() -> None:
    assert (
        apiclient.answer_text(
            "openai", "", json.dumps({"choices": [{"message": {"content": "hi"}}]})
        )
        == "hi"
    )
    assert (
        apiclient.answer_text(
            "anthropic", "", json.dumps({"content": [{"type": "text", "text": "yo"}]})
        )
        == "yo"
    )
    item = {"type": "message", "role": "assistant"}
    item["content"] = [{"type": "output_text", "text": "ok"}]  # type: ignore[assignment]
    responses = {"output": [item]}
    assert apiclient.answer_text("responses", "", json.dumps(responses)) == "ok"
    error = {"error": {"message": "no such model — check the route"}}
    assert apiclient.answer_text("openai", "", json.dumps(error)).startswith("no such")
    assert apiclient.answer_text("openai", "", json.dumps(error), 404).startswith(
        "no such"
    )
    assert "oops" in apiclient.answer_text("openai", "", "<html>oops</html>", 502)
    stream = (
        'data: {"choices":[{"index":0,"delta":{"content":"He"}}]}\n\n'
        'data: {"choices":[{"index":0,"delta":{"content":"llo"},"finish_reason":"stop"}]}\n\n'
        "data: [DONE]\n\n"
    )
    assert apiclient.answer_text("openai", "", stream) == "Hello"


def test_today_stats_roll_over_at_midnight() -> None:
    now = [datetime.datetime(2026, 5, 1, 23, 59).timestamp()]
    stats = TodayStats(clock=lambda: now[0])
    record = RequestRecord(status=500, tokens_in=3, received=now[0])
    record.first_token = 0.2
    stats.add(record)
    stats.add(RequestRecord(status=200, received=now[0], client_gone=True))
    assert (stats.requests, stats.errors, stats.tokens_in) == (2, 1, 3)
    assert stats.median_ttft == 0.2
    now[0] += 120
    assert stats.median_ttft is None
    assert stats.requests == 0


def test_pyside_workaround_leaves_the_singletons_alive() -> None:
    # Whether or not this PySide needs it, None and True survive many calls.
    from PySide6.QtCore import QObject

    probe = QObject()
    for _ in range(5000):
        probe.setObjectName("x")
        probe.blockSignals(False)
    assert sys.getrefcount(None) > 1000
    assert sys.getrefcount(True) > 1000
    if sys.version_info < (3, 12) and qtfix.pyside_leaks_singletons():
        assert qtfix.APPLIED


def test_one_size_wording_on_every_page() -> None:
    """Sessions, Usage, a request's details, downloads and models all say
    sizes one way (binary units, "B" for bytes)."""
    assert size_text(0) == "0 B"
    assert size_text(12) == "12 B"
    assert size_text(1023) == "1,023 B"
    assert size_text(840 * 1024) == "840 KB"
    assert size_text(int(12.3 * 1024**2)) == "12.3 MB"
    assert size_text(int(17.3 * 1024**3)) == "17.3 GB"
    assert speed_text(850 * 1024) == "850 KB/s"


def test_one_client_name_for_the_tables_and_the_history() -> None:
    """The Requests and Sessions tables show the name the history groups by."""
    assert client_name("claude-cli/1.0.80 (external, cli)") == "claude-cli"
    assert client_name("OpenAI/Python 1.50.0") == "OpenAI"
    assert client_name("") == ""
