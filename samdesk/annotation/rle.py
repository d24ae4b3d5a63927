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

from collections.abc import Sequence

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
    return counts_from_strings([counts], [(height, width)])[0]


def counts_from_strings(
    counts: Sequence[str], sizes: Sequence[tuple[int, int]]
) -> list[np.ndarray]:
    """:func:`counts_from_string` for many strings at once (one vectorised pass; a project's
    10,000 masks take a few tenths of a second). ``sizes`` are ``(height, width)`` pairs.

    A malformed string raises :class:`RleError` whose ``index`` attribute says which one.
    """
    parsed = _parse(counts, sizes)
    return parsed.split(parsed.runs)


def masks_from_strings(
    counts: Sequence[str], sizes: Sequence[tuple[int, int]]
) -> tuple[list[np.ndarray], list[int], list[tuple[int, int, int, int] | None]]:
    """Checked run lengths, areas and tight boxes ``(x0, y0, x1, y1)`` (exclusive ends; None
    for an empty mask) of many compressed RLE strings, all in one vectorised pass.

    The run lengths are read-only views into one shared array, ``int32`` when every mask has
    fewer than 2**31 pixels (the form :func:`compact` gives), else ``int64``.
    """
    parsed = _parse(counts, sizes)
    runs = parsed.runs
    if all(h * w < 2**31 for h, w in sizes):
        runs = runs.astype(np.int32)
    runs.setflags(write=False)
    areas, boxes = parsed.areas_and_boxes()
    return parsed.split(runs), areas, boxes


