"""Packed masks, sparse diffs, brush rasterisation and SAM's low-res mask-prompt frame."""

from __future__ import annotations

import numpy as np
import pytest

from samdesk.ui.masks import (
    EDIT_LOGIT,
    MaskDiff,
    PackedMask,
    bbox,
    low_res_logits_to_mask,
    mask_to_low_res_fraction,
    mask_to_low_res_logits,
    sam_input_size,
    stroke_mask_region,
)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum()))


def _ring(shape: tuple[int, int], cx: int, cy: int, r_out: int, r_in: int) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d2 = (xx - cx) ** 2 + (yy - cy) ** 2
    return (d2 <= r_out**2) & (d2 > r_in**2)


def test_bbox_is_tight_and_end_exclusive() -> None:
    mask = np.zeros((10, 20), bool)
    assert bbox(mask) is None
    mask[3, 5] = mask[7, 11] = True
    assert bbox(mask) == (3, 5, 8, 12)


def test_packed_mask_round_trip_keeps_holes_and_parts() -> None:
    mask = _ring((300, 400), 120, 150, 80, 30) | _ring((300, 400), 330, 60, 20, 0)
    packed = PackedMask.pack(mask)
    assert np.array_equal(packed.unpack(), mask)
    y0, x0, y1, x1 = bbox(mask)
    assert packed.nbytes == ((y1 - y0) * (x1 - x0) + 7) // 8
    empty = PackedMask.pack(np.zeros((5, 6), bool))
    assert empty.empty and not empty.unpack().any() and empty.unpack().shape == (5, 6)


def test_mask_diff_applies_and_reverts() -> None:
    rng = np.random.default_rng(0)
    before = rng.random((64, 80)) > 0.5
    after = before.copy()
    after[10:20, 30:45] = ~after[10:20, 30:45]
    diff = MaskDiff.between(before, after)
    assert diff.changed.box == (10, 30, 20, 45)
    work = before.copy()
    diff.apply(work)
    assert np.array_equal(work, after)
    diff.apply(work)
    assert np.array_equal(work, before)
    regional = MaskDiff.between_in(before, after, (5, 25, 30, 60))
    assert regional.changed == diff.changed


def test_hundred_brush_strokes_on_a_4k_mask_stay_small() -> None:
    """The undo history stores strokes as sparse diffs, not 12 MB copies of a 4k mask."""
    shape = (3000, 4096)
    mask = np.zeros(shape, bool)
    rng = np.random.default_rng(1)
    diffs = []
    for _ in range(100):
        x, y = rng.integers(100, 3900), rng.integers(100, 2900)
        points = [(float(x + 3 * k), float(y + 2 * k)) for k in range(20)]
        (y0, x0, y1, x1), footprint = stroke_mask_region(shape, points, radius=12)
        before = mask[y0:y1, x0:x1].copy()
        mask[y0:y1, x0:x1] |= footprint
        diffs.append(MaskDiff.from_crops(before, mask[y0:y1, x0:x1], (y0, x0), shape))
    total = sum(d.nbytes for d in diffs)
    print(
        f"100 strokes on a 4096x3000 mask: {total / 1024:.1f} KiB of diffs "
        f"(a full copy per stroke would be {100 * mask.size / 2**20:.0f} MiB)"
    )
    assert total < 200 * 1024
    for diff in reversed(diffs):  # undo everything
        diff.apply(mask)
    assert not mask.any()


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((1024, 1024), (1024, 1024)),
        ((300, 500), (614, 1024)),  # 614.4 rounds down
        ((1536, 2048), (768, 1024)),
        ((683, 1000), (699, 1024)),  # 699.39
        ((1000, 333), (1024, 341)),  # 340.99 rounds up
    ],
)
def test_sam_input_size_rounds_like_segment_anything(shape, expected) -> None:
    """ResizeLongestSide.get_preprocess_shape: int(side * 1024 / longest + 0.5)."""
    assert sam_input_size(*shape) == expected


