"""COCO RLE strings: identical to pycocotools, and every malformed string refused before use."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from samdesk.annotation import rle
from tests.support import masks


def _random_masks(count: int, seed: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for n in range(count):
        height, width = (int(v) for v in rng.integers(1, 70, 2))
        mask = rng.random((height, width)) < rng.random()
        if n % 5 == 0:
            mask[:] = n % 10 == 0
        out.append(mask)
    return out


def test_encode_matches_pycocotools_and_decodes_back() -> None:
    for mask in [*_random_masks(150), *masks.varied().values()]:
        counts = rle.encode(mask)
        reference = coco_mask.encode(np.asfortranarray(mask, dtype=np.uint8))["counts"]
        assert counts == reference.decode("ascii")
        assert np.array_equal(rle.decode(counts, *mask.shape), mask)
        assert rle.area(counts, *mask.shape) == mask.sum()


def test_batch_parse_equals_one_by_one() -> None:
    items = _random_masks(200, seed=5)
    strings = [rle.encode(m) for m in items]
    runs = rle.counts_from_strings(strings, [m.shape for m in items])
    for mask, counts, parsed in zip(items, strings, runs, strict=True):
        assert np.array_equal(parsed, rle.counts_from_string(counts, *mask.shape))
        assert np.array_equal(rle.paint(parsed, *mask.shape), mask)


def test_bbox_and_crops() -> None:
    rng = np.random.default_rng(9)
    items = _random_masks(120, seed=9)
    boxes, runs = [], []
    for mask in items:
        counts = rle.encode(mask)
        ys, xs = np.nonzero(mask)
        box = rle.bbox(counts, *mask.shape)
        if xs.size:
            assert box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        else:
            assert box is None
        height, width = mask.shape
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = int(rng.integers(x0, width)) + 1, int(rng.integers(y0, height)) + 1
        crop = rle.decode_crop(counts, height, width, (x0, y0, x1, y1))
        assert np.array_equal(crop, mask[y0:y1, x0:x1])
        boxes.append((x0, y0, x1, y1))
        runs.append(rle.counts_from_string(counts, height, width))
    crops = rle.paint_crops(runs, [m.shape[0] for m in items], boxes)
    for crop, mask, (x0, y0, x1, y1) in zip(crops, items, boxes, strict=True):
        assert np.array_equal(crop, mask[y0:y1, x0:x1])


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ("", "covers 0 pixels"),
        ("06", "covers 6 pixels"),  # 0 background, 6 foreground: too many for 2 x 2
        ("0~", "alphabet"),  # '~' is beyond 'o'
        ("0 4", "alphabet"),
        ("0é", "alphabet"),
        ("0P", "middle of a number"),  # 'P' has the continuation bit and nothing follows
        ("0" + "P" * 14 + "0", "too large"),
        ("1?", "covers"),  # a negative delta turns into nonsense totals
        ("0O", "negative"),  # 'O' is -1: a negative run length
    ],
)
def test_malformed_strings_are_refused(counts: str, message: str) -> None:
    with pytest.raises(rle.RleError, match=message):
        rle.counts_from_string(counts, 2, 2)


def test_batch_error_names_the_string() -> None:
    good = rle.encode(np.eye(3, dtype=bool))
    with pytest.raises(rle.RleError) as caught:
        rle.counts_from_strings([good, good, "0P"], [(3, 3)] * 3)
    assert caught.value.index == 2


def test_runs_that_only_add_up_by_wrapping_around_are_refused() -> None:
    # Each run is 2**58 pixels long; in int64 (and in pycocotools' uint32) the sum wraps around
    # to the mask's size, so a check of the total alone accepts it and decoding overflows.
    counts = masks.wrapped_rle(8, 10)
    with pytest.raises(rle.RleError, match="longer than the whole mask"):
        rle.counts_from_string(counts, 8, 10)
    with pytest.raises(rle.RleError) as caught:
        rle.masks_from_strings([rle.encode(np.ones((8, 10), bool)), counts], [(8, 10)] * 2)
    assert caught.value.index == 1


def test_an_empty_string_last_in_a_batch_is_refused() -> None:
    with pytest.raises(rle.RleError, match="covers 0 pixels") as caught:
        rle.masks_from_strings(["1", ""], [(1, 1), (2, 2)])
    assert caught.value.index == 1


def test_masks_without_pixels_are_refused() -> None:
    with pytest.raises(rle.RleError, match="no pixels"):
        rle.counts_from_strings(["0", ""], [(1, 1), (0, 5)])


def test_batch_areas_and_boxes_equal_one_by_one() -> None:
    items = _random_masks(300, seed=11)
    column = np.zeros((9, 7), dtype=bool)
    column[:, 3] = True  # one run over a whole column
    wrap = np.zeros((9, 7), dtype=bool)
    wrap[6:, 1] = wrap[:2, 2] = True  # one run from the foot of a column to the next one's top
    items += [column, wrap, np.ones((1, 1), bool), np.zeros((1, 1), bool)]
    strings = [rle.encode(m) for m in items]
    runs, areas, boxes = rle.masks_from_strings(strings, [m.shape for m in items])
    for mask, counts, parsed, area, box in zip(items, strings, runs, areas, boxes, strict=True):
        assert np.array_equal(parsed, rle.counts_from_string(counts, *mask.shape))
        assert parsed.dtype == np.int32 and not parsed.flags.writeable
        assert area == mask.sum()
        assert box == rle.bbox(counts, *mask.shape)
    assert rle.masks_from_strings([], []) == ([], [], [])


def test_uncompressed_counts_round_trip() -> None:
    mask = masks.ring()
    runs = rle.counts_from_string(rle.encode(mask), *mask.shape)
    assert rle.counts_to_string(runs.tolist(), *mask.shape) == rle.encode(mask)
    with pytest.raises(rle.RleError, match="covers"):
        rle.counts_to_string([1, 2, 3], *mask.shape)


def test_iou() -> None:
    a, b = masks.disk(30, 30, 10), masks.disk(35, 30, 10)
    expected = masks.iou(a, b)
    assert rle.iou(rle.encode(a), rle.encode(b), *a.shape) == pytest.approx(expected)
    empty = rle.encode(masks.blank())
    assert rle.iou(empty, empty, masks.HEIGHT, masks.WIDTH) == 1.0
