"""`lmbridge usage`: the history's figures as a table."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from lmbridge import cli, config
from lmbridge.core.events import RequestRecord
from lmbridge.store.db import Database
from lmbridge.store.usage import UsageStore
from lmbridge.store.usage_recorder import DAY


def streamed(
    target: str, client: str, ttft: float, tokens_out: int, **fields: object
) -> RequestRecord:
    record = RequestRecord(
        client=client,
        target=target,
        model="claude-sonnet-4-6",
        stream=True,
        status=200,
        tokens_in=100,
        tokens_out=tokens_out,
        **fields,  # type: ignore[arg-type]
    )
    record.mark_done()
    record.first_token, record.done = ttft, ttft + 2.0
    return record


def store_records(records: list[RequestRecord]) -> None:
    async def put() -> None:
        db = Database.in_dir(config.data_dir())
        await db.open()
        try:
            await UsageStore(db).add(records)
        finally:
            await db.close()

    asyncio.run(put())


def table(out: str) -> dict[str, list[str]]:
    """The rows of the printed table by their first cell."""
    rows = [line.split("  ") for line in out.splitlines()[1:]]
    cells = [[c.strip() for c in row if c.strip()] for row in rows]
    return {row[0]: row[1:] for row in cells}


def test_an_empty_history_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["usage"]) == 0
    assert capsys.readouterr().out == "No requests recorded in the last 7 days.\n"


def test_an_empty_history_mentions_that_recording_is_off(
    lmbridge_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (lmbridge_home / "config.toml").write_text("[usage]\nrecord = false\n")
    assert cli.main(["usage", "--days", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("No requests recorded today (recording is off")
    assert out.count("\n") == 1


def test_the_table_by_model_and_by_client(capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time()
    store_records(
        [
            streamed("qwen3-8b", "claude-cli/1.0.3 (external)", 0.2, 1000),
            streamed("qwen3-8b", "claude-cli/1.0.4", 0.4, 600),
            streamed("qwen3-8b", "Codex/0.1", 1.5, 200),
            streamed("gpt-4o", "Codex/0.1", 0.3, 80),
            RequestRecord(
                model="gpt-4o",
                target="gpt-4o",
                client="Codex/0.1",
                status=429,
                error="rate limited",
            ),
            # older than --days 2
            streamed("old-model", "curl/8", 1.5, 5, received=now - 3 * DAY),
        ]
    )
    assert cli.main(["usage", "--days", "2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Requests in the last 2 days, by model:"
    rows = table(out)
    assert rows["model"] == [
        "requests",
        "tokens in",
        "cached",
        "kept",
        "tokens out",
        "errors",
        "median TTFT",
        "tok/s",
    ]
    # median of 0.2, 0.4, 1.5 s; tokens/s over 2 s: 100, 300, 500
    assert rows["qwen3-8b"] == ["3", "300", "-", "-", "1,800", "0", "400 ms", "300.0"]
    assert rows["gpt-4o"] == ["2", "100", "-", "-", "80", "1", "300 ms", "40.0"]
    assert rows["total"] == ["5", "400", "-", "-", "1,880", "1", "300 ms", "100.0"]
    assert "old-model" not in out

    assert cli.main(["usage", "--days", "2", "--by", "client"]) == 0
    rows = table(capsys.readouterr().out)
    assert rows["Codex"][:6] == ["3", "200", "-", "-", "280", "1"]
    # nearest rank: the lower of two middle values
    assert rows["Codex"][6:] == ["300 ms", "40.0"]
    assert rows["claude-cli"] == ["2", "200", "-", "-", "1,600", "0", "200 ms", "300.0"]

    assert cli.main(["usage", "--days", "5", "--by", "client"]) == 0
    rows = table(capsys.readouterr().out)
    assert rows["curl"] == ["1", "100", "-", "-", "5", "0", "1.50 s", "2.5"]


def test_a_single_row_has_no_total(capsys: pytest.CaptureFixture[str]) -> None:
    store_records([RequestRecord(target="m", status=200, tokens_out=3)])
    assert cli.main(["usage"]) == 0
    rows = table(capsys.readouterr().out)
    assert rows["m"] == ["1", "0", "-", "-", "3", "0", "-", "-"]
    assert "total" not in rows


def test_the_cached_column_is_the_share_where_upstreams_said(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Requests whose upstream said nothing of its cache do not count."""
    store_records(
        [
            streamed("qwen3-8b", "claude-cli/1", 0.2, 10, cached_tokens=90),
            streamed("qwen3-8b", "claude-cli/1", 0.2, 10, cached_tokens=0),
            streamed("qwen3-8b", "claude-cli/1", 0.2, 10),
            streamed("gpt-4o", "Codex/0.1", 0.2, 10),
        ]
    )
    assert cli.main(["usage"]) == 0
    rows = table(capsys.readouterr().out)
    assert rows["qwen3-8b"][:3] == ["3", "300", "45%"]
    assert rows["gpt-4o"][:3] == ["1", "100", "-"]
    assert rows["total"][:3] == ["4", "400", "45%"]


def test_the_kept_column_is_the_share_of_chained_prompts_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Requests outside a chain (no kept figure) do not count."""
    store_records(
        [
            streamed("qwen3-8b", "claude-cli/1", 0.2, 10, kept_tokens=0),
            streamed("qwen3-8b", "claude-cli/1", 0.2, 10, kept_tokens=80),
            streamed("qwen3-8b", "claude-cli/1", 0.2, 10),
        ]
    )
    assert cli.main(["usage"]) == 0
    rows = table(capsys.readouterr().out)
    assert rows["qwen3-8b"][:4] == ["3", "300", "-", "40%"]


def test_days_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["usage", "--days", "0"])
    assert info.value.code == 2
    assert "--days must be at least 1" in capsys.readouterr().err
