"""Unexpected exceptions in the GUI are reported once in the window and never kill the app.

PySide6 passes an exception raised in a Python slot or in an overridden virtual method (a paint
handler, an event handler) to ``sys.excepthook``; Python threads use ``threading.excepthook``.
:class:`ErrorReporter` installs both: each distinct error (type, message, innermost frame) is
logged with its traceback once and shown to the user once, through a queued signal so that a
report from a worker thread is displayed by the GUI thread.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType

from PySide6.QtCore import QObject, Signal

from samdesk.errors import SamdeskError

log = logging.getLogger("samdesk.ui")


def error_key(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> str:
    """What makes two errors "the same": type, message and the innermost frame."""
    where = ""
    frames = traceback.extract_tb(tb) if tb is not None else []
    if frames:
        last = frames[-1]
        where = f"{last.filename}:{last.lineno}"
    return f"{exc_type.__name__}|{str(exc)[:200]}|{where}"


def user_message(exc: BaseException) -> str:
    """A sentence for the window: samdesk's own errors as they are, others as internal errors."""
    if isinstance(exc, SamdeskError):
        return str(exc)
    return (
        f"Internal error ({type(exc).__name__}: {exc}). samdesk carries on; your annotations are "
        "safe. Details were written to the log; please report this if it happens again."
    )


class ErrorReporter(QObject):
    """Installs the hooks; ``show(message)`` is called in the GUI thread once per distinct error."""

    _report = Signal(str)

    def __init__(self, show: Callable[[str], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._show = show
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._previous_hook = None
        self._previous_thread_hook = None
        self.count = 0  # distinct errors shown
        self._report.connect(self._deliver)

    def install(self) -> None:
        if self._previous_hook is None:
            self._previous_hook = sys.excepthook
            self._previous_thread_hook = threading.excepthook
            sys.excepthook = self.excepthook
            threading.excepthook = self._thread_hook

    def uninstall(self) -> None:
        if self._previous_hook is not None:
            if sys.excepthook == self.excepthook:
                sys.excepthook = self._previous_hook
            if threading.excepthook == self._thread_hook:
                threading.excepthook = self._previous_thread_hook
            self._previous_hook = None
            self._previous_thread_hook = None

    def excepthook(
        self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            (self._previous_hook or sys.__excepthook__)(exc_type, exc, tb)
            return
        self.report(exc_type, exc, tb)

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            self.report(args.exc_type, args.exc_value, args.exc_traceback)

    def report(
        self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> bool:
        """Log and show ``exc`` unless the same error was shown before; True when shown."""
        key = error_key(exc_type, exc, tb)
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
        log.error("unexpected error", exc_info=(exc_type, exc, tb))
        try:
            self._report.emit(user_message(exc))
        except RuntimeError:  # the reporter is being destroyed
            return False
        return True

    def report_message(self, message: str) -> bool:
        """Show a message (e.g. a WorkerError) once per distinct text; True when shown."""
        with self._lock:
            if message in self._seen:
                return False
            self._seen.add(message)
        self._report.emit(message)
        return True

    def _deliver(self, message: str) -> None:
        self.count += 1
        self._show(message)
