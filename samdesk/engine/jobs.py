"""Cooperative cancellation for long jobs (encoding, downloads, exports), without Qt."""

from __future__ import annotations

import threading

from samdesk.errors import CancelledError


class CancelToken:
    """A flag a caller sets and a long job checks between its steps.

    Thread-safe: ``cancel()`` may be called from any thread; the job calls ``check()`` (which
    raises :class:`samdesk.errors.CancelledError`) or reads ``cancelled`` between steps.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise ``CancelledError`` if ``cancel()`` was called."""
        if self._event.is_set():
            raise CancelledError(self.reason or "cancelled")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout`` seconds pass; returns ``cancelled``."""
        return self._event.wait(timeout)
