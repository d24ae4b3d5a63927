"""Starting the desktop app: ``run_app`` creates the QApplication and the main window."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

from samdesk import __version__


def run_app(paths: list[str], model: str | None = None) -> int:
    """Open the main window on ``paths`` (images, folders or a project); returns the exit code."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("samdesk")
    window = QMainWindow()
    window.setWindowTitle(f"samdesk {__version__}")
    window.setCentralWidget(QLabel("samdesk: open an image to start"))
    window.resize(1280, 800)
    window.show()
    return app.exec()
