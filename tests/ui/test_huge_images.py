"""Huge images in the app (ADR 0066): a 40,000-px panorama is tiled and clicks map exactly;
region mode segments the crop in view and accepted objects land at full-image coordinates;
an image over the pixel cap is opened only when the user says so."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from samdesk.engine.region import AUTO_REGION_SIDE
from samdesk.ui.canvas import TILE

pytestmark = pytest.mark.gui

QIMAGE_MAX_SIDE = 32_767


def wait_loaded(qtbot, window, timeout=20000):
    qtbot.waitUntil(lambda: window.annotator.loaded and window.annotator.ready, timeout=timeout)


def wait_answer(qtbot, window, timeout=20000):
    def answered():
        session = window.annotator.session
        return bool(session and not session.state.waiting and session.state.candidates)

    qtbot.waitUntil(answered, timeout=timeout)


def click(qtbot, window, x, y):
    canvas = window.canvas
    canvas.center_on_pixel(x + 0.5, y + 0.5)
    qtbot.mouseClick(
        canvas.viewport(), Qt.MouseButton.LeftButton, pos=canvas.viewport_pos_of_pixel(x, y)
    )


def disc_image(path, size, centre, radius, seed=0):
    width, height = size
    rng = np.random.default_rng(seed)
    image = rng.normal(40, 6, (height, width, 3))
    yy, xx = np.mgrid[:height, :width]
    inside = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius * radius
    image[inside] = (230, 80, 80)
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
    return inside


def test_panorama_40k_wide_is_tiled_and_a_click_maps_to_its_exact_pixel(
    qtbot, make_window, tmp_path
) -> None:
    path = tmp_path / "panorama.png"
    image = np.zeros((300, 40_000, 3), np.uint8)
    image[:, ::1000] = 255  # a vertical line every 1000 px
    Image.fromarray(image).save(path)
    window = make_window()
    assert window.open_paths([str(path)])
    wait_loaded(qtbot, window)
    canvas = window.canvas
    assert canvas.image_size == (40_000, 300)
    covered = np.zeros((300, 40_000), np.uint8)
    for tile in canvas._tiles:
        pixmap = tile.pixmap()
        assert max(pixmap.width(), pixmap.height()) <= min(TILE, QIMAGE_MAX_SIDE)
        x0, y0 = int(tile.pos().x()), int(tile.pos().y())
        covered[y0 : y0 + pixmap.height(), x0 : x0 + pixmap.width()] += 1
    assert (covered == 1).all()  # every pixel shown by exactly one tile
    # a long side over AUTO_REGION_SIDE turns region mode on, and the status bar says so
    assert AUTO_REGION_SIDE < 40_000 and window.annotator.region_mode
    assert window.actions["region_mode"].isChecked()
    assert "Large image" in window.statusBar().currentMessage()

    canvas.set_zoom(2.0)
    seen: list[tuple[int, int, bool]] = []
    canvas.point_clicked.connect(lambda x, y, pos: seen.append((x, y, pos)))
    click(qtbot, window, 33_333, 150)
    assert seen == [(33_333, 150, True)]
    state = window.annotator.session.state
    assert state.points == ((33_333, 150, True),)
    assert state.region is not None and state.region.contains(33_333, 150)
    assert state.region.width < 40_000  # the crop in view, not the panorama
    wait_answer(qtbot, window)


def test_region_mode_click_accept_gives_full_image_coordinates(
    qtbot, make_window, tmp_path
) -> None:
    from samdesk.engine.classic import ClassicBackend

    path = tmp_path / "wide.png"
    truth = disc_image(path, (3000, 300), (2500, 150), 40)
    window = make_window()
    assert window.open_paths([str(path)])
    wait_loaded(qtbot, window)
    assert not window.annotator.region_mode  # 3000 px: not on by itself
    window.actions["region_mode"].trigger()  # the user turns it on (R)
    assert window.annotator.region_mode
    window.canvas.set_zoom(1.0)
    click(qtbot, window, 2500, 150)
    wait_answer(qtbot, window)
    session = window.annotator.session
    region = session.state.region
    assert region is not None and region.contains(2500, 150)
    assert region.width < 3000  # a crop: the view at 100 % is narrower than the image
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    instances = window.project.view.instances_of(window.annotator.current_id)
    assert len(instances) == 1
    mask = instances[0].mask()
    assert mask.shape == (300, 3000)
    ys, xs = np.nonzero(mask)
    assert abs(xs.min() - 2460) <= 2 and abs(xs.max() - 2540) <= 2
    assert abs(ys.min() - 110) <= 2 and abs(ys.max() - 190) <= 2
    assert (mask & truth).sum() / (mask | truth).sum() > 0.9

    # exactly what the backend gives on the crop alone, placed at the crop's offset
    rgb = np.asarray(Image.open(path).convert("RGB"))
    direct = ClassicBackend()
    direct.set_image(region.crop(rgb))
    local, scores, _ = direct.predict(
        np.array([[2500 - region.x0, 150 - region.y0]], np.float32), np.array([1])
    )
    assert np.array_equal(mask, region.to_full(local[int(np.argmax(scores))], (300, 3000)))


def test_a_refinement_outside_the_region_is_refused(qtbot, make_window, tmp_path) -> None:
    path = tmp_path / "wide.png"
    disc_image(path, (3000, 300), (2500, 150), 40)
    window = make_window()
    assert window.open_paths([str(path)])
    wait_loaded(qtbot, window)
    window.set_region_mode(True)
    window.canvas.set_zoom(1.0)
    click(qtbot, window, 2500, 150)
    wait_answer(qtbot, window)
    region = window.annotator.session.state.region
    messages: list[str] = []
    window.annotator.message.connect(lambda text, kind: messages.append(text))
    click(qtbot, window, 200, 150)  # far to the left, outside the region
    assert messages and "outside the region" in messages[0]
    state = window.annotator.session.state
    assert state.points == ((2500, 150, True),) and state.region == region
    # a new object (Esc) takes the region in view at its first click
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    click(qtbot, window, 200, 150)
    new_region = window.annotator.session.state.region
    assert new_region is not None and new_region.contains(200, 150) and new_region != region
    wait_answer(qtbot, window)


@pytest.mark.parametrize("answer", ["Open anyway", "Cancel"])
def test_an_image_over_the_cap_opens_only_when_the_user_agrees(
    qtbot, make_window, tmp_path, monkeypatch, answer
) -> None:
    monkeypatch.setenv("SAMDESK_MAX_IMAGE_PIXELS", "5000")
    path = tmp_path / "big.png"
    disc_image(path, (200, 200), (100, 100), 30)
    window = make_window()
    window.dialogs.answers.append(answer)
    assert window.open_paths([str(path)])
    image_id = window.annotator.current_image
    qtbot.waitUntil(lambda: bool(window.dialogs.asked), timeout=10000)
    title, text = window.dialogs.asked[0]
    assert title == "Very large image"
    assert "200 x 200 pixels" in text and "0.04 MP" in text and "GB of memory" in text
    if answer == "Open anyway":
        wait_loaded(qtbot, window)
        assert window.canvas.image_size == (200, 200)
        assert window.annotator.current_max_pixels == 40_000
        assert image_id not in window.files.failed
        import os

        assert os.environ["SAMDESK_MAX_IMAGE_PIXELS"] == "5000"  # no global changed
        click(qtbot, window, 100, 100)
        wait_answer(qtbot, window)
    else:
        qtbot.waitUntil(lambda: image_id in window.files.failed, timeout=10000)
        assert "5,000" in window.files.failed[image_id] or "5000" in window.files.failed[image_id]
        assert window.canvas.image_size is None
        assert window.annotator.current_max_pixels is None
    assert len(window.dialogs.asked) == 1


# --- region mode with a scripted worker (review findings 1-4) ----------------------------------


def _fake_region_window(make_window, tmp_path, size=(5000, 400)):
    from tests.ui.fakes import FakeWorker

    (tmp_path / "big").mkdir()
    Image.new("RGB", size, (40, 40, 40)).save(tmp_path / "big" / "big.png")
    workers = []
    window = make_window(worker_factory=lambda cb: workers.append(FakeWorker(cb)) or workers[-1])
    assert window.open_paths([str(tmp_path / "big")])
    workers[0].deliver_image()
    window.canvas.set_zoom(1.0)
    window.canvas.center_on_pixel(2500, 200)
    assert window.annotator.region_mode  # 5000 px > AUTO_REGION_SIDE
    return window, workers[0]


def _answer_region(worker, crop_mask) -> None:
    """Answer the last prompt as the real worker does in region mode: a crop-sized mask."""
    from samdesk.engine.worker import PromptResult
    from samdesk.ui.masks import mask_to_low_res_logits

    ref, seq, prompt = worker.prompts[-1]
    masks = np.asarray(crop_mask, bool)[None]
    logits = mask_to_low_res_logits(masks[0])[None]
    scores = np.array([0.9], np.float32)
    worker.on_event(PromptResult(ref, seq, masks, scores, logits, 0.0, prompt.region))


def _crop_answer(region, x0, x1):
    crop = np.zeros(region.shape, bool)
    crop[150:250, x0:x1] = True
    return crop


def test_the_history_keeps_one_full_size_mask_however_many_clicks(make_window, tmp_path) -> None:
    window, worker = _fake_region_window(make_window, tmp_path)
    a = window.annotator
    for i in range(5):
        a.add_point(2500 + 10 * i, 200, True)
        _answer_region(worker, _crop_answer(worker.prompts[-1][2].region, 100 + i, 300 + i))
    stack = a.undo_group.activeStack()
    states = []
    for i in range(stack.count()):
        command = stack.command(i)
        for state in (command.before, command.after):
            states += [state] if state.resolution is None else [state, state.resolution]
    full = {id(s._cache["mask"]) for s in states if "mask" in s._cache}
    assert len(full) == 1  # only the mask on screen; undo recomputes the others when needed
    for _ in range(5):
        a.undo_group.undo()
    assert a.session.state.is_empty
    for _ in range(5):
        a.undo_group.redo()
    region = a.session.state.region
    expected = np.zeros(a.session.shape, bool)
    expected[region.y0 + 150 : region.y0 + 250, region.x0 + 104 : region.x0 + 304] = True
    assert np.array_equal(a.session.state.mask(a.session.shape), expected)


def test_the_brush_stays_inside_the_objects_region(make_window, tmp_path) -> None:
    window, worker = _fake_region_window(make_window, tmp_path)
    a = window.annotator
    messages = []
    a.message.connect(lambda text, kind: messages.append(text))
    a.add_point(2500, 200, True)
    region = worker.prompts[-1][2].region
    _answer_region(worker, _crop_answer(region, 100, 300))
    shape = a.session.shape
    outside = region.x1 + 50
    a.stroke([(outside + 0.5, 200.5)], 10.0, False)  # entirely outside: refused, said so
    assert not a.session.state.mask(shape)[:, region.x1 :].any()
    assert len(messages) == 1 and "region" in messages[0]
    edge = region.x1 - 3
    a.stroke([(edge + 0.5, 200.5)], 10.0, False)  # across the edge: the inside part is painted
    mask = a.session.state.mask(shape)
    assert mask[200, edge] and not mask[:, region.x1 :].any()
    assert len(messages) == 2
    a.add_point(2510, 200, True)  # the refinement sees the brushed pixels in its mask prompt
    prompt = worker.prompts[-1][2]
    assert prompt.region == region and prompt.mask_input is not None


def test_a_prompt_after_brushing_gets_a_region_that_holds_the_painted_mask(
    make_window, tmp_path
) -> None:
    window, worker = _fake_region_window(make_window, tmp_path)
    a = window.annotator
    messages = []
    a.message.connect(lambda text, kind: messages.append(text))
    view = window.canvas.visible_rect()
    a.stroke([(1500.5, 200.5), (1520.5, 200.5)], 8.0, False)  # painted, then panned away
    assert view[0] > 1530
    a.add_point(2600, 200, True)
    region = worker.prompts[-1][2].region
    assert region.contains_box((1492, 192, 1528, 208)) and region.contains(2600, 200)
    assert messages == []
    a.clear_object()
    a.stroke([(100.5, 200.5)], 8.0, False)  # too far apart for one region (4096 px at most)
    a.add_point(4900, 200, True)
    assert len(worker.prompts) == 1 and "larger than a region" in messages[-1]


def test_clearing_or_undoing_withdraws_the_prompt_from_the_worker(make_window, tmp_path) -> None:
    window, worker = _fake_region_window(make_window, tmp_path)
    a = window.annotator
    a.add_point(2500, 200, True)  # waiting for the (slow) region encode
    assert worker.withdrawn == []
    assert a.clear_object()
    assert worker.withdrawn == [a.current_ref]
    a.undo_group.undo()  # back to the waiting state: asked again, nothing withdrawn
    assert len(worker.withdrawn) == 1 and worker.prompts[-1][2].region is not None


def test_a_lifted_cap_is_for_that_file_not_for_the_same_id_in_another_project(
    qtbot, make_window, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("SAMDESK_MAX_IMAGE_PIXELS", "5000")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    disc_image(tmp_path / "a" / "big.png", (200, 200), (100, 100), 30)
    disc_image(tmp_path / "b" / "other.png", (150, 150), (75, 75), 20)
    window = make_window()
    window.dialogs.answers.append("Open anyway")
    assert window.open_paths([str(tmp_path / "a")])
    wait_loaded(qtbot, window)
    window.dialogs.answers.append("Cancel")
    assert window.open_paths([str(tmp_path / "b")])  # image id 1 again, another file
    qtbot.waitUntil(lambda: len(window.dialogs.asked) == 2, timeout=10000)
    assert [title for title, _ in window.dialogs.asked] == ["Very large image"] * 2


def test_a_late_region_answer_for_a_cleared_object_is_never_drawn(make_window, tmp_path) -> None:
    window, worker = _fake_region_window(make_window, tmp_path)
    a = window.annotator
    a.add_point(2500, 200, True)
    first = worker.prompts[-1]
    a.clear_object()
    a.add_point(2700, 220, True)  # a new object, answered later
    worker.prompts.append(first)  # the old prompt's answer arrives now
    _answer_region(worker, _crop_answer(first[2].region, 0, 50))
    assert a.session.state.waiting and a.session.state.candidates is None
    worker.prompts.pop()
    _answer_region(worker, _crop_answer(worker.prompts[-1][2].region, 300, 400))
    state = a.session.state
    region = state.region
    mask = state.mask(a.session.shape)
    assert not state.waiting and mask.sum() == 100 * 100
    assert mask[region.y0 + 150, region.x0 + 300] and not mask[:, : region.x0 + 300].any()
