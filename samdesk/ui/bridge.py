"""Marshals the inference worker's events, which arrive on worker threads, to the GUI thread."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)


class WorkerBridge(QObject):
    """``on_event`` may be called from any thread; ``event`` is emitted in the GUI thread.

    A signal emitted from a non-GUI thread to a receiver living in the GUI thread is delivered
    through the GUI thread's event queue (a queued connection), which is the whole trick.
    After :meth:`detach` the late events of a closing worker are ignored.
    """

    event = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._attached = True

    def on_event(self, event: object) -> None:
        if not self._attached:
            return
        try:
            self.event.emit(event)
        except RuntimeError:  # the bridge was deleted while a worker thread was emitting
            log.debug("event %s after the bridge was deleted", type(event).__name__)

    def detach(self) -> None:
        self._attached = False
