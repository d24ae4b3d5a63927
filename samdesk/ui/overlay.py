"""Drawing masks over the image: a translucent fill plus an outline in the label's colour.

The GUI-thread work per mask is numpy on the mask's bounding-box crop only (no full-image
Python loops): the crop becomes a premultiplied ARGB32 QImage, and its contours (OpenCV) a
QPainterPath drawn with a cosmetic pen, so the outline stays 2 screen pixels wide at any zoom.
Scene coordinates are image pixels: pixel (x, y) covers the square [x, x+1) x [y, y+1).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

import cv2
import numpy as np
from PySide6.QtCore import QByteArray, QDataStream, QIODevice, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from samdesk.ui.masks import bbox

#: Fill opacity of a mask overlay (0..1); the outline is opaque.
FILL_ALPHA = 0.40
OUTLINE_WIDTH = 2.0


#: Outlines with more points than this are not drawn (a speckled mask from a poor model would
#: make every repaint slow); the fill still shows every pixel.
MAX_OUTLINE_POINTS = 20_000
#: Above this many points the outline is drawn with 1-px pens and no halo: Qt's raster engine
#: draws 1-px cosmetic lines ~20x faster than wide ones (2.4 ms vs 112 ms for 21k points).
THIN_OUTLINE_POINTS = 3_000
#: Contours enclosing less than this (square pixels) are left out of the outline only.
MIN_OUTLINE_AREA = 2.0


def fill_pixels(crop: np.ndarray, rgb: tuple[int, int, int], alpha: float) -> np.ndarray:
    """Premultiplied ARGB32 pixels for a (h, w) bool crop: (h, w) uint32, each pixel
    0xAARRGGBB (QImage.Format_ARGB32_Premultiplied), 0 outside the mask."""
    a = round(255 * alpha)
    r, g, b = (channel * a // 255 for channel in rgb)
    value = np.uint32((a << 24) | (r << 16) | (g << 8) | b)
    return np.where(crop, value, np.uint32(0))


def outline_path(crop: np.ndarray, x0: int, y0: int) -> QPainterPath:
    """The outer and hole boundaries of a bool crop whose top-left pixel is (x0, y0), as a path
    through the centres of the boundary pixels, in scene (image-pixel) coordinates.

    The path is built in one go from a numpy buffer in QPainterPath's QDataStream format
    (element type, x, y per point), not point by point in Python. Empty when the outline would
    have more than MAX_OUTLINE_POINTS points.
    """
    # A cheap count of the pixel edges on the boundary first: tracing a speckled mask's
    # contours alone would take hundreds of milliseconds.
    edges = np.count_nonzero(crop[1:] != crop[:-1]) + np.count_nonzero(crop[:, 1:] != crop[:, :-1])
    if edges > 4 * MAX_OUTLINE_POINTS:
        return QPainterPath()
    contours, _ = cv2.findContours(crop.view(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    rings = [c.reshape(-1, 2) for c in contours]
    rings = [r for r in rings if len(r) >= 4 or abs(cv2.contourArea(r)) >= MIN_OUTLINE_AREA]
    total = sum(len(r) + 1 for r in rings)
    if not rings or total > MAX_OUTLINE_POINTS:
        return QPainterPath()
    points = np.concatenate([np.vstack([r, r[:1]]) for r in rings]).astype(np.float64)
    kinds = np.ones(total, dtype=np.int32)  # 1 = LineToElement
    starts = np.cumsum([0] + [len(r) + 1 for r in rings[:-1]])
    kinds[starts] = 0  # 0 = MoveToElement
    return _path_from_arrays(points[:, 0] + x0 + 0.5, points[:, 1] + y0 + 0.5, kinds)


def _path_from_arrays(xs: np.ndarray, ys: np.ndarray, kinds: np.ndarray) -> QPainterPath:
    """A QPainterPath read from the serialisation Qt writes: int32 count, then per element
    int32 type + float64 x + float64 y (big-endian), then int32 cStart and int32 fill rule."""
    count = len(xs)
    buffer = bytearray(4 + 20 * count + 8)
    struct.pack_into(">i", buffer, 0, count)
    elements = np.frombuffer(
        buffer, dtype=[("type", ">i4"), ("x", ">f8"), ("y", ">f8")], count=count, offset=4
    )
    elements["type"] = kinds
    elements["x"] = xs
    elements["y"] = ys
    struct.pack_into(">ii", buffer, 4 + 20 * count, 0, 0)  # cStart 0, Qt::OddEvenFill
    data = QByteArray(bytes(buffer))  # must outlive the stream reading it
    stream = QDataStream(data, QIODevice.OpenModeFlag.ReadOnly)
    path = QPainterPath()
    stream >> path
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
        self._source: np.ndarray | None = None  # the full mask last shown, to skip repeats
        self._rgb: tuple[int, ...] = ()
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
        unchanged = tuple(color) == self._rgb and fill_alpha == self._fill_alpha
        if mask is not None and mask is self._source and unchanged:
            return  # the very same array again (e.g. while a new prompt is answered)
        if mask is not None and box is None:
            box = bbox(mask)
        if mask is None or box is None:
            self.set_crop(None, 0, 0, color, fill_alpha=fill_alpha)
        else:
            y0, x0, y1, x1 = box
            self.set_crop(mask[y0:y1, x0:x1], x0, y0, color, fill_alpha=fill_alpha)
        self._source = mask

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
        self._source = None
        self._rgb = tuple(color)
        self._color = QColor(*color)
        self._fill_alpha = fill_alpha
        if crop is None or not crop.any():
            self._image, self._pixels, self._path, self._rect = None, None, QPainterPath(), QRectF()
            self.update()
            return
        crop = np.ascontiguousarray(crop, dtype=bool)
        pixels = fill_pixels(crop, color, fill_alpha)
        h, w = crop.shape
        self._pixels = pixels
        self._image = QImage(pixels.data, w, h, w * 4, QImage.Format.Format_ARGB32_Premultiplied)
        self._path = outline_path(crop, x0, y0)
        self._rect = QRectF(x0, y0, w, h)
        self.update()

    def boundingRect(self) -> QRectF:
        # one pixel of slack each side for the outline's pen
        return self._rect.adjusted(-1, -1, 1, 1)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self._image is not None:
            # nearest-neighbour fill: 2-3x cheaper than smooth scaling when zoomed out, and the
            # vector outline carries the edge anyway
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            painter.drawImage(self._rect.topLeft(), self._image)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            # a dark halo under every outline keeps it visible on bright and dark images
            top = QColor(255, 255, 255) if self.highlight else self._color
            if self._path.elementCount() > THIN_OUTLINE_POINTS:
                pens = [(top, 1.0)]  # a complicated outline: the fast 1-px pen only
            else:
                pens = [(QColor(0, 0, 0, 150), OUTLINE_WIDTH + 2), (top, OUTLINE_WIDTH)]
            for color, width in pens:
                pen = QPen(color, width)
                pen.setCosmetic(True)
                painter.setPen(pen)
                painter.drawPath(self._path)
        if self.on_painted is not None:
            self.on_painted(time.perf_counter())
