"""`lmbridge models search|download|load` as a user runs them, against the fake."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from fakes.lmstudio_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.lmstudio_fixtures import eventually
from fakes.lmstudio_server import FakeLMStudio

QWEN = "qwen/qwen3-coder-30b"
QWEN4 = "qwen/qwen3-4b-2507"
Q4_FILE = (
    "lmstudio-community/Qwen3-4B-Instruct-2507-GGUF/Qwen3-4B-Instruct-2507-Q4_K_M.gguf"
)


async def start_cli(
    fake: FakeLMStudio, tmp_path: Path, *args: str
) -> asyncio.subprocess.Process:
    cfg = tmp_path / "lm.toml"
    cfg.write_text(
        f'[[upstream]]\nname = "local"\nkind = "lmstudio"\n'
        f'base_url = "http://{fake.address}"\n'
    )
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        # Ctrl-C as a terminal gives it, whatever this process inherited: a
        # shell starts background jobs (`make test &`, nohup) with SIGINT
        # ignored, which Python then keeps, and the CLI would never see it.
        "import runpy, signal, sys;"
        " signal.signal(signal.SIGINT, signal.default_int_handler);"
        " sys.argv[0] = 'lmbridge';"
        " runpy.run_module('lmbridge', run_name='__main__', alter_sys=True)",
        "--config",
        str(cfg),
        "models",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "LMBRIDGE_HOME": str(tmp_path)},
    )


async def run_cli(
    fake: FakeLMStudio, tmp_path: Path, *args: str
) -> tuple[int, str, str]:
    proc = await start_cli(fake, tmp_path, *args)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_search_prints_size_and_fit(
    fake_lmstudio: FakeLMStudio, tmp_path: Path
) -> None:
    code, out, err = await run_cli(fake_lmstudio, tmp_path, "search", "qwen3 4b")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split() == ["KEY", "QUANT", "SIZE", "FIT", "BADGES"]
    first = next(r for r in rows if r.startswith(QWEN4 + " "))
    assert "Q4_K_M" in first
    assert "2.5G" in first
    assert "fits in GPU" in first
    assert "staff pick" in first
    assert "recommended" in first
    assert any("CPU only" in r and "hugging face" in r for r in rows)

    code, out, err = await run_cli(
        fake_lmstudio, tmp_path, "search", "qwen3 4b", "--options", "--limit", "1"
    )
    assert code == 0, err
    keys = [line.split()[0] for line in out.splitlines()[1:]]
    assert keys == [f"{QWEN4}@Q4_K_M", f"{QWEN4}@Q8_0"]
    assert fake_lmstudio.repository.search_requests[-1]["limit"] == 1


async def test_download_shows_progress_then_how_to_load(
    fake_lmstudio: FakeLMStudio, tmp_path: Path
) -> None:
    code, out, err = await run_cli(fake_lmstudio, tmp_path, "download", f"{QWEN4}@Q8_0")
    assert code == 0, err
    assert "100%" in out
    assert f"downloaded {QWEN4}@Q8_0 as {QWEN4}" in out
    assert f"lmbridge models load {QWEN4}" in out
    assert fake_lmstudio.repository.download_requests[-1].endswith("Q8_0.gguf")

    code, out, err = await run_cli(fake_lmstudio, tmp_path, "download", "acme/none")
    assert code == 1
    assert "acme/none" in err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is POSIX")
async def test_ctrl_c_cancels_the_download(
    fake_lmstudio: FakeLMStudio, tmp_path: Path
) -> None:
    fake_lmstudio.repository.download_delay = 60.0
    fake_lmstudio.repository.download_steps = 600
    proc = await start_cli(fake_lmstudio, tmp_path, "download", QWEN4)
    await eventually(
        lambda: fake_lmstudio.repository.download_requests == [Q4_FILE],
        timeout=30,
        what="the download to start",
    )
    # Ctrl-C once LM Studio reports progress (the second progress line: the
    # first is the CLI's own). A Ctrl-C while the SDK is still opening the
    # download's channel (the request already sent) cancels nothing in LM
    # Studio: sdk_repository.download cancels only an open channel.
    assert proc.stdout is not None
    seen = b""
    while seen.count(b"\r") < 2:
        chunk = await asyncio.wait_for(proc.stdout.read(256), 30)
        assert chunk, f"the CLI ended before the download ran: {seen!r}"
        seen += chunk
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 130, err
    assert "cancelling the download" in err.decode()
    assert fake_lmstudio.repository.cancelled_downloads == [Q4_FILE]


async def test_load_flags_reach_lmstudio_and_a_short_context_is_shown(
    fake_lmstudio: FakeLMStudio, tmp_path: Path
) -> None:
    fake_lmstudio.context_limit = 16384
    code, out, err = await run_cli(
        fake_lmstudio,
        tmp_path,
        "load",
        QWEN,
        "--context",
        "65536",
        "--gpu",
        "max",
        "--flash-attention",
        "--kv-cache",
        "q8_0",
        "--ttl",
        "120",
    )
    assert code == 0, err
    assert "with context 16384 (asked for 65536)" in out
    assert "warning" in err
    assert "16384" in err
    config = fake_lmstudio.load_configs[-1]
    assert config["llm.load.contextLength"] == 65536
    assert config["llm.load.llama.acceleration.offloadRatio"] == "max"
    assert config["llm.load.llama.flashAttention"] is True
    assert config["llm.load.llama.kCacheQuantizationType"]["value"] == "q8_0"
    assert config["llm.load.llama.vCacheQuantizationType"]["value"] == "q8_0"
    assert fake_lmstudio.load_params[-1]["ttlMs"] == 120_000


async def test_bad_load_flags_are_usage_errors(
    fake_lmstudio: FakeLMStudio, tmp_path: Path
) -> None:
    code, _, err = await run_cli(fake_lmstudio, tmp_path, "load", QWEN, "--gpu", "2")
    assert code == 2
    assert "0.0 ... 1.0" in err
    code, _, err = await run_cli(
        fake_lmstudio, tmp_path, "load", QWEN, "--kv-cache", "q3"
    )
    assert code == 2
    assert fake_lmstudio.load_count == 0


async def test_a_model_name_with_terminal_escapes_is_printed_as_text(
    fake_lmstudio: FakeLMStudio, tmp_path: Path
) -> None:
    # OSC 52 writes the clipboard in many terminals; a name from LM Studio
    # (or its catalog) must reach the terminal as text.
    fake_lmstudio.downloaded[0]["modelKey"] = "evil\x1b]52;c;SGVsbG8=\x07/model"
    code, out, err = await run_cli(fake_lmstudio, tmp_path, "list")
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b]52;c;SGVsbG8=\\x07/model" in out
