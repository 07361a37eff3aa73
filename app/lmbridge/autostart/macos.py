"""macOS: a per-user LaunchAgent that starts LM Bridge at login.

`~/Library/LaunchAgents/dev.lmbridge.LMBridge.plist`, with RunAtLoad: it
takes effect from the next login.
"""

from __future__ import annotations

import plistlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lmbridge.autostart.base import write_atomic

LAUNCH_AGENT_LABEL = "dev.lmbridge.LMBridge"


@dataclass
class LaunchAgent:
    """A per-user launchd agent that runs LM Bridge once at login."""

    agents_dir: Path

    @property
    def path(self) -> Path:
        return self.agents_dir / f"{LAUNCH_AGENT_LABEL}.plist"

    @property
    def location(self) -> str:
        return str(self.path)

    @staticmethod
    def plist(command: Sequence[str]) -> bytes:
        """The agent's property list (XML)."""
        return plistlib.dumps(
            {
                "Label": LAUNCH_AGENT_LABEL,
                "ProgramArguments": list(command),
                "RunAtLoad": True,
                "KeepAlive": False,
                "ProcessType": "Interactive",
                "LimitLoadToSessionType": "Aqua",
            },
            fmt=plistlib.FMT_XML,
        )

    def is_enabled(self) -> bool:
        data = self._load()
        return data is not None and not data.get("Disabled", False)

    def enable(self, command: Sequence[str]) -> None:
        self.agents_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, self.plist(command))

    def disable(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def command(self) -> list[str] | None:
        data = self._load()
        args = data.get("ProgramArguments") if data else None
        return [str(a) for a in args] if isinstance(args, list) else None

    def _load(self) -> dict[str, object] | None:
        try:
            with self.path.open("rb") as fp:
                data = plistlib.load(fp)
        except (OSError, plistlib.InvalidFileException, ValueError):
            return None
        return data if isinstance(data, dict) else None
