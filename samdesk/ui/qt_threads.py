"""A ``thread_factory`` for the inference worker that runs its loops in QThreads.

Qt aborts the process ("QThread: Destroyed while thread is still running") when a QThread
object is destroyed while it runs, so every thread made here is kept in a module-level registry
until it has finished, whatever happens to the handle the worker holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QThread

_running: set[_WorkerThread] = set()
_lock = threading.Lock()


class _WorkerThread(QThread):
    def __init__(self, target: Callable[[], None], name: str) -> None:
        super().__init__()
        self._target = target
        self.setObjectName(name)
        self.finished.connect(self._forget)

    def run(self) -> None:
        threading.current_thread().name = self.objectName()
        self._target()

    def _forget(self) -> None:
        with _lock:
            _running.discard(self)


class QtThreadHandle:
    """The handle the worker gets: ``start()``, ``join(timeout)``, ``is_alive()``."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        self.thread = _WorkerThread(target, name)
        self.name = name

    def start(self) -> None:
        with _lock:
            _running.add(self.thread)
        self.thread.start()

    def join(self, timeout: float | None = None) -> None:
        if timeout is None:
            self.thread.wait()
        else:
            self.thread.wait(max(0, int(timeout * 1000)))

    def is_alive(self) -> bool:
        return self.thread.isRunning()


def qt_thread_factory(target: Callable[[], None], name: str) -> QtThreadHandle:
    """Make a QThread that runs ``target`` (not started)."""
    return QtThreadHandle(target, name)


def running_threads() -> list[str]:
    """Names of the QThreads made here that are still running (tests check it is empty)."""
    with _lock:
        return sorted(t.objectName() for t in _running if t.isRunning())
