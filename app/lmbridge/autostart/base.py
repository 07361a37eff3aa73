"""What the three start-at-login mechanisms share: the protocol, a safe write.

`Mechanism` is what `autostart.mechanism()` returns and what the XDG entry
(`xdg.py`), the LaunchAgent (`macos.py`) and the Run key (`windows.py`) each
fulfil; `write_atomic` is how the two that are files write them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class Mechanism(Protocol):
    """One platform's way of starting a program at login."""

    @property
    def location(self) -> str:
        """Where the setting lives (a path, or the registry value)."""
        ...

    def is_enabled(self) -> bool: ...

    def enable(self, command: Sequence[str]) -> None: ...

    def disable(self) -> bool:
        """Remove the entry; False if there was none."""
        ...

    def command(self) -> list[str] | None:
        """The command registered now, if any (as far as it can be read)."""
        ...


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace `path` with `data` in one step (a temporary file, renamed)."""
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)
