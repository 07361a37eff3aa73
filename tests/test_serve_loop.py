"""`lmbridge serve` on each event loop `[server] event_loop` offers: a real
subprocess, the fake upstream on loopback, the official SDKs as clients.

The in-process tests run on asyncio's loop; `lmbridge serve` runs on uvloop
by default (cli/eventloop.py). What depends on the loop is exercised here on
both: whole and streamed answers over a session, translation, a client
that leaves mid-stream, the client limits' timers and the connection cap,
the request history written from its thread, and SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import anthropic
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from fakes.azure_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.azure_fixtures import FakeAz
from fakes.foundry import FakeFoundry
from fakes.openai_upstream import FakeOpenAIUpstream, Script

# serve is stopped with SIGTERM here, and the fake az is a POSIX script.
pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="POSIX signals and the fake az"
)
LOOPS = ["asyncio", "uvloop"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    def __init__(self, proc: asyncio.subprocess.Process, url: str, home: Path):
        self.proc, self.url, self.home = proc, url, home
        self.out = ""

    async def stop(self) -> tuple[int, str, str]:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(self.proc.communicate(), 15)
        self.out += out.decode()
        return self.proc.returncode or 0, self.out, err.decode()


async def _spawn(
    home: Path, config: str, *argv: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    """`python ARGV...` with `config` in home/config.toml (`{config}` in
    ARGV names it) and LMBRIDGE_HOME at `home`."""
    cfg = home / "config.toml"
    cfg.write_text(config)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *(arg.replace("{config}", str(cfg)) for arg in argv),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "LMBRIDGE_HOME": str(home), **(env or {})},
    )


async def _started(served: Served) -> bool:
    """Read its start-up lines, up to the event loop's (the last one);
    False when it ended first."""
    stdout = served.proc.stdout
    assert stdout is not None
    while "event loop:" not in served.out:
        line = (await asyncio.wait_for(stdout.readline(), 20)).decode()
        if not line:
            return False
        served.out += line
    return True


async def _serve(
    home: Path, config: str, *, env: dict[str, str] | None = None
) -> Served:
    port = _free_port()
    serve = ("-m", "lmbridge", "serve", "--config", "{config}", "--port", str(port))
    proc = await _spawn(home, config, *serve, env=env)
    served = Served(proc, f"http://127.0.0.1:{port}", home)
    if not await _started(served):
        _, out, err = await served.stop()
        raise AssertionError(f"serve ended: {out}{err}")
    return served


def _config(upstream: str, loop: str, **server: object) -> str:
    extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in server.items())
    return f"""
[server]
event_loop = "{loop}"
{extra}
[[upstream]]
name = "fake"
kind = "openai"
base_url = "{upstream}"

