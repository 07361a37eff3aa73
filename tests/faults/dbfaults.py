"""Faults of the database, made from outside LM Bridge, and a raw HTTP client.

- `held_lock`: ANOTHER PROCESS (a Python subprocess, as `sqlite3` in a shell
  would) holds SQLite's write lock on the file.
- `corrupt`: the file is not a database.
- `small_disk`: the data directory is a small tmpfs of its own, which
  `fill` fills and `read_only` remounts read-only (root only; where mount
  is not permitted the test is skipped with one line).
- `raw_call`: one HTTP/1.1 exchange on a socket, read to the end, so a test
  sees everything the server wrote: a second response in the same body
  cannot hide.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

_LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
conn.execute("BEGIN IMMEDIATE")
conn.execute("CREATE TABLE IF NOT EXISTS held_by_another (x)")
print("held", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
conn.close()
"""


@contextlib.asynccontextmanager
async def held_lock(path: Path) -> AsyncIterator[None]:
    """Another process holds the write lock on the database at `path`."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _LOCKER,
        str(path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        async with asyncio.timeout(10):
            assert await proc.stdout.readline() == b"held\n"
        yield
    finally:
        proc.stdin.close()
        async with asyncio.timeout(10):
            await proc.wait()


def corrupt(path: Path) -> bytes:
    """Make the file at `path` something that is not a database; its bytes."""
    data = b"this is not an SQLite database, just text a tool wrote here\n" * 100
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    path.write_bytes(data)
    return data


@contextlib.contextmanager
def small_disk(directory: Path, size: str = "2m") -> Iterator[Path]:
    """Mount a tmpfs of `size` on `directory` (its files copied in)."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("a small file system needs mount (root on Linux)")
    directory.mkdir(parents=True, exist_ok=True)
    saved = Path(tempfile.mkdtemp(prefix="lmbridge-disk-"))
    for item in directory.iterdir():
        shutil.move(str(item), saved / item.name)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        _restore(saved, directory)
        pytest.skip(f"mount not permitted here: {done.stderr.strip()}")
    try:
        for item in saved.iterdir():
            shutil.copy2(item, directory / item.name)
        yield directory
    finally:
        for item in directory.iterdir():
            if item.name != "filler":
                shutil.copy2(item, saved / item.name)
        subprocess.run(["mount", "-o", "remount,rw", str(directory)], check=False)
        subprocess.run(["umount", "-l", str(directory)], check=True)
        for item in directory.iterdir():
            item.unlink()
        _restore(saved, directory)


def _restore(saved: Path, directory: Path) -> None:
    for item in saved.iterdir():
        shutil.move(str(item), directory / item.name)
    saved.rmdir()


def fill(directory: Path) -> Path:
    """Fill the file system holding `directory` to the last byte."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        size = 65536
        while size:
            try:
                os.write(fd, b"\0" * size)
            except OSError:
                size //= 2
    finally:
        os.close(fd)
    return filler


def read_only(directory: Path) -> None:
    """Remount the tmpfs on `directory` read-only."""
    subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    # Every byte after the first response ended: must be empty.
    trailing: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_call(
    url: str,
    path: str,
    body: Any,
    headers: dict[str, str] | None = None,
    when: tuple[bytes, Callable[[], Awaitable[Any]]] | None = None,
) -> RawAnswer:
    """POST (PUT for /store/chat) `body` as JSON; read until the server
    closes; the first response, and whatever came after it. `when`: once
    the bytes read so far hold its marker, await its callback (a fault
    made mid-answer)."""
    parts = urlsplit(url)
    payload = json.dumps(body).encode()
    method = "PUT" if path.endswith("/store/chat") else "POST"
    lines = [
        f"{method} {parts.path}{path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    assert parts.hostname is not None and parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        await writer.drain()
        raw = b""
        async with asyncio.timeout(30):
            while chunk := await reader.read(65536):
                raw += chunk
                if when is not None and when[0] in raw:
                    await when[1]()
                    when = None
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return _parse(raw)


def _parse(raw: bytes) -> RawAnswer:
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith("HTTP/1.1 "), raw[:200]
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                _, _, trailing = rest.partition(b"\r\n")
                break
            body += rest[:size]
            rest = rest[size + 2 :]
    else:
        length = int(headers.get("content-length", len(rest)))
        body, trailing = rest[:length], rest[length:]
    return RawAnswer(int(status_line.split()[1]), headers, body, trailing)


def db_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query, read with sqlite3 directly (as another program)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def file_bytes(path: Path) -> bytes:
    """The bytes of a file (a helper, so async tests read it in one place)."""
    return path.read_bytes()
