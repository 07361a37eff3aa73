"""The context window `lmbridge integrate` tells Claude Code and Codex.

From the route's `context_window`, else LM Studio's loaded context (the fake
LM Studio, through the real SDK, for the command line), else the context LM
Bridge loads models with; nothing when the window is unknown.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tomllib
from pathlib import Path

import pytest

from fakes.llamacpp_server import FakeLlamaCppServer
from fakes.lmstudio_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.lmstudio_server import FakeLMStudio
from lmbridge import config, integrations
from lmbridge.integrations import ModelChoice
from lmbridge.integrations.context import context_window

QWEN = "qwen/qwen3-coder-30b"
GEMMA = "google/gemma-3-4b"

OPENAI_ROUTES = """
[[upstream]]
name = "cloud"
kind = "openai"
base_url = "http://127.0.0.1:9/v1"

[[route]]
model = "coder"
upstream = "cloud"
target = "big-coder"
context_window = 65536

[[route]]
model = "other"
upstream = "cloud"
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "CONTINUE_GLOBAL_DIR"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "home"
    path.mkdir()
    return path


def lmstudio_settings(address: str = "127.0.0.1:1234", extra: str = "") -> str:
    return f"""
[[upstream]]
name = "local"
kind = "lmstudio"
base_url = "http://{address}"

[[route]]
model = "coder"
upstream = "local"
target = "{QWEN}"
{extra}
"""


def test_the_route_names_the_window() -> None:
    settings = config.parse(OPENAI_ROUTES)
    assert context_window(settings, "coder") == 65536
    assert context_window(settings, "other") is None  # not LM Studio: unknown
    assert context_window(settings, "unrouted") is None


def test_lm_studio_loaded_context_else_the_load_context() -> None:
    settings = config.parse(lmstudio_settings(extra="[lmstudio]\nmin_context = 8192"))
    loaded = {QWEN: 16384, GEMMA: 4096}.get
    assert context_window(settings, "coder", loaded) == 16384  # the target's
    assert context_window(settings, GEMMA, loaded) == 8192  # reloaded to minimum
    assert context_window(settings, "not-loaded", loaded) == 32768
    settings.lmstudio.context_policy = "off"
    assert context_window(settings, GEMMA, loaded) == 4096
    settings.lmstudio.load_on_demand = False
    assert context_window(settings, "not-loaded", loaded) is None


def test_codex_gets_the_window_and_a_compaction_limit(home: Path) -> None:
    settings = config.parse(OPENAI_ROUTES)
    plan = integrations.plan_write(
        "codex", settings, ModelChoice(model="coder"), home=home
    )
    data = tomllib.loads(plan.new_text)
    assert data["model"] == "coder"
    assert data["model_context_window"] == 65536
    assert data["model_auto_compact_token_limit"] == 52428
    assert "model_context_window = 65536\n" in plan.new_text
    unknown = integrations.plan_write(
        "codex", settings, ModelChoice(model="other"), home=home
    )
    assert "model_context_window" not in tomllib.loads(unknown.new_text)


def test_codex_window_replaces_an_old_one_in_place(home: Path) -> None:
    path = home / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text("# mine\nmodel_context_window = 200000\n\n[tui]\nx = 1\n")
    choice = ModelChoice(model="m", context_window=8192)
    plan = integrations.plan_write("codex", config.Settings(), choice, home=home)
    assert plan.new_text.startswith("# mine\nmodel_context_window = 8192\n")
    data = tomllib.loads(plan.new_text)
    assert (data["model_auto_compact_token_limit"], data["tui"]) == (6553, {"x": 1})


def test_claude_code_compacts_within_the_smallest_window(home: Path) -> None:
    settings = config.parse(
        OPENAI_ROUTES
        + '\n[[route]]\nmodel = "small"\nupstream = "cloud"\ncontext_window = 8000\n'
    )
    choice = ModelChoice(sonnet="coder", opus="small", haiku="other")
    plan = integrations.plan_write("claude-code", settings, choice, home=home)
    env = json.loads(plan.new_text)["env"]
    assert env["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] == "8000"
    assert env["CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY"] == "1"
    unknown = integrations.describe("claude-code", settings, ModelChoice(model="x"))
    assert "CLAUDE_CODE_AUTO_COMPACT_WINDOW" not in unknown.env


def test_the_panel_passes_lm_studio_contexts(home: Path) -> None:
    """The Integrations page hands its model service's cache to the plans."""
    settings = config.parse(lmstudio_settings())
    plan = integrations.plan_write(
        "codex",
        settings,
        ModelChoice(model="coder"),
        home=home,
        loaded={QWEN: 40960}.get,
    )
    assert tomllib.loads(plan.new_text)["model_context_window"] == 40960


async def run_integrate(tmp_path: Path, toml: str, *args: str) -> tuple[int, str]:
    cfg = tmp_path / "lm.toml"
    cfg.write_text(toml)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lmbridge",
        "--config",
        str(cfg),
        "integrate",
        *args,
        "--home",
        str(tmp_path / "home"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "LMBRIDGE_HOME": str(tmp_path)},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return proc.returncode, out.decode()


async def test_cli_reads_the_loaded_context_from_lm_studio(
    fake_lmstudio: FakeLMStudio, tmp_path: Path
) -> None:
    fake_lmstudio.preload(QWEN, context_length=24576)
    # Above min_context: LM Bridge uses the model as loaded.
    toml = lmstudio_settings(fake_lmstudio.address, "[lmstudio]\nmin_context = 8192")
    _, out = await run_integrate(tmp_path, toml, "codex", "--model", "coder")
    assert "model_context_window = 24576" in out
    assert "model_auto_compact_token_limit = 19660" in out
    _, out = await run_integrate(tmp_path, toml, "claude-code", "--sonnet", "coder")
    assert "CLAUDE_CODE_AUTO_COMPACT_WINDOW=24576" in out


async def test_cli_context_window_flag_wins(tmp_path: Path) -> None:
    _, out = await run_integrate(
        tmp_path, OPENAI_ROUTES, "codex", "--model", "coder", "--context-window", "4096"
    )
    assert "model_context_window = 4096" in out


def llamacpp_settings(url: str) -> str:
    return f"""
[[upstream]]
name = "llama"
kind = "llamacpp"
base_url = "{url}"

[[route]]
model = "coder"
upstream = "llama"
"""


def test_a_llamacpp_route_takes_the_window_its_server_reports() -> None:
    settings = config.parse(llamacpp_settings("http://127.0.0.1:9"))
    assert context_window(settings, "coder") is None  # the server not asked
    served = {"llama": 12288}.get
    assert context_window(settings, "coder", served=served) == 12288
    # A route's own context_window still wins.
    pinned = config.parse(
        llamacpp_settings("http://127.0.0.1:9") + "context_window = 4096\n"
    )
    assert context_window(pinned, "coder", served=served) == 4096


async def test_cli_reads_one_slots_window_from_llama_server(tmp_path: Path) -> None:
    """`lmbridge integrate` asks each llama.cpp server's `/props`: one slot's
    context (not the whole --ctx-size of all slots) is what a request gets."""
    server = FakeLlamaCppServer(n_ctx=6144, total_slots=2)
    await server.start()
    try:
        toml = llamacpp_settings(server.url)
        _, out = await run_integrate(tmp_path, toml, "codex", "--model", "coder")
        assert "model_context_window = 6144" in out
        _, out = await run_integrate(tmp_path, toml, "claude-code", "--sonnet", "coder")
        assert "CLAUDE_CODE_AUTO_COMPACT_WINDOW=6144" in out
    finally:
        await server.stop()
