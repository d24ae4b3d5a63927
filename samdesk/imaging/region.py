"""Part of an image, or a small overview of it, without decoding more than the format requires.

What is efficient (decodes only what is needed) and what is not:

- TIFF, tiled or striped, uncompressed/deflate/LZMA (any codec with ``imagecodecs``): only the
  strips/tiles intersecting the region are decoded, one at a time; a thumbnail streams every
  segment and keeps every step-th pixel, so memory stays at the thumbnail plus one segment.
- JPEG thumbnails: Pillow's draft mode decodes at 1/2, 1/4 or 1/8 scale in the DCT.
- Everything else (PNG, BMP, WebP, GIF, PNM, DICOM, JPEG regions, TIFF codecs only Pillow has):
  the whole frame is decoded, then cropped or resized.

``max_pixels`` caps the pixels DECODED by the call (whole segments for TIFF, the whole frame
otherwise), as in :func:`~samdesk.imaging.load_image`. Boxes are in the ORIENTED frame
(x, y in the pixels :func:`~samdesk.imaging.load_image` returns), half-open: columns
x0..x1-1, rows y0..y1-1.
"""

from __future__ import annotations

import math
import operator
import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from PIL import Image

from samdesk.errors import InputError
from samdesk.imaging import loader, tiff_reader, tiff_segments
from samdesk.imaging.decoded import Decoded, Header
from samdesk.imaging.errors import decoder_errors
from samdesk.imaging.files import open_image_file, sniff_format
from samdesk.imaging.limits import resolve_max_pixels
from samdesk.imaging.orientation import oriented_size, stored_box
from samdesk.imaging.pillow_reader import check_frame

if TYPE_CHECKING:
    from tifffile import TiffFile, TiffPage

Box = tuple[int, int, int, int]


def read_region(
    path: str | os.PathLike[str],
    x0: int,
    y0: int,
    x1: int,
    y1: int,
    *,
    max_pixels: int | None = None,
    frame: int = 0,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """RGB uint8 (y1 - y0, x1 - x0, 3), C-contiguous, of the oriented-frame box.

    Equal to ``load_image(path).rgb[y0:y1, x0:x1]`` for 8-bit images; for other dtypes pass
    ``value_range`` (e.g. ``LoadedImage.value_range`` or that of a thumbnail) so the stretch
    matches, else the region's own finite min..max is used. Raises InputError for a box outside
    the image or empty."""
    path = Path(path)
    limit = resolve_max_pixels(max_pixels)
    with open_image_file(path) as fh, decoder_errors(path):
        fmt = sniff_format(fh, path)
        decoded = None
        if fmt == "TIFF" and tiff_reader.available():
            decoded = _tiff_region(fh, path, (x0, y0, x1, y1), frame, limit)
        if decoded is None:
            whole = loader.decode(fh, path, frame=frame, limit=limit)
            decoded = _crop(whole, _stored(whole.header, (x0, y0, x1, y1), path))
    return loader.render(decoded, value_range).rgb


def thumbnail(
    path: str | os.PathLike[str],
    max_side: int,
    *,
    max_pixels: int | None = None,
    frame: int = 0,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """RGB uint8 (h, w, 3) overview in the oriented frame, its longer side ``max_side`` (never
    enlarged: a smaller image comes back at its own size), aspect ratio kept
    (``w = round(W * max_side / max(W, H))``). Resized with Pillow's Lanczos filter."""
    max_side = _whole(max_side, "max_side")
    if max_side < 1:
        raise InputError(f"max_side must be at least 1, not {max_side}")
    path = Path(path)
    limit = resolve_max_pixels(max_pixels)
    with open_image_file(path) as fh, decoder_errors(path):
        header = loader.read_header(fh, path)
        width, height = oriented_size(header.width, header.height, header.orientation)
        scale = min(1.0, max_side / max(width, height))
        target = (max(1, round(width * scale)), max(1, round(height * scale)))
        decoded = None
        if header.format == "TIFF" and tiff_reader.available() and scale < 0.5:
            step = max(1, math.floor(1 / scale))
            decoded = _tiff_stream(fh, path, frame, limit, step)
        if decoded is None:
            draft = (
                (math.ceil(header.width * scale), math.ceil(header.height * scale))
                if header.format == "JPEG"
                else None
            )
            decoded = loader.decode(fh, path, frame=frame, limit=limit, draft_size=draft)
    rgb = loader.render(decoded, value_range).rgb
    if (rgb.shape[1], rgb.shape[0]) == target:
        return rgb
    resized = Image.fromarray(rgb).resize(target, Image.Resampling.LANCZOS)
    return np.array(resized)  # a writable copy; Pillow's buffer is read-only


def _tiff_region(fh: BinaryIO, path: Path, box: Box, frame: int, limit: int) -> Decoded | None:
    """Decode only the segments under ``box``; None when the page needs the whole-page path."""
    with tiff_reader.open_tiff(fh, path) as tif:
        page, header = _page(tif, path, frame)
        grid = tiff_segments.grid_of(page)
        target = _stored(header, box, path)
        if grid is None:
            return None
        try:
            samples = tiff_segments.read_box(fh, path, page, grid, target, limit=limit)
        except tiff_segments.CodecUnavailable:
            return None
        return tiff_reader.photometric_rules(page, samples, header, list(header.notes))


def _tiff_stream(fh: BinaryIO, path: Path, frame: int, limit: int, step: int) -> Decoded | None:
    """Every ``step``-th row and column of the page, decoded segment by segment."""
    with tiff_reader.open_tiff(fh, path) as tif:
        page, header = _page(tif, path, frame)
        grid = tiff_segments.grid_of(page)
        if grid is None:
            return None
        whole = (0, 0, header.width, header.height)
        try:
            samples = tiff_segments.read_box(fh, path, page, grid, whole, step=step, limit=limit)
        except tiff_segments.CodecUnavailable:
            return None
        notes = [*header.notes, f"thumbnail from every {step}th pixel"]
        return tiff_reader.photometric_rules(page, samples, header, notes)


def _page(tif: TiffFile, path: Path, frame: int) -> tuple[TiffPage, Header]:
    check_frame(path, frame, len(tif.pages))
    page = tif.pages[frame] if frame else tif.pages.first
    return page, tiff_reader.page_header(tif, page, path)


def _stored(header: Header, box: Box, path: Path) -> Box:
    """Validate the oriented-frame ``box`` and map it to the stored frame."""
    names = ("x0", "y0", "x1", "y1")
    x0, y0, x1, y1 = (_whole(value, name) for value, name in zip(box, names, strict=True))
    width, height = oriented_size(header.width, header.height, header.orientation)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise InputError(
            f"{path.name}: the region x {x0}..{x1}, y {y0}..{y1} is empty or outside the image, "
            f"which is {width} x {height} pixels (x from 0 to {width}, y from 0 to {height})."
        )
    return stored_box((x0, y0, x1, y1), header.width, header.height, header.orientation)


def _crop(decoded: Decoded, box: Box) -> Decoded:
    x0, y0, x1, y1 = box
    display = None if decoded.display is None else decoded.display[y0:y1, x0:x1]
    return Decoded(
        decoded.header,
        decoded.samples[y0:y1, x0:x1],
        alpha=decoded.alpha,
        invert=decoded.invert,
        display=display,
        notes=decoded.notes,
    )


def _whole(value: object, name: str) -> int:
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(f"{name} must be a whole number of pixels, not {value!r}") from None
