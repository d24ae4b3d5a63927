"""The whole flow with the real worker and the Classic (GrabCut) backend."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.ui.helpers import iou, make_folder, shape_mask

pytestmark = pytest.mark.gui


def wait_ready(qtbot, window, timeout=10000):
    qtbot.waitUntil(lambda: window.annotator.ready, timeout=timeout)


def wait_answer(qtbot, window, timeout=10000):
    def answered():
        session = window.annotator.session
        return bool(session and not session.state.waiting and session.state.candidates)

    qtbot.waitUntil(answered, timeout=timeout)


def click(qtbot, window, x, y, button=Qt.MouseButton.LeftButton):
    canvas = window.canvas
    canvas.center_on_pixel(x + 0.5, y + 0.5)
    qtbot.mouseClick(canvas.viewport(), button, pos=canvas.viewport_pos_of_pixel(x, y))


def test_click_accept_undo_redo_save(qtbot, make_window, tmp_path) -> None:
    make_folder(tmp_path / "images", 3)
    window = make_window()
    assert window.open_paths([str(tmp_path / "images")])
    assert len(window.files.ids()) == 3
    wait_ready(qtbot, window)
    click(qtbot, window, 60, 60)
    wait_answer(qtbot, window)
    session = window.annotator.session
    mask = session.state.mask(session.shape)
    assert mask[60, 60]
    assert iou(mask, shape_mask(0)) > 0.8
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    instances = window.project.view.instances_of(window.annotator.current_id)
    assert len(instances) == 1
    assert window.instances_panel.tree.topLevelItemCount() == 1
    assert np.array_equal(instances[0].mask(), mask)
    window.annotator.undo_group.undo()
    assert window.project.view.instances_of(window.annotator.current_id) == []
    assert window.annotator.session.state.candidates is not None
    window.annotator.undo_group.redo()
    again = window.project.view.instances_of(window.annotator.current_id)
    assert [r.id for r in again] == [instances[0].id]
    assert window.save()
    assert (tmp_path / "images" / "samdesk-project.json").is_file()
