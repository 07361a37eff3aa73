"""The data and log directories are the user's alone (issue 25, item 7):
0700 directories and 0600 files from their creation, whatever the umask;
existing ones narrowed, never widened."""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lmbridge import config, logs
from lmbridge.core.private import private_dir, private_file
from lmbridge.store.db import FILENAME, Database

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="Windows keeps profiles private by ACL"
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """The usual umask, under which files are 0644 unless we say otherwise."""
    old = os.umask(0o022)
    yield
    os.umask(old)


async def test_the_database_and_its_wal_and_shm_are_private(
    lmbridge_home: Path,
) -> None:
    data = config.data_dir()
    db = Database.in_dir(data)
    await db.open()
    try:
        await db.execute("CREATE TABLE t (x)")
        await db.execute("INSERT INTO t VALUES (1)")
        files = sorted(p.name for p in data.iterdir())
        assert files == [FILENAME, f"{FILENAME}-shm", f"{FILENAME}-wal"]
        assert mode(data) == 0o700
        for name in files:
            assert mode(data / name) == 0o600, name
    finally:
        await db.close()


async def test_existing_files_are_narrowed_never_widened(lmbridge_home: Path) -> None:
    data = config.data_dir()
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    (data / FILENAME).touch()
    os.chmod(data / FILENAME, 0o644)
    db = Database.in_dir(data)
    await db.open()
    await db.close()
    assert mode(data) == 0o700
    assert mode(data / FILENAME) == 0o600
    # Narrower than ours stays as it is.
    os.chmod(data / FILENAME, 0o400)
    private_file(data / FILENAME)
    assert mode(data / FILENAME) == 0o400
    os.chmod(data, 0o500)
    private_dir(data)
    assert mode(data) == 0o500
    os.chmod(data, 0o700)


def test_private_file_never_goes_through_a_link(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("theirs")
    os.chmod(target, 0o644)
    link = tmp_path / "lmbridge.db"
    link.symlink_to(target)
    private_file(link)
    assert mode(target) == 0o644 and target.read_text() == "theirs"
    dangling = tmp_path / "new.db"
    dangling.symlink_to(tmp_path / "nowhere")
    private_file(dangling)
    assert not (tmp_path / "nowhere").exists()


def test_the_log_file_and_its_rotations_are_private(tmp_path: Path) -> None:
    path = tmp_path / "a" / "logs" / "lmbridge.log"
    logger = logging.getLogger("lmbridge.test-private")
    logger.propagate = False
    handler = logs.setup_file_logging(
        config.LoggingSettings(level="DEBUG"), path=path, logger=logger
    )
    handler.maxBytes = 200
    try:
        for n in range(20):
            logger.info("line %d %s", n, "x" * 40)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert mode(path.parent) == 0o700
    assert mode(tmp_path / "a") == 0o700  # created by us: private too
    written = sorted(path.parent.iterdir())
    assert len(written) > 1
    for file in written:
        assert mode(file) == 0o600, file.name
