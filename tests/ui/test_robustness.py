"""Errors never kill the app, closing never hangs, bad settings never crash, leaks fail tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from samdesk.engine.classic import ClassicBackend
from samdesk.engine.worker import InferenceWorker, WorkerError
from samdesk.ui.qt_threads import qt_thread_factory, running_threads
from tests.ui.fakes import FakeWorker
from tests.ui.helpers import make_folder, shape_mask

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[2]


class SlowBackend(ClassicBackend):
    """Classic masks, but an encoder that takes ~4 s in 200 cancellable steps."""

    steps = 200

    def compute_embedding(self, image, *, cancel=None, num_threads=None, step_hook=None):
        for step in range(self.steps):
            time.sleep(0.02)
            if cancel is not None:
                cancel.check()
            if step_hook is not None:
                step_hook(step + 1, self.steps)
        return super().compute_embedding(image)


def slow_worker(on_event):
    return InferenceWorker(on_event, backend=SlowBackend(), thread_factory=qt_thread_factory)


def test_closing_while_encoding_ends_every_thread_quickly(qtbot, make_window, tmp_path) -> None:
    make_folder(tmp_path / "images", 2)
    window = make_window(worker_factory=slow_worker)
    window.open_paths([str(tmp_path / "images")])
    qtbot.waitUntil(lambda: "%" in window.canvas.busy.label.text(), timeout=5000)
    assert window.canvas.busy.isVisible() and not window.annotator.ready
    assert running_threads() == ["samdesk-inference", "samdesk-prefetch"]
    start = time.perf_counter()
    window.close()
    elapsed = time.perf_counter() - start
    print(f"closed during an encode in {elapsed * 1000:.0f} ms")
    assert elapsed < 2.0
    assert running_threads() == []


def test_clicks_during_the_encode_are_answered_when_it_ends(qtbot, make_window, tmp_path) -> None:
    SlowBackend.steps = 40
    try:
        make_folder(tmp_path / "images", 1)
        window = make_window(worker_factory=slow_worker)
        window.open_paths([str(tmp_path / "images")])
        qtbot.waitUntil(lambda: window.annotator.loaded, timeout=5000)
        assert not window.annotator.ready
        started = time.perf_counter()
        window.annotator.add_point(60, 60, True)  # returns at once: nothing waits for the encoder
        assert time.perf_counter() - started < 0.1
        assert window.annotator.session.state.waiting
        qtbot.waitUntil(lambda: not window.annotator.session.state.waiting, timeout=10000)
        session = window.annotator.session
        assert session.state.mask(session.shape)[60, 60]
    finally:
        SlowBackend.steps = 200


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_paint_handler_is_reported_once(qtbot, make_window, tmp_path) -> None:
    make_folder(tmp_path / "images", 1)
    workers: list[FakeWorker] = []
    window = make_window(worker_factory=lambda cb: workers.append(FakeWorker(cb)) or workers[-1])
    window.open_paths([str(tmp_path / "images")])
    workers[0].deliver_image()
    window.reporter.install()
    try:
        calls = []

        def broken(_when: float) -> None:
            calls.append(1)
            raise RuntimeError("the overlay painter broke")

        window.canvas.object_item.on_painted = broken
        window.annotator.add_point(60, 60, True)
        workers[0].answer(shape_mask(0))
        for _ in range(4):  # paints from the event loop, as in the running app
            window.canvas.viewport().update()
            qtbot.wait(30)
    finally:
        window.reporter.uninstall()
        window.canvas.object_item.on_painted = None
    assert len(calls) >= 2  # it kept failing on every paint ...
    errors = [t for k, t in window.messages.history if k == "error"]
    assert len(errors) == 1  # ... and was shown once
    assert "RuntimeError" in errors[0] and "carries on" in errors[0]
    assert window.isVisible()


def test_worker_errors_are_shown_once_and_stop_the_wait(make_window, tmp_path) -> None:
    make_folder(tmp_path / "images", 1)
    workers: list[FakeWorker] = []
    window = make_window(worker_factory=lambda cb: workers.append(FakeWorker(cb)) or workers[-1])
    window.open_paths([str(tmp_path / "images")])
    worker = workers[0]
    worker.deliver_image()
    window.annotator.add_point(60, 60, False)
    assert window.annotator.session.state.waiting
    for _ in range(3):
        worker.on_event(WorkerError(worker.last_ref, "Negative points alone cannot be segmented."))
    errors = [t for k, t in window.messages.history if k == "error"]
    assert errors == ["Negative points alone cannot be segmented."]
    assert not window.annotator.session.state.waiting


def test_a_model_that_fails_to_load_leaves_classic_active(qtbot, make_window, tmp_path) -> None:
    make_folder(tmp_path / "images", 1)
    window = make_window()  # real worker, Classic backend
    window.open_paths([str(tmp_path / "images")])
    qtbot.waitUntil(lambda: window.annotator.ready, timeout=10000)
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    window.models.request(str(broken))
    assert "Loading broken.pth" in window.status_model.text()
    qtbot.waitUntil(lambda: window.models.pending is None, timeout=20000)
    assert window.models.active == "classic"
    assert "Classic" in window.status_model.text()
    errors = [t for k, t in window.messages.history if k == "error"]
    assert errors and "broken.pth could not be loaded" in errors[-1]
    assert "stays active" in errors[-1]
    qtbot.waitUntil(lambda: window.annotator.ready, timeout=10000)
    window.annotator.add_point(60, 60, True)  # Classic still answers
    qtbot.waitUntil(lambda: not window.annotator.session.state.waiting, timeout=10000)
    assert window.settings.model() is None  # a failed model is not remembered


def test_malformed_settings_fall_back_to_defaults_with_a_warning(make_window, tmp_path) -> None:
    ini = tmp_path / "bad.ini"
    ini.write_text(
        "[General]\nlabels=@Variant(\\0\\0\\0\\x7f)\n"
        "[model]\ndevice=quantum\nprecision=12\nname=@Variant(\\0\\0\\0\\x2)\n"
        "[tools]\nbrush_radius=banana\n"
        "[window]\ngeometry=not bytes\nstate=@ByteArray(garbage)\n",
        "utf-8",
    )
    window = make_window(worker_factory=FakeWorker, settings_file=ini)
    settings = window.settings
    assert settings.device() == "auto" and settings.precision() == "auto"
    assert settings.brush_radius() == 8.0
    assert window.canvas.brush_radius == 8.0
    warnings = [t for k, t in window.messages.history if k == "warning"]
    assert any("model/device" in t for t in warnings)
    assert any("tools/brush_radius" in t for t in warnings)


def test_garbage_settings_file_starts_with_defaults(make_window, tmp_path) -> None:
    ini = tmp_path / "garbage.ini"
    ini.write_bytes(os.urandom(2048))
    window = make_window(worker_factory=FakeWorker, settings_file=ini)
    assert window.settings.labels() == ["object"]
    assert window.settings.recent() == [] or all(
        isinstance(p, str) for p in window.settings.recent()
    )


def test_settings_persist_between_runs(make_window, tmp_path) -> None:
    ini = tmp_path / "settings.ini"
    make_folder(tmp_path / "images", 1)
    first = make_window(worker_factory=FakeWorker, settings_file=ini)
    first.open_paths([str(tmp_path / "images")])
    first.create_label("cell")
    first.resize_brush(2.0)
    first.resize(900, 700)
    first.close()
    second = make_window(worker_factory=FakeWorker, settings_file=ini)
    assert second.settings.recent()[0] == str((tmp_path / "images").resolve())
    assert "cell" in second.settings.labels()
    assert second.canvas.brush_radius == pytest.approx(first.canvas.brush_radius)
    assert second.settings.window_geometry() is not None


def test_the_leak_check_fails_a_test_that_leaks(tmp_path) -> None:
    """tests/ui/leaks.py's fixture fails a test leaving a timer, a thread or a window."""
    (tmp_path / "conftest.py").write_text(
        "from tests.ui.leaks import qt_leak_check  # noqa: F401\n", "utf-8"
    )
    (tmp_path / "test_leaky.py").write_text(
        "from PySide6.QtCore import QThread, QTimer\n"
        "from PySide6.QtWidgets import QWidget\n"
        "kept = []\n"
        "def test_timer(qapp):\n"
        "    t = QTimer(); t.start(1000); kept.append(t)\n"
        "def test_widget(qapp):\n"
        "    w = QWidget(); w.show(); kept.append(w)\n"
        "def test_thread(qapp):\n"
        "    t = QThread(); t.start(); kept.append(t)\n"
        "def test_clean(qapp):\n"
        "    t = QTimer(); t.start(1000); t.stop()\n",
        "utf-8",
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "QTimer" in out and "is still active" in out
    assert "top-level widget QWidget" in out
    assert "QThread" in out and "still running" in out
    assert "3 errors" in out and "4 passed" in out, out


def test_overlay_work_is_cropped_to_the_mask(make_window) -> None:
    """The object's overlay image covers the mask's bounding box, not the whole image."""
    from samdesk.ui.overlay import MaskItem

    item = MaskItem()
    mask = np.zeros((3000, 4000), bool)
    mask[1000:1100, 2000:2050] = True
    item.set_mask(mask, (255, 0, 0))
    rect = item.boundingRect().adjusted(1, 1, -1, -1)
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == (2000, 1000, 50, 100)
    assert item._pixels.shape == (100, 50)


def test_fill_pixels_are_premultiplied_argb() -> None:
    from samdesk.ui.overlay import fill_pixels

    crop = np.array([[True, False]])
    pixels = fill_pixels(crop, (255, 128, 0), 0.4)  # alpha 102
    assert pixels.dtype == np.uint32
    assert pixels[0, 0] == (102 << 24) | (102 << 16) | (51 << 8) | 0
    assert pixels[0, 1] == 0


def test_many_emits_and_repaints_do_not_crash_python() -> None:
    """PySide6 6.12.0 on Python < 3.12 loses a reference to True on every emit and to None on
    many repaints; samdesk.ui protects them (qtcompat), so a long session survives."""
    code = (
        "import sys\n"
        "import samdesk.ui\n"
        "from PySide6.QtCore import QObject, Signal\n"
        "from PySide6.QtWidgets import QApplication, QGraphicsScene, QGraphicsView\n"
        "import numpy as np\n"
        "from samdesk.ui.overlay import MaskItem\n"
        "app = QApplication([])\n"
        "class O(QObject):\n"
        "    s = Signal(int)\n"
        "o = O(); o.s.connect(lambda v: None)\n"
        "for i in range(200_000): o.s.emit(i)\n"
        "scene = QGraphicsScene(); view = QGraphicsView(scene); view.show()\n"
        "item = MaskItem(); scene.addItem(item)\n"
        "mask = np.zeros((64, 64), bool); mask[8:40, 8:40] = True\n"
        "item.set_mask(mask, (255, 0, 0))\n"
        "for i in range(3000):\n"
        "    view.viewport().update(); app.processEvents()\n"
        "print('survived', getattr(sys, '_samdesk_singletons_protected', False))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "survived" in result.stdout


def test_outline_follows_the_mask_including_holes() -> None:
    from samdesk.ui.overlay import outline_path

    crop = np.zeros((20, 30), bool)
    crop[2:18, 3:27] = True
    crop[8:12, 10:20] = False  # a hole
    path = outline_path(crop, 100, 50)
    rect = path.boundingRect()
    # through the centres of the boundary pixels, in image coordinates
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == (103.5, 52.5, 23.0, 15.0)
    moves = [path.elementAt(i).type.value for i in range(path.elementCount())].count(0)
    assert moves == 2  # the outer boundary and the hole
    assert path.contains(path.boundingRect().center()) is False  # the hole is a hole (odd-even)


def test_the_same_notice_is_not_stacked(qtbot) -> None:
    from samdesk.ui.messages import MAX_SHOWN, MessageBar

    bar = MessageBar()
    qtbot.addWidget(bar)
    for _ in range(3):
        bar.show_message("Nothing to accept yet: click on an object first.")
    assert bar.texts() == ["Nothing to accept yet: click on an object first."]
    for index in range(MAX_SHOWN + 2):
        bar.show_message(f"notice {index}", "warning")
    assert len(bar.texts()) == MAX_SHOWN and bar.texts()[-1] == f"notice {MAX_SHOWN + 1}"
    assert len(bar.history) == 3 + MAX_SHOWN + 2
