"""A work-around for a reference-counting defect of PySide6 6.12.0 on Python < 3.12.

On Python 3.12+ ``None``, ``True`` and ``False`` are immortal: their reference counts are never
checked. PySide6 6.12.0 relies on that — ``SignalInstance.emit()`` returns ``True`` without a
reference, and Python overrides of Qt virtuals (``paint``, event handlers, ``itemChange``) drop
a reference to ``None`` — so on Python 3.10 / 3.11 every emit and many repaints take one
reference away from those objects, and after some thousands CPython aborts ("Fatal Python error:
bool_dealloc" / "none_dealloc"), in the middle of a session or at exit.

:func:`protect_singletons` detects the defect (a signal emitted 64 times must not cost ``True``
64 references) and, only then, gives ``None``, ``True`` and ``False`` 2**40 extra references,
which makes them immortal in practice as on Python 3.12. It runs when :mod:`samdesk.ui` is
imported. The proper fix is a PySide6 without the defect or Python >= 3.12.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

#: References added to each singleton: more than any session can lose.
EXTRA_REFERENCES = 1 << 40
PROBE_EMITS = 64


class _Probe(QObject):
    ping = Signal()


def emit_drops_a_reference() -> bool:
    """True when emitting a signal takes a reference away from ``True`` (the defect)."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(PROBE_EMITS):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    if lost > 0:  # give back what the probe itself took
        ctypes.c_ssize_t.from_address(id(True)).value += lost
    return lost >= PROBE_EMITS // 2


def protect_singletons() -> bool:
    """Apply the work-around if this Python and PySide6 need it; True when applied."""
    if sys.version_info >= (3, 12) or getattr(sys, "_samdesk_singletons_protected", False):
        return False
    if not emit_drops_a_reference():
        return False
    # ob_refcnt is the first field of every object in CPython (id() is the object's address).
    for singleton in (None, True, False):
        ctypes.c_ssize_t.from_address(id(singleton)).value += EXTRA_REFERENCES
    sys._samdesk_singletons_protected = True  # type: ignore[attr-defined]
    log.info("PySide6 reference-count defect detected; None/True/False protected")
    return True
