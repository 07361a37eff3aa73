"""Workarounds for bugs of particular Qt / PySide versions, applied once.

PySide6 6.12.0 on Python 3.11: functions that return `None`, `True` or
`False` (every void method such as `setText`, `Signal.emit()`, a model's
`data()` answering None) hand them back without a new reference, as if
they were immortal (as they are from Python 3.12 on). Each such call takes
one reference from the singleton; after enough calls its count reaches zero
and the interpreter aborts ("none_dealloc", "bool_dealloc"). The fix gives
the three singletons a reserve of references no run can use up, which is
what Python 3.12 does for them anyway. The probe applies it only where
PySide leaks.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

# References added to each singleton: more than any run can take.
RESERVE = 1 << 40


class _Probe(QObject):
    fired = Signal()


def pyside_leaks_singletons() -> bool:
    """Whether PySide calls take references from None / True."""
    probe = _Probe()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(16):
        probe.setObjectName("probe")  # returns None
        probe.fired.emit()  # returns True
    return (
        sys.getrefcount(None) < none_before - 8
        or sys.getrefcount(True) < true_before - 8
    )


def apply() -> bool:
    """Apply the workarounds this PySide needs; True if one was applied."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False  # the singletons are immortal there
    if not pyside_leaks_singletons():
        return False
    for singleton in (None, True, False):
        ctypes.c_ssize_t.from_address(id(singleton)).value += RESERVE
    return True


APPLIED = apply()
