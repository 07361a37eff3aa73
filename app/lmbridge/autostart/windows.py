"""Windows: the `LM Bridge` value of HKCU's Run key starts LM Bridge at login.

`RunKey` works on any `Registry`, so tests run it on every OS with an
in-memory one; `WinRegistry` is the real one, over `winreg`, and refuses to
work anywhere but on Windows.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from lmbridge.core.errors import AutostartError

RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE_NAME = "LM Bridge"


class Registry(Protocol):
    """The few registry operations the Run key needs (HKEY_CURRENT_USER)."""

    def get(self, key: str, name: str) -> str | None: ...

    def set(self, key: str, name: str, value: str) -> None: ...

    def delete(self, key: str, name: str) -> bool: ...


class WinRegistry:
    """`Registry` over `winreg`, HKEY_CURRENT_USER."""

    def get(self, key: str, name: str) -> str | None:
        if sys.platform != "win32":
            raise AutostartError("the Windows registry exists only on Windows")
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key) as handle:
                value, _kind = winreg.QueryValueEx(handle, name)
        except FileNotFoundError:
            return None
        return str(value)

    def set(self, key: str, name: str, value: str) -> None:
        if sys.platform != "win32":
            raise AutostartError("the Windows registry exists only on Windows")
        import winreg

        with winreg.CreateKeyEx(
            winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE
        ) as handle:
            winreg.SetValueEx(handle, name, 0, winreg.REG_SZ, value)

    def delete(self, key: str, name: str) -> bool:
        if sys.platform != "win32":
            raise AutostartError("the Windows registry exists only on Windows")
        import winreg

        try:
            with winreg.OpenKey(
                winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE
            ) as handle:
                winreg.DeleteValue(handle, name)
        except FileNotFoundError:
            return False
        return True


@dataclass
class RunKey:
    """The `LM Bridge` value under HKCU's Run key."""

    registry: Registry

    @property
    def location(self) -> str:
        return f"HKEY_CURRENT_USER\\{RUN_KEY}\\{RUN_VALUE_NAME}"

    @staticmethod
    def value(command: Sequence[str]) -> str:
        """The command line stored in the Run value."""
        return subprocess.list2cmdline(list(command))

    def is_enabled(self) -> bool:
        return bool(self.registry.get(RUN_KEY, RUN_VALUE_NAME))

    def enable(self, command: Sequence[str]) -> None:
        self.registry.set(RUN_KEY, RUN_VALUE_NAME, self.value(command))

    def disable(self) -> bool:
        return self.registry.delete(RUN_KEY, RUN_VALUE_NAME)

    def command(self) -> list[str] | None:
        value = self.registry.get(RUN_KEY, RUN_VALUE_NAME)
        return [value] if value else None
