"""Credentials in a base_url are sent, never shown (issue 25, item 2): not
in a 503, /health, the request history, nor `serve`'s banner, which warns
once."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream
from lmbridge import config
from lmbridge.auth.secrets import SECRETS as KEY_STORE
from lmbridge.core.urls import Url, masked, without_credentials
from support import running, settings_for

PASSWORD = "b4se-url-pa55word-9876"


def test_a_url_renders_without_its_password() -> None:
    url = Url(f"https://me:{PASSWORD}@example.com:8443/v1")
    assert str(url) == "https://me:***@example.com:8443/v1"
    assert f"{url}" == str(url) and PASSWORD not in repr(url)
    assert url.netloc == "me:***@example.com:8443"
    assert url.full.endswith("@example.com:8443/v1")
    assert url.has_credentials
    assert masked("http://h:1/x") == "http://h:1/x"
    assert masked("http://me@h") == "http://me@h"
    assert masked("http://a:b@h:99999") == "***"  # unparsable: nothing of it
    assert without_credentials(f"http://me:{PASSWORD}@h/") == "http://h/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_no_way_out_shows_the_password(lmbridge_home: Path) -> None:
    down = f"http://me:{PASSWORD}@127.0.0.1:{free_port()}"
    body = {"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]}
    async with running(settings_for(down)) as proxy:
        async with aiohttp.ClientSession() as s:
            async with s.post(proxy.url + "/v1/chat/completions", json=body) as r:
                assert r.status == 503
                answer = await r.text()
            async with s.get(proxy.url + "/health") as r:
                health = await r.text()
        record = await proxy.record()
        await asyncio.sleep(0.3)  # the history is written off the request path
    assert "me:***@127.0.0.1" in answer
    assert "me:***@127.0.0.1" in health
    history = b"".join(p.read_bytes() for p in config.data_dir().glob("*"))
    for text in (answer, health, repr(record), history.decode("utf-8", "replace")):
        assert PASSWORD not in text


async def test_serve_masks_the_banner_and_warns_once(
    lmbridge_home: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""[server]
port = 0
[[upstream]]
name = "a"
kind = "openai"
base_url = "http://me:{PASSWORD}@127.0.0.1:9"
"""
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lmbridge",
        "serve",
        "--config",
        str(cfg),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "LMBRIDGE_HOME": str(lmbridge_home)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    warned: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not any("upstream a:" in line for line in lines):
                lines.append((await proc.stdout.readline()).decode())
            while not any("base_url holds" in line for line in warned):
                warned.append((await proc.stderr.readline()).decode())
    finally:
        proc.terminate()
        out, err = await proc.communicate()
    banner = "".join(lines) + out.decode()
    assert "upstream a: openai http://me:***@127.0.0.1:9" in banner
    stderr = "".join(warned) + err.decode()
    assert stderr.count("base_url holds a password") == 1
    assert PASSWORD not in banner + stderr


@pytest.mark.usefixtures("memory_keyring")
async def test_a_key_and_base_url_credentials_together(
    fake_upstream: FakeOpenAIUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    # Both want the Authorization header: the key wins, with a warning
    # (aiohttp would have refused the request: a 500).
    await KEY_STORE.set("fake", "keyring-key-0123456789")
    url = fake_upstream.url.replace("http://", f"http://me:{PASSWORD}@")
    body = {"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]}
    async with running(settings_for(url)) as proxy, aiohttp.ClientSession() as s:
        for _ in range(2):
            async with s.post(proxy.url + "/v1/chat/completions", json=body) as r:
                assert r.status == 200
    seen = fake_upstream.requests[-1].headers["Authorization"]
    assert seen == "Bearer keyring-key-0123456789"
    assert caplog.text.count("credentials in its base_url") == 1
    assert PASSWORD not in caplog.text
