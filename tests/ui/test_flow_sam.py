"""The whole flow with the real worker and the real Predictor on a small seeded SAM network:
open a folder, click, cycle candidates, box, refine, accept, brush, undo/redo, next image with
prefetch, save, export, reopen. Plus the model manager (download with progress and cancel,
import, verify, use) against a server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from samdesk.engine import registry
from samdesk.engine.store import ModelStore
from samdesk.model.testing import save_random_checkpoint
from samdesk.ui.model_manager import ModelManager
from samdesk.ui.project import DEFAULT_PROJECT_NAME
from tests.support.http_server import FileServer
from tests.ui.helpers import make_folder

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    return save_random_checkpoint(tmp_path_factory.mktemp("model") / "small.pth", arch="small")


def wait_answer(qtbot, window, timeout=20000):
    def answered() -> bool:
        session = window.annotator.session
        return bool(session and not session.state.waiting and session.state.candidates)

    qtbot.waitUntil(answered, timeout=timeout)


def click(qtbot, window, x, y, button=Qt.MouseButton.LeftButton):
    canvas = window.canvas
    qtbot.mouseClick(canvas.viewport(), button, pos=canvas.viewport_pos_of_pixel(x, y))


def load_model(qtbot, window, name):
    window.models.request(name)
    qtbot.waitUntil(lambda: window.models.pending is None, timeout=30000)
    assert window.models.active == name, window.messages.history[-1:]


def test_whole_flow_with_a_small_sam_model(qtbot, make_window, tmp_path, small_checkpoint):
    folder = tmp_path / "images"
    make_folder(folder, 3)
    window = make_window()
    load_model(qtbot, window, str(small_checkpoint))
    assert "SAM" in window.status_model.text() and "cpu" in window.status_model.text()
    assert window.open_paths([str(folder)])
    qtbot.waitUntil(lambda: window.annotator.ready, timeout=30000)
    assert "Encoder:" in window.status_encoder.text()
    a = window.annotator
    canvas = window.canvas
    canvas.set_zoom(2.0)
    canvas.center_on_pixel(100, 100)

    # one click: three candidates with their predicted IoU, Tab cycles them
    click(qtbot, window, 60, 60)
    wait_answer(qtbot, window)
    state = a.session.state
    assert len(state.candidates) == 3
    assert sum(b.isVisible() for b in window.object_panel.buttons) == 3
    assert "IoU" in window.object_panel.buttons[0].text()
    assert "Click:" in window.status_click.text()
    first = state.chosen
    qtbot.keyClick(canvas, Qt.Key.Key_Tab)
    assert a.session.state.chosen == (first + 1) % 3
    chosen_mask = a.session.state.candidates.masks[a.session.state.chosen].unpack()
    assert np.array_equal(a.session.state.mask(a.session.shape), chosen_mask)

    # a box drawn with the mouse, then a negative point: each refines (one candidate)
    start, end = canvas.viewport_pos_of_pixel(20, 20), canvas.viewport_pos_of_pixel(110, 110)
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(canvas.viewport(), QPoint((start.x() + end.x()) // 2, start.y() + 5))
    qtbot.mouseMove(canvas.viewport(), end)
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=end)
    wait_answer(qtbot, window)
    assert a.session.state.box == (20, 20, 110, 110)
    click(qtbot, window, 100, 100, Qt.MouseButton.RightButton)
    wait_answer(qtbot, window)
    assert a.session.state.points == ((60, 60, True), (100, 100, False))
    assert len(a.session.state.candidates) == 1

    # make sure there is something to accept (random weights may predict little), then accept
    a.stroke([(50.5, 50.5), (70.5, 70.5)], 6.0, False)
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    records = window.project.view.instances_of(a.current_id)
    assert len(records) == 1
    accepted = records[0].mask()
    assert accepted[60, 60]

    # brush on the selected instance, undo and redo it
    window.instances_panel.select(records[0].id)
    window.set_tool("brush")
    y, x = (int(v) + 40 for v in np.argwhere(~accepted[40:180, 40:200])[0])  # a pixel outside
    canvas.center_on_pixel(x, y)
    p, q = canvas.viewport_pos_of_pixel(x - 3, y), canvas.viewport_pos_of_pixel(x + 3, y)
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=p)
    qtbot.mouseMove(canvas.viewport(), q)
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=q)
    brushed = window.project.view.instance(records[0].id).mask()
    assert brushed[y, x] and not accepted[y, x]
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(window.project.view.instance(records[0].id).mask(), accepted)
    qtbot.keyClick(canvas, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert window.project.view.instance(records[0].id).mask()[y, x]
    window.set_tool("prompt")

    # next image: it was prefetched, so its embedding comes from the cache
    next_id = window.files.ids()[1]
    qtbot.waitUntil(lambda: "Encoded" in window.files.topLevelItem(1).toolTip(0), timeout=30000)
    qtbot.keyClick(canvas, Qt.Key.Key_D)
    sources: list[str] = []
    a.embedding_ready.connect(lambda _i, _s, source: sources.append(source))
    qtbot.waitUntil(lambda: a.ready and a.current_id == next_id, timeout=30000)
    assert sources and sources[-1] in ("memory", "disk", "prefetch")
    click(qtbot, window, 90, 170)
    wait_answer(qtbot, window)

    # save, export, reopen
    assert window.save()
    summary = window.project.export("coco", tmp_path / "export" / "coco.json")
    assert "coco: wrote 1 object" in summary
    coco = json.loads((tmp_path / "export" / "coco.json").read_text("utf-8"))
    assert len(coco["annotations"]) == 1
    window.dialogs.default_answer = "Discard"
    window.close()
    again = make_window(settings_file=tmp_path / "second.ini")
    assert again.open_paths([str(folder / DEFAULT_PROJECT_NAME)])
    first_id = again.files.ids()[0]
    assert len(again.project.view.instances_of(first_id)) == 1
    assert again.files.topLevelItem(0).text(2) == "1"


@pytest.fixture
def served_model(monkeypatch, small_checkpoint):
    """The registry's "mobile_sam" entry pointed at a small checkpoint on 127.0.0.1."""
    data = small_checkpoint.read_bytes()
    info = registry.MODELS["mobile_sam"]
    fake = dataclasses.replace(
        info, sha256=hashlib.sha256(data).hexdigest(), md5=None, size=len(data), arch="custom"
    )
    monkeypatch.setitem(registry.MODELS, "mobile_sam", fake)
    with FileServer({f"/{info.file_name}": data}) as server:
        monkeypatch.setenv(registry.BASE_URL_ENV, server.url(""))
        yield server, fake


