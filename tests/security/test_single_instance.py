"""The single-instance socket (issue 25, item 9): in a directory only the
user can write, and a socket someone else owns is reported, not obeyed."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from lmbridge.gui.single_instance import SingleInstance, instance_name, runtime_dir

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="a named pipe there")


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A directory of the test's own with a short path: a Unix socket's
    path holds at most 107 bytes, and pytest's `tmp_path` under a
    pytest-xdist worker (…/pytest-N/popen-gw1/test_the_first_instance_
    listen0/…) leaves too few of them for the socket's name."""
    root = Path(tempfile.mkdtemp(prefix="lmb-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def temp_root(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary directory of the test's own, instead of /tmp."""
    root = short_tmp / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_the_socket_is_in_the_runtime_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, temp_root: Path
) -> None:
    xdg = tmp_path / "run-user"
    xdg.mkdir(mode=0o700)
    os.chmod(xdg, 0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    name = Path(instance_name())
    assert name.parent == xdg and name.name.startswith("lmbridge-")


@pytest.mark.parametrize("xdg_mode", [None, 0o777])
def test_else_a_private_directory_of_ours(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    temp_root: Path,
    xdg_mode: int | None,
) -> None:
    if xdg_mode is None:
        monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    else:
        shared = tmp_path / "shared"
        shared.mkdir()
        os.chmod(shared, xdg_mode)
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    directory = runtime_dir()
    assert directory == temp_root / f"lmbridge-{os.getuid()}"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert Path(instance_name()).parent == directory


def test_a_planted_directory_turns_the_guard_off(
    monkeypatch: pytest.MonkeyPatch,
    temp_root: Path,
    caplog: pytest.LogCaptureFixture,
    qtbot: QtBot,
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    planted = temp_root / f"lmbridge-{os.getuid()}"
    planted.mkdir()
    os.chmod(planted, 0o777)  # as another user would leave it
    with caplog.at_level(logging.WARNING):
        assert instance_name() == ""
    assert "not a private directory" in caplog.text
    assert SingleInstance("").claim()  # runs, without the guard


@pytest.mark.skipif(os.getuid() != 0, reason="chown needs root")
def test_a_socket_owned_by_someone_else_is_reported_not_obeyed(
    short_tmp: Path, caplog: pytest.LogCaptureFixture, qtbot: QtBot
) -> None:
    path = short_tmp / "lmbridge-planted"
    theirs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    theirs.bind(str(path))
    theirs.listen(1)
    os.chown(path, 12345, 12345)
    try:
        with caplog.at_level(logging.WARNING):
            instance = SingleInstance(str(path))
            assert instance.claim()  # this launch runs
        assert "belongs to another user" in caplog.text
        theirs.settimeout(0.2)
        with pytest.raises(TimeoutError):
            theirs.accept()  # and never asked the planted socket anything
    finally:
        theirs.close()


def test_the_first_instance_listens_in_the_private_directory(
    monkeypatch: pytest.MonkeyPatch, temp_root: Path, qtbot: QtBot
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    first = SingleInstance()
    assert first.claim()
    try:
        path = Path(first.name)
        assert path.exists() and path.parent.name == f"lmbridge-{os.getuid()}"
        assert os.lstat(path).st_uid == os.getuid()
        second = SingleInstance()
        with qtbot.waitSignal(first.activated, timeout=3000):
            assert not second.claim()
    finally:
        first.release()
