"""Work-arounds for defects of the installed PySide6, detected at import and applied only when
present, so they switch themselves off once PySide6 is fixed.

PySide6 6.12.0: ``SignalInstance.emit()`` returns ``True`` without owning a reference to it, so
each emit from Python takes one reference away from the ``True`` object; after a few thousand
emits (mouse moves) CPython aborts with "Fatal Python error: bool_dealloc". :func:`emit` gives
the reference back. Every signal samdesk declares is emitted through it.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


class _Probe(QObject):
    ping = Signal()


def _emit_drops_a_reference() -> bool:
    probe = _Probe()
    rounds = 8
    before = sys.getrefcount(True)
    for _ in range(rounds):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    for _ in range(max(0, lost)):
        _incref(True)
    return lost >= rounds


#: True when this PySide6 has the emit reference defect.
EMIT_DROPS_REFERENCE = _emit_drops_a_reference()


def emit(signal: Any, *args: Any) -> None:
    """``signal.emit(*args)``, keeping Python's reference counts right on every PySide6."""
    result = signal.emit(*args)
    if EMIT_DROPS_REFERENCE and isinstance(result, bool):
        _incref(result)
