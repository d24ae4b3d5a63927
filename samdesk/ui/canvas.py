"""The image canvas: a QGraphicsView showing the image, mask overlays and prompt markers.

Scene coordinates are original-image pixels: pixel (x, y) covers [x, x+1) x [y, y+1), so the
view's transform is the zoom and nothing else. Mouse positions are mapped with the exact inverse
of the viewport transform (floating point, not the integer ``mapToScene`` overloads), which is
what keeps clicks on the right pixel at any zoom.

Interaction (tool "prompt"): left click = positive point, right click or Shift+left = negative
point, left drag = box; wheel zooms at the cursor; middle drag or Space+left drag pans. Tools
"brush" / "eraser": left drag paints / erases with a disc of ``brush_radius`` pixels.
The canvas only reports what the user did (signals); the main window decides what it means.
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QStyleOptionGraphicsItem,
    QWidget,
)

from samdesk.ui.overlay import MaskItem

#: Largest tile side for the image pixmaps (QImage/QPixmap cannot exceed 32,767 px per side,
#: and smaller tiles keep repaints of a zoomed-in view cheap).
TILE = 4096
MIN_ZOOM = 1 / 64
MAX_ZOOM = 64.0
#: A left press that moves less than this many screen pixels is a click, not a box.
DRAG_THRESHOLD = 4
MARKER_SIZE = 14.0  # logical (device-independent) pixels


class Tool(Enum):
    PROMPT = "prompt"
    BRUSH = "brush"
    ERASER = "eraser"


class MarkerItem(QGraphicsItem):
    """A prompt point: a green disc with "+" (positive) or a red disc with "-" (negative).

    Drawn at a constant screen size (ItemIgnoresTransformations) centred on the pixel centre.
    """

    def __init__(self, x: int, y: int, positive: bool) -> None:
        super().__init__()
        self.positive = positive
        self.setPos(x + 0.5, y + 0.5)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setZValue(30)

    def boundingRect(self) -> QRectF:
        half = MARKER_SIZE / 2 + 2
        return QRectF(-half, -half, 2 * half, 2 * half)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        half = MARKER_SIZE / 2
        fill = QColor(30, 170, 60) if self.positive else QColor(215, 40, 40)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        painter.setBrush(QBrush(fill))
        painter.drawEllipse(QRectF(-half, -half, 2 * half, 2 * half))
        arm = half * 0.55
        cross = QPen(QColor(255, 255, 255), 2.2)
        cross.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(cross)
        painter.drawLine(QPointF(-arm, 0), QPointF(arm, 0))
        if self.positive:
            painter.drawLine(QPointF(0, -arm), QPointF(0, arm))


def _cosmetic_pen(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)
    return pen


def box_rect(x0: int, y0: int, x1: int, y1: int) -> QRectF:
    """Scene rectangle covering pixels x0..x1, y0..y1 inclusive."""
    return QRectF(x0, y0, x1 - x0 + 1, y1 - y0 + 1)


class BusyOverlay(QFrame):
    """A small panel at the top of the canvas: what the worker is doing, with progress."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("busyOverlay")
        self.setStyleSheet(
            "#busyOverlay { background: rgba(20, 20, 20, 200); border-radius: 6px; }"
            "#busyOverlay QLabel { color: white; }"
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        self.label = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setFixedWidth(self.fontMetrics().horizontalAdvance("M") * 10)
        self.bar.setTextVisible(False)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        self.hide()

    def show_progress(self, text: str, done: int | None = None, total: int | None = None) -> None:
        self.label.setText(text)
        if done is None or not total:
            self.bar.setRange(0, 0)  # indeterminate
        else:
            self.bar.setRange(0, total)
            self.bar.setValue(done)
        self.adjustSize()
        self.reposition()
        self.show()
        self.raise_()

    def reposition(self) -> None:
        parent = self.parentWidget()
        if parent is not None:
            self.move(max(0, (parent.width() - self.width()) // 2), 12)


class ImageCanvas(QGraphicsView):
    """Shows one image with overlays; reports clicks, boxes and strokes in image pixels."""

    #: x, y (image pixel indices), positive
    point_clicked = Signal(int, int, bool)
    #: x0, y0, x1, y1 (inclusive pixel indices, x0 <= x1, y0 <= y1)
    box_drawn = Signal(int, int, int, int)
    #: points [(x, y)] in continuous image coordinates, radius in pixels, erase?
    stroke_finished = Signal(object, float, bool)
    #: pixel under the cursor, (-1, -1) outside the image
    cursor_moved = Signal(int, int)
    zoom_changed = Signal(float)
    #: local paths dropped on the canvas
    files_dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setMouseTracking(True)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setBackgroundBrush(QColor(48, 48, 52))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)

        self._tiles: list[QGraphicsPixmapItem] = []
        self._size: tuple[int, int] | None = None  # (width, height)
        self.tool = Tool.PROMPT
        self.brush_radius = 8.0

        self.object_item = MaskItem()
        self.object_item.highlight = True
        self.object_item.setZValue(20)
        self.scene().addItem(self.object_item)
        self._instance_items: dict[str, MaskItem] = {}
        self._markers: list[MarkerItem] = []
        self._box_item = QGraphicsRectItem()
        self._box_item.setPen(_cosmetic_pen(QColor(255, 220, 0), 2, Qt.PenStyle.DashLine))
        self._box_item.setZValue(25)
        self._box_item.hide()
        self.scene().addItem(self._box_item)
        self._region_item = QGraphicsRectItem()
        self._region_item.setPen(_cosmetic_pen(QColor(120, 200, 255), 1.5, Qt.PenStyle.DotLine))
        self._region_item.setZValue(24)
        self._region_item.hide()
        self.scene().addItem(self._region_item)
        self._rubber = QGraphicsRectItem()
        self._rubber.setPen(_cosmetic_pen(QColor(255, 255, 255), 1.5, Qt.PenStyle.DashLine))
        self._rubber.setZValue(26)
        self._rubber.hide()
        self.scene().addItem(self._rubber)
        self._brush_cursor = QGraphicsEllipseItem()
        self._brush_cursor.setPen(_cosmetic_pen(QColor(255, 255, 255), 1.5))
        self._brush_cursor.setZValue(40)
        self._brush_cursor.hide()
        self.scene().addItem(self._brush_cursor)
        self._stroke_item = QGraphicsPathItem()
        self._stroke_item.setZValue(22)
        self.scene().addItem(self._stroke_item)

        self.busy = BusyOverlay(self.viewport())
        self._message = QLabel(self.viewport())
        self._message.setWordWrap(True)
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message.setStyleSheet("color: #ddd; font-size: 12pt; padding: 24px;")
        self._message.hide()

        # gesture state
        self._press_pos: QPointF | None = None
        self._press_button = Qt.MouseButton.NoButton
        self._press_shift = False
        self._dragging_box = False
        self._pan_last: QPointF | None = None
        self._space_down = False
        self._stroke: list[tuple[float, float]] = []
        self._item_drag = False
        #: the view shows the whole image and the user has not zoomed or panned since: a
        #: resized window fits the image again
        self.fitted = False

    # --- image and geometry ------------------------------------------------------------------

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(width, height) of the image shown, or None."""
        return self._size

    def set_image(self, rgb: np.ndarray | None) -> None:
        """Show ``rgb`` ((H, W, 3) uint8) or nothing; clears overlays and prompts, fits the view."""
        for tile in self._tiles:
            self.scene().removeItem(tile)
        self._tiles = []
        self.clear_overlays()
        if rgb is None:
            self._size = None
            self.scene().setSceneRect(QRectF())
            return
        height, width = rgb.shape[:2]
        self._size = (width, height)
        for y0 in range(0, height, TILE):
            for x0 in range(0, width, TILE):
                tile = np.ascontiguousarray(rgb[y0 : y0 + TILE, x0 : x0 + TILE])
                th, tw = tile.shape[:2]
                image = QImage(tile.data, tw, th, tw * 3, QImage.Format.Format_RGB888)
                item = QGraphicsPixmapItem(QPixmap.fromImage(image))  # copies the pixels
                item.setPos(x0, y0)
                item.setZValue(0)
                item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
                self.scene().addItem(item)
                self._tiles.append(item)
        self.scene().setSceneRect(QRectF(0, 0, width, height))
        self.set_message(None)
        self.fit()

    def set_message(self, text: str | None) -> None:
        """A centred message instead of an image (start hints, "cannot open ..."), or none."""
        if not text:
            self._message.hide()
            return
        self._message.setText(text)
        self._message.setGeometry(self.viewport().rect())
        self._message.show()

    def clear_overlays(self) -> None:
        self.object_item.set_mask(None, (0, 0, 0))
        for item in self._instance_items.values():
            self.scene().removeItem(item)
        self._instance_items.clear()
        self.set_prompts([], None)
        self.set_region(None)
        self._stroke_item.setPath(QPainterPath())

    def set_region(self, region: tuple[int, int, int, int] | None) -> None:
        """Outline the region the object is segmented in, (x0, y0, x1, y1) end-exclusive."""
        if region is None:
            self._region_item.hide()
            return
        x0, y0, x1, y1 = region
        self._region_item.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self._region_item.show()

    def visible_rect(self) -> tuple[float, float, float, float]:
        """The image area in view, (x0, y0, x1, y1) in continuous image coordinates (it may
        reach outside the image)."""
        rect = self.mapToScene(self.viewport().rect()).boundingRect()
        return rect.left(), rect.top(), rect.right(), rect.bottom()

    @property
    def zoom(self) -> float:
        return float(self.transform().m11())

    def scene_point(self, view_pos: QPointF) -> QPointF:
        """Exact scene (image) coordinates of a viewport position (floating point)."""
        inverse, _ = self.viewportTransform().inverted()
        return inverse.map(QPointF(view_pos))

    def pixel_at(self, view_pos: QPointF) -> tuple[int, int] | None:
        """The image pixel (x, y) under a viewport position, or None outside the image."""
        if self._size is None:
            return None
        p = self.scene_point(view_pos)
        x, y = math.floor(p.x()), math.floor(p.y())
        width, height = self._size
        if 0 <= x < width and 0 <= y < height:
            return x, y
        return None

    def view_point_of(self, x: float, y: float) -> QPointF:
        """Viewport position of scene point (x, y); the centre of pixel (x, y) is (x+.5, y+.5)."""
        return self.viewportTransform().map(QPointF(x, y))

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``zoom`` screen pixels per image pixel, keeping ``anchor`` (a viewport
        position) over the same image point; default: the viewport centre."""
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        self.fitted = False
        if anchor is None:
            anchor = QPointF(self.viewport().rect().center())
        before = self.scene_point(anchor)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setTransform(self.transform().fromScale(zoom, zoom))
        after = self.view_point_of(before.x(), before.y())
        delta = after - anchor
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + round(delta.x()))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + round(delta.y()))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self._zoom_updated()

    def fit(self) -> None:
        """Fit the whole image in the view (F)."""
        if self._size is None:
            return
        width, height = self._size
        self.fitInView(QRectF(0, 0, width, height), Qt.AspectRatioMode.KeepAspectRatio)
        self.fitted = True
        self._zoom_updated()

    def _zoom_updated(self) -> None:
        # Pixel-exact when magnified: no smoothing at zoom >= 1, smooth when shrunk.
        smooth = self.zoom < 1.0
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        mode = (
            Qt.TransformationMode.SmoothTransformation
            if smooth
            else Qt.TransformationMode.FastTransformation
        )
        # Shrunk, a tile is scaled smoothly on every repaint: keep the scaled pixmap instead
        # (repaints after a click then blit it). Magnified, only the exposed pixels are drawn.
        cache = (
            QGraphicsItem.CacheMode.DeviceCoordinateCache
            if smooth
            else QGraphicsItem.CacheMode.NoCache
        )
        for tile in self._tiles:
            tile.setTransformationMode(mode)
            tile.setCacheMode(cache)
        self.zoom_changed.emit(self.zoom)

    # --- overlays --------------------------------------------------------------------------

    def set_object_mask(
        self,
        mask: np.ndarray | None,
        color: tuple[int, int, int],
        box: tuple[int, int, int, int] | None = None,
    ) -> None:
        """The object being segmented ((H, W) bool), drawn above the instances; ``box``
        (y0, x0, y1, x1) when the caller knows the mask's bounding box."""
        self.object_item.set_mask(mask, color, fill_alpha=0.5, box=box)

    def set_instance(
        self,
        instance_id: str,
        crop: np.ndarray | None,
        x0: int,
        y0: int,
        color: tuple[int, int, int],
        *,
        visible: bool = True,
        selected: bool = False,
    ) -> None:
        """Show an accepted instance from its bool crop whose top-left pixel is (x0, y0)."""
        item = self._instance_items.get(instance_id)
        if item is None:
            item = MaskItem()
            item.setZValue(10)
            self.scene().addItem(item)
            self._instance_items[instance_id] = item
        item.highlight = selected  # white outline: the object the list has selected
        item.set_crop(crop, x0, y0, color, fill_alpha=0.6 if selected else 0.45)
        item.setVisible(visible)

    def set_instance_visible(self, instance_id: str, visible: bool) -> None:
        item = self._instance_items.get(instance_id)
        if item is not None:
            item.setVisible(visible)

    def remove_instance(self, instance_id: str) -> None:
        item = self._instance_items.pop(instance_id, None)
        if item is not None:
            self.scene().removeItem(item)

    def instance_ids(self) -> list[str]:
        return list(self._instance_items)

    def instance_item(self, instance_id: str) -> MaskItem | None:
        return self._instance_items.get(instance_id)

    def set_prompts(
        self, points: list[tuple[int, int, bool]], box: tuple[int, int, int, int] | None
    ) -> None:
        """Markers for the prompts of the current object: points (x, y, positive), box."""
        for marker in self._markers:
            self.scene().removeItem(marker)
        self._markers = []
        for x, y, positive in points:
            marker = MarkerItem(x, y, positive)
            self.scene().addItem(marker)
            self._markers.append(marker)
        if box is None:
            self._box_item.hide()
        else:
            self._box_item.setRect(box_rect(*box))
            self._box_item.show()

    def markers(self) -> list[tuple[int, int, bool]]:
        return [
            (math.floor(m.pos().x()), math.floor(m.pos().y()), m.positive) for m in self._markers
        ]

    # --- tools -----------------------------------------------------------------------------

    def set_tool(self, tool: Tool) -> None:
        self.tool = tool
        self._brush_cursor.setVisible(tool is not Tool.PROMPT and self.underMouse())
        self.viewport().setCursor(
            Qt.CursorShape.CrossCursor if tool is Tool.PROMPT else Qt.CursorShape.BlankCursor
        )

    def set_brush_radius(self, radius: float) -> None:
        self.brush_radius = max(1.0, min(500.0, radius))
        rect = self._brush_cursor.rect()
        centre = rect.center() if rect.isValid() else QPointF()
        self._place_brush_cursor(centre)

    def _place_brush_cursor(self, centre: QPointF) -> None:
        r = self.brush_radius
        self._brush_cursor.setRect(QRectF(centre.x() - r, centre.y() - r, 2 * r, 2 * r))

    # --- events ----------------------------------------------------------------------------

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.fitted:
            self.fit()
        self.busy.reposition()
        if self._message.isVisible():
            self._message.setGeometry(self.viewport().rect())

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta == 0 or self._size is None:
            return
        factor = 2.0 ** (delta / 480.0)  # one notch (120) = x1.19
        self.set_zoom(self.zoom * factor, event.position())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            self.set_tool(self.tool)
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:
        self._space_down = False
        super().focusOutEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self._space_down
        ):
            self._pan_last = pos
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if self._size is None:
            return
        item = self.itemAt(pos.toPoint())
        if (
            button == Qt.MouseButton.LeftButton
            and item is not None
            and item.flags() & QGraphicsItem.GraphicsItemFlag.ItemIsMovable
        ):
            self._item_drag = True  # a polygon vertex: the item handles the drag
            super().mousePressEvent(event)
            return
        self._press_pos = pos
        self._press_button = button
        self._press_shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        self._dragging_box = False
        if self.tool is not Tool.PROMPT and button == Qt.MouseButton.LeftButton:
            p = self.scene_point(pos)
            self._stroke = [(p.x(), p.y())]
            self._update_stroke_preview()
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        scene = self.scene_point(pos)
        if self._pan_last is not None:
            delta = pos - self._pan_last
            self._pan_last = pos
            self.fitted = False
            self.horizontalScrollBar().setValue(
                self.horizontalScrollBar().value() - round(delta.x())
            )
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
            event.accept()
            return
        pixel = self.pixel_at(pos)
        self.cursor_moved.emit(*(pixel if pixel else (-1, -1)))
        if self._item_drag or (self._press_pos is None and self.tool is Tool.PROMPT):
            super().mouseMoveEvent(event)  # hover cursors of vertex handles, their drags
            return
        if self.tool is not Tool.PROMPT:
            self._place_brush_cursor(scene)
            self._brush_cursor.setVisible(self._size is not None)
            if self._stroke:
                self._stroke.append((scene.x(), scene.y()))
                self._update_stroke_preview()
            event.accept()
            return
        if self._press_pos is not None and self._press_button == Qt.MouseButton.LeftButton:
            moved = pos - self._press_pos
            if self._dragging_box or max(abs(moved.x()), abs(moved.y())) >= DRAG_THRESHOLD:
                self._dragging_box = True
                x0, y0, x1, y1 = self._box_from(self._press_pos, pos)
                self._rubber.setRect(box_rect(x0, y0, x1, y1))
                self._rubber.show()
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._pan_last is not None:
            self._pan_last = None
            self.set_tool(self.tool)
            if self._space_down:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        if self._item_drag:
            self._item_drag = False
            super().mouseReleaseEvent(event)
            return
        press, button = self._press_pos, self._press_button
        self._press_pos = None
        self._press_button = Qt.MouseButton.NoButton
        if press is None or self._size is None:
            return
        if self.tool is not Tool.PROMPT:
            if self._stroke and button == Qt.MouseButton.LeftButton:
                points = self._stroke
                self._stroke = []
                self._stroke_item.setPath(QPainterPath())
                self.stroke_finished.emit(points, self.brush_radius, self.tool is Tool.ERASER)
            event.accept()
            return
        if self._dragging_box:
            self._dragging_box = False
            self._rubber.hide()
            x0, y0, x1, y1 = self._box_from(press, pos)
            if x1 > x0 and y1 > y0:
                self.box_drawn.emit(x0, y0, x1, y1)
            event.accept()
            return
        pixel = self.pixel_at(press)
        if pixel is None:
            return
        if button == Qt.MouseButton.LeftButton:
            self.point_clicked.emit(pixel[0], pixel[1], not self._press_shift)
        elif button == Qt.MouseButton.RightButton:
            self.point_clicked.emit(pixel[0], pixel[1], False)
        event.accept()

    def leaveEvent(self, event: QEvent) -> None:
        self._brush_cursor.hide()
        self.cursor_moved.emit(-1, -1)
        super().leaveEvent(event)

    def contextMenuEvent(self, event) -> None:
        event.accept()  # right click is a negative point, never a menu

    def _box_from(self, a: QPointF, b: QPointF) -> tuple[int, int, int, int]:
        """Inclusive pixel box spanned by two viewport positions, clipped to the image."""
        assert self._size is not None
        width, height = self._size
        pa, pb = self.scene_point(a), self.scene_point(b)
        xs = sorted((math.floor(pa.x()), math.floor(pb.x())))
        ys = sorted((math.floor(pa.y()), math.floor(pb.y())))
        x0, x1 = max(0, xs[0]), min(width - 1, xs[1])
        y0, y1 = max(0, ys[0]), min(height - 1, ys[1])
        return x0, y0, x1, y1

    def _update_stroke_preview(self) -> None:
        path = QPainterPath()
        if self._stroke:
            path.moveTo(QPointF(*self._stroke[0]))
            for x, y in self._stroke[1:]:
                path.lineTo(QPointF(x, y))
            if len(self._stroke) == 1:
                path.lineTo(QPointF(self._stroke[0][0] + 0.01, self._stroke[0][1]))
        erase = self.tool is Tool.ERASER
        color = QColor(0, 0, 0, 110) if erase else QColor(255, 255, 255, 110)
        pen = QPen(color, 2 * self.brush_radius)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        self._stroke_item.setPen(pen)
        self._stroke_item.setPath(path)

    # --- drag and drop -------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(paths)
        else:
            event.ignore()

    def center_on_pixel(self, x: float, y: float) -> None:
        self.centerOn(QPointF(x, y))

    def viewport_pos_of_pixel(self, x: int, y: int) -> QPoint:
        """Integer viewport position inside pixel (x, y) (its centre, rounded): for tests and
        benchmarks that send synthetic mouse events."""
        p = self.view_point_of(x + 0.5, y + 0.5)
        return QPoint(math.floor(p.x()), math.floor(p.y()))
