"""`lmbridge launch` on an LM Studio upstream: the model is there, with the
context the client needs, and the client is told the window it got."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fakes.lmstudio_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.lmstudio_server import FakeLMStudio
from launch.support import free_port, install_fakes, launch

QWEN = "qwen/qwen3-coder-30b"
GEMMA = "google/gemma-3-4b"


def lmstudio_config(fake: FakeLMStudio, extra: str = "") -> str:
    return f"""
[server]
port = {free_port()}

[[upstream]]
name = "local"
kind = "lmstudio"
base_url = "http://{fake.address}/v1"

[lmstudio]
load_context_length = 8192
{extra}
"""


@pytest.fixture
def path(tmp_path: Path) -> str:
    return f"{install_fakes(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}"


async def test_the_loaded_model_is_reloaded_with_what_claude_code_needs(
    tmp_path: Path, path: str, fake_lmstudio: FakeLMStudio
) -> None:
    """No --model: the one model LM Studio has loaded is used; loaded with
    16384 tokens, it is reloaded with 32768, Claude Code's least, and Claude
    Code compacts within those."""
    fake_lmstudio.preload(QWEN, context_length=16384)
    done = await launch(tmp_path, lmstudio_config(fake_lmstudio), ["claude"], path=path)
    assert done.code == 0, done.err
    env = done.record()["env"]
    assert env["ANTHROPIC_MODEL"] == QWEN
    assert env["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] == "32768"
    assert fake_lmstudio.loaded[QWEN].context_length == 32768


async def test_a_model_not_loaded_is_loaded_for_the_client(
    tmp_path: Path, path: str, fake_lmstudio: FakeLMStudio
) -> None:
    """Codex gets LM Bridge's minimum even though loads on demand ask for
    8192 here; less than the minimum is refused in one line; the window
    it is told is what LM Studio gave."""
    fake_lmstudio.context_limit = 49152
    done = await launch(
        tmp_path,
        lmstudio_config(fake_lmstudio, "min_context = 65536"),
        ["codex", "--model", GEMMA],
        path=path,
    )
    assert done.code == 2, done.err
    (line,) = done.err.strip().splitlines()
    assert line == (
        f"lmbridge: {GEMMA} is loaded with a context of 49152 tokens; Codex CLI "
        "needs at least 65536 — LM Studio did not give more (too little "
        "memory?): load a smaller model or quantization"
    )
    assert not done.probe.exists()
    # Now loaded with 49152, which is enough where the minimum is 32768.
    done = await launch(
        tmp_path, lmstudio_config(fake_lmstudio), ["codex", "--model", GEMMA], path=path
    )
    assert done.code == 0, done.err
    argv = done.record()["argv"]
    assert "model_context_window=49152" in argv
    fake_lmstudio.loaded.clear()
    fake_lmstudio.context_limit = None
    done = await launch(
        tmp_path, lmstudio_config(fake_lmstudio), ["codex", "--model", GEMMA], path=path
    )
    assert done.code == 0, done.err
    assert "model_context_window=32768" in done.record()["argv"]
    assert fake_lmstudio.loaded[GEMMA].context_length == 32768


async def test_two_loaded_models_need_a_choice(
    tmp_path: Path, path: str, fake_lmstudio: FakeLMStudio
) -> None:
    fake_lmstudio.preload(QWEN, context_length=32768)
    fake_lmstudio.preload(GEMMA, context_length=32768)
    done = await launch(tmp_path, lmstudio_config(fake_lmstudio), ["qwen"], path=path)
    assert done.code == 2
    (line,) = done.err.strip().splitlines()
    assert line.startswith("lmbridge: choose the model Qwen Code should use (LM Studio")
    assert QWEN in line and GEMMA in line
    assert line.endswith("lmbridge launch qwen --model NAME")


async def test_lm_studio_not_running_is_one_line(
    tmp_path: Path, path: str, fake_lmstudio: FakeLMStudio
) -> None:
    text = lmstudio_config(fake_lmstudio)
    await fake_lmstudio.stop()
    done = await launch(tmp_path, text, ["claude", "--model", QWEN], path=path)
    assert done.code == 2
    (line,) = done.err.strip().splitlines()
    assert line.startswith("lmbridge: ") and "LM Studio" in line


async def test_a_llama_cpp_servers_slot_is_the_window(
    tmp_path: Path, path: str
) -> None:
    """A llama.cpp upstream: the client is told one slot's context, as the
    server's /props says; Claude Code is refused a slot under 32768."""
    from fakes.llamacpp_server import FakeLlamaCppServer

    server = FakeLlamaCppServer(n_ctx=65536)
    await server.start()
    try:
        text = f"""
[server]
port = {free_port()}

[[upstream]]
name = "llama"
kind = "llamacpp"
base_url = "{server.url}/v1"
"""
        done = await launch(
            tmp_path, text, ["codex", "--model", "fake-model"], path=path
        )
        assert done.code == 0, done.err
        assert "model_context_window=65536" in done.record()["argv"]
        server.n_ctx = 16384
        refused = await launch(
            tmp_path, text, ["claude", "--model", "fake-model"], path=path
        )
        assert refused.code == 2
        assert refused.err.strip().splitlines() == [
            "lmbridge: fake-model has a context of 16384 tokens on llama; Claude "
            "Code needs at least 32768 — start the server with a larger context "
            "(llama-server -c, per slot)"
        ]
    finally:
        await server.stop()
