"""Masks as COCO run-length encodings (RLE), the form samdesk stores them in.

A mask is an ``H x W`` ``bool`` array (row ``y``, column ``x``). Its RLE runs over the pixels in
column-major order (down the first column, then the next), alternating background and foreground
run lengths and starting with background; the *compressed* form packs those numbers into an ASCII
string exactly as pycocotools does, so a string from here is a valid COCO ``counts`` value.

pycocotools' C decoder trusts its input: counts that add up to more than ``H * W`` make it write
past the end of its buffer. Every string that did not come from :func:`encode` is therefore
checked by :func:`counts_from_string` (a numpy re-implementation of the same packing) before any
pixel is written, and decoding here is done with numpy, which is also faster than pycocotools'
for the sizes samdesk handles.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask

from samdesk.errors import InputError

#: Longest number of 5-bit groups one count may use (enough for any image up to 2**60 pixels).
_MAX_GROUPS = 12


class RleError(InputError):
    """An RLE string or count list is malformed or does not match the image size."""


def encode(mask: np.ndarray) -> str:
    """Compressed COCO RLE of an ``H x W`` mask (any dtype; non-zero is foreground)."""
    if mask.ndim != 2:
        raise RleError(f"a mask must be a 2-D array (height x width), got shape {mask.shape}")
    fortran = np.asfortranarray(mask, dtype=np.uint8)
    if mask.dtype != np.uint8 and mask.dtype != np.bool_:
        fortran = np.asfortranarray(mask != 0, dtype=np.uint8)
    return coco_mask.encode(fortran)["counts"].decode("ascii")


def counts_from_string(counts: str, height: int, width: int) -> np.ndarray:
    """Unpack a compressed RLE string into run lengths (``int64``), checking it fully.

    Raises :class:`RleError` when a character is outside the alphabet, a number is cut off, a
    run length is negative, or the runs do not cover exactly ``height * width`` pixels.
    """
    if not counts.isascii():
        raise RleError("RLE counts string has characters outside the COCO alphabet ('0'..'o')")
    raw = np.frombuffer(counts.encode("ascii"), dtype=np.uint8)
    if raw.size == 0:
        return _checked(np.zeros(0, dtype=np.int64), height, width)
    values = raw.astype(np.int64) - 48
    if values.min() < 0 or values.max() > 63:
        raise RleError("RLE counts string has characters outside the COCO alphabet ('0'..'o')")
    more = (values & 0x20) != 0
    if more[-1]:
        raise RleError("RLE counts string ends in the middle of a number")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    group_count = ends - starts + 1
    if group_count.max() > _MAX_GROUPS:
        raise RleError("RLE counts string holds a number too large for any image")
    position = np.arange(values.size) - np.repeat(starts, group_count)
    numbers = np.add.reduceat((values & 0x1F) << (5 * position), starts)
    negative = (values[ends] & 0x10) != 0
    numbers[negative] -= np.left_shift(1, 5 * group_count[negative])
    # Counts after the second are stored as differences to the count two places before.
    runs = numbers.copy()
    runs[1::2] = np.cumsum(numbers[1::2])
    runs[2::2] = np.cumsum(numbers[2::2])
    return _checked(runs, height, width)


def _checked(runs: np.ndarray, height: int, width: int) -> np.ndarray:
    if height < 0 or width < 0:
        raise RleError(f"mask size {height} x {width} is negative")
    if runs.size and runs.min() < 0:
        raise RleError("RLE has a negative run length")
    total = int(runs.sum())
    if total != height * width:
        raise RleError(
            f"RLE covers {total} pixels but the mask is {height} x {width} = {height * width}"
        )
    return runs


def counts_to_string(runs: np.ndarray | list[int], height: int, width: int) -> str:
    """Compress run lengths (uncompressed COCO ``counts``) into the COCO string form."""
    checked = _checked(np.asarray(runs, dtype=np.int64).reshape(-1), height, width)
    rle = coco_mask.frPyObjects(
        {"counts": checked.tolist(), "size": [height, width]}, height, width
    )
    return rle["counts"].decode("ascii")


def decode(counts: str, height: int, width: int) -> np.ndarray:
    """The ``H x W`` ``bool`` mask of a compressed RLE string (checked first)."""
    runs = counts_from_string(counts, height, width)
    return _paint(runs, height, width)


def _paint(runs: np.ndarray, height: int, width: int) -> np.ndarray:
    values = np.zeros(runs.size, dtype=bool)
    values[1::2] = True
    # Column-major runs: the transposed view is Fortran-ordered, which numpy handles as any array.
    return np.repeat(values, runs).reshape(width, height).T


def decode_crop(counts: str, height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """Only the pixels inside ``box = (x0, y0, x1, y1)`` (exclusive ends) of a compressed RLE.

    Returns a ``(y1 - y0) x (x1 - x0)`` ``bool`` array. Cheaper than :func:`decode` for a small
    object in a large image because only the columns ``x0 .. x1 - 1`` are expanded.
    """
    x0, y0, x1, y1 = box
    runs = counts_from_string(counts, height, width)
    ends = np.cumsum(runs)
    first, last = x0 * height, x1 * height
    clipped = np.clip(ends, first, last)
    lengths = np.diff(clipped, prepend=first)
    values = np.zeros(runs.size, dtype=bool)
    values[1::2] = True
    columns = np.repeat(values, lengths).reshape(x1 - x0, height)
    return np.ascontiguousarray(columns[:, y0:y1].T)


def area(counts: str, height: int, width: int) -> int:
    """Number of foreground pixels."""
    return int(counts_from_string(counts, height, width)[1::2].sum())


def bbox(counts: str, height: int, width: int) -> tuple[int, int, int, int] | None:
    """Tight box ``(x0, y0, x1, y1)`` (exclusive ends, pixels) of the foreground; None if empty."""
    runs = counts_from_string(counts, height, width)
    ends = np.cumsum(runs)
    begins = (ends - runs)[1::2]
    stops = ends[1::2]
    keep = stops > begins
    if not keep.any():
        return None
    begins, stops = begins[keep], stops[keep] - 1
    x0 = int(begins.min() // height)
    x1 = int(stops.max() // height) + 1
    # A run may span several columns; then it covers whole rows of the columns in between.
    spans = (stops // height) > (begins // height)
    y_first = np.where(spans, 0, begins % height)
    y_last = np.where(spans, height - 1, stops % height)
    return x0, int(y_first.min()), x1, int(y_last.max()) + 1


def iou(counts_a: str, counts_b: str, height: int, width: int) -> float:
    """Intersection over union of two compressed RLEs of the same size (1.0 when both empty)."""
    a = {"size": [height, width], "counts": counts_a.encode("ascii")}
    b = {"size": [height, width], "counts": counts_b.encode("ascii")}
    union = coco_mask.area(coco_mask.merge([a, b], intersect=False))
    if union == 0:
        return 1.0
    return float(coco_mask.iou([a], [b], [0])[0][0])