class _Parsed:
    """Run lengths of many masks stored one after another (``int64``): mask ``i`` has
    ``per_string[i]`` runs starting at ``first[i]``; ``k`` is each run's index in its mask."""

    def __init__(
        self,
        runs: np.ndarray,
        first: np.ndarray,
        per_string: np.ndarray,
        k: np.ndarray,
        heights: np.ndarray,
    ) -> None:
        self.runs, self.first, self.per_string, self.k = runs, first, per_string, k
        self.heights = heights

    def split(self, runs: np.ndarray) -> list[np.ndarray]:
        bounds = np.append(self.first, runs.size).tolist()
        return [runs[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]

    def areas_and_boxes(self) -> tuple[list[int], list[tuple[int, int, int, int] | None]]:
        """Per mask: foreground pixel count and ``(x0, y0, x1, y1)`` box (None when empty)."""
        count = self.first.size
        runs = self.runs
        ends = np.cumsum(runs)
        ends -= np.repeat(ends[self.first] - runs[self.first], self.per_string)
        foreground = np.flatnonzero(((self.k & 1) == 1) & (runs > 0))
        owner = np.repeat(np.arange(count), self.per_string)[foreground]
        height = self.heights[owner]
        stops = ends[foreground]
        begins = stops - runs[foreground]
        stops -= 1
        first_column, last_column = begins // height, stops // height
        # A run over several columns covers whole rows of the columns in between.
        spans = last_column > first_column
        top = np.where(spans, 0, begins - first_column * height)
        bottom = np.where(spans, height - 1, stops - last_column * height)
        boxes: list[tuple[int, int, int, int] | None] = [None] * count
        areas = np.zeros(count, dtype=np.int64)
        if not foreground.size:
            return areas.tolist(), boxes
        groups = np.flatnonzero(np.diff(owner, prepend=-1))  # each mask's first foreground run
        last = np.append(groups[1:], owner.size) - 1
        areas[owner[groups]] = np.add.reduceat(runs[foreground], groups)
        found = np.stack(
            (
                first_column[groups],
                np.minimum.reduceat(top, groups),
                last_column[last] + 1,
                np.maximum.reduceat(bottom, groups) + 1,
            ),
            axis=1,
        )
        for mask, box in zip(owner[groups].tolist(), found.tolist(), strict=True):
            boxes[mask] = tuple(box)
        return areas.tolist(), boxes


def _parse(counts: Sequence[str], sizes: Sequence[tuple[int, int]]) -> _Parsed:
    """Unpack and check many compressed strings (see :func:`counts_from_string`)."""
    if len(counts) != len(sizes):
        raise RleError(f"{len(counts)} RLE strings but {len(sizes)} sizes")
    for index, (text, (height, width)) in enumerate(zip(counts, sizes, strict=True)):
        if not isinstance(text, str) or not text.isascii():
            raise _at(index, "RLE counts string has characters outside the COCO alphabet")
        if height <= 0 or width <= 0:
            raise _at(index, f"mask size {height} x {width} has no pixels")
    lengths = np.fromiter((len(t) for t in counts), dtype=np.int64, count=len(counts))
    raw = np.frombuffer("".join(counts).encode("ascii"), dtype=np.uint8)
    string_end = np.cumsum(lengths)
    values = raw - np.uint8(48)  # below '0' wraps around to large values
    if values.size and values.max() > 63:
        raise _at(
            _owner(np.flatnonzero(values > 63)[0], string_end),
            "RLE counts string has characters outside the COCO alphabet ('0'..'o')",
        )
    more = (values & 0x20) != 0
    nonempty = np.flatnonzero(lengths)
    cut = nonempty[more[string_end[nonempty] - 1]]
    if cut.size:
        raise _at(int(cut[0]), "RLE counts string ends in the middle of a number")
    ends = np.flatnonzero(~more)
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    groups = ends - starts + 1
    longest = int(groups.max()) if groups.size else 0
    if longest > _MAX_GROUPS:
        raise _at(
            _owner(ends[np.argmax(groups)], string_end),
            "RLE counts string holds a number too large for any image",
        )
    # Each number is 5-bit groups, least significant first; add them group by group.
    low = values & 0x1F
    numbers = low[starts].astype(np.int64)
    for g in range(1, longest):
        has = np.flatnonzero(groups > g)
        numbers[has] += low[starts[has] + g].astype(np.int64) << (5 * g)
    negative = np.flatnonzero(values[ends] & 0x10)
    numbers[negative] -= np.left_shift(1, 5 * groups[negative])
    # Numbers per string, and each number's index k within its string.
    per_string = np.diff(np.searchsorted(ends, string_end), prepend=0)
    first = np.cumsum(per_string) - per_string
    base = np.repeat(first, per_string)
    k = np.arange(numbers.size) - base
    # Counts after the second are stored as differences to the count two places before
    # (pycocotools: ``if (m > 2) x += cnts[m - 2]``), i.e. running sums along every other
    # number. One cumulative sum per parity of the position in the whole array does all strings
    # at once; each string's run k then subtracts the sum up to where its own chain starts
    # (k = 1 for odd k, k = 2 for even k >= 2; k = 0 stands alone).
    summed = np.empty_like(numbers)
    summed[0::2] = np.cumsum(numbers[0::2])
    summed[1::2] = np.cumsum(numbers[1::2])
    chain = base + np.where(k & 1, 1, np.minimum(k, 2))
    runs = summed - summed[chain] + numbers[chain]
    expected = np.array([h * w for h, w in sizes], dtype=np.int64)
    negative_run = np.flatnonzero(runs < 0)
    if negative_run.size:
        raise _at(_string_of(negative_run[0], first, per_string), "RLE has a negative run length")
    totals = np.zeros(len(counts), dtype=np.int64)
    nonempty = np.flatnonzero(per_string)  # an empty string has no runs to start a sum at
    if nonempty.size:
        totals[nonempty] = np.add.reduceat(runs, first[nonempty])
    wrong = np.flatnonzero(totals != expected)
    if wrong.size:
        i = int(wrong[0])
        h, w = sizes[i]
        raise _at(i, f"RLE covers {totals[i]} pixels but the mask is {h} x {w} = {h * w}")
    # No run can be longer than its mask. Checking it also rules out sums that wrapped around
    # (int64, or pycocotools' uint32) and only seemed to add up.
    too_long = np.flatnonzero(runs > np.repeat(expected, per_string))
    if too_long.size:
        raise _at(
            _string_of(too_long[0], first, per_string),
            "RLE has a run longer than the whole mask",
        )
    heights = np.array([h for h, _ in sizes], dtype=np.int64)
    return _Parsed(runs, first, per_string, k, heights)


def _string_of(position: int, first: np.ndarray, per_string: np.ndarray) -> int:
    return int(np.searchsorted(first + per_string, position, side="right"))


def _owner(position: int, string_end: np.ndarray) -> int:
    return int(np.searchsorted(string_end, position, side="right"))


def _at(index: int, message: str) -> RleError:
    err = RleError(message)
    err.index = index  # type: ignore[attr-defined]
    return err


def _checked(runs: np.ndarray, height: int, width: int, index: int = 0) -> np.ndarray:
    if height < 0 or width < 0:
        raise _at(index, f"mask size {height} x {width} is negative")
    if runs.size and runs.min() < 0:
        raise _at(index, "RLE has a negative run length")
    total = int(runs.sum())
    if total != height * width:
        raise _at(
            index,
            f"RLE covers {total} pixels but the mask is {height} x {width} = {height * width}",
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
    return paint(counts_from_string(counts, height, width), height, width)


def compact(runs: np.ndarray, height: int, width: int) -> np.ndarray:
    """Run lengths in the smallest safe integer type (int32 below 2**31 pixels) for keeping."""
    return runs.astype(np.int32) if height * width < 2**31 else runs


def paint(runs: np.ndarray, height: int, width: int) -> np.ndarray:
    """The ``H x W`` ``bool`` mask of checked run lengths."""
    values = np.zeros(runs.size, dtype=bool)
    values[1::2] = True
    # Column-major runs: the transposed view is Fortran-ordered, which numpy handles as any array.
    return np.repeat(values, runs).reshape(width, height).T


def decode_crop(counts: str, height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """Only the pixels inside ``box`` of a compressed RLE string; see :func:`paint_crop`."""
    return paint_crop(counts_from_string(counts, height, width), height, width, box)


def paint_crop(
    runs: np.ndarray, height: int, width: int, box: tuple[int, int, int, int]
) -> np.ndarray:
    """Only the pixels inside ``box = (x0, y0, x1, y1)`` (exclusive ends) of checked run lengths.

    Returns a ``(y1 - y0) x (x1 - x0)`` ``bool`` array. Cheaper than :func:`paint` for a small
    object in a large image because only the columns ``x0 .. x1 - 1`` are expanded.
    """
    x0, y0, x1, y1 = box
    ends = np.cumsum(runs, dtype=np.int64)
    first, last = x0 * height, x1 * height
    lengths = np.diff(np.clip(ends, first, last), prepend=first)
    values = np.zeros(runs.size, dtype=bool)
    values[1::2] = True
    columns = np.repeat(values, lengths).reshape(x1 - x0, height)
    return np.ascontiguousarray(columns[:, y0:y1].T)


def paint_crops(
    runs: Sequence[np.ndarray], heights: Sequence[int], boxes: Sequence[tuple[int, int, int, int]]
) -> list[np.ndarray]:
    """:func:`paint_crop` for many masks at once (one vectorised pass over all their runs)."""
    if not runs:
        return []
    counts = np.array([r.size for r in runs], dtype=np.int64)
    every = np.concatenate(runs).astype(np.int64)
    starts = np.cumsum(counts) - counts
    ends = np.cumsum(every)
    ends -= np.repeat(ends[starts] - every[starts], counts)  # restart the sum per mask
    height = np.asarray(heights, dtype=np.int64)
    box = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    first, last = box[:, 0] * height, box[:, 2] * height
    clipped = np.clip(ends, np.repeat(first, counts), np.repeat(last, counts))
    lengths = np.diff(clipped, prepend=0)
    lengths[starts] = clipped[starts] - first
    values = (np.arange(every.size) - np.repeat(starts, counts)) % 2 == 1
    pixels = np.repeat(values, lengths)
    windows = np.split(pixels, np.cumsum(last - first)[:-1])
    return [
        np.ascontiguousarray(w.reshape(x1 - x0, h)[:, y0:y1].T)
        for w, h, (x0, y0, x1, y1) in zip(windows, heights, boxes, strict=True)
    ]


def area(counts: str, height: int, width: int) -> int:
    """Number of foreground pixels."""
    return area_of(counts_from_string(counts, height, width))


def area_of(runs: np.ndarray) -> int:
    return int(runs[1::2].sum(dtype=np.int64))


def bbox(counts: str, height: int, width: int) -> tuple[int, int, int, int] | None:
    """Tight box ``(x0, y0, x1, y1)`` (exclusive ends, pixels) of the foreground; None if empty."""
    return bbox_of(counts_from_string(counts, height, width), height)


def bbox_of(runs: np.ndarray, height: int) -> tuple[int, int, int, int] | None:
    """:func:`bbox` of checked run lengths."""
    ends = np.cumsum(runs, dtype=np.int64)
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
