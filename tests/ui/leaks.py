"""Finds what a Qt test left behind: running QThreads, active QTimers, live top-level widgets.

Used by the autouse fixture in tests/ui/conftest.py, which fails the test that leaked (and
cleans up, so that one leak does not cascade into the following tests).
"""

from __future__ import annotations

import gc

import pytest

#: Top-level widgets Qt itself keeps around (tooltips); not a leak of the test's making.
_QT_INTERNAL = {"QTipLabel", "QWhatsThat", "QComboBoxPrivateContainer"}


def _valid(obj) -> bool:
    import shiboken6

    return shiboken6.isValid(obj)


def find_leaks() -> list[str]:
    """Descriptions of the QThreads running, QTimers active and top-level widgets alive."""
    from PySide6.QtCore import QCoreApplication, QEvent, QThread, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        return []
    for _ in range(3):  # deleteLater() needs the deferred-delete events to be processed
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        app.processEvents()
    leaks: list[str] = []
    for widget in QApplication.topLevelWidgets():
        if not _valid(widget) or widget.parentWidget() is not None:
            continue
        if widget.metaObject().className() in _QT_INTERNAL:
            continue
        title = widget.windowTitle() or widget.objectName()
        leaks.append(f"top-level widget {type(widget).__name__} {title!r} is still alive")
    # type(obj), not isinstance: some objects (torch's deprecated aliases) warn on __class__
    for obj in gc.get_objects():
        if issubclass(type(obj), QThread) and _valid(obj) and obj.isRunning():
            leaks.append(f"QThread {obj.objectName()!r} is still running")
        elif issubclass(type(obj), QTimer) and _valid(obj) and obj.isActive():
            owner = obj.parent()
            where = f" (child of {type(owner).__name__})" if owner is not None else ""
            leaks.append(f"QTimer {obj.objectName()!r}{where} is still active")
    return leaks


def clean_up() -> None:
    """Stop timers, stop threads (bounded wait) and delete top-level widgets after a leak."""
    from PySide6.QtCore import QCoreApplication, QEvent, QThread, QTimer
    from PySide6.QtWidgets import QApplication

    for obj in gc.get_objects():
        if issubclass(type(obj), QTimer) and _valid(obj) and obj.isActive():
            obj.stop()
        elif issubclass(type(obj), QThread) and _valid(obj) and obj.isRunning():
            obj.requestInterruption()
            obj.quit()
            obj.wait(2000)
    for widget in QApplication.topLevelWidgets():
        if _valid(widget) and widget.parentWidget() is None:
            widget.close()
            widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture(autouse=True)
def qt_leak_check():
    """Fails the test if it leaves a QThread running, a QTimer active or a top-level widget."""
    yield
    gc.collect()
    leaks = find_leaks()
    if leaks:
        clean_up()
        pytest.fail("the test left Qt objects behind:\n  " + "\n  ".join(leaks), pytrace=False)
