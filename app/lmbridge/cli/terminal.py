"""Every line a CLI command prints is safe for the terminal.

Model names, chat names and server messages come from outside (LM Studio's
catalog, a stored chat, an upstream's error text). A control sequence in
one of them, such as OSC 52, which writes the clipboard in many terminals,
must reach the terminal as text. `TerminalSafe` wraps stdout and stderr of
the `lmbridge` commands and escapes every control character as it is
written (`core.redact.printable`'s escapes), except line breaks, tabs and
the carriage return the progress lines use; the commands that escape
names themselves (`usage`, `chats`) are unchanged by it.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

from lmbridge.core.redact import escape_control

# printable()'s characters, less "\t", "\n" and "\r".
_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


class TerminalSafe:
    """A text stream that writes control characters as escapes."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if _UNSAFE.search(text) is not None:
            text = _UNSAFE.sub(escape_control, text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def make_output_terminal_safe() -> None:
    """Wrap this process's stdout and stderr (idempotent)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, TerminalSafe):
            setattr(sys, name, TerminalSafe(stream))
