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
from lmbridge.core.private import (
    TEMP_MARK,
    atomic_write,
    copy_private,
    create_unique,
    folder_lock,
    private_dir,
    private_file,
)
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


# ------------------------------------------------ files written for the user
# (`atomic_write`: config.toml, the tools' files and their backups)


def test_a_new_file_is_private_and_a_rewrite_keeps_its_mode(tmp_path: Path) -> None:
    fresh = tmp_path / "new" / "config.toml"
    assert atomic_write(fresh, b"a = 1\n") == fresh
    assert (fresh.read_bytes(), mode(fresh)) == (b"a = 1\n", 0o600)
    shared = tmp_path / "settings.json"
    shared.write_text("{}")
    shared.chmod(0o640)
    atomic_write(shared, b'{"a": 1}')
    assert (shared.read_text(), mode(shared)) == ('{"a": 1}', 0o640)
    assert not [p for p in tmp_path.rglob("*") if TEMP_MARK in p.name]


def test_a_linked_file_is_replaced_and_the_link_stays(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "config.toml"
    real.write_text("old")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    assert atomic_write(link, b"new") == real
    assert link.is_symlink() and real.read_text() == "new"


def test_a_planted_temporary_name_is_never_opened(tmp_path: Path) -> None:
    """A file and a link waiting at the temporary names are left alone."""
    target = tmp_path / "config.toml"
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    planted = tmp_path / f".config.toml{TEMP_MARK}"
    planted.symlink_to(victim)
    second = tmp_path / f".config.toml{TEMP_MARK}-1"
    second.write_text("someone else's")
    atomic_write(target, b"written")
    assert target.read_text() == "written"
    assert victim.read_text() == "keep me" and second.read_text() == "someone else's"
    with pytest.raises(FileExistsError, match="no free name"):
        create_unique([victim, second], b"x", 0o600)


def test_a_failed_replace_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    target.mkdir()  # something that cannot be replaced by a file
    with pytest.raises(IsADirectoryError):
        atomic_write(target, b"new")
    assert target.is_dir() and list(target.iterdir()) == []
    assert not [p for p in tmp_path.iterdir() if TEMP_MARK in p.name]


def test_a_backup_copy_is_narrowed_to_the_user(tmp_path: Path) -> None:
    source = tmp_path / "config.yaml"
    source.write_text("models: []\n")
    source.chmod(0o644)
    names = [tmp_path / "backup-1", tmp_path / "backup-2"]
    names[0].write_text("taken")
    copy = copy_private(source, names)
    assert copy == names[1]
    assert (copy.read_text(), mode(copy)) == ("models: []\n", 0o600)


def test_the_folder_lock_excludes_another_holder(tmp_path: Path) -> None:
    """Two writers (the app and the CLI) do not interleave: while one holds
    the folder's lock, another open of the folder cannot take it."""
    import fcntl

    folder = tmp_path / "config"
    with folder_lock(folder):
        other = os.open(folder, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
    other = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    finally:
        os.close(other)
