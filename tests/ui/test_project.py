"""Opening, saving, autosave, recovery, damaged or newer projects, export — from the window."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from samdesk.annotation.document import Document
from samdesk.errors import SaveError
from samdesk.ui.project import DEFAULT_PROJECT_NAME, autosave_path
from tests.ui.fakes import FakeWorker
from tests.ui.helpers import ScriptedDialogs, make_folder, make_image, shape_mask

pytestmark = pytest.mark.gui


@pytest.fixture
def folder(tmp_path):
    make_folder(tmp_path / "images", 3)
    return tmp_path / "images"


def open_window(make_window, path, dialogs=None, settings_file=None):
    workers: list[FakeWorker] = []
    window = make_window(
        worker_factory=lambda cb: workers.append(FakeWorker(cb)) or workers[-1],
        dialogs=dialogs,
        settings_file=settings_file,
    )
    opened = window.open_paths([str(path)])
    if opened:
        workers[0].deliver_image()
    return window, workers[0], opened


def accept_shape(window, worker, index=0):
    window.annotator.add_point(60, 60, True)
    worker.answer(shape_mask(index))
    return window.annotator.accept()


def test_save_then_reopen_keeps_everything(make_window, folder, tmp_path) -> None:
    window, worker, _ = open_window(make_window, folder)
    assert (
        window.windowTitle().startswith("samdesk-project.json") or "images" in window.windowTitle()
    )
    ring = accept_shape(window, worker, 1)
    window.toggle_done()
    assert window.files.status_of(window.annotator.current_id) == "done"
    assert window.windowTitle().startswith("*")
    assert window.save()
    assert not window.windowTitle().startswith("*")
    project = folder / DEFAULT_PROJECT_NAME
    assert project.is_file() and not autosave_path(project).exists()
    window.close()

    again, _, _ = open_window(make_window, folder, settings_file=tmp_path / "s2.ini")
    view = again.project.view
    records = view.instances_of(again.annotator.current_id)
    assert [r.id for r in records] == [ring]
    assert np.array_equal(records[0].mask(), shape_mask(1))  # the hole survived
    assert again.files.topLevelItem(0).text(1) == "done"
    assert again.files.topLevelItem(0).text(2) == "1"
    assert again.instances_panel.tree.topLevelItemCount() == 1


def test_autosave_follows_every_change_and_save_removes_it(qtbot, make_window, folder) -> None:
    window, worker, _ = open_window(make_window, folder)
    accept_shape(window, worker)
    auto = autosave_path(folder / DEFAULT_PROJECT_NAME)
    qtbot.waitUntil(auto.exists, timeout=5000)
    assert len(Document.load(auto).instances) == 1
    window.annotator.undo_group.undo()  # undo, then autosave again: disk equals memory
    qtbot.waitUntil(lambda: len(Document.load(auto).instances) == 0, timeout=5000)
    window.annotator.undo_group.redo()
    assert window.save()
    assert not auto.exists()


def test_autosave_newer_than_the_project_is_offered_for_recovery(
    qtbot, make_window, folder, tmp_path
) -> None:
    window, worker, _ = open_window(make_window, folder)
    assert window.save()  # an empty project on disk
    accept_shape(window, worker)
    auto = autosave_path(folder / DEFAULT_PROJECT_NAME)
    qtbot.waitUntil(auto.exists, timeout=5000)
    project_time = (folder / DEFAULT_PROJECT_NAME).stat().st_mtime
    os.utime(auto, (project_time + 10, project_time + 10))
    window.terminate()  # as if the app had been killed: no question, the autosave stays

    dialogs = ScriptedDialogs()
    dialogs.answers.append("Recover")
    again, _, opened = open_window(make_window, folder, dialogs, tmp_path / "s2.ini")
    assert opened
    assert dialogs.asked and "Recover" in dialogs.asked[0][0]
    assert len(again.project.view.instances_of(again.annotator.current_id)) == 1
    assert again.windowTitle().startswith("*")  # recovered work is not saved yet
    assert again.save()
    assert len(Document.load(folder / DEFAULT_PROJECT_NAME).instances) == 1


def test_discarding_the_autosave_opens_the_saved_project(make_window, folder, tmp_path) -> None:
    window, worker, _ = open_window(make_window, folder)
    assert window.save()
    accept_shape(window, worker)
    assert window.project.autosave()
    auto = autosave_path(folder / DEFAULT_PROJECT_NAME)
    os.utime(auto, (auto.stat().st_mtime + 10,) * 2)
    window.terminate()
    dialogs = ScriptedDialogs()
    dialogs.answers.append("Discard autosave")
    again, _, opened = open_window(make_window, folder, dialogs, tmp_path / "s2.ini")
    assert opened and not auto.exists()
    assert len(again.project.view.instances_of(again.annotator.current_id)) == 0


@pytest.mark.parametrize("answer", ["Move aside", "Cancel"])
def test_a_damaged_project_is_never_overwritten(make_window, folder, answer) -> None:
    project = folder / DEFAULT_PROJECT_NAME
    project.write_text('{"format": "samdesk-project", "version": 1, "images": [', "utf-8")
    original = project.read_bytes()
    dialogs = ScriptedDialogs()
    dialogs.answers.append(answer)
    window, _, opened = open_window(make_window, folder, dialogs)
    assert "Damaged" in dialogs.asked[0][0] and "line" in dialogs.asked[0][1]
    if answer == "Cancel":
        assert not opened
        assert project.read_bytes() == original
    else:
        assert opened
        moved = [p for p in folder.iterdir() if ".corrupt-" in p.name]
        assert len(moved) == 1 and moved[0].read_bytes() == original
        assert any("renamed" in text for _, text in window.messages.history)


def test_a_project_from_a_newer_samdesk_is_refused(make_window, folder) -> None:
    project = folder / DEFAULT_PROJECT_NAME
    project.write_text(json.dumps({"format": "samdesk-project", "version": 999}), "utf-8")
    original = project.read_bytes()
    window, _, opened = open_window(make_window, folder)
    assert not opened
    assert project.read_bytes() == original
    kinds = [kind for kind, _ in window.messages.history]
    assert "error" in kinds
    assert "newer" in window.messages.history[-1][1].lower()


def test_a_failing_autosave_is_reported_once(monkeypatch, make_window, folder) -> None:
    window, worker, _ = open_window(make_window, folder)

    def refuse(self, path):
        raise SaveError(f"Cannot write {path}: No space left on device")

    monkeypatch.setattr(type(window.project.view), "save_copy", refuse)
    accept_shape(window, worker)
    assert not window.project.autosave()
    accept_shape(window, worker, 2)
    assert not window.project.autosave()
    failures = [t for k, t in window.messages.history if "Autosave failed" in t]
    assert len(failures) == 1
    assert window.windowTitle().startswith("*")


def test_closing_with_unsaved_changes_asks(make_window, folder) -> None:
    window, worker, _ = open_window(make_window, folder)
    accept_shape(window, worker)
    window.dialogs.answers.append("Cancel")
    window.close()
    assert window.isVisible()  # cancelled
    window.dialogs.answers.append("Save")
    window.close()
    assert not window.isVisible()
    assert len(Document.load(folder / DEFAULT_PROJECT_NAME).instances) == 1


def test_export_writes_files_and_reports(make_window, folder, tmp_path) -> None:
    from samdesk.ui.export_dialog import ExportDialog

    window, worker, _ = open_window(make_window, folder)
    accept_shape(window, worker, 1)  # a ring: COCO stores it as RLE, YOLO fills the hole
    summary = window.project.export("coco", tmp_path / "out" / "coco.json")
    assert "coco: wrote 1 object" in summary
    data = json.loads((tmp_path / "out" / "coco.json").read_text("utf-8"))
    assert len(data["annotations"]) == 1
    dialog = ExportDialog(window.project, window)
    dialog.format.setCurrentIndex(1)  # YOLO
    dialog.destination.setText(str(tmp_path / "out" / "yolo"))
    assert dialog.run_export()
    assert "yolo: wrote 1 object" in dialog.summary.toPlainText()
    assert "hole" in dialog.summary.toPlainText().lower()
    dialog.destination.setText(str(tmp_path / "out" / "yolo" / "classes.txt" / "x"))
    assert not dialog.run_export()  # a file where a folder must go: a message, no traceback
    assert "Nothing was exported" in dialog.summary.toPlainText()
    dialog.deleteLater()


def test_opening_images_uses_their_folders_project(make_window, folder) -> None:
    window, _, opened = open_window(make_window, folder / "img2.png")
    assert opened
    assert len(window.files.ids()) == 1
    assert window.project.project_path == folder / DEFAULT_PROJECT_NAME
    assert window.project.view.image_path(window.annotator.current_id).name == "img2.png"
    assert str((folder / "img2.png").resolve()) in window.settings.recent()


def test_dropping_a_folder_opens_it(qtbot, make_window, folder) -> None:
    window = make_window(worker_factory=FakeWorker)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    pos = QPointF(window.canvas.viewport().rect().center())
    event = QDropEvent(
        pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    window.canvas.dropEvent(event)
    qtbot.waitUntil(lambda: len(window.files.ids()) == 3, timeout=3000)


def test_missing_and_unsupported_paths_are_explained(make_window, tmp_path) -> None:
    window = make_window(worker_factory=FakeWorker)
    assert not window.open_paths([str(tmp_path / "nope")])
    note = tmp_path / "notes.txt"
    note.write_text("hello", "utf-8")
    assert not window.open_paths([str(note)])
    texts = [t for _, t in window.messages.history]
    assert any("Not found" in t for t in texts)
    assert any("neither an image" in t for t in texts)


def test_unreadable_images_are_marked_and_the_next_one_opens(qtbot, make_window, folder) -> None:
    good = make_image(folder / "img0.png", seed=7).read_bytes()
    (folder / "img0-truncated.png").write_bytes(good[: len(good) // 2])  # header fine, data cut
    (folder / "notes.png").write_text("this is not a PNG", "utf-8")  # not even a header
    window = make_window()  # the real worker (Classic backend)
    window.open_paths([str(folder)])
    ids = window.files.ids()
    view = window.project.view
    names = {view.image_path(i).name: i for i in ids if not isinstance(i, str)}
    truncated = names["img0-truncated.png"]
    assert ids[-1] == f"unreadable:{folder / 'notes.png'}"  # listed even without a header
    assert window.files.topLevelItem(len(ids) - 1).text(1) == "cannot open"
    window.show_image(truncated)
    qtbot.waitUntil(lambda: truncated in window.files.failed, timeout=10000)
    assert window.files.status_of(truncated) == "cannot open"
    assert "truncated" in window.files.failed[truncated].lower()
    errors = [text for kind, text in window.messages.history if kind == "error"]
    assert any("truncated" in t.lower() for t in errors)
    assert any("notes.png" in t for t in errors)
    window.next_image()
    qtbot.waitUntil(lambda: window.annotator.ready, timeout=10000)
    assert window.canvas.image_size == (256, 224)
    window.show_image(ids[-1])
    assert window.annotator.current_id is None


def test_an_image_replaced_by_another_size_is_not_annotated(make_window, folder) -> None:
    window, worker, _ = open_window(make_window, folder)
    accept_shape(window, worker)
    assert window.save()
    make_image(folder / "img1.png", seed=9, size=(300, 200))  # replaced on disk
    again, worker2, _ = open_window(make_window, folder)
    first = again.files.ids()[0]
    assert first in again.files.failed
    assert "300 x 200" in again.files.failed[first] and "256 x 224" in again.files.failed[first]
    assert again.annotator.session is None  # nothing can be added on top of the wrong image
    assert len(again.project.view.instances_of(first)) == 1  # and nothing was lost
    make_image(folder / "img2.png", seed=42)  # same size, other content
    again.show_image(again.files.ids()[1])
    worker2.deliver_image()
    assert any("other content" in t for k, t in again.messages.history if k == "warning")
