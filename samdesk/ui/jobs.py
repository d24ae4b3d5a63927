"""Long jobs (downloads, imports, verification) on a QThread, with progress and cancel."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from samdesk.engine.jobs import CancelToken
from samdesk.errors import CancelledError, SamdeskError

log = logging.getLogger(__name__)

#: ``work(progress, cancel)``: ``progress(done, total)`` may be called from the job's thread.
Work = Callable[[Callable[[int, int | None], None], CancelToken], Any]


class BackgroundJob(QThread):
    """Runs ``work`` off the GUI thread; results and progress arrive as (queued) signals."""

    progress = Signal(object, object)  # done, total (None when unknown)
    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, work: Work, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.work = work
        self.cancel = CancelToken()

    def run(self) -> None:
        try:
            result = self.work(self._report, self.cancel)
        except CancelledError:
            self.failed.emit("Cancelled. A download can be resumed later from where it stopped.")
        except SamdeskError as err:
            self.failed.emit(str(err))
        except Exception as err:  # reported, never raised into Qt
            log.exception("background job %s failed", self.objectName())
            self.failed.emit(f"Unexpected error ({type(err).__name__}: {err}).")
        else:
            self.succeeded.emit(result)

    def _report(self, done: int, total: int | None) -> None:
        self.progress.emit(int(done), None if total is None else int(total))

    def stop(self, timeout: float = 2.0) -> bool:
        """Cancel and wait up to ``timeout`` seconds; True when the thread has ended."""
        self.cancel.cancel("cancelled by the user")
        return self.wait(int(timeout * 1000))
