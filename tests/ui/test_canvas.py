"""The canvas maps every view position to the exact original-image pixel at any zoom."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QPainter

from samdesk.ui.canvas import ImageCanvas, Tool

pytestmark = pytest.mark.gui

ZOOMS = (0.05, 0.37, 1.0, 2.5, 7.3, 16.0, 41.0)


@pytest.fixture
def canvas(qtbot):
    view = ImageCanvas()
    qtbot.addWidget(view)
    view.resize(640, 480)
    view.show()
    qtbot.waitExposed(view)
    rng = np.random.default_rng(3)
    view.set_image(rng.integers(0, 255, (300, 500, 3), dtype=np.uint8))
    return view


@pytest.mark.parametrize("zoom", ZOOMS)
def test_pixel_mapping_is_exact_at_every_zoom(canvas: ImageCanvas, zoom: float) -> None:
    canvas.set_zoom(zoom)
    rng = np.random.default_rng(int(zoom * 100))
    for x, y in [(0, 0), (499, 299), *rng.integers(0, 299, (20, 2)).tolist()]:
        canvas.center_on_pixel(x + 0.5, y + 0.5)
        for fx, fy in [(0.5, 0.5), (0.01, 0.01), (0.99, 0.99), (0.02, 0.97)]:
            view_pos = canvas.view_point_of(x + fx, y + fy)
            assert canvas.pixel_at(view_pos) == (x, y), (zoom, x, y, fx, fy)
        # and back: the centre of the pixel maps to scene (x + 0.5, y + 0.5)
        scene = canvas.scene_point(canvas.view_point_of(x + 0.5, y + 0.5))
        assert scene.x() == pytest.approx(x + 0.5, abs=1e-6)
        assert scene.y() == pytest.approx(y + 0.5, abs=1e-6)


def test_positions_outside_the_image_map_to_none(canvas: ImageCanvas) -> None:
    canvas.set_zoom(4.0)
    canvas.center_on_pixel(0, 0)
    assert canvas.pixel_at(canvas.view_point_of(-0.01, 5)) is None
    assert canvas.pixel_at(canvas.view_point_of(3, -0.01)) is None
    canvas.center_on_pixel(500, 300)
    assert canvas.pixel_at(canvas.view_point_of(500.0, 10)) is None
    assert canvas.pixel_at(canvas.view_point_of(499.99, 299.99)) == (499, 299)


@pytest.mark.parametrize("zoom", (1.0, 3.0, 12.0, 33.0))
def test_clicks_report_the_pixel_under_the_mouse(qtbot, canvas: ImageCanvas, zoom: float) -> None:
    canvas.set_zoom(zoom)
    for x, y in [(10, 20), (250, 150), (499, 299)]:
        canvas.center_on_pixel(x + 0.5, y + 0.5)
        pos = canvas.viewport_pos_of_pixel(x, y)
        with qtbot.waitSignal(canvas.point_clicked) as left:
            qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=pos)
        assert left.args == [x, y, True]
        with qtbot.waitSignal(canvas.point_clicked) as right:
            qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.RightButton, pos=pos)
        assert right.args == [x, y, False]
        with qtbot.waitSignal(canvas.point_clicked) as shift:
            qtbot.mouseClick(
                canvas.viewport(),
                Qt.MouseButton.LeftButton,
                Qt.KeyboardModifier.ShiftModifier,
                pos=pos,
            )
        assert shift.args == [x, y, False]


def test_left_drag_draws_a_box_in_inclusive_pixels(qtbot, canvas: ImageCanvas) -> None:
    canvas.set_zoom(2.0)
    canvas.center_on_pixel(100, 100)
    a = canvas.viewport_pos_of_pixel(80, 90)
    b = canvas.viewport_pos_of_pixel(120, 110)
    with qtbot.waitSignal(canvas.box_drawn) as box:
        qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=a)
        qtbot.mouseMove(canvas.viewport(), QPoint((a.x() + b.x()) // 2, a.y() + 3))
        qtbot.mouseMove(canvas.viewport(), b)
        qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=b)
    assert box.args == [80, 90, 120, 110]


def test_wheel_zooms_at_the_cursor(qtbot, canvas: ImageCanvas) -> None:
    canvas.set_zoom(2.0)  # the image is larger than the view: room to scroll either way
    canvas.center_on_pixel(250, 150)
    anchor = QPointF(200.0, 150.0)
    before = canvas.scene_point(anchor)
    from PySide6.QtGui import QWheelEvent

    event = QWheelEvent(
        anchor,
        canvas.viewport().mapToGlobal(anchor),
        QPoint(0, 0),
        QPoint(0, 480),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    canvas.wheelEvent(event)
    assert canvas.zoom == pytest.approx(4.0)
    after = canvas.scene_point(anchor)
    # the image point under the cursor stays under it (within one screen pixel)
    assert abs(after.x() - before.x()) * canvas.zoom <= 1.0
    assert abs(after.y() - before.y()) * canvas.zoom <= 1.0


def test_no_smoothing_when_magnified(canvas: ImageCanvas) -> None:
    canvas.set_zoom(8.0)
    assert not canvas.renderHints() & QPainter.RenderHint.SmoothPixmapTransform
    canvas.set_zoom(0.5)
    assert canvas.renderHints() & QPainter.RenderHint.SmoothPixmapTransform


def test_fit_shows_the_whole_image(canvas: ImageCanvas) -> None:
    canvas.set_zoom(20.0)
    canvas.fit()
    rect = canvas.viewport().rect()
    top_left = canvas.scene_point(QPointF(rect.topLeft()))
    bottom_right = canvas.scene_point(QPointF(rect.bottomRight()))
    assert top_left.x() <= 0.5 and top_left.y() <= 0.5
    assert bottom_right.x() >= 499.5 and bottom_right.y() >= 299.5
    assert math.isclose(canvas.zoom, min(rect.width() / 500, rect.height() / 300), rel_tol=0.05)


def test_middle_drag_pans_without_prompting(qtbot, canvas: ImageCanvas) -> None:
    canvas.set_zoom(4.0)
    canvas.center_on_pixel(250, 150)
    start = canvas.scene_point(QPointF(320, 240))
    clicks: list = []
    canvas.point_clicked.connect(lambda *a: clicks.append(a))
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.MiddleButton, pos=QPoint(320, 240))
    qtbot.mouseMove(canvas.viewport(), QPoint(360, 260))
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.MiddleButton, pos=QPoint(360, 260))
    moved = canvas.scene_point(QPointF(320, 240))
    assert moved.x() == pytest.approx(start.x() - 40 / 4.0, abs=0.3)
    assert moved.y() == pytest.approx(start.y() - 20 / 4.0, abs=0.3)
    assert clicks == []


def test_brush_stroke_reports_image_coordinates(qtbot, canvas: ImageCanvas) -> None:
    canvas.set_zoom(2.0)
    canvas.center_on_pixel(100, 100)
    canvas.set_tool(Tool.BRUSH)
    canvas.set_brush_radius(5)
    a = canvas.viewport_pos_of_pixel(90, 100)
    b = canvas.viewport_pos_of_pixel(110, 100)
    with qtbot.waitSignal(canvas.stroke_finished) as stroke:
        qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=a)
        qtbot.mouseMove(canvas.viewport(), b)
        qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=b)
    points, radius, erase = stroke.args
    assert radius == 5 and erase is False
    assert points[0] == pytest.approx((90.5, 100.5), abs=0.5)
    assert points[-1] == pytest.approx((110.5, 100.5), abs=0.5)


def test_markers_sit_on_pixel_centres(canvas: ImageCanvas) -> None:
    canvas.set_prompts([(3, 4, True), (10, 20, False)], (1, 2, 30, 40))
    assert canvas.markers() == [(3, 4, True), (10, 20, False)]


def test_large_images_are_tiled(canvas: ImageCanvas) -> None:
    image = np.zeros((5000, 9000, 3), np.uint8)
    image[4999, 8999] = 255
    canvas.set_image(image)
    assert canvas.image_size == (9000, 5000)
    assert len(canvas._tiles) == 3 * 2
    assert canvas.scene().sceneRect().width() == 9000


def test_space_drag_pans(qtbot, canvas: ImageCanvas) -> None:
    canvas.set_zoom(4.0)
    canvas.center_on_pixel(250, 150)
    canvas.setFocus()
    before = canvas.scene_point(QPointF(300, 200))
    boxes: list = []
    canvas.box_drawn.connect(lambda *a: boxes.append(a))
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    qtbot.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(300, 200))
    qtbot.mouseMove(canvas.viewport(), QPoint(260, 180))
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(260, 180))
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    after = canvas.scene_point(QPointF(300, 200))
    assert after.x() == pytest.approx(before.x() + 40 / 4.0, abs=0.3)
    assert after.y() == pytest.approx(before.y() + 20 / 4.0, abs=0.3)
    assert boxes == []  # panning never draws a box


def test_a_fitted_view_fits_again_when_resized(qtbot, canvas: ImageCanvas) -> None:
    canvas.fit()
    small = canvas.zoom
    canvas.resize(1000, 800)
    qtbot.waitUntil(lambda: canvas.zoom > small * 1.3, timeout=2000)
    canvas.set_zoom(3.0)  # the user zoomed: a resize keeps the zoom
    canvas.resize(700, 500)
    qtbot.wait(50)
    assert canvas.zoom == pytest.approx(3.0)
