"""What samdesk knows about an image: :class:`ImageInfo` (header only) and :class:`LoadedImage`.

Neither keeps a file handle open: they hold plain values and numpy arrays only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ImageInfo:
    """Facts read from an image's header, without decoding pixels.

    ``width`` and ``height`` are in the ORIENTED frame: the EXIF/TIFF orientation is already
    applied, so they are the size :func:`load_image` returns and annotations are drawn on.
    ``format`` is e.g. "PNG", "JPEG", "TIFF", "DICOM"; ``mode`` describes the stored samples,
    e.g. "RGB", "L", "I;16", "F", "RGBA", "P", "CMYK", "RGB;16" (16-bit colour PNG),
    "DICOM MONOCHROME1"; ``frames`` is > 1 for multi-page TIFFs, animations and multi-frame
    DICOMs. ``orientation`` is the EXIF orientation value (1..8) that maps the stored frame to
    the oriented one.
    """

    path: Path
    width: int
    height: int
    format: str
    mode: str
    frames: int = 1
    orientation: int = 1

    @property
    def pixels(self) -> int:
        """``width * height`` of one frame."""
        return self.width * self.height


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """One decoded frame of an image, ready for display and for the model.

    ``rgb``: (H, W, 3) uint8, C-contiguous, in the oriented frame; what the model gets and the
    app shows. ``raw``: the original sample values in the same oriented frame when they differ
    from ``rgb`` (16-bit, float, alpha or more than 3 channels, DICOM values after the modality
    LUT, e.g. Hounsfield units), shaped (H, W) or (H, W, C); else None. Both are writable arrays
    owning their memory, never views into a decoder's buffer. ``width``/``height`` equal
    ``rgb.shape[1]``/``rgb.shape[0]``. ``content_hash`` is the SHA-256 (hex) of the file bytes
    that were decoded. ``notes`` are human-readable facts about the conversion, e.g.
    "16-bit: display range 112..4012 (finite values)", "EXIF orientation 6 applied".
    ``value_range``: the (lo, hi) sample range stretched onto 0..255 for non-8-bit images (pass
    it to :func:`read_region` / :func:`thumbnail` so tiles match this image), else None.
    ``frame``/``frames``: which frame this is and how many the file holds.
    """

    path: Path
    rgb: np.ndarray
    raw: np.ndarray | None
    width: int
    height: int
    format: str
    mode: str
    content_hash: str
    notes: tuple[str, ...] = field(default=())
    frame: int = 0
    frames: int = 1
    value_range: tuple[float, float] | None = None
