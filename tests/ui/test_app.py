"""``samdesk [PATHS] [--model NAME]`` (run_app) opens the window on the paths and quits cleanly."""

from __future__ import annotations

import signal

import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from samdesk.ui.app import run_app
from samdesk.ui.main_window import MainWindow
from samdesk.ui.qt_threads import running_threads
from tests.ui.helpers import make_folder

pytestmark = pytest.mark.gui


def test_run_app_opens_the_folder_and_quits(qapp, tmp_path, monkeypatch) -> None:
    make_folder(tmp_path / "images", 2)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "cfg"))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    seen: dict = {}

    def look_and_quit() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
        if not windows or not windows[0].annotator.ready:
            QTimer.singleShot(50, look_and_quit)
            return
        window = windows[0]
        seen["files"] = len(window.files.ids())
        seen["title"] = window.windowTitle()
        seen["model"] = window.status_model.text()
        window.close()

    QTimer.singleShot(50, look_and_quit)
    try:
        code = run_app([str(tmp_path / "images")], model="classic")
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert code == 0
    assert seen["files"] == 2
    assert "images/samdesk-project.json" in seen["title"]
    assert "Classic" in seen["model"]
    assert running_threads() == []
    assert (tmp_path / "cfg" / "samdesk" / "samdesk.ini").is_file()  # settings written there