@pytest.mark.parametrize(("h", "w"), [(1024, 1024), (300, 500), (1536, 2048), (900, 333)])
def test_mask_prompt_round_trips_through_sams_postprocessing(h: int, w: int) -> None:
    """An edited mask converted to low-res logits comes back (SAM's upsampling, threshold 0)."""
    mask = _ring((h, w), w // 2, h // 2, min(h, w) // 3, min(h, w) // 8)
    logits = mask_to_low_res_logits(mask)
    assert logits.shape == (1, 256, 256) and logits.dtype == np.float32
    assert logits.max() == pytest.approx(EDIT_LOGIT) and logits.min() == pytest.approx(-EDIT_LOGIT)
    in_h, in_w = sam_input_size(h, w)
    assert not logits[0, (in_h + 3) // 4 :, :].any() and not logits[0, :, (in_w + 3) // 4 :].any()
    back = low_res_logits_to_mask(logits, h, w)
    iou = _iou(back, mask)
    print(f"{w}x{h}: mask -> low-res logits -> mask IoU {iou:.4f}")
    assert iou > 0.95
    assert not back[h // 2, w // 2]  # the hole survives


def test_mask_prompt_survives_sams_postprocess_masks_in_torch() -> None:
    """The frame is SAM's: the steps of ``Sam.postprocess_masks`` (bilinear to 1024x1024 with
    align_corners=False, crop to the input size, bilinear to the original size) written with
    torch reproduce the mask."""
    import torch
    import torch.nn.functional as F

    h, w = 480, 640
    mask = np.zeros((h, w), bool)
    mask[100:300, 200:500] = True
    mask[150:200, 300:350] = False
    logits = torch.from_numpy(mask_to_low_res_logits(mask)[None])
    up = F.interpolate(logits, (1024, 1024), mode="bilinear", align_corners=False)
    in_h, in_w = sam_input_size(h, w)
    up = F.interpolate(up[..., :in_h, :in_w], (h, w), mode="bilinear", align_corners=False)
    back = up[0, 0].numpy() > 0
    assert _iou(back, mask) > 0.98
    assert _iou(back, low_res_logits_to_mask(logits.numpy(), h, w)) > 0.995


def test_mask_prompt_keeps_sams_own_logits_where_they_agree() -> None:
    h, w = 512, 512
    mask = np.zeros((h, w), bool)
    mask[100:300, 100:300] = True
    # 512 px -> 1024 input -> 256 cells: image pixel p lies in cell p // 2
    previous = np.full((256, 256), -3.0, np.float32)
    previous[50:150, 50:150] = 11.0  # SAM's logits for the same square
    edited = mask.copy()
    edited[100:300, 300:400] = True  # the user painted a strip to the right
    logits = mask_to_low_res_logits(edited, previous)[0]
    assert logits[100, 100] == 11.0  # untouched inside: SAM's own value
    assert logits[10, 10] == -3.0  # untouched outside
    assert logits[100, 175] == pytest.approx(EDIT_LOGIT)  # painted cell
    fraction = mask_to_low_res_fraction(edited)
    assert fraction[100, 175] == 1.0 and fraction[0, 0] == 0.0


def test_stroke_covers_the_path_and_is_clipped_to_the_image() -> None:
    shape = (100, 120)
    region, footprint = stroke_mask_region(shape, [(10.5, 10.5), (60.5, 10.5)], radius=4)
    y0, x0, y1, x1 = region
    full = np.zeros(shape, bool)
    full[y0:y1, x0:x1] = footprint
    assert full[10, 10] and full[10, 35] and full[10, 60] and full[14, 35]
    assert not full[16, 35] and not full[10, 66]
    region, footprint = stroke_mask_region(shape, [(-3.0, -3.0), (2.0, 2.0)], radius=3)
    assert region[0] == 0 and region[1] == 0 and footprint[1, 1]
    assert stroke_mask_region(shape, [(-50.0, -50.0)], radius=3) is None
