"""Starting the desktop app: ``run_app`` creates the QApplication and the main window."""

from __future__ import annotations

import logging
import signal
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from samdesk import __version__

log = logging.getLogger("samdesk")


def run_app(paths: list[str], model: str | None = None) -> int:
    """Open the main window on ``paths`` (images, folders or a project); returns the exit code.

    ``model`` ("classic", a registered model name or a checkpoint path) overrides the model
    remembered from the last run.
    """
    from samdesk.ui.main_window import MainWindow
    from samdesk.ui.resources import app_icon
    from samdesk.ui.settings import Settings, default_qsettings

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("samdesk")
    app.setOrganizationName("samdesk")
    app.setApplicationVersion(__version__)
    icon = app_icon()
    if not icon.isNull():
        app.setWindowIcon(icon)
    settings = Settings(default_qsettings())
    window = MainWindow(settings)
    window.reporter.install()
    _quit_on_signals(window)
    try:
        window.show()
        window.models.start(model)
        if paths:
            QTimer.singleShot(0, lambda: window.open_paths(paths))
        code = app.exec()
    finally:
        window.reporter.uninstall()
        window.shutdown()
        window.deleteLater()
    return int(code)


def _quit_on_signals(window) -> None:
    """Ctrl+C in the terminal or SIGTERM: autosave, stop the worker and quit (no questions).

    Python runs signal handlers only between bytecodes, so a slow timer gives it the chance
    while Qt's event loop waits.
    """

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %d: saving an autosave and quitting", signum)
        QTimer.singleShot(0, window.terminate)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)
    tick = QTimer(window)
    tick.setObjectName("signal-tick")
    tick.timeout.connect(lambda: None)
    tick.start(250)
