"""Fixtures for the desktop-app tests (offscreen Qt, see tests/conftest.py).

* ``qt_leak_check`` (autouse): fails a test that leaves a QThread running, a QTimer active or a
  top-level widget alive.
* Every test gets its own settings file, embedding cache and model folder (environment
  variables pointing into tmp_path), so nothing touches the user's real ones.

Nothing here imports Qt at module level: ``pytest --no-qt`` (Qt made unimportable) skips
collecting this folder instead of failing on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.leaks import qt_leak_check  # noqa: F401 (autouse fixture)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if config.getoption("--no-qt", default=False):
        return True  # the app's tests need Qt; the no-Qt run checks the other layers
    return None


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMDESK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMDESK_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def make_window(qtbot, tmp_path: Path):
    """Builds MainWindows (real worker and Classic backend unless a worker_factory is given)
    with a private settings file and scripted dialogs; shuts them down after the test."""
    from tests.ui.helpers import ScriptedDialogs, settings_at

    made = []

    def make(*, worker_factory=None, dialogs=None, settings_file: Path | None = None):
        from samdesk.ui.main_window import MainWindow

        settings = settings_at(settings_file or tmp_path / "settings.ini")
        window = MainWindow(
            settings,
            worker_factory=worker_factory,
            dialogs=dialogs or ScriptedDialogs(),
        )
        window.resize(1200, 800)
        window.show()
        qtbot.waitExposed(window)
        made.append(window)
        return window

    yield make
    for window in made:
        window.dialogs.default_answer = "Discard"
        window.close()
        window.shutdown()
        window.deleteLater()
