"""`lmbridge chats import|export|list`: chat files in and out of the store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lmbridge import cli

CHAT = {
    "name": "Trip planning",
    "model": "qwen/qwen3-8b",
    "temperature": 0.7,
    "max_tokens": 512,
    "created_at": "2025-01-02T03:04:05.000Z",
    "updated_at": "2025-01-02T03:05:00.000Z",
    "messages": [
        {"role": "system", "content": "You plan trips."},
        {"role": "user", "content": "Three days in Lisbon?"},
        {"role": "assistant", "content": "Day one: Alfama..."},
    ],
}


def write(directory: Path, filename: str, payload: Any) -> None:
    directory.mkdir(exist_ok=True)
    text = payload if isinstance(payload, str) else json.dumps(payload)
    (directory / filename).write_text(text, encoding="utf-8")


def test_import_then_export_round_trips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    write(src, "trip.json", CHAT)
    nameless = {k: v for k, v in CHAT.items() if k != "name"}
    write(src, "From file name.json", nameless)
    assert cli.main(["chats", "import", str(src)]) == 0
    out = capsys.readouterr().out
    assert "trip.json: imported 'Trip planning' (3 messages)" in out
    assert "2 of 2 chats imported" in out

    assert cli.main(["chats", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert sorted(listed) == [
        "From file name\tqwen/qwen3-8b",
        "Trip planning\tqwen/qwen3-8b",
    ]

    assert cli.main(["chats", "export", "Trip planning"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert {k: exported[k] for k in CHAT} == CHAT

    target = tmp_path / "out.json"
    assert cli.main(["chats", "export", "From file name", "-o", str(target)]) == 0
    assert json.loads(target.read_text())["messages"] == CHAT["messages"]


def test_import_reports_bad_and_existing_files_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    write(src, "a-good.json", CHAT)
    write(src, "b-broken.json", "{not json")
    write(
        src,
        "c-badrole.json",
        {**CHAT, "name": "x", "messages": [{"role": "tool", "content": "?"}]},
    )
    write(src, "d-badname.json", {**CHAT, "name": "bad\x07name"})
    write(src, "e-nomodel.json", {"name": "y", "messages": []})
    write(src, "notes.txt", "ignored")
    assert cli.main(["chats", "import", str(src)]) == 1
    captured = capsys.readouterr()
    assert "1 of 5 chats imported" in captured.out
    err = captured.err
    assert "b-broken.json: not imported: not valid JSON" in err
    assert "c-badrole.json: not imported: messages[0].role" in err
    assert (
        "d-badname.json: not imported: name contains the control character U+0007"
        in err
    )
    assert "e-nomodel.json: not imported: " in err and "model" in err

    # Importing again: the existing chat is reported, then replaced on request.
    write(tmp_path / "again", "trip.json", {**CHAT, "model": "other"})
    assert cli.main(["chats", "import", str(tmp_path / "again")]) == 1
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["chats", "import", "--replace", str(tmp_path / "again")]) == 0
    capsys.readouterr()
    assert cli.main(["chats", "list"]) == 0
    assert capsys.readouterr().out.strip() == "Trip planning\tother"


def test_export_of_an_unknown_chat_fails_with_a_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["chats", "export", "nope"]) == 1
    assert "there is no chat named 'nope'" in capsys.readouterr().err


def test_import_of_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["chats", "import", str(tmp_path / "nowhere")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["chats", "import", str(tmp_path / "empty")]) == 1
    assert "no *.json files" in capsys.readouterr().err


def test_export_as_a_user_runs_it(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write(src, "trip.json", CHAT)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lmbridge", "chats", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    assert run("import", str(src)).returncode == 0
    result = run("export", "Trip planning")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["messages"] == CHAT["messages"]
