"""`lmbridge launch` with a fake client per CLI: what each gets, its exit
status, SIGINT, and the LM Bridge it runs on (started for the session, or
the one already running).

The fake client (fake_client.py, on PATH under the client's name) records
its arguments, environment and the files they name, and asks the LM Bridge
it was pointed at for /health during the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from fakes.openai_upstream import FakeOpenAIUpstream
from launch.support import (
    bridge_config,
    finish,
    free_port,
    install_fakes,
    launch,
    start_launch,
)
from lmbridge import __version__
from lmbridge.launch.clients import CLIENT_IDS, CLIENTS
from support import settings_for, start_proxy

MODEL = "big-model"
SMALL = "small-model"
WINDOW = 40000  # the route's context_window
LIMIT = 32000  # 80% of it, where the clients should compact
ROUTE = f"context_window = {WINDOW}"


def _file(record: dict[str, Any], path: str) -> str:
    text: str = record["files"][path]
    return text


def check_claude(r: dict[str, Any], root: str) -> None:
    env = r["env"]
    assert env["ANTHROPIC_BASE_URL"] == root
    assert env["ANTHROPIC_AUTH_TOKEN"] == "lmbridge"
    assert "ANTHROPIC_API_KEY" not in env  # the user's own key is not passed on
    for name in ("ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL"):
        assert env[name] == MODEL
    assert env["ANTHROPIC_DEFAULT_SONNET_MODEL"] == MODEL
    assert env["CLAUDE_CODE_SUBAGENT_MODEL"] == MODEL
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == SMALL
    assert env["ANTHROPIC_SMALL_FAST_MODEL"] == SMALL
    assert env["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] == str(WINDOW)
    assert env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == str(WINDOW)
    assert env["CLAUDE_CODE_ATTRIBUTION_HEADER"] == "0"
    assert r["argv"] == ["-p", "hello"]


def check_codex(r: dict[str, Any], root: str) -> None:
    argv = r["argv"]
    assert argv[-2:] == ["exec", "hello"]
    overrides = dict(item.split("=", 1) for item in argv[1:-2:2])
    assert set(argv[0:-2:2]) == {"-c"}
    assert overrides == {
        "model_provider": '"lmbridge"',
        "model_providers.lmbridge.name": '"LM Bridge"',
        "model_providers.lmbridge.base_url": f'"{root}/v1"',
        "model_providers.lmbridge.wire_api": '"responses"',
        "model_providers.lmbridge.env_key": '"LMBRIDGE_API_KEY"',
        "model": f'"{MODEL}"',
        "model_context_window": str(WINDOW),
        "model_auto_compact_token_limit": str(LIMIT),
    }
    assert r["env"]["LMBRIDGE_API_KEY"] == "lmbridge"


def check_gemini(r: dict[str, Any], root: str) -> None:
    env = r["env"]
    assert env["GOOGLE_GEMINI_BASE_URL"] == root
    assert env["GEMINI_API_KEY"] == "lmbridge"
    assert env["GEMINI_MODEL"] == MODEL
    assert env["GEMINI_DEFAULT_AUTH_TYPE"] == "gemini-api-key"
    settings = json.loads(_file(r, env["GEMINI_CLI_SYSTEM_SETTINGS_PATH"]))
    assert settings["security"]["auth"]["selectedType"] == "gemini-api-key"
    # Compresses at 32000 of the 1,048,576 tokens it believes the model has.
    threshold = settings["model"]["compressionThreshold"]
    assert abs(threshold * 1_048_576 - LIMIT) < 100
    assert r["argv"] == ["-p", "hello"]


def check_opencode(r: dict[str, Any], root: str) -> None:
    config = json.loads(r["env"]["OPENCODE_CONFIG_CONTENT"])
    provider = config["provider"]["lmbridge"]
    assert provider["npm"] == "@ai-sdk/openai-compatible"
    assert provider["options"] == {"baseURL": f"{root}/v1", "apiKey": "lmbridge"}
    assert provider["models"][MODEL]["limit"]["context"] == WINDOW
    assert provider["models"][SMALL]["limit"]["context"] == WINDOW
    assert config["model"] == f"lmbridge/{MODEL}"
    assert config["small_model"] == f"lmbridge/{SMALL}"
    assert r["argv"] == ["run", "hello"]


def check_cline(r: dict[str, Any], root: str) -> None:
    path = r["env"]["CLINE_PROVIDER_SETTINGS_PATH"]
    document = json.loads(_file(r, path))
    assert document["lastUsedProvider"] == "openai-compatible"
    settings = document["providers"]["openai-compatible"]["settings"]
    assert settings == {
        "provider": "openai-compatible",
        "apiKey": "lmbridge",
        "model": MODEL,
        "baseUrl": f"{root}/v1",
        "contextWindow": WINDOW,
    }
    assert r["argv"] == ["-P", "openai-compatible", "-m", MODEL, "hello"]


def check_qwen(r: dict[str, Any], root: str) -> None:
    env = r["env"]
    assert env["OPENAI_BASE_URL"] == f"{root}/v1"
    assert env["OPENAI_API_KEY"] == "lmbridge"
    assert env["OPENAI_MODEL"] == MODEL
    settings = json.loads(_file(r, env["QWEN_CODE_SYSTEM_SETTINGS_PATH"]))
    assert settings["model"]["generationConfig"]["contextWindowSize"] == WINDOW
    assert settings["fastModel"] == SMALL
    assert settings["security"]["auth"]["selectedType"] == "openai"
    assert r["argv"] == ["-p", "hello"]


def check_continue(r: dict[str, Any], root: str) -> None:
    argv = r["argv"]
    assert argv[0] == "--config" and argv[2:] == ["-p", "hello"]
    config = YAML(typ="safe").load(_file(r, argv[1]))
    assert config["schema"] == "v1"
    (model,) = config["models"]
    assert model["provider"] == "openai"
    assert model["model"] == MODEL
    assert model["apiBase"] == f"{root}/v1"
    assert model["apiKey"] == "lmbridge"
    assert model["defaultCompletionOptions"]["contextLength"] == WINDOW


CHECKS: dict[str, tuple[list[str], Callable[[dict[str, Any], str], None]]] = {
    "claude": (["-p", "hello"], check_claude),
    "codex": (["exec", "hello"], check_codex),
    "gemini": (["-p", "hello"], check_gemini),
    "opencode": (["run", "hello"], check_opencode),
    "cline": (["hello"], check_cline),
    "qwen": (["-p", "hello"], check_qwen),
    "continue": (["-p", "hello"], check_continue),
}


def test_every_client_is_checked() -> None:
    assert sorted(CHECKS) == sorted(CLIENT_IDS)


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    return install_fakes(tmp_path / "bin")


def _path(fake_bin: Path) -> str:
    return f"{fake_bin}{os.pathsep}{os.environ['PATH']}"


@pytest.mark.parametrize("client", CLIENT_IDS)
async def test_each_client_gets_this_runs_settings_from_a_session_bridge(
    client: str, tmp_path: Path, fake_bin: Path, fake_upstream: FakeOpenAIUpstream
) -> None:
    """No LM Bridge runs at the configured port: launch starts one for the
    session, the client gets its URL, key, models and window, the client's
    exit status is launch's, and the run's files are gone afterwards."""
    configured = free_port()
    client_args, check = CHECKS[client]
    done = await launch(
        tmp_path,
        bridge_config(fake_upstream.url, configured, ROUTE),
        [client, "--model", MODEL, "--small-model", SMALL],
        path=_path(fake_bin),
        env={"FAKE_CLIENT_EXIT": "7", "ANTHROPIC_API_KEY": "sk-users-own"},
        client_args=client_args,
    )
    assert done.code == 7, done.err
    record = done.record()
    assert record["name"] == CLIENTS[client].binary
    assert record["health"]["version"] == __version__  # a live LM Bridge
    root = f"http://127.0.0.1:{_port_in(record)}"
    assert _port_in(record) != configured  # its own free port
    check(record, root)
    assert "started for this session" in done.err
    assert record["files"] or client in ("claude", "codex", "opencode")
    assert _left_behind(tmp_path, record) == []
    # The session's LM Bridge is stopped with the client.
    assert not await _listening(_port_in(record))


def _left_behind(tmp_path: Path, record: dict[str, Any]) -> list[str]:
    """The run's files, and launch's temporary directories, still there."""
    files = [path for path in record["files"] if Path(path).exists()]
    # In LM Bridge's own data folder, not /tmp (Gemini CLI skips settings
    # files below a folder others can write to).
    scratch = Path(os.environ["LMBRIDGE_HOME"]) / "data" / "launch"
    assert all(Path(path).is_relative_to(scratch) for path in record["files"])
    return files + [str(p) for p in tmp_path.rglob("lmbridge-launch-*")]


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return False
    writer.close()
    return True


def _port_in(record: dict[str, Any]) -> int:
    import re

    blob = json.dumps([record["argv"], record["env"], record["files"]])
    ports = set(re.findall(r"http://127\.0\.0\.1:(\d+)", blob))
    ports.discard("")
    assert len(ports) == 1, ports
    return int(ports.pop())


@pytest.mark.parametrize("client", CLIENT_IDS)
async def test_sigint_goes_to_the_client_and_launch_waits_for_it(
    client: str, tmp_path: Path, fake_bin: Path, fake_upstream: FakeOpenAIUpstream
) -> None:
    """SIGINT to launch reaches the client once; launch waits for the
    client's end, exits with its status and stops the session's LM Bridge."""
    proc, probe = await start_launch(
        tmp_path,
        bridge_config(fake_upstream.url, free_port()),
        [client, "--model", MODEL],
        path=_path(fake_bin),
        env={"FAKE_CLIENT_WAIT": "1"},
    )
    ready = probe.parent / "ready"
    for _ in range(600):
        if ready.exists() or proc.returncode is not None:
            break
        await asyncio.sleep(0.05)
    assert ready.exists(), (await finish(proc, probe)).err
    os.kill(proc.pid, signal.SIGINT)
    done = await finish(proc, probe)
    assert done.code == 130, done.err
    assert (probe.parent / "sigints").read_text() == "1"
    # In launch's process group: a Ctrl-C typed in a terminal reaches it.
    assert done.record()["pgrp_same"] is True
    assert "Traceback" not in done.err and "KeyboardInterrupt" not in done.err
    port = _port_in(done.record())
    assert not await _listening(port)


async def test_the_running_lm_bridge_is_used(
    tmp_path: Path, fake_bin: Path, fake_upstream: FakeOpenAIUpstream
) -> None:
    """An LM Bridge answers /health at the configured port: the client is
    pointed at it, and it keeps running after the client ends."""
    running = await start_proxy(settings_for(fake_upstream.url))
    try:
        port = running.server.port
        done = await launch(
            tmp_path,
            bridge_config(fake_upstream.url, port),
            ["claude", "--model", MODEL],
            path=_path(fake_bin),
        )
        assert done.code == 0, done.err
        record = done.record()
        assert record["env"]["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{port}"
        assert "(running)" in done.err
        assert running.server.running
        assert await _listening(port)
    finally:
        await running.server.stop()


async def test_global_options_before_and_after(
    tmp_path: Path, fake_bin: Path, fake_upstream: FakeOpenAIUpstream
) -> None:
    """--config before `launch`, options after the client, the client's own
    arguments after `--` (even ones that look like ours)."""
    cfg = tmp_path / "before.toml"
    cfg.write_text(bridge_config(fake_upstream.url, free_port()))
    probe = tmp_path / "record.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lmbridge",
        "--config",
        str(cfg),
        "launch",
        "qwen",
        "--model",
        MODEL,
        "--",
        "--config",
        "theirs.json",
        "--model",
        "x",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PATH": _path(fake_bin), "LAUNCH_PROBE": str(probe)},
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    record = json.loads(probe.read_text())
    assert record["argv"] == ["--config", "theirs.json", "--model", "x"]
    assert record["env"]["OPENAI_MODEL"] == MODEL


async def test_list_says_which_clients_are_installed(
    tmp_path: Path, fake_upstream: FakeOpenAIUpstream
) -> None:
    folder = install_fakes(tmp_path / "bin", ["claude", "cn"])
    done = await launch(
        tmp_path,
        bridge_config(fake_upstream.url, free_port()),
        ["--list"],
        path=str(folder),
    )
    assert done.code == 0, done.err
    lines = {line.split()[0]: line for line in done.out.splitlines()}
    assert sorted(lines) == sorted(CLIENT_IDS)
    assert f"installed: {folder / 'claude'}" in lines["claude"]
    assert f"installed: {folder / 'cn'}" in lines["continue"]
    assert "not installed (npm install -g @openai/codex)" in lines["codex"]


async def test_a_client_not_installed_is_one_line(
    tmp_path: Path, fake_upstream: FakeOpenAIUpstream
) -> None:
    done = await launch(
        tmp_path,
        bridge_config(fake_upstream.url, free_port()),
        ["gemini", "--model", MODEL],
        path=str(tmp_path / "empty"),
    )
    assert done.code == 127
    assert done.err.strip().splitlines() == [
        "lmbridge: Gemini CLI is not installed: `gemini` is not on PATH — "
        "npm install -g @google/gemini-cli"
    ]


async def test_without_a_model_it_asks_for_one(
    tmp_path: Path, fake_bin: Path, fake_upstream: FakeOpenAIUpstream
) -> None:
    done = await launch(
        tmp_path,
        bridge_config(fake_upstream.url, free_port()),
        ["codex"],
        path=_path(fake_bin),
    )
    assert done.code == 2
    assert done.err.strip().splitlines() == [
        "lmbridge: choose the model Codex CLI should use: "
        "lmbridge launch codex --model NAME"
    ]
    assert not done.probe.exists()


async def test_a_model_lm_bridge_does_not_offer_is_refused(
    tmp_path: Path, fake_bin: Path, fake_upstream: FakeOpenAIUpstream
) -> None:
    """Without a route for it, the model must be one /v1/models lists."""
    config_text = f"""
