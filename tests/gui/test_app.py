"""The app as a whole: start-up, the no-tray policy, the one shutdown path."""

from __future__ import annotations

from lmbridge.gui.app import LMBridgeApp


async def test_starts(gui_app: LMBridgeApp) -> None:
    assert gui_app.controller.running