def test_model_manager_downloads_with_progress_cancels_and_resumes(
    qtbot, make_window, tmp_path, served_model
) -> None:
    server, info = served_model
    window = make_window()
    store = ModelStore(tmp_path / "models")
    manager = ModelManager(store, lambda: None, window.models.request, window)
    manager.show()
    assert manager.select("mobile_sam")
    assert manager.download_button.isEnabled() and not manager.use_button.isEnabled()
    server.chunk_delay = 0.01  # slow enough to cancel half-way
    values: list[int] = []
    manager.progress.valueChanged.connect(values.append)
    manager.download_selected()
    assert manager.job is not None and manager.cancel_button.isVisible()
    qtbot.waitUntil(lambda: len(values) > 5, timeout=10000)
    manager.cancel_job()
    qtbot.waitUntil(lambda: manager.job is None, timeout=10000)
    assert "Cancelled" in manager.status.text()
    assert 0 < store.partial_download("mobile_sam") < info.size
    assert "Download resumes" in manager.details.text()
    assert values == sorted(values)  # progress only goes forward
    server.chunk_delay = 0.0
    manager.download_selected()
    qtbot.waitUntil(lambda: manager.job is None, timeout=20000)
    assert "downloaded: verified" in manager.status.text()
    assert any("Range" in h for _, h in server.requests)  # resumed, not restarted
    assert manager.selected().state == "verified"
    manager.close()
    manager.deleteLater()


def test_model_manager_imports_verifies_and_uses_a_file(
    qtbot, make_window, tmp_path, small_checkpoint, monkeypatch
) -> None:
    monkeypatch.setenv("SAMDESK_DATA_DIR", str(tmp_path / "data"))
    window = make_window()
    store = ModelStore()
    manager = ModelManager(store, lambda: small_checkpoint, window.models.request, window)
    manager.import_file()
    qtbot.waitUntil(lambda: manager.job is None, timeout=20000)
    assert "Imported small.pth" in manager.status.text()
    name = manager.selected().name
    assert manager.selected().installed and manager.use_button.isEnabled()
    assert any(row[0] == name for row in window.models._choices())  # now in the Model menu
    manager.verify_selected()
    qtbot.waitUntil(lambda: manager.job is None, timeout=20000)
    assert manager.selected().state in ("verified", "unverified")
    manager.use_selected()
    qtbot.waitUntil(lambda: window.models.pending is None, timeout=30000)
    assert window.models.active == name
    assert window.settings.model() == name
    bad = tmp_path / "notes.pth"
    bad.write_text("not a checkpoint", "utf-8")
    manager.import_file(bad)
    qtbot.waitUntil(lambda: manager.job is None, timeout=20000)
    assert "notes.pth" in manager.status.text() and "Imported" not in manager.status.text()
    manager.close()
    manager.deleteLater()


def test_an_installed_model_is_used_when_none_was_chosen(
    qtbot, make_window, tmp_path, small_checkpoint, monkeypatch
) -> None:
    monkeypatch.setenv("SAMDESK_DATA_DIR", str(tmp_path / "data"))
    record = ModelStore().import_model(small_checkpoint, name="tiny-test")
    window = make_window()
    assert window.settings.model() is None
    window.models.start(None)
    assert window.models.pending == record.name
    qtbot.waitUntil(lambda: window.models.pending is None, timeout=30000)
    assert window.models.active == record.name
    assert "tiny-test" in window.status_model.text()
    assert not any("Classic" in t for _, t in window.messages.history)
