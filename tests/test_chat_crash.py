"""Crash safety: SIGKILL the proxy in the middle of a streamed PUT /chat.

The proxy runs as `python -m lmbridge serve` in a subprocess; the fake
upstream runs on this test's event loop and streams slowly, so the kill lands
while a reply is being written. After a restart every chat whose creation or
exchange had been acknowledged is intact, the interrupted exchange left no
trace (a user message and its reply are committed as one step), and SQLite
finds the file consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX-only")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(home: Path, log: Path) -> AsyncIterator[tuple[str, Any]]:
    """Run `lmbridge serve --port N`; yields its base URL and the process."""
    port = _free_port()
    with log.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "lmbridge",
            "serve",
            "--port",
            str(port),
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            env={**os.environ, "LMBRIDGE_HOME": str(home)},
        )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            while b"listening on" not in (line := await proc.stdout.readline()):
                assert line, f"lmbridge serve exited; see {log}"
        yield f"http://127.0.0.1:{port}/store", proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                await proc.wait()


async def put(http: aiohttp.ClientSession, url: str, name: str, text: str) -> None:
    body = {"name": name, "message": {"role": "user", "content": text}}
    async with http.put(url + "/chat", json=body) as r:
        assert r.status == 200
        assert (await r.read()).endswith(b"data: [DONE]\n\n")


async def snapshot(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url + "/chats") as r:
        names = [c["name"] for c in (await r.json())["chats"]]
    chats = {}
    for name in names:
        async with http.get(url + "/chat", params={"name": name}) as r:
            chats[name] = (await r.json())["chat"]
    return chats


async def test_sigkill_mid_put_leaves_every_completed_chat_intact(
    fake_upstream: FakeOpenAIUpstream, lmbridge_home: Path, tmp_path: Path
) -> None:
    (lmbridge_home / "config.toml").write_text(
        f"""
[[upstream]]
name = "fake"
kind = "openai"
base_url = "{fake_upstream.url}"
"""
    )
    log = tmp_path / "serve.log"
    async with aiohttp.ClientSession() as http:
        async with serve(lmbridge_home, log) as (url, proc):
            for i in range(5):
                async with http.post(
                    url + "/chat", json={"name": f"chat {i}", "model": "m"}
                ) as r:
                    assert r.status == 201
                for turn in range(i % 3):
                    await put(http, url, f"chat {i}", f"turn {turn} of chat {i}")
            before = await snapshot(http, url)

            # While a slow reply streams into "chat 1", creations keep landing.
            created: list[str] = []

            async def keep_creating() -> None:
                for n in range(10_000):
                    body = {"name": f"bulk {n}", "model": "m"}
                    async with http.post(url + "/chat", json=body) as r:
                        assert r.status == 201
                    created.append(body["name"])

            fake_upstream.script = Script(
                text=" ".join(f"word{i}" for i in range(200)), chunk_delay=0.05
            )
            body = {"name": "chat 1", "message": {"role": "user", "content": "long"}}
            creator = asyncio.ensure_future(keep_creating())
            resp = await http.put(url + "/chat", json=body)
            seen = b""
            while seen.count(b"word") < 5:
                seen += await resp.content.readany()
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            assert proc.returncode == -signal.SIGKILL
            with contextlib.suppress(aiohttp.ClientError):
                await resp.read()
            resp.close()
            with contextlib.suppress(aiohttp.ClientError, AssertionError):
                await creator
            assert created, "no creation finished before the kill"

        db_path = lmbridge_home / "data" / "lmbridge.db"
        conn = sqlite3.connect(db_path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            conn.execute("PRAGMA foreign_keys=ON")
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            orphans = conn.execute(
                "SELECT COUNT(*) FROM chat_messages"
                " WHERE chat_id NOT IN (SELECT id FROM chats)"
            ).fetchone()
            assert orphans == (0,)
            (versions,) = conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()
            assert versions >= 1
        finally:
            conn.close()

        async with serve(lmbridge_home, log) as (url, _proc):
            after = await snapshot(http, url)
            for name, chat in before.items():
                assert after[name] == chat, name
            for name in created:
                assert name in after, name
            assert len(after["chat 1"]["messages"]) == len(before["chat 1"]["messages"])
            # The restarted proxy writes as before.
            fake_upstream.script = Script(text="back again")
            await put(http, url, "chat 1", "still there?")
            async with http.get(url + "/chat", params={"name": "chat 1"}) as r:
                messages = (await r.json())["chat"]["messages"]
            assert messages[-1] == {"role": "assistant", "content": "back again"}
