"""Reading part of a TIFF page strip by strip or tile by tile (tifffile's ``TiffPage.decode``).

Only the segments (strips or tiles) that intersect the requested box are read and decoded, one
at a time, so a region of a 400 MP tiled or striped TIFF costs memory for the region plus one
segment. With ``step`` > 1 only every step-th row and column is kept (thumbnails).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from samdesk.errors import TruncatedImageError
from samdesk.imaging.errors import TooManyPixelsError
from samdesk.imaging.tiff_reader import TIFF_ERRORS, decode_error, needs_codec

if TYPE_CHECKING:
    from tifffile import TiffPage


class CodecUnavailable(Exception):
    """tifffile cannot decode this page's compression; the caller falls back to Pillow."""


@dataclass(frozen=True)
class Grid:
    """Segment layout of a page: each segment is ``height`` x ``width`` pixels (edge segments
    are padded in the file), ``rows`` x ``columns`` of them per plane, ``planes`` planes (one per
    sample when planar-separate, else 1) and ``samples`` samples per pixel."""

    height: int
    width: int
    rows: int
    columns: int
    planes: int
    samples: int


def grid_of(page: TiffPage) -> Grid | None:
    """The segment grid of ``page``, or None for layouts this module does not handle
    (volumetric tiles)."""
    if page.imagedepth != 1 or page.tiledepth not in (0, 1):
        return None
    height, width = int(page.chunks[0]), int(page.chunks[1])
    if height <= 0 or width <= 0:
        return None
    samples = int(page.samplesperpixel)
    planes = samples if int(page.planarconfig) == 2 and samples > 1 else 1
    rows = math.ceil(page.imagelength / height)
    columns = math.ceil(page.imagewidth / width)
    if rows * columns * planes != len(page.dataoffsets):
        return None
    return Grid(height, width, rows, columns, planes, samples)


def read_box(
    fh: BinaryIO,
    path: Path,
    page: TiffPage,
    grid: Grid,
    box: tuple[int, int, int, int],
    *,
    step: int = 1,
    limit: int,
) -> np.ndarray:
    """Samples of the STORED-frame ``box`` = (x0, y0, x1, y1), keeping rows and columns
    ``x0, x0 + step, ...``; (h, w) or (h, w, S) in the page's dtype. The pixels of all segments
    that must be decoded are checked against ``limit`` first."""
    x0, y0, x1, y1 = box
    first_row, last_row = y0 // grid.height, (y1 - 1) // grid.height
    first_col, last_col = x0 // grid.width, (x1 - 1) // grid.width
    spatial = [
        (row, col)
        for row in range(first_row, last_row + 1)
        for col in range(first_col, last_col + 1)
    ]
    # whole segments are decoded, not only the box (their padding past the image edge aside)
    covered_w = min((last_col + 1) * grid.width, page.imagewidth) - first_col * grid.width
    covered_h = min((last_row + 1) * grid.height, page.imagelength) - first_row * grid.height
    if covered_w * covered_h > limit:
        raise TooManyPixelsError(
            path, covered_w, covered_h, covered_w * covered_h, limit, subject="the region"
        )
    out_h, out_w = len(range(y0, y1, step)), len(range(x0, x1, step))
    out = np.zeros((out_h, out_w, grid.samples), dtype=page.dtype)
    size = os.fstat(fh.fileno()).st_size
    for plane in range(grid.planes):
        for row, col in spatial:
            index = (plane * grid.rows + row) * grid.columns + col
            segment = _decode_segment(fh, path, page, index, size)
            _place(out, segment, row * grid.height, col * grid.width, plane, grid, box, step)
    return out[:, :, 0] if grid.samples == 1 else out


def _decode_segment(fh: BinaryIO, path: Path, page: TiffPage, index: int, size: int) -> np.ndarray:
    """Segment ``index`` as (h, w, c) (c = samples when contiguous, else 1)."""
    offset, count = int(page.dataoffsets[index]), int(page.databytecounts[index])
    if count and offset + count > size:
        raise TruncatedImageError(
            f"{path.name}: the TIFF file is truncated: segment {index} should end at byte "
            f"{offset + count:,} but the file has {size:,} bytes. Copy it again from its "
            "source; samdesk never fills in missing pixels."
        )
    fh.seek(offset)
    data = fh.read(count) if count else None
    try:
        segment, _indices, _shape = page.decode(data, index, jpegtables=page.jpegtables)
    except TIFF_ERRORS as exc:
        if needs_codec(exc):
            raise CodecUnavailable(str(exc)) from None
        raise decode_error(path, exc) from None
    if segment is None:  # an empty segment (byte count 0): tifffile's fill value, as asarray
        segment = np.zeros((1, *page.chunks[:2], 1), page.dtype)
    return segment.reshape(segment.shape[-3:])


def _place(
    out: np.ndarray,
    segment: np.ndarray,
    top: int,
    left: int,
    plane: int,
    grid: Grid,
    box: tuple[int, int, int, int],
    step: int,
) -> None:
    """Copy the part of ``segment`` (stored pixels from ``top``, ``left``) inside ``box`` and on
    the ``step`` lattice into ``out``."""
    x0, y0, x1, y1 = box
    seg_h, seg_w = segment.shape[:2]
    # first lattice row/column at or after the segment start (and the box start)
    row_start = max(y0, top)
    row_start += (-(row_start - y0)) % step
    col_start = max(x0, left)
    col_start += (-(col_start - x0)) % step
    row_stop, col_stop = min(y1, top + seg_h), min(x1, left + seg_w)
    if row_start >= row_stop or col_start >= col_stop:
        return
    rows = slice(row_start - top, row_stop - top, step)
    source = segment[rows, col_start - left : col_stop - left : step]
    out_row, out_col = (row_start - y0) // step, (col_start - x0) // step
    channels = slice(plane, plane + 1) if grid.planes > 1 else slice(None)
    out[out_row : out_row + source.shape[0], out_col : out_col + source.shape[1], channels] = source
