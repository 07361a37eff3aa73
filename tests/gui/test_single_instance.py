"""A second launch brings the running app forward instead of starting again."""

from __future__ import annotations

import uuid
from pathlib import Path

from pytestqt.qtbot import QtBot

from lmbridge.gui.single_instance import SingleInstance, instance_name


def test_second_instance_activates_the_first(qtbot: QtBot) -> None:
    name = f"lmbridge-test-{uuid.uuid4().hex[:8]}"
    first = SingleInstance(name)
    assert first.claim()
    try:
        second = SingleInstance(name)
        with qtbot.waitSignal(first.activated, timeout=3000):
            assert not second.claim()
    finally:
        first.release()
    # Once the first is gone (even after a crash), a new launch is first.
    third = SingleInstance(name)
    assert third.claim()
    third.release()


def test_name_is_per_home(lmbridge_home: object) -> None:
    # A socket in a private directory, not a bare name in /tmp (issue 25;
    # tests/security/test_single_instance.py).
    assert Path(instance_name()).name.startswith("lmbridge-")
