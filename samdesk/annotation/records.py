"""The immutable records a :class:`~samdesk.annotation.document.Document` holds.

Records are frozen: a change to an image, an object or a category replaces its record, so the
record a mutation returns (or the one it replaced) is a complete snapshot an undo stack can keep.
Masks are kept as compressed COCO RLE strings (see :mod:`samdesk.annotation.rle`) and decoded only
when :meth:`InstanceRecord.mask` is called.
"""

from __future__ import annotations

import colorsys
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from samdesk.annotation import rle

NOT_STARTED = "not started"
IN_PROGRESS = "in progress"
DONE = "done"
STATUSES = (NOT_STARTED, IN_PROGRESS, DONE)

_COLOR = re.compile(r"#[0-9a-fA-F]{6}")

# Well-separated colours for the first categories (after Sasha Trubetskoy's list of 20), then
# golden-ratio hues.
_PALETTE = (
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#bfef45",
    "#ffe119",
    "#469990",
    "#dcbeff",
    "#9a6324",
    "#800000",
    "#aaffc3",
    "#808000",
    "#000075",
    "#fabed4",
    "#ffd8b1",
    "#a9a9a9",
    "#fffac8",
)


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string, e.g. ``2024-05-01T12:34:56.789+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def is_color(value: object) -> bool:
    return isinstance(value, str) and bool(_COLOR.fullmatch(value))


def is_label(value: object) -> bool:
    """A usable label: text that is not blank, has no surrounding spaces and can be written as
    UTF-8 (a lone surrogate from a ``\\udXXX`` escape in some JSON file cannot)."""
    if not isinstance(value, str) or not value or value != value.strip():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def next_color(used: Iterable[str]) -> str:
    """A colour (``#rrggbb``) distinct from ``used``: the palette first, then spread hues."""
    taken = {c.lower() for c in used}
    for color in _PALETTE:
        if color not in taken:
            return color
    index = len(taken)
    while True:
        hue = (index * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 0.95)
        color = f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
        if color not in taken:
            return color
        index += 1


@dataclass(frozen=True)
class Category:
    """A label: ``id`` (stable, 1-based), ``name`` (any Unicode text) and ``color`` (#rrggbb)."""

    id: int
    name: str
    color: str


@dataclass(frozen=True)
class ImageRecord:
    """One image of the project.

    ``path`` is absolute in memory (the project file stores it relative to its own folder when it
    can); ``width`` and ``height`` are the oriented size in pixels; ``sha256`` is the hex digest of
    the file's bytes when the image was added (None when it was added without reading the file);
    ``status`` is one of :data:`STATUSES`.
    """

    id: int
    path: Path
    width: int
    height: int
    sha256: str | None = None
    status: str = NOT_STARTED

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``, the shape of this image's masks."""
        return self.height, self.width


@dataclass(frozen=True)
class InstanceRecord:
    """One annotated object: a mask on one image with a label.

    ``rle`` is the compressed COCO RLE of the ``height x width`` mask (the image's size);
    ``area`` is its pixel count and ``bbox`` its tight box ``(x, y, w, h)`` in pixels (None when
    the mask is empty). ``score`` is the model's quality estimate if any. ``prompts`` is the
    JSON-able prompt data the mask came from (points, labels, box; x, y in original-image
    pixels), kept as given; treat it as read-only. ``created`` and ``modified`` are ISO 8601 UTC
    times.
    """

    id: int
    image_id: int
    label: str
    rle: str
    height: int
    width: int
    area: int
    bbox: tuple[int, int, int, int] | None
    score: float | None = None
    prompts: Any = None
    created: str = ""
    modified: str = ""
    #: The checked run lengths of ``rle`` (filled in by the Document; parsed on demand if not).
    runs: np.ndarray | None = field(default=None, compare=False, repr=False)

    def run_lengths(self) -> np.ndarray:
        """The checked run lengths of the mask (see :mod:`samdesk.annotation.rle`)."""
        if self.runs is not None:
            return self.runs
        return rle.counts_from_string(self.rle, self.height, self.width)

    def mask(self) -> np.ndarray:
        """The ``height x width`` bool mask (decoded now; not cached)."""
        return rle.paint(self.run_lengths(), self.height, self.width)

    def crop(self, pad: int = 0) -> tuple[np.ndarray, tuple[int, int]]:
        """The mask inside its box grown by ``pad`` (clipped to the image) and its top-left
        ``(x, y)``; cheaper than :meth:`mask` for a small object on a large image."""
        if self.bbox is None:
            return np.zeros((0, 0), dtype=bool), (0, 0)
        box = self.crop_box(pad)
        return rle.paint_crop(self.run_lengths(), self.height, self.width, box), box[:2]

    def crop_box(self, pad: int = 0) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` (exclusive ends) of the box grown by ``pad``, inside the image."""
        x, y, w, h = self.bbox or (0, 0, 0, 0)
        x0, y0 = max(0, x - pad), max(0, y - pad)
        return x0, y0, min(self.width, x + w + pad), min(self.height, y + h + pad)


def box_of(runs: np.ndarray, height: int) -> tuple[int, int, int, int] | None:
    """``(x, y, w, h)`` of a mask's foreground from its run lengths, None when empty."""
    corners = rle.bbox_of(runs, height)
    if corners is None:
        return None
    x0, y0, x1, y1 = corners
    return x0, y0, x1 - x0, y1 - y0
