"""SIGKILL of `lmbridge serve` in the middle of writes, and its start-up on a
broken database.

The proxy runs as `python -m lmbridge serve` in a subprocess. Traffic goes
through every door, streamed and whole, with and without session chains,
while chats are created; everything acknowledged and written before the
kill is read back after a restart, and SQLite finds the file consistent.
Started on a corrupt database, `lmbridge serve` says so and serves model
calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from faults.dbfaults import corrupt, db_rows
from faults.doors import DOORS, MODEL, call

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX-only")


@dataclass
class Served:
    url: str
    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def configure(home: Path, fake: FakeOpenAIUpstream) -> None:
    (home / "config.toml").write_text(
        f"""
[[upstream]]
name = "fake"
kind = "openai"
api = "responses"
base_url = "{fake.url}"

[[route]]
model = "claude-*"
upstream = "fake"
target = "fake-model"
"""
    )


@contextlib.asynccontextmanager
async def serve(home: Path, log: Path) -> AsyncIterator[Served]:
    """`lmbridge serve --port N` until its start-up lines are out."""
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
    served = Served(f"http://127.0.0.1:{port}", proc)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            while not any(line.startswith("  database") for line in served.lines):
                line = await proc.stdout.readline()
                assert line, f"lmbridge serve exited; see {log}"
                served.lines.append(line.decode())
        yield served
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                await proc.wait()


async def wait_for(db: Path, sql: str, at_least: int) -> int:
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(sqlite3.Error):
            count = int(db_rows(db, sql)[0][0])
            if count >= at_least:
                return count
        assert time.monotonic() < deadline, f"{sql}: fewer than {at_least}"
        await asyncio.sleep(0.1)


async def test_sigkill_mid_writes_loses_nothing_written_before(
    fake_upstream: FakeOpenAIUpstream, lmbridge_home: Path, tmp_path: Path
) -> None:
    configure(lmbridge_home, fake_upstream)
    db = lmbridge_home / "data" / "lmbridge.db"
    log = tmp_path / "serve.log"
    async with aiohttp.ClientSession() as http, serve(lmbridge_home, log) as served:
        assert f"database {db}" in "".join(served.lines)
        for door in DOORS:
            for stream in (False, True):
                for session in (None, f"k-{door}-{stream}"):
                    out = await call(served.url, door, stream, session)
                    assert out.status == 200 and out.error is None
        async with http.post(
            served.url + "/store/chat", json={"name": "kept", "model": MODEL}
        ) as r:
            assert r.status == 201
        history = await wait_for(db, "SELECT COUNT(*) FROM request_history", 16)
        chained = db_rows(db, "SELECT key FROM sessions")
        # Translated doors chain on a Responses upstream; Responses relays.
        assert len(chained) >= 6

        # Slow answers on every door while chats are created: then SIGKILL.
        fake_upstream.script = Script(
            text=" ".join(f"w{i}" for i in range(100)), chunk_delay=0.01
        )

        async def traffic(n: int) -> None:
            door, stream = DOORS[n % 4], bool(n % 2)
            session = f"k-{door}-{stream}" if n % 3 else None
            await call(served.url, door, stream, session, prompt=f"more {n}")

        async def creating() -> None:
            for n in range(10_000):
                body = {"name": f"bulk {n}", "model": MODEL}
                async with http.post(served.url + "/store/chat", json=body) as r:
                    assert r.status == 201

        load = [asyncio.ensure_future(traffic(n)) for n in range(24)]
        load.append(asyncio.ensure_future(creating()))
        await asyncio.sleep(0.4)
        served.proc.send_signal(signal.SIGKILL)
        await served.proc.wait()
        assert served.proc.returncode == -signal.SIGKILL
        results = await asyncio.gather(*load, return_exceptions=True)
        assert any(isinstance(r, BaseException) for r in results)

    # Read back as another program would (tests/test_chat_crash.py restarts
    # the server on such a file; here each start-up costs seconds).
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        (after,) = conn.execute("SELECT COUNT(*) FROM request_history").fetchone()
        assert after >= history
        assert set(chained) <= set(conn.execute("SELECT key FROM sessions"))
        names = conn.execute("SELECT name FROM chats").fetchall()
        assert ("kept",) in names
    finally:
        conn.close()


async def test_serve_on_a_corrupt_database_says_so_and_serves(
    fake_upstream: FakeOpenAIUpstream, lmbridge_home: Path, tmp_path: Path
) -> None:
    configure(lmbridge_home, fake_upstream)
    db = lmbridge_home / "data" / "lmbridge.db"
    corrupt(db)
    async with serve(lmbridge_home, tmp_path / "serve.log") as served:
        said = "".join(served.lines)
        assert f"database corrupt: the database {db} is damaged" in said, said
        for door in DOORS:
            out = await call(served.url, door, False, session="s")
            assert out.status == 200 and out.text == fake_upstream.script.text
