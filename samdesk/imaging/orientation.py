"""EXIF orientation: mapping between the STORED frame (as the pixels lie in the file) and the
ORIENTED frame (as a viewer shows them, and as samdesk displays, segments and exports them).

Orientation values follow EXIF/TIFF tag 274 and match Pillow's ``ImageOps.exif_transpose``:
1 as stored, 2 mirrored left-right, 3 rotated 180, 4 mirrored top-bottom, 5 transposed (mirror
over the main diagonal), 6 rotated 90 clockwise, 7 transversed (mirror over the anti-diagonal),
8 rotated 90 counter-clockwise. Arrays are (H, W) or (H, W, C); only the first two axes move.
"""

from __future__ import annotations

import numpy as np

VALID = frozenset(range(1, 9))
SWAPS_AXES = frozenset({5, 6, 7, 8})


def oriented_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """(width, height) in the oriented frame of a stored ``width`` x ``height`` image."""
    return (height, width) if orientation in SWAPS_AXES else (width, height)


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """``array`` (stored frame, (H, W) or (H, W, C)) seen in the oriented frame (a view)."""
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return array.swapaxes(0, 1)
    if orientation == 6:
        return array[::-1].swapaxes(0, 1)
    if orientation == 7:
        return array[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return array[:, ::-1].swapaxes(0, 1)
    return array


def stored_box(
    box: tuple[int, int, int, int], width: int, height: int, orientation: int
) -> tuple[int, int, int, int]:
    """The stored-frame box holding the oriented-frame ``box`` = (x0, y0, x1, y1).

    ``width``/``height`` are the STORED size. Boxes are half-open pixel ranges [x0, x1) x [y0, y1).
    ``orient(stored[sy0:sy1, sx0:sx1], orientation)`` equals ``oriented[y0:y1, x0:x1]``."""
    x0, y0, x1, y1 = box
    if orientation == 2:
        return width - x1, y0, width - x0, y1
    if orientation == 3:
        return width - x1, height - y1, width - x0, height - y0
    if orientation == 4:
        return x0, height - y1, x1, height - y0
    if orientation == 5:
        return y0, x0, y1, x1
    if orientation == 6:
        return y0, height - x1, y1, height - x0
    if orientation == 7:
        return width - y1, height - x1, width - y0, height - x0
    if orientation == 8:
        return width - y1, x0, width - y0, x1
    return box
