"""Checking prompts and mapping them from original-image pixels into the model's input frame.

Points and box corners may lie up to :data:`EDGE_TOLERANCE` pixels outside the image (a click on
the canvas border, a box dragged slightly past the edge): they are clipped onto the image
boundary [0, W] x [0, H]. Anything farther out is refused with a PromptError, because a prompt
there is almost always a coordinate-frame mistake (e.g. x and y swapped, or display coordinates
instead of image pixels) that would silently give a wrong mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samdesk.errors import PromptError

EDGE_TOLERANCE = 2.0
MASK_INPUT_SHAPE = (1, 256, 256)


@dataclass(frozen=True)
class Prompt:
    """A checked prompt in the model's input frame (float64 numpy, ready for torch)."""

    points: np.ndarray | None  # (N, 2) x, y
    labels: np.ndarray | None  # (N,) int32, 0 or 1
    box: np.ndarray | None  # (4,) x0, y0, x1, y1
    mask_input: np.ndarray | None  # (1, 256, 256) float32


def _as_float_array(value: object, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise PromptError(f"{what} must be numbers, got {type(value).__name__}.") from None
    if not np.all(np.isfinite(arr)):
        raise PromptError(f"{what} contain NaN or infinite values.")
    return arr


def _inside(xy: np.ndarray, size: tuple[int, int], what: str) -> np.ndarray:
    """Clip (..., 2) x, y onto [0, W] x [0, H] if within tolerance, else raise."""
    h, w = size
    x, y = xy[..., 0], xy[..., 1]
    tol = EDGE_TOLERANCE
    bad = (x < -tol) | (x > w + tol) | (y < -tol) | (y > h + tol)
    if np.any(bad):
        first = xy.reshape(-1, 2)[np.flatnonzero(bad.reshape(-1))[0]]
        raise PromptError(
            f"{what} ({first[0]:g}, {first[1]:g}) lies outside the {w}x{h} image. Prompts are "
            "x, y in image pixels (x to the right, y down); use coordinates inside the image."
        )
    out = xy.copy()
    out[..., 0] = np.clip(x, 0, w)
    out[..., 1] = np.clip(y, 0, h)
    return out


def check_prompt(
    point_coords: object,
    point_labels: object,
    box: object,
    mask_input: object,
    original_size: tuple[int, int],
    input_size: tuple[int, int],
) -> Prompt:
    """Validate a prompt given in original-image pixels and map it to the input frame."""
    if point_coords is None and box is None and mask_input is None:
        raise PromptError(
            "no prompt given: pass point_coords with point_labels, a box, or a mask_input."
        )
    scale = np.array(
        [input_size[1] / original_size[1], input_size[0] / original_size[0]], dtype=np.float64
    )
    points = labels = box_out = mask = None
    if point_coords is not None or point_labels is not None:
        if point_coords is None or point_labels is None:
            raise PromptError("point_coords and point_labels must be given together.")
        pts = _as_float_array(point_coords, "point_coords")
        if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] == 0:
            raise PromptError(f"point_coords must have shape (N, 2) with N >= 1, got {pts.shape}.")
        lab = np.asarray(point_labels)
        if lab.ndim != 1 or lab.shape[0] != pts.shape[0]:
            raise PromptError(
                f"point_labels must have shape ({pts.shape[0]},), one label per point; got "
                f"{lab.shape}."
            )
        if lab.dtype.kind not in "iub" and not (
            lab.dtype.kind == "f" and np.all(np.isfinite(lab)) and np.all(lab == np.round(lab))
        ):
            raise PromptError(f"point_labels must be integers 0 or 1, got dtype {lab.dtype}.")
        if not np.all(np.isin(lab, (0, 1))):
            raise PromptError("point_labels must be 1 (foreground) or 0 (background).")
        points = _inside(pts, original_size, "point") * scale
        labels = lab.astype(np.int32)
    if box is not None:
        b = _as_float_array(box, "box")
        if b.shape not in ((4,), (1, 4)):
            raise PromptError(f"box must be x0, y0, x1, y1 (shape (4,)), got shape {b.shape}.")
        b = b.reshape(4)
        if b[2] < b[0] or b[3] < b[1]:
            raise PromptError(
                f"box ({b[0]:g}, {b[1]:g}, {b[2]:g}, {b[3]:g}) has x1 < x0 or y1 < y0; give the "
                "top-left corner first, then the bottom-right."
            )
        box_out = (_inside(b.reshape(2, 2), original_size, "box corner") * scale).reshape(4)
    if mask_input is not None:
        m = _as_float_array(mask_input, "mask_input")
        if m.shape != MASK_INPUT_SHAPE:
            raise PromptError(
                f"mask_input must have shape {MASK_INPUT_SHAPE} (the low_res_logits of one mask "
                f"from a previous predict call), got {m.shape}."
            )
        mask = m.astype(np.float32)
    return Prompt(points, labels, box_out, mask)