[[route]]
model = "claude-*"
upstream = "fake"
target = "fake-model"
"""


@pytest.mark.parametrize("loop", LOOPS)
async def test_a_session_on_each_loop(
    loop: str, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    served = await _serve(tmp_path, _config(fake_upstream.url, loop))
    try:
        assert f"event loop: {loop}" in served.out
        chat = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key="x")
        claude = anthropic.AsyncAnthropic(base_url=served.url, api_key="x")
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
        for turn in range(3):  # whole, streamed, whole: the same conversation
            fake_upstream.script = Script(text=f"answer {turn}")
            if turn == 1:
                chunks = await chat.chat.completions.create(
                    model="fake-model", messages=messages, stream=True
                )
                text = "".join(
                    [
                        c.choices[0].delta.content or ""
                        async for c in chunks
                        if c.choices
                    ]
                )
            else:
                answer = await chat.chat.completions.create(
                    model="fake-model",
                    messages=messages,
                )
                text = answer.choices[0].message.content or ""
            assert text == f"answer {turn}"
            messages += [
                {"role": "assistant", "content": text},
                {"role": "user", "content": f"and {turn}?"},
            ]
        # The third turn went upstream with the two before it.
        assert len(fake_upstream.requests[-1].body["messages"]) == 5
        # Translated: Anthropic Messages to the Chat upstream, streamed.
        fake_upstream.script = Script(text="translated")
        async with claude.messages.stream(
            model="claude-x",
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
        ) as stream:
            assert await stream.get_final_text() == "translated"
        await chat.close()
        await claude.close()
    finally:
        code, out, err = await served.stop()
    assert code == 0, err
    assert "LM Bridge stopped" in out
    assert "Traceback" not in err
    # The history's writer thread kept every request, under its model.
    with sqlite3.connect(tmp_path / "data" / "lmbridge.db") as db:
        rows = db.execute(
            "SELECT model, status FROM request_history ORDER BY id"
        ).fetchall()
    assert rows == [("fake-model", 200)] * 3 + [("claude-x", 200)]


@pytest.mark.parametrize("loop", LOOPS)
async def test_a_client_gone_mid_stream_and_the_next_one(
    loop: str, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    served = await _serve(tmp_path, _config(fake_upstream.url, loop))
    try:
        # About 200 pieces, 20 ms apart: still streaming when the client goes.
        fake_upstream.script = Script(text=" ".join(["x"] * 200), chunk_delay=0.02)
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(served))
        body = json.dumps(
            {
                "model": "fake-model",
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            }
        ).encode()
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        await reader.readuntil(b"data: ")  # the stream has begun
        writer.close()  # and the client leaves
        for _ in range(100):  # the upstream's stream is closed in turn
            if fake_upstream.cancelled:
                break
            await asyncio.sleep(0.05)
        assert fake_upstream.cancelled == 1
        fake_upstream.script = Script(text="still here")
        chat = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key="x")
        answer = await chat.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content == "still here"
        await chat.close()
    finally:
        code, _, err = await served.stop()
    assert code == 0, err
    assert "Traceback" not in err


def _port(served: Served) -> int:
    return int(served.url.rsplit(":", 1)[1])


@pytest.mark.parametrize("loop", LOOPS)
async def test_client_limits_on_each_loop(
    loop: str, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    """The head timer (ClientLimits' one timer per connection) and the cap
    on connections, which close connections from the loop's callbacks."""
    config = _config(
        fake_upstream.url, loop, client_header_timeout=2, max_connections=2
    )
    served = await _serve(tmp_path, config)
    try:
        port = _port(served)
        slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", port)
        slow_writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127")
        # Half a head: closed once the head's time is up (with a 408 or not).
        assert b"HTTP/1.1 200" not in await asyncio.wait_for(slow_reader.read(), 8)
        slow_writer.close()
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        await asyncio.sleep(0.1)
        started = asyncio.get_running_loop().time()
        third_reader, third_writer = await asyncio.open_connection("127.0.0.1", port)
        # The third is closed as it comes (end of stream or a reset), well
        # before its head's time (2 s) would close it.
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(third_reader.read(), 5) == b""
        assert asyncio.get_running_loop().time() - started < 1.0
        third_writer.close()
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.2)
        chat = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key="x")
        answer = await chat.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content == Script().text
        await chat.close()
    finally:
        code, _, err = await served.stop()
    assert code == 0, err


@pytest.mark.parametrize("loop", LOOPS)
async def test_azure_cli_tokens_from_the_serve_loop(
    loop: str, fake_az: FakeAz, fake_foundry: FakeFoundry, tmp_path: Path
) -> None:
    """An azure-foundry upstream signed in with the Azure CLI: the token
    comes from an `az` child process that serve's own loop runs and reaps,
    on every loop; two turns, one token asked for."""
    config = f"""
[server]
event_loop = "{loop}"

[[upstream]]
name = "foundry"
kind = "azure-foundry"
base_url = "{fake_foundry.url}"
api = "messages"
auth = "azure-cli"

[[route]]
model = "claude-*"
upstream = "foundry"
target = "claude-deploy"
"""
    served = await _serve(tmp_path, config)
    try:
        claude = anthropic.AsyncAnthropic(base_url=served.url, api_key="x")
        for text in ("one", "two"):
            answer = await claude.messages.create(
                model="claude-x",
                max_tokens=64,
                messages=[{"role": "user", "content": text}],
            )
            assert answer.content[0].type == "text"
        await claude.close()
    finally:
        code, _, err = await served.stop()
    assert code == 0, err
    assert fake_az.token_calls() == 1
    assert len(fake_foundry.attempts) == 2


