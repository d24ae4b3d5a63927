"""Drawing masks over the image: a translucent fill plus an outline in the label's colour.

The GUI-thread work per mask is numpy on the mask's bounding-box crop only (no full-image
Python loops): the crop becomes a premultiplied ARGB32 QImage, and its contours (OpenCV) a
QPainterPath drawn with a cosmetic pen, so the outline stays 2 screen pixels wide at any zoom.
Scene coordinates are image pixels: pixel (x, y) covers the square [x, x+1) x [y, y+1).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from samdesk.ui.masks import bbox

#: Fill opacity of a mask overlay (0..1); the outline is opaque.
FILL_ALPHA = 0.40
OUTLINE_WIDTH = 2.0


def fill_pixels(crop: np.ndarray, rgb: tuple[int, int, int], alpha: float) -> np.ndarray:
    """Premultiplied ARGB32 pixels for a (h, w) bool crop: (h, w, 4) uint8 in B, G, R, A byte
    order (QImage.Format_ARGB32_Premultiplied on little-endian machines); 0 outside the mask."""
    a = round(255 * alpha)
    value = np.array([rgb[2] * a // 255, rgb[1] * a // 255, rgb[0] * a // 255, a], dtype=np.uint8)
    out = np.zeros((*crop.shape, 4), np.uint8)
    out[crop] = value
    return out


def outline_path(crop: np.ndarray, x0: int, y0: int) -> QPainterPath:
    """The outer and hole boundaries of a bool crop whose top-left pixel is (x0, y0), as a path
    through the centres of the boundary pixels, in scene (image-pixel) coordinates."""
    contours, _ = cv2.findContours(crop.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    path = QPainterPath()
    for contour in contours:
        pts = contour.reshape(-1, 2).astype(np.float64) + np.array([x0 + 0.5, y0 + 0.5])
        path.moveTo(QPointF(*pts[0]))
        for x, y in pts[1:]:
            path.lineTo(QPointF(x, y))
        path.closeSubpath()
    return path


class MaskItem(QGraphicsItem):
    """A mask drawn as a translucent fill plus an outline; cheap to update with a new mask.

    ``on_painted`` (if set) is called with ``time.perf_counter()`` after each paint: the latency
    benchmark uses it to time click -> overlay painted.
    """

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._pixels: np.ndarray | None = None  # keeps the QImage's buffer alive
        self._crop: np.ndarray | None = None
        self._path = QPainterPath()
        self._rect = QRectF()
        self._color = QColor(255, 200, 0)
        self._fill_alpha = FILL_ALPHA
        #: draw the outline as white over a dark halo (the object being segmented) instead of
        #: in the label's colour (accepted objects), so it stands out on any image
        self.highlight = False
        self.on_painted: Callable[[float], None] | None = None
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, False)

    @property
    def empty(self) -> bool:
        return self._image is None

    def set_mask(
        self,
        mask: np.ndarray | None,
        color: tuple[int, int, int],
        *,
        fill_alpha: float = FILL_ALPHA,
        box: tuple[int, int, int, int] | None = None,
    ) -> None:
        """Show ``mask`` ((H, W) bool, image frame) in ``color`` (r, g, b); None or an empty mask
        clears it. ``box`` (y0, x0, y1, x1) may be passed when the caller knows it."""
        if mask is not None and box is None:
            box = bbox(mask)
        if mask is None or box is None:
            self.set_crop(None, 0, 0, color, fill_alpha=fill_alpha)
            return
        y0, x0, y1, x1 = box
        self.set_crop(mask[y0:y1, x0:x1], x0, y0, color, fill_alpha=fill_alpha)

    def set_crop(
        self,
        crop: np.ndarray | None,
        x0: int,
        y0: int,
        color: tuple[int, int, int],
        *,
        fill_alpha: float = FILL_ALPHA,
    ) -> None:
        """Show a (h, w) bool crop whose top-left pixel is image pixel (x0, y0)."""
        self.prepareGeometryChange()
        self._color = QColor(*color)
        self._fill_alpha = fill_alpha
        if crop is None or not crop.any():
            self._crop = None
            self._image, self._pixels, self._path, self._rect = None, None, QPainterPath(), QRectF()
            self.update()
            return
        crop = np.ascontiguousarray(crop, dtype=bool)
        pixels = fill_pixels(crop, color, fill_alpha)
        h, w = crop.shape
        self._crop = crop
        self._pixels = pixels
        self._image = QImage(pixels.data, w, h, w * 4, QImage.Format.Format_ARGB32_Premultiplied)
        self._path = outline_path(crop, x0, y0)
        self._rect = QRectF(x0, y0, w, h)
        self.update()

    def set_color(self, color: tuple[int, int, int]) -> None:
        """Recolour the mask shown (after a relabel)."""
        x0, y0 = int(self._rect.x()), int(self._rect.y())
        self.set_crop(self._crop, x0, y0, color, fill_alpha=self._fill_alpha)

    def boundingRect(self) -> QRectF:
        # one pixel of slack each side for the outline's pen
        return self._rect.adjusted(-1, -1, 1, 1)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self._image is not None:
            painter.drawImage(self._rect.topLeft(), self._image)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            pens = (
                [(QColor(0, 0, 0, 170), OUTLINE_WIDTH + 2), (QColor(255, 255, 255), OUTLINE_WIDTH)]
                if self.highlight
                else [(self._color, OUTLINE_WIDTH)]
            )
            for color, width in pens:
                pen = QPen(color, width)
                pen.setCosmetic(True)
                painter.setPen(pen)
                painter.drawPath(self._path)
        if self.on_painted is not None:
            self.on_painted(time.perf_counter())
