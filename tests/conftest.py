"""Shared pytest set-up: headless Qt, markers, and an optional Qt-import blocker.

``pytest --no-qt`` makes every ``import PySide6`` fail, to prove that the non-GUI layers work on
a machine without Qt (run it with ``-m "not gui" -p no:pytest-qt``).
"""

from __future__ import annotations

import importlib.abc
import os
import sys

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


class _BlockQt(importlib.abc.MetaPathFinder):
    blocked = ("PySide6", "shiboken6", "PyQt5", "PyQt6")

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in self.blocked:
            raise ImportError(f"{fullname} is blocked by pytest --no-qt")
        return None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-qt", action="store_true", help="fail every import of Qt (proves the core needs none)"
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--no-qt"):
        for name in list(sys.modules):
            if name.split(".")[0] in _BlockQt.blocked:
                raise pytest.UsageError(
                    "--no-qt: Qt was imported before the blocker; add -p no:pytest-qt"
                )
        sys.meta_path.insert(0, _BlockQt())


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any("gpu" in item.keywords for item in items) or _cuda_available():
        return
    no_cuda = pytest.mark.skip(reason="needs a CUDA device; none is present on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(no_cuda)


@pytest.fixture
def make_worker():
    """Builds started InferenceWorkers: ``make(backend, **kwargs) -> (worker, recorder)``; the
    recorder (tests.test_worker.Recorder) collects the worker's events. Every worker must close
    within 5 s at the end of the test."""
    from samdesk.engine.worker import InferenceWorker
    from tests.test_worker import Recorder

    workers: list[InferenceWorker] = []

    def make(backend=None, **kwargs):
        recorder = Recorder()
        worker = InferenceWorker(recorder, backend=backend, **kwargs)
        worker.start()
        workers.append(worker)
        return worker, recorder

    yield make
    for worker in workers:
        assert worker.close(timeout=5.0), "worker threads did not end"
