"""Editing an accepted object as polygons: drag a vertex, the mask follows.

The instance mask is converted with :func:`samdesk.annotation.geometry.mask_to_polygons` (holes
are interior rings, several parts a MultiPolygon; the pixel-corner frame, x, y in image pixels).
Each vertex is a small handle; releasing a dragged handle rebuilds the polygons (repaired with
shapely's ``make_valid`` if the drag made a ring cross itself), rasterises them with
:func:`samdesk.annotation.geometry.polygons_to_mask` and records the change as one undoable
sparse mask diff. Nothing changes until a vertex is actually moved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsSceneMouseEvent,
)
from shapely.geometry import MultiPolygon, Polygon

from samdesk.annotation.geometry import mask_to_polygons, polygons_to_mask, repair

if TYPE_CHECKING:
    from samdesk.ui.annotator import Annotator
    from samdesk.ui.canvas import ImageCanvas

HANDLE = 8.0  # logical pixels


class VertexHandle(QGraphicsRectItem):
    """A draggable square at one polygon vertex (constant size on screen)."""

    def __init__(self, editor: PolygonEditor, ring: int, index: int, x: float, y: float) -> None:
        super().__init__(QRectF(-HANDLE / 2, -HANDLE / 2, HANDLE, HANDLE))
        self.editor = editor
        self.ring = ring
        self.index = index
        self.setPos(x, y)
        self.setZValue(35)
        self.setBrush(QBrush(QColor(255, 255, 255)))
        pen = QPen(QColor(20, 20, 20), 1.2)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsMovable, True)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges, True)
        self.setCursor(Qt.CursorShape.SizeAllCursor)
        self.setToolTip("Drag to move this vertex")

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            self.editor.vertex_moved(self.ring, self.index, self.pos())
        return super().itemChange(change, value)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        self.editor.commit()


class PolygonEditor:
    """Shows the selected instance as polygons with draggable vertices."""

    def __init__(self, canvas: ImageCanvas, annotator: Annotator) -> None:
        self.canvas = canvas
        self.annotator = annotator
        self.instance_id: str | None = None
        # rings: list of (part index, is_hole, (N, 2) float array), pixel-corner frame
        self.rings: list[tuple[int, bool, np.ndarray]] = []
        self._handles: list[VertexHandle] = []
        self._outline = QGraphicsPathItem()
        pen = QPen(QColor(255, 255, 255), 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._outline.setPen(pen)
        self._outline.setZValue(34)
        self._moved = False
        self._rebuilding = False

    @property
    def active(self) -> bool:
        return self.instance_id is not None

    def start(self, instance_id: str) -> None:
        self.stop()
        if self.annotator.docs.instance(instance_id) is None:
            return
        self.instance_id = instance_id
        self.canvas.scene().addItem(self._outline)
        self.refresh()

    def stop(self) -> None:
        for handle in self._handles:
            self.canvas.scene().removeItem(handle)
        self._handles = []
        if self._outline.scene() is not None:
            self.canvas.scene().removeItem(self._outline)
        self.instance_id = None
        self.rings = []
        self._moved = False

    def refresh(self) -> None:
        """Rebuild the handles from the instance's current mask (after an edit, undo, redo)."""
        if self.instance_id is None:
            return
        if self.annotator.docs.instance(self.instance_id) is None:
            self.stop()
            return
        mask = self.annotator.docs.instance_mask(self.instance_id)
        geometry = mask_to_polygons(mask).geometry
        self.rings = []
        for part_index, part in enumerate(geometry.geoms):
            self.rings.append((part_index, False, np.asarray(part.exterior.coords)[:-1]))
            for hole in part.interiors:
                self.rings.append((part_index, True, np.asarray(hole.coords)[:-1]))
        self._rebuilding = True
        for handle in self._handles:
            self.canvas.scene().removeItem(handle)
        self._handles = []
        for ring_index, (_, _, points) in enumerate(self.rings):
            for index, (x, y) in enumerate(points):
                handle = VertexHandle(self, ring_index, index, float(x), float(y))
                self.canvas.scene().addItem(handle)
                self._handles.append(handle)
        self._rebuilding = False
        self._moved = False
        self._update_outline()

    def vertex_moved(self, ring: int, index: int, pos: QPointF) -> None:
        if self._rebuilding or not 0 <= ring < len(self.rings):
            return
        points = self.rings[ring][2]
        points[index] = (pos.x(), pos.y())
        self._moved = True
        self._update_outline()

    def geometry(self) -> MultiPolygon:
        """The edited polygons (repaired if a drag made them invalid)."""
        parts: dict[int, tuple[np.ndarray | None, list[np.ndarray]]] = {}
        for part_index, is_hole, points in self.rings:
            shell, holes = parts.get(part_index, (None, []))
            if is_hole:
                holes.append(points)
            else:
                shell = points
            parts[part_index] = (shell, holes)
        polygons = [
            Polygon(shell, holes)
            for shell, holes in parts.values()
            if shell is not None and len(shell) >= 3
        ]
        fixed, _dropped = repair(MultiPolygon(polygons))
        return fixed

    def commit(self) -> None:
        """A vertex was released: the mask becomes the rasterised polygons (one undo step)."""
        if not self._moved or self.instance_id is None:
            return
        self._moved = False
        mask = self.annotator.docs.instance_mask(self.instance_id)
        height, width = mask.shape
        new_mask = polygons_to_mask(self.geometry(), height, width)
        self.annotator.edit_instance_by_mask(self.instance_id, new_mask, "Move vertex")
        self.refresh()

    def _update_outline(self) -> None:
        path = QPainterPath()
        for _, _, points in self.rings:
            if len(points) < 2:
                continue
            path.moveTo(QPointF(*points[0]))
            for x, y in points[1:]:
                path.lineTo(QPointF(float(x), float(y)))
            path.closeSubpath()
        self._outline.setPath(path)
