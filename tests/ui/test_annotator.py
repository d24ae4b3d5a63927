"""Prompts, candidates, stale results and undo of everything, against a scripted worker."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt

from samdesk.ui.masks import low_res_logits_to_mask
from tests.ui.fakes import FakeWorker
from tests.ui.helpers import iou, make_folder, shape_mask

pytestmark = pytest.mark.gui


@pytest.fixture
def fake(make_window, tmp_path):
    """A window on a folder of 3 images whose worker is scripted; image 1 is shown and ready."""
    make_folder(tmp_path / "images", 3)
    workers: list[FakeWorker] = []

    def factory(on_event):
        workers.append(FakeWorker(on_event))
        return workers[-1]

    window = make_window(worker_factory=factory)
    assert window.open_paths([str(tmp_path / "images")])
    worker = workers[0]
    worker.deliver_image()
    return window, worker


def object_mask(window) -> np.ndarray:
    session = window.annotator.session
    return np.asarray(session.state.mask(session.shape))


def drawn(window) -> bool:
    return not window.canvas.object_item.empty


def test_stale_result_for_another_image_is_never_drawn(fake) -> None:
    window, worker = fake
    window.annotator.add_point(60, 60, True)
    old_ref, old_seq, _ = worker.prompts[-1]
    window.next_image()  # switch before the answer arrives
    assert worker.last_ref != old_ref
    worker.answer(shape_mask(0), ref=old_ref, seq=old_seq)  # the late answer for image 1
    assert not drawn(window)
    worker.deliver_image()  # image 2 appears
    assert not drawn(window)
    assert window.annotator.session.state.is_empty
    # a late ImageLoaded for image 1 does not replace image 2 either
    from samdesk.engine.worker import ImageLoaded
    from samdesk.imaging import load_image

    shown = window.annotator.current_id
    worker.on_event(ImageLoaded(old_ref, load_image(worker.opened[0][1])))
    assert window.annotator.current_id == shown


def test_result_from_before_a_model_change_is_dropped(fake) -> None:
    window, worker = fake
    window.annotator.add_point(60, 60, True)
    old_ref, seq, _ = worker.prompts[-1]
    worker.backend_ready("SAM other")  # the model changed: generation bumped, image reopened
    assert worker.last_ref.image_id == old_ref.image_id
    assert worker.last_ref.generation > old_ref.generation
    worker.answer(shape_mask(0), ref=old_ref, seq=seq)
    assert not drawn(window)
    worker.deliver_image()  # the image is encoded for the new model: the prompt is asked again
    new_ref, new_seq, _ = worker.prompts[-1]
    assert new_ref == worker.last_ref and new_seq > seq
    worker.answer(shape_mask(0))
    assert drawn(window)


def test_superseded_answers_are_skipped(fake) -> None:
    window, worker = fake
    window.annotator.add_point(60, 60, True)
    first_seq = worker.prompts[-1][1]
    window.annotator.add_point(70, 60, True)
    second_seq = worker.prompts[-1][1]
    worker.answer(shape_mask(1), seq=first_seq)  # older: ignored
    assert not drawn(window)
    worker.answer(shape_mask(0), seq=second_seq)
    assert drawn(window) and iou(object_mask(window), shape_mask(0)) == 1.0


def test_events_from_a_worker_thread_reach_the_gui_thread(qtbot, fake) -> None:
    window, worker = fake
    window.annotator.add_point(60, 60, True)
    seen_in: list[threading.Thread] = []
    window.annotator.object_changed.connect(lambda: seen_in.append(threading.current_thread()))
    thread = threading.Thread(target=lambda: worker.answer(shape_mask(0)))
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: drawn(window), timeout=3000)
    assert seen_in and all(t is threading.main_thread() for t in seen_in)


def test_each_click_refines_with_the_chosen_candidates_logits(fake) -> None:
    window, worker = fake
    a = window.annotator
    a.add_point(60, 60, True)
    first = worker.prompts[-1][2]
    assert first.multimask_output and first.mask_input is None
    candidates = np.stack([shape_mask(0), shape_mask(1), shape_mask(2)])
    worker.answer(candidates, [0.5, 0.9, 0.7])
    assert a.session.state.chosen == 1  # the best predicted IoU is shown first
    assert window.object_panel.buttons[1].isChecked()
    qtbot_key = window.actions["next_candidate"]
    qtbot_key.trigger()  # Tab
    assert a.session.state.chosen == 2
    assert iou(object_mask(window), shape_mask(2)) == 1.0
    a.add_point(40, 40, False)
    second = worker.prompts[-1][2]
    assert not second.multimask_output
    np.testing.assert_array_equal(second.point_labels, [1, 0])
    np.testing.assert_array_equal(second.point_coords, [[60, 60], [40, 40]])
    # the mask prompt is the CHOSEN candidate's own low-res logits
    chosen_logits = a.session.state.before_prompt.candidates.low_res[2]
    np.testing.assert_array_equal(second.mask_input[0], chosen_logits)
    # undo the negative point, then the candidate choice
    a.undo_group.undo()
    assert a.session.state.points == ((60, 60, True),)
    a.undo_group.undo()
    assert a.session.state.chosen == 1


def test_box_and_points_combine(fake) -> None:
    window, worker = fake
    a = window.annotator
    a.add_box(20, 20, 110, 110)
    prompt = worker.prompts[-1][2]
    np.testing.assert_array_equal(prompt.box, [20, 20, 110, 110])
    assert prompt.point_coords is None and not prompt.multimask_output
    worker.answer(shape_mask(0))
    a.add_point(60, 60, True)
    prompt = worker.prompts[-1][2]
    np.testing.assert_array_equal(prompt.box, [20, 20, 110, 110])
    np.testing.assert_array_equal(prompt.point_coords, [[60, 60]])
    assert prompt.mask_input is not None


def test_backspace_restores_the_mask_before_the_last_prompt(fake) -> None:
    window, worker = fake
    a = window.annotator
    a.add_point(60, 60, True)
    worker.answer(shape_mask(0))
    a.add_point(170, 90, True)
    worker.answer(shape_mask(0) | shape_mask(1))
    window.actions["remove_prompt"].trigger()  # Backspace
    assert a.session.state.points == ((60, 60, True),)
    assert iou(object_mask(window), shape_mask(0)) == 1.0
    assert len(worker.prompts) == 2  # restored, not asked again
    window.actions["clear"].trigger()  # Esc
    assert a.session.state.is_empty and not drawn(window)
    a.undo_group.undo()  # Esc undone
    assert iou(object_mask(window), shape_mask(0)) == 1.0
    a.undo_group.undo()  # Backspace undone
    assert len(a.session.state.points) == 2
    assert iou(object_mask(window), shape_mask(0) | shape_mask(1)) == 1.0


def test_clicks_before_the_embedding_are_applied_when_ready(make_window, tmp_path) -> None:
    make_folder(tmp_path / "images", 1)
    workers: list[FakeWorker] = []
    window = make_window(worker_factory=lambda cb: workers.append(FakeWorker(cb)) or workers[-1])
    window.open_paths([str(tmp_path / "images")])
    worker = workers[0]
    worker.deliver_image(ready=False)  # shown, still encoding
    assert window.canvas.busy.isVisible() and "Encoding" in window.canvas.busy.label.text()
    window.annotator.add_point(60, 60, True)  # submitted now; the worker holds it until ready
    assert len(worker.prompts) == 1
    from samdesk.engine.worker import EmbeddingReady

    worker.on_event(EmbeddingReady(worker.last_ref, 1.5, "computed"))
    assert not window.canvas.busy.isVisible()
    assert "1.50 s" in window.status_encoder.text()
    worker.answer(shape_mask(0))
    assert drawn(window)


def test_accept_keeps_holes_and_parts_and_undoes(fake) -> None:
    window, worker = fake
    a = window.annotator
    a.add_point(170, 90, True)
    ring_and_disc = shape_mask(1) | shape_mask(2)  # a ring (hole) and a second part
    worker.answer(ring_and_disc)
    iid = a.accept()
    record = window.project.view.instance(iid)
    assert np.array_equal(record.mask(), ring_and_disc)
    assert record.label == a.label and record.score == pytest.approx(0.9)
    assert record.prompts == {"points": [[170, 90]], "labels": [1]}
    assert a.session.state.is_empty
    assert window.files.topLevelItem(0).text(2) == "1"
    a.undo_group.undo()
    assert window.project.view.instance(iid) is None
    assert iou(object_mask(window), ring_and_disc) == 1.0
    a.undo_group.redo()
    assert np.array_equal(window.project.view.instance(iid).mask(), ring_and_disc)


def test_brush_edits_feed_the_next_click(fake) -> None:
    window, worker = fake
    a = window.annotator
    a.add_point(60, 60, True)
    worker.answer(shape_mask(0))
    before = object_mask(window).copy()
    a.stroke([(120.5, 60.5), (140.5, 60.5)], 6.0, False)  # paint a blob to the right
    painted = object_mask(window)
    assert painted[60, 130] and not before[60, 130]
    assert painted.sum() > before.sum()
    a.stroke([(60.5, 60.5)], 5.0, True)  # erase a hole in the middle
    edited = object_mask(window)
    assert not edited[60, 60]
    a.add_point(60, 40, True)
    prompt = worker.prompts[-1][2]
    # the mask prompt is the edited mask in SAM's low-res frame
    back = low_res_logits_to_mask(prompt.mask_input, *edited.shape)
    assert iou(back, edited) > 0.9
    assert back[60, 130]
    a.undo_group.undo()  # the click
    a.undo_group.undo()  # the eraser
    assert object_mask(window)[60, 60]
    a.undo_group.undo()  # the brush
    assert np.array_equal(object_mask(window), before)


def test_brush_on_a_selected_instance_and_relabel_delete_visibility(fake) -> None:
    window, worker = fake
    a = window.annotator
    a.add_point(60, 60, True)
    worker.answer(shape_mask(0))
    iid = a.accept()
    window.instances_panel.select(iid)
    assert a.selected_instance == iid
    a.stroke([(100.5, 60.5), (110.5, 60.5)], 4.0, False)
    grown = window.project.view.instance(iid).mask()
    assert grown[60, 105] and grown.sum() > shape_mask(0).sum()
    a.undo_group.undo()
    assert np.array_equal(window.project.view.instance(iid).mask(), shape_mask(0))
    window.create_label("nucleus")
    a.relabel(iid, "nucleus")
    assert window.project.view.instance(iid).label == "nucleus"
    assert window.instances_panel.summary.text() == "1 object: 1 × nucleus"
    a.undo_group.undo()
    assert window.project.view.instance(iid).label != "nucleus"
    window.instances_panel.tree.topLevelItem(0).setCheckState(0, Qt.CheckState.Unchecked)
    assert not window.canvas.instance_item(iid).isVisible()
    window.instances_panel.tree.topLevelItem(0).setCheckState(0, Qt.CheckState.Checked)
    assert window.canvas.instance_item(iid).isVisible()
    window.instances_panel.select(iid)
    window.delete_selected()
    assert window.project.view.instance(iid) is None
    assert window.canvas.instance_item(iid) is None
    a.undo_group.undo()
    assert window.project.view.instance(iid) is not None
    assert window.canvas.instance_item(iid) is not None


def test_history_is_per_image(fake) -> None:
    window, worker = fake
    a = window.annotator
    a.add_point(60, 60, True)
    worker.answer(shape_mask(0))
    first = a.current_id
    window.next_image()
    worker.deliver_image()
    assert not a.undo_group.canUndo()  # image 2 has its own, empty history
    a.add_point(90, 170, True)
    worker.answer(shape_mask(2))
    window.previous_image()
    worker.deliver_image()
    assert a.current_id == first
    assert iou(object_mask(window), shape_mask(0)) == 1.0  # the unaccepted object survived
    assert a.undo_group.canUndo()
    a.undo_group.undo()
    assert a.session.state.is_empty


def test_prefetch_asks_for_the_next_images(fake) -> None:
    window, worker = fake
    ids = window.files.ids()
    assert [int(i) for i, _ in worker.prefetches[-1]] == ids[1:3]
    worker.prefetched(str(ids[1]))
    assert "Encoded" in window.files.topLevelItem(1).toolTip(0)


def test_keys_move_between_images_and_pick_labels(qtbot, fake) -> None:
    window, _worker = fake
    ids = window.files.ids()
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    assert window.annotator.current_id == ids[1]
    qtbot.keyClick(window.canvas, Qt.Key.Key_PageDown)
    assert window.annotator.current_id == ids[2]
    qtbot.keyClick(window.canvas, Qt.Key.Key_A)
    assert window.annotator.current_id == ids[1]
    window.create_label("cell")
    window.create_label("nucleus")
    assert window.labels_panel.labels() == ["object", "cell", "nucleus"]  # keys 1-9 follow this
    qtbot.keyClick(window.canvas, Qt.Key.Key_1)
    first = window.labels_panel.labels()[0]
    assert window.annotator.label == first
    qtbot.keyClick(window.canvas, Qt.Key.Key_3)
    assert window.annotator.label == window.labels_panel.labels()[2]


def test_typing_a_new_label_creates_it(qtbot, fake) -> None:
    window, _ = fake
    panel = window.labels_panel
    panel.search.setFocus()
    qtbot.keyClicks(panel.search, "mitochondrion")
    qtbot.keyClick(panel.search, Qt.Key.Key_Return)
    assert "mitochondrion" in panel.labels()
    assert not panel.typing  # the keyboard goes back to the image: 1-9, D, A are shortcuts
    panel.search.setFocus()
    assert window.annotator.label == "mitochondrion"
    assert "mitochondrion" in window.settings.labels()
    qtbot.keyClicks(panel.search, "mito")  # type-to-search finds it
    qtbot.keyClick(panel.search, Qt.Key.Key_Return)
    assert window.annotator.label == "mitochondrion"


def test_dragging_a_polygon_vertex_edits_the_mask_undoably(qtbot, fake) -> None:
    window, worker = fake
    a = window.annotator
    a.add_point(170, 90, True)
    worker.answer(shape_mask(1))  # the ring: an outer ring and a hole
    iid = a.accept()
    window.instances_panel.select(iid)
    window.actions["polygon"].trigger()  # G
    editor = window.polygon_editor
    assert editor.active and editor.instance_id == iid
    holes = [ring for _, is_hole, ring in editor.rings if is_hole]
    assert len(holes) == 1  # the hole is an interior ring
    canvas = window.canvas
    canvas.set_zoom(3.0)
    # the outer ring's right-most vertex, dragged 12 px further right
    ring_index, (_, _, outer) = next((i, r) for i, r in enumerate(editor.rings) if not r[1])
    vertex = int(np.argmax(outer[:, 0]))
    x, y = outer[vertex]
    handle = next(h for h in editor._handles if h.ring == ring_index and h.index == vertex)
    canvas.centerOn(handle.pos())
    start = canvas.mapFromScene(handle.pos())
    end = canvas.mapFromScene(handle.pos() + type(handle.pos())(12, 0))
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(canvas.viewport(), end)
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=end)
    edited = window.project.view.instance(iid).mask()
    original = shape_mask(1)
    assert edited.sum() > original.sum()
    # the mask now reaches further right, where the vertex went
    assert (
        np.flatnonzero(edited.any(axis=0)).max() >= np.flatnonzero(original.any(axis=0)).max() + 6
    )
    rows = np.flatnonzero(edited[:, int(x) + 4])
    assert rows.size and abs(rows.mean() - y) < 8
    assert not edited[90, 170]  # the hole is still a hole
    assert a.session.state.is_empty  # no prompt was added by the drag
    a.undo_group.undo()
    assert np.array_equal(window.project.view.instance(iid).mask(), original)
    assert editor.active  # the handles follow the undo
    window.actions["polygon"].trigger()
    assert not editor.active


def test_brush_size_keys_and_redo_shortcuts(qtbot, fake) -> None:
    window, worker = fake
    canvas = window.canvas
    canvas.setFocus()
    radius = canvas.brush_radius
    qtbot.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush_radius == pytest.approx(radius * 1.25)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_radius == pytest.approx(radius / 1.25)
    assert window.settings.brush_radius() == pytest.approx(canvas.brush_radius)
    qtbot.keyClick(canvas, Qt.Key.Key_B)
    assert canvas.tool.value == "brush"
    qtbot.keyClick(canvas, Qt.Key.Key_E)
    assert canvas.tool.value == "eraser"
    qtbot.keyClick(canvas, Qt.Key.Key_V)
    assert canvas.tool.value == "prompt"
    window.annotator.add_point(60, 60, True)
    worker.answer(shape_mask(0))
    control = Qt.KeyboardModifier.ControlModifier
    qtbot.keyClick(canvas, Qt.Key.Key_Z, control)
    assert window.annotator.session.state.is_empty
    qtbot.keyClick(canvas, Qt.Key.Key_Z, control | Qt.KeyboardModifier.ShiftModifier)
    assert window.annotator.session.state.points == ((60, 60, True),)


@pytest.mark.slow
def test_hundred_brush_strokes_on_a_4k_image_use_little_memory(make_window, tmp_path) -> None:
    """Undo history of 100 strokes on a 4096 x 3000 image: sparse diffs, not mask copies."""
    import tracemalloc

    from PIL import Image

    (tmp_path / "big").mkdir()
    Image.new("RGB", (4096, 3000), (40, 40, 40)).save(tmp_path / "big" / "big.png")
    workers: list[FakeWorker] = []
    window = make_window(worker_factory=lambda cb: workers.append(FakeWorker(cb)) or workers[-1])
    window.open_paths([str(tmp_path / "big")])
    workers[0].deliver_image()
    a = window.annotator
    a.add_point(60, 60, True)
    workers[0].answer(shape_mask(0, (4096, 3000)))
    rng = np.random.default_rng(0)
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    for _ in range(100):
        x, y = (float(v) for v in rng.integers(100, 700, 2))  # refining one object
        a.stroke([(x, y), (x + 60, y + 20), (x + 120, y)], 10.0, bool(rng.integers(0, 2)))
    grown = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    stack = a.undo_group.activeStack()
    states = [
        s for i in range(stack.count()) for s in (stack.command(i).before, stack.command(i).after)
    ]
    cached = {id(s._cache["mask"]) for s in states if "mask" in s._cache}
    diffs = sum(d.nbytes for d in a.session.state.edits)
    print(
        f"100 strokes on 4096x3000: {stack.count() - 1} edits, {diffs / 1024:.0f} KiB of diffs; "
        f"heap +{grown / 2**20:.1f} MiB (the working mask and its on-screen overlay included)"
    )
    assert stack.count() - 1 == len(a.session.state.edits) > 40  # erasing nothing is no step
    assert diffs < 1 << 20
    assert len(cached) == 1  # only the state shown keeps an unpacked mask
    # the working mask (12 MB) and the overlay of the object's box (4 bytes/pixel, <= 49 MB);
    # full copies in the history would be 100 x 12 MB
    assert grown < 80 * 2**20
    for _ in range(stack.count() - 1):  # undo every stroke, back to SAM's mask
        a.undo_group.undo()
    assert np.array_equal(
        np.asarray(a.session.state.mask(a.session.shape)), shape_mask(0, (4096, 3000))
    )