[server]
port = {free_port()}

[[upstream]]
name = "fake"
kind = "openai"
base_url = "{fake_upstream.url}"
"""
    done = await launch(
        tmp_path,
        config_text,
        ["codex", "--model", "no-such-model"],
        path=_path(fake_bin),
    )
    assert done.code == 2, done.err
    (line,) = done.err.strip().splitlines()
    assert "does not offer the model 'no-such-model'" in line
    assert "fake-model" in line
    assert not done.probe.exists()
    listed = await launch(
        tmp_path, config_text, ["codex", "--model", "fake-model"], path=_path(fake_bin)
    )
    assert listed.code == 0, listed.err


async def test_the_access_token_reaches_the_client_and_only_it(
    tmp_path: Path, fake_bin: Path, fake_upstream: FakeOpenAIUpstream
) -> None:
    """With an access token, the running LM Bridge is used with it and the
    client gets it as its key; it is printed nowhere. A configuration with
    another token is told so in one line."""
    token = "launch-secret-token-4417"
    settings = settings_for(fake_upstream.url)
    settings.server.access_token = token
    running = await start_proxy(settings)
    try:
        port = running.server.port
        extra = f'\n[server]\nport = {port}\naccess_token = "{token}"\n'
        text = bridge_config(fake_upstream.url, port).replace(
            f"[server]\nport = {port}\n", ""
        )
        done = await launch(
            tmp_path, extra + text, ["qwen", "--model", MODEL], path=_path(fake_bin)
        )
        assert done.code == 0, done.err
        record = done.record()
        assert record["env"]["OPENAI_API_KEY"] == token
        assert record["env"]["OPENAI_BASE_URL"] == f"http://127.0.0.1:{port}/v1"
        assert token not in done.err + done.out
        wrong = (extra + text).replace(token, "another-token-0000000000")
        refused = await launch(
            tmp_path, wrong, ["qwen", "--model", MODEL], path=_path(fake_bin)
        )
        assert refused.code == 2
        assert refused.err.strip().splitlines() == [
            f"lmbridge: the LM Bridge at http://127.0.0.1:{port} does not accept "
            "the access token of this configuration — use the same config "
            "(--config) or token"
        ]
    finally:
        await running.server.stop()


async def test_hold_keeps_a_failed_run_on_screen(
    tmp_path: Path, fake_bin: Path, fake_upstream: FakeOpenAIUpstream
) -> None:
    """--hold (what the app's terminal runs): after a failure launch asks
    for Enter before it exits, with the client's status."""
    done = await launch(
        tmp_path,
        bridge_config(fake_upstream.url, free_port()),
        ["cline", "--model", MODEL, "--hold"],
        path=_path(fake_bin),
        env={"FAKE_CLIENT_EXIT": "3"},
    )
    assert done.code == 3
    assert done.err.rstrip().endswith("[exit status 3] Press Enter to close.")
    ok = await launch(
        tmp_path,
        bridge_config(fake_upstream.url, free_port()),
        ["cline", "--model", MODEL, "--hold"],
        path=_path(fake_bin),
    )
    assert ok.code == 0
    assert "Press Enter" not in ok.err


async def test_ctrl_c_in_a_terminal_reaches_the_client_once(
    tmp_path: Path, fake_bin: Path, fake_upstream: FakeOpenAIUpstream
) -> None:
    """launch on a real terminal (a pty that is its controlling terminal):
    Ctrl-C typed there reaches the client once (launch does not pass it on
    a second time, which Claude Code would read as "exit") and launch
    exits with the client's status."""
    import fcntl
    import pty
    import termios

    master, slave = pty.openpty()
    cfg = tmp_path / "lmbridge.toml"
    cfg.write_text(bridge_config(fake_upstream.url, free_port()))
    probe = tmp_path / "probe" / "record.json"
    probe.parent.mkdir()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lmbridge",
        "launch",
        "claude",
        "--model",
        MODEL,
        "--config",
        str(cfg),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={
            **os.environ,
            "PATH": _path(fake_bin),
            "LAUNCH_PROBE": str(probe),
            "FAKE_CLIENT_WAIT": "1",
        },
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    try:
        ready = probe.parent / "ready"
        for _ in range(600):
            if ready.exists() or proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        assert ready.exists(), "the client did not start"
        os.write(master, b"\x03")  # Ctrl-C, as typed
        code = await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        os.close(master)
    assert code == 130
    assert (probe.parent / "sigints").read_text() == "1"
