"""Internal results the format readers hand to the loader (stored frame, before orientation)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Header:
    """What a reader learns from the header: the STORED size (before orientation), the mode
    string reported in :class:`~samdesk.imaging.info.ImageInfo`, frame count and orientation."""

    format: str
    width: int
    height: int
    mode: str
    frames: int = 1
    orientation: int = 1
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decoded:
    """Decoded samples of one frame in the STORED frame: (H, W) or (H, W, C), any dtype.

    ``alpha``: the last channel is opacity. ``invert``: the samples are min-is-white (TIFF
    photometric 0), so the display is inverted after stretching. ``display``: an already
    computed (H, W) or (H, W, 3) uint8 display image (DICOM windowing) that replaces the generic
    stretch; ``samples`` then become ``raw``."""

    header: Header
    samples: np.ndarray
    alpha: bool = False
    invert: bool = False
    display: np.ndarray | None = None
    notes: tuple[str, ...] = field(default=())
