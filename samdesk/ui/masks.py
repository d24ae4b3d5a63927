"""Compact mask storage for the undo history, and SAM's low-resolution mask-prompt frame.

Everything here is plain numpy (+ OpenCV for resizing) so it is fast to test without Qt.

Frames:
    * image frame: (H, W) bool masks, pixel (x, y) is ``mask[y, x]``, x, y in original-image
      pixels;
    * SAM's low-resolution frame: (1, 256, 256) float32 logits covering the model's padded
      1024 x 1024 input, in which the image occupies the top-left ``input_size`` (the image
      resized so that its longest side is 1024), downsampled by 4.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

#: SAM's model input side and low-resolution mask side.
SAM_INPUT_SIDE = 1024
LOW_RES_SIDE = 256
#: Logit magnitude for pixels set by hand (brush, eraser, a polygon): sigmoid(6.9) = 0.999, the
#: value micro-sam uses for mask prompts made from binary masks (eps = 1e-3).
EDIT_LOGIT = float(np.log((1 - 1e-3) / 1e-3))


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The tight bounding box of a (H, W) bool mask as (y0, x0, y1, x1), end-exclusive.

    None for an empty mask. Cost: one pass over rows and one over columns.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


@dataclass(frozen=True)
class PackedMask:
    """A (H, W) bool mask stored as its bounding-box crop packed 8 pixels per byte.

    ``box`` is (y0, x0, y1, x1) end-exclusive, None for an empty mask.
    """

    shape: tuple[int, int]
    box: tuple[int, int, int, int] | None
    bits: bytes = field(repr=False)

    @classmethod
    def pack(cls, mask: np.ndarray) -> PackedMask:
        box = bbox(mask)
        if box is None:
            return cls((int(mask.shape[0]), int(mask.shape[1])), None, b"")
        y0, x0, y1, x1 = box
        bits = np.packbits(mask[y0:y1, x0:x1], axis=None).tobytes()
        return cls((int(mask.shape[0]), int(mask.shape[1])), box, bits)

    @classmethod
    def pack_crop(
        cls, crop: np.ndarray, origin: tuple[int, int], shape: tuple[int, int]
    ) -> PackedMask:
        """Pack a mask of ``shape`` (H, W) that is empty outside ``crop``, whose top-left pixel
        is ``origin`` (y, x): the full-size mask is never allocated (region mode, ADR 0066)."""
        local = bbox(crop)
        shape = (int(shape[0]), int(shape[1]))
        if local is None:
            return cls(shape, None, b"")
        ly0, lx0, ly1, lx1 = local
        y0, x0 = int(origin[0]), int(origin[1])
        if y0 < 0 or x0 < 0 or y0 + crop.shape[0] > shape[0] or x0 + crop.shape[1] > shape[1]:
            raise ValueError(f"a {crop.shape} crop at {origin} does not fit in {shape}")
        bits = np.packbits(crop[ly0:ly1, lx0:lx1], axis=None).tobytes()
        return cls(shape, (y0 + ly0, x0 + lx0, y0 + ly1, x0 + lx1), bits)

    def unpack(self) -> np.ndarray:
        """The (H, W) bool mask."""
        out = np.zeros(self.shape, dtype=bool)
        if self.box is not None:
            y0, x0, y1, x1 = self.box
            count = (y1 - y0) * (x1 - x0)
            crop = np.unpackbits(np.frombuffer(self.bits, np.uint8), count=count).astype(bool)
            out[y0:y1, x0:x1] = crop.reshape(y1 - y0, x1 - x0)
        return out

    @property
    def nbytes(self) -> int:
        return len(self.bits)

    @property
    def empty(self) -> bool:
        return self.box is None


@dataclass(frozen=True)
class MaskDiff:
    """The pixels that changed between two masks of one shape: a packed XOR in its bounding box.

    Applying a diff toggles those pixels, so the same diff both applies and reverts a change.
    """

    changed: PackedMask

    @classmethod
    def between(cls, before: np.ndarray, after: np.ndarray) -> MaskDiff:
        return cls(PackedMask.pack(np.logical_xor(before, after)))

    @classmethod
    def between_in(
        cls, before: np.ndarray, after: np.ndarray, region: tuple[int, int, int, int]
    ) -> MaskDiff:
        """Like :meth:`between` when every change is known to lie inside ``region``
        (y0, x0, y1, x1): only that region is compared (a brush stroke's bounds)."""
        y0, x0, y1, x1 = region
        shape = (int(before.shape[0]), int(before.shape[1]))
        return cls.from_crops(before[y0:y1, x0:x1], after[y0:y1, x0:x1], (y0, x0), shape)

    @classmethod
    def from_crops(
        cls,
        before: np.ndarray,
        after: np.ndarray,
        origin: tuple[int, int],
        shape: tuple[int, int],
    ) -> MaskDiff:
        """The change between two same-sized crops whose top-left pixel is ``origin`` (y, x)
        of a mask of ``shape`` (H, W)."""
        xor = np.logical_xor(before, after)
        local = bbox(xor)
        if local is None:
            return cls(PackedMask(shape, None, b""))
        ly0, lx0, ly1, lx1 = local
        y0, x0 = origin
        bits = np.packbits(xor[ly0:ly1, lx0:lx1], axis=None).tobytes()
        return cls(PackedMask(shape, (y0 + ly0, x0 + lx0, y0 + ly1, x0 + lx1), bits))

    def apply(self, mask: np.ndarray) -> None:
        """Toggle the changed pixels of ``mask`` in place (apply or revert the change)."""
        box = self.changed.box
        if box is None:
            return
        y0, x0, y1, x1 = box
        count = (y1 - y0) * (x1 - x0)
        crop = np.unpackbits(np.frombuffer(self.changed.bits, np.uint8), count=count)
        mask[y0:y1, x0:x1] ^= crop.reshape(y1 - y0, x1 - x0).astype(bool)

    @property
    def empty(self) -> bool:
        return self.changed.empty

    @property
    def nbytes(self) -> int:
        return self.changed.nbytes


def sam_input_size(height: int, width: int) -> tuple[int, int]:
    """(h, w) of an image of ``height`` x ``width`` inside SAM's 1024 input (longest side 1024),
    rounded exactly as segment-anything's ``ResizeLongestSide.get_preprocess_shape``."""
    scale = SAM_INPUT_SIDE / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def mask_to_low_res_fraction(mask: np.ndarray) -> np.ndarray:
    """The share of each low-resolution cell covered by ``mask``: (256, 256) float32 in [0, 1].

    The mask (H, W) bool is resized to SAM's input size (longest side 1024, same rounding as
    SAM), padded bottom and right to 1024 x 1024 as SAM pads the image, then averaged over 4x4
    blocks. Cells in the padding are 0.
    """
    height, width = mask.shape
    in_h, in_w = sam_input_size(height, width)
    shrinking = in_h < height
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    scaled = cv2.resize(mask.astype(np.float32), (in_w, in_h), interpolation=interpolation)
    padded = np.zeros((SAM_INPUT_SIDE, SAM_INPUT_SIDE), np.float32)
    padded[:in_h, :in_w] = scaled
    blocks = padded.reshape(LOW_RES_SIDE, 4, LOW_RES_SIDE, 4)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def mask_to_low_res_logits(mask: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """A mask prompt for SAM from an edited (H, W) bool mask: (1, 256, 256) float32 logits.

    Cells the mask covers get ``+EDIT_LOGIT`` scaled by how much of the cell is covered
    (``(2 * fraction - 1) * EDIT_LOGIT``); the padding outside the image is 0, the convention
    micro-sam found SAM understands. When ``previous`` — the (256, 256) or (1, 256, 256) logits
    SAM itself produced for the mask before the edit — is given, its values are kept wherever
    their sign already agrees with the edited mask, so only the edited cells are overwritten and
    SAM sees its own logit distribution elsewhere.
    """
    fraction = mask_to_low_res_fraction(mask)
    height, width = mask.shape
    in_h, in_w = sam_input_size(height, width)
    logits = (2.0 * fraction - 1.0) * EDIT_LOGIT
    inside = np.zeros((LOW_RES_SIDE, LOW_RES_SIDE), bool)
    inside[: (in_h + 3) // 4, : (in_w + 3) // 4] = True
    logits[~inside] = 0.0
    if previous is not None:
        prev = np.asarray(previous, np.float32).reshape(LOW_RES_SIDE, LOW_RES_SIDE)
        agrees = (prev > 0) == (fraction > 0.5)
        logits = np.where(agrees, prev, logits)
    return logits.astype(np.float32)[None]


def low_res_logits_to_mask(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """SAM's own post-processing of low-res logits to an (H, W) bool mask (for tests and for
    checking the round trip of :func:`mask_to_low_res_logits`): bilinear up to 1024, crop the
    image's part, bilinear to (H, W), threshold at 0."""
    low = np.asarray(logits, np.float32).reshape(LOW_RES_SIDE, LOW_RES_SIDE)
    up = cv2.resize(low, (SAM_INPUT_SIDE, SAM_INPUT_SIDE), interpolation=cv2.INTER_LINEAR)
    in_h, in_w = sam_input_size(height, width)
    full = cv2.resize(up[:in_h, :in_w], (width, height), interpolation=cv2.INTER_LINEAR)
    return full > 0


def stroke_mask_region(
    shape: tuple[int, int], points: list[tuple[float, float]], radius: float
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Rasterise a brush stroke: discs of ``radius`` px joined along ``points`` (x, y image px).

    Returns ((y0, x0, y1, x1), footprint) where footprint is the (y1-y0, x1-x0) bool disc trail
    inside that clipped region, or None when the stroke lies entirely outside the image.
    """
    height, width = shape
    if not points:
        return None
    r = max(0.5, float(radius))
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    pad = int(np.ceil(r)) + 1
    x0 = max(0, int(np.floor(min(xs))) - pad)
    y0 = max(0, int(np.floor(min(ys))) - pad)
    x1 = min(width, int(np.ceil(max(xs))) + pad + 1)
    y1 = min(height, int(np.ceil(max(ys))) + pad + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    canvas = np.zeros((y1 - y0, x1 - x0), np.uint8)
    shift = 4  # sub-pixel precision for OpenCV drawing: coordinates * 16
    scale = 1 << shift
    # A pixel's centre is at (x + 0.5, y + 0.5); points are given in continuous coordinates.
    pts = [(round((x - 0.5 - x0) * scale), round((y - 0.5 - y0) * scale)) for x, y in points]
    thickness = max(1, round(2 * r))
    if len(pts) == 1:
        cv2.circle(canvas, pts[0], round(r * scale), 1, -1, cv2.LINE_8, shift)
    else:
        poly = np.array(pts, np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [poly], False, 1, thickness, cv2.LINE_8, shift)
        for pt in (pts[0], pts[-1]):
            cv2.circle(canvas, pt, round(r * scale), 1, -1, cv2.LINE_8, shift)
    return (y0, x0, y1, x1), canvas.astype(bool)