HANDLERS_AFTER_SERVE = """
import signal, sys
from pathlib import Path
from lmbridge import config
from lmbridge.cli.entry import serve_headless
code = serve_headless(config.load(Path(sys.argv[1])))
print("after:", signal.getsignal(signal.SIGINT) is signal.default_int_handler,
      signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, code, flush=True)
"""


@pytest.mark.parametrize("loop", LOOPS)
async def test_signals_are_the_defaults_again_once_serve_stops(
    loop: str, tmp_path: Path
) -> None:
    """Once serve has stopped, Ctrl-C and SIGTERM work as in any process
    (uvloop cannot take its handlers back after its loop is closed: an exit
    that hung then could only be killed)."""
    config = f'[server]\nport = 0\nevent_loop = "{loop}"\n'
    proc = await _spawn(tmp_path, config, "-c", HANDLERS_AFTER_SERVE, "{config}")
    served = Served(proc, "", tmp_path)
    await _started(served)  # or it ended: what it said is below
    code, out, err = await served.stop()
    assert code == 0, err
    assert f"event loop: {loop}" in out
    assert "after: True True 0" in out


async def test_uvloop_asked_for_where_it_cannot_load(tmp_path: Path) -> None:
    """`event_loop = "uvloop"` without uvloop: one line saying so and what
    to do, exit status 2; "auto" there serves on asyncio's loop."""
    hide = tmp_path / "no-uvloop"
    (hide / "uvloop").mkdir(parents=True)
    (hide / "uvloop" / "__init__.py").write_text("raise ImportError('not here')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(hide), *sys.path])}
    config = '[server]\nport = 0\nevent_loop = "uvloop"\n'
    serve = ("-m", "lmbridge", "serve", "--config", "{config}")
    proc = await _spawn(tmp_path, config, *serve, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert 'event_loop is "uvloop" but uvloop cannot be loaded (not here)' in lines[0]
    assert 'event_loop = "auto"' in lines[0]
    assert b"listening" not in out

    served = await _serve(tmp_path, '[server]\nevent_loop = "auto"\n', env=env)
    code, out_text, err_text = await served.stop()
    assert "event loop: asyncio" in out_text
    assert code == 0, err_text


def test_an_unknown_loop_is_a_config_error(tmp_path: Path) -> None:
    import subprocess

    cfg = tmp_path / "config.toml"
    cfg.write_text('[server]\nevent_loop = "trio"\n')
    result = subprocess.run(
        [sys.executable, "-m", "lmbridge", "serve", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
        env={**os.environ, "LMBRIDGE_HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "event_loop" in result.stderr and "trio" in result.stderr


async def test_serve_sets_its_start_up_heap_aside_from_the_collector(
    fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    # A full collection walking what start-up left took 60-77 ms, a stall of
    # every answer in flight; frozen out of its reach, a few ms. And the
    # young generation is collected less often (cli/entry.py settle_heap).
    cfg = tmp_path / "config.toml"
    cfg.write_text(_config(fake_upstream.url, "auto"))
    port = _free_port()
    log_file = tmp_path / "serve.log"
    with log_file.open("wb") as log:  # debug lines: a file, not a pipe to fill
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "lmbridge", "--log-level", "debug", "serve"),
            *("--config", str(cfg), "--port", str(port)),
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env={**os.environ, "LMBRIDGE_HOME": str(tmp_path)},
        )
    served = Served(proc, f"http://127.0.0.1:{port}", tmp_path)
    try:
        assert await _started(served), log_file.read_text()[-2000:]
        async with openai.AsyncOpenAI(
            base_url=served.url + "/v1", api_key="x"
        ) as client:
            answer = await client.chat.completions.create(
                model="fake-model", messages=[{"role": "user", "content": "hi"}]
            )
        assert answer.choices[0].message.content
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0
    err = log_file.read_text()
    frozen = re.search(r"(\d+) objects set aside from garbage collection", err)
    assert frozen is not None, err[-2000:]
    assert int(frozen[1]) > 50_000  # modules, the server, its stores
    assert "young generation is collected every 10000 new objects" in err
