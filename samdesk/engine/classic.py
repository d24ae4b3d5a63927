"""The Classic backend: segmentation without model weights, by OpenCV's GrabCut.

It implements :class:`samdesk.engine.backend.Backend` with the same argument names, coordinate
frame (x, y in original-image pixels), shapes and dtypes as SAM's ``predict``, so the app and the
CLI can use it whenever no model is installed.

How prompts become GrabCut's trimap (labels GC_BGD / GC_FGD / GC_PR_BGD / GC_PR_FGD):

- A box alone runs ``GC_INIT_WITH_RECT``: outside the box is definite background, inside it is
  probable foreground.
- Points: a disc of radius ``seed_radius`` (work pixels) around each positive point is definite
  foreground, around each negative point definite background. With a box, the rest of the box is
  probable foreground; without one, everything else is probable background. Only positives (no
  box, no mask) therefore works: the foreground colour model starts from the discs, the
  background model from the rest of the region, and GrabCut grows the discs over similar,
  connected pixels. Negatives alone are refused (there is nothing to segment).
- A previous mask (``mask_input``: the (1, 256, 256) low-res logits a previous call returned, or
  a full-size (H, W) / (1, H, W) mask or logits, e.g. the last mask shown) makes its positive
  pixels probable foreground and the rest probable background; points and a box then add to it.
- When positive points were given, only the connected parts of the result that contain a
  positive point are kept (GrabCut otherwise also selects look-alike regions elsewhere).

GrabCut sees the image after a 3x3 median filter (pixel noise otherwise lets its smoothness
term swallow low-contrast objects); a result that still collapses to the seeds is retried on a
Gaussian-smoothed image. OpenCV's RNG is seeded first, so the same prompts give the same mask.

Speed: GrabCut runs on a region of interest (the box, any positive points and a margin of
context; the whole image for points alone or a mask), downscaled so that its longest side is at
most ``max_side`` pixels (default 512: about 0.1-0.5 s per prediction on one core, also on a
4000x3000 image). The result is scaled back with the exact per-axis factors, then the seed
discs are re-applied at full resolution, so a positive point is always inside the mask and a
negative point always outside it.

Outputs: one candidate (C = 1) even when ``multimask_output`` is True — callers read C from
``scores.shape``. ``scores`` is 1.0 for a non-empty mask and 0.0 for an empty one (GrabCut has no
quality estimate). ``low_res_logits`` use SAM's frame (the image scaled so its longest side is
256, padded at the bottom/right) with values in [-LOGIT_SCALE, LOGIT_SCALE], so that passing them
back as ``mask_input`` — to this backend or to a SAM predictor — reproduces the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from samdesk.engine.backend import StepHook
from samdesk.engine.embedding import Embedding
from samdesk.engine.jobs import CancelToken
from samdesk.errors import InputError, PromptError

MODEL_KEY = "classic-grabcut-v1"
LOW_RES = 256
LOGIT_SCALE = 10.0
#: GrabCut is retried on a result that collapsed to its seeds, on the image blurred this much
#: (Gaussian sigma in work pixels; attempt i also uses RNG seed i).
DENOISE_SIGMAS = (0.0, 1.5, 3.0)
#: Points may lie this many pixels outside the image (a click on the border's edge).
POINT_TOLERANCE = 1.0


@dataclass(frozen=True)
class _Roi:
    """A region (x0, y0, x1, y1) of the image in pixels, end-exclusive, and its work size."""

    x0: int
    y0: int
    x1: int
    y1: int
    work_w: int
    work_h: int

    @property
    def sx(self) -> float:
        return self.work_w / (self.x1 - self.x0)

    @property
    def sy(self) -> float:
        return self.work_h / (self.y1 - self.y0)


class ClassicBackend:
    """GrabCut behind the SAM predictor interface; no weights, no torch, no cache."""

    name = "Classic (GrabCut, no model)"
    cache_key: str | None = None
    device = "cpu"

    def __init__(self, *, max_side: int = 512, iterations: int = 5, box_margin: float = 0.2):
        """
        Args:
            max_side: longest side in pixels of the (downscaled) region GrabCut works on.
            iterations: GrabCut iterations per prediction.
            box_margin: context around a box, as a fraction of the box's longer side.
        """
        if max_side < 32 or iterations < 1 or box_margin < 0:
            raise InputError("ClassicBackend needs max_side >= 32, iterations >= 1, margin >= 0")
        self.max_side = int(max_side)
        self.iterations = int(iterations)
        self.box_margin = float(box_margin)
        self._embedding: Embedding | None = None

    # --- image ------------------------------------------------------------------------------

    def compute_embedding(
        self,
        image: np.ndarray,
        *,
        cancel: CancelToken | None = None,
        num_threads: int | None = None,
        step_hook: StepHook | None = None,
    ) -> Embedding:
        """The "embedding" is the image itself: features (H, W, 3) uint8 RGB (a copy)."""
        if cancel is not None:
            cancel.check()
        rgb = _as_rgb(image)
        if step_hook is not None:
            step_hook(1, 1)
        h, w = rgb.shape[:2]
        return Embedding(features=rgb, original_size=(h, w), input_size=(h, w), model_key=MODEL_KEY)

    def set_embedding(self, embedding: Embedding) -> None:
        f = embedding.features
        if (
            embedding.model_key != MODEL_KEY
            or f.ndim != 3
            or f.shape[2] != 3
            or f.dtype != np.uint8
        ):
            raise InputError(
                f"this embedding was made by another model ({embedding.model_key}); "
                "the Classic backend needs one from its own compute_embedding()"
            )
        self._embedding = embedding

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        if image_format not in ("RGB", "BGR"):
            raise InputError(f"image_format must be 'RGB' or 'BGR', not {image_format!r}")
        if image_format == "BGR" and image.ndim == 3:
            image = image[..., ::-1]
        self.set_embedding(self.compute_embedding(image))

    def reset_image(self) -> None:
        self._embedding = None

    @property
    def is_image_set(self) -> bool:
        return self._embedding is not None

    @property
    def original_size(self) -> tuple[int, int]:
        if self._embedding is None:
            raise InputError("no image is set: call set_image() first")
        return self._embedding.original_size

    # --- prediction ---------------------------------------------------------------------------

    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """GrabCut from the prompts; see the module docstring. Shapes as SAM's, with C = 1.

        Returns:
            masks (1, H, W) bool (float32 logits of +-LOGIT_SCALE with ``return_logits``),
            scores (1,) float32, low_res_logits (1, 256, 256) float32.
        """
        if self._embedding is None:
            raise PromptError("no image is set: call set_image() before predict()")
        rgb = self._embedding.features
        h, w = rgb.shape[:2]
        points, labels = _check_points(point_coords, point_labels, w, h)
        rect = _check_box(box, w, h)
        prior = _check_mask_input(mask_input, w, h)
        positives = points[labels == 1]
        if rect is None and prior is None and len(positives) == 0:
            raise PromptError(
                "the Classic backend needs a box, a positive point or a previous mask "
                "(negative points alone do not say what to segment)"
            )

        roi = self._roi(w, h, rect, positives)
        mask = self._grabcut(rgb, roi, points, labels, rect, prior)
        if len(positives):
            mask = _keep_components_with(mask, positives)
        _paint_seeds(mask, points, labels, _seed_radius(roi) / min(roi.sx, roi.sy))

        score = np.array([1.0 if mask.any() else 0.0], dtype=np.float32)
        low_res = mask_to_low_res_logits(mask)[None]
        if return_logits:
            out = np.where(mask, LOGIT_SCALE, -LOGIT_SCALE).astype(np.float32)[None]
        else:
            out = mask[None]
        return out, score, low_res

    def _roi(
        self, w: int, h: int, rect: tuple[int, int, int, int] | None, positives: np.ndarray
    ) -> _Roi:
        """The box with any positive points (x, y) and a margin, or the whole image."""
        if rect is None:
            x0, y0, x1, y1 = 0, 0, w, h
        else:
            bx0, by0, bx1, by1 = rect
            if len(positives):
                bx0 = min(bx0, int(positives[:, 0].min()))
                by0 = min(by0, int(positives[:, 1].min()))
                bx1 = max(bx1, int(positives[:, 0].max()) + 1)
                by1 = max(by1, int(positives[:, 1].max()) + 1)
            margin = max(8, round(self.box_margin * max(bx1 - bx0, by1 - by0)))
            x0, y0 = max(0, bx0 - margin), max(0, by0 - margin)
            x1, y1 = min(w, bx1 + margin), min(h, by1 + margin)
        scale = min(1.0, self.max_side / max(x1 - x0, y1 - y0))
        work_w = max(1, round((x1 - x0) * scale))
        work_h = max(1, round((y1 - y0) * scale))
        return _Roi(x0, y0, x1, y1, work_w, work_h)

    def _grabcut(
        self,
        rgb: np.ndarray,
        roi: _Roi,
        points: np.ndarray,
        labels: np.ndarray,
        rect: tuple[int, int, int, int] | None,
        prior: np.ndarray | None,
    ) -> np.ndarray:
        """Run GrabCut on the downscaled ROI; returns the (H, W) bool mask of the whole image."""
        h, w = rgb.shape[:2]
        crop = rgb[roi.y0 : roi.y1, roi.x0 : roi.x1]
        work = cv2.resize(crop, (roi.work_w, roi.work_h), interpolation=cv2.INTER_AREA)
        work = cv2.medianBlur(work, 3)  # removes pixel noise, keeps edges
        # Pixel centres map as x_work + 0.5 = (x + 0.5 - x0) * sx (cv2.resize's convention).
        scale = np.array([roi.sx, roi.sy])
        work_pts = (points + 0.5 - np.array([roi.x0, roi.y0])) * scale - 0.5
        work_rect = None
        if rect is not None:
            bx0, by0, bx1, by1 = rect
            wx0 = int(np.floor((bx0 - roi.x0) * roi.sx))
            wy0 = int(np.floor((by0 - roi.y0) * roi.sy))
            wx1 = int(np.ceil((bx1 - roi.x0) * roi.sx))
            wy1 = int(np.ceil((by1 - roi.y0) * roi.sy))
            work_rect = (wx0, wy0, max(1, wx1 - wx0), max(1, wy1 - wy0))

        trimap = np.full((roi.work_h, roi.work_w), cv2.GC_PR_BGD, np.uint8)
        if prior is not None:
            prior_crop = prior[roi.y0 : roi.y1, roi.x0 : roi.x1].astype(np.uint8)
            prior_work = cv2.resize(
                prior_crop, (roi.work_w, roi.work_h), interpolation=cv2.INTER_NEAREST
            )
            trimap[prior_work > 0] = cv2.GC_PR_FGD
        if work_rect is not None:
            x, y, rw, rh = work_rect
            inside = np.zeros_like(trimap, dtype=bool)
            inside[y : y + rh, x : x + rw] = True
            if prior is None:
                trimap[inside] = cv2.GC_PR_FGD
            trimap[~inside] = cv2.GC_BGD
        radius = _seed_radius(roi)
        if work_rect is None and prior is None:
            # Points only: a wider probable-foreground disc gives the colour model enough samples.
            for px, py in work_pts[labels == 1]:
                cv2.circle(trimap, (round(px), round(py)), radius * 4, cv2.GC_PR_FGD, -1)
        for (px, py), label in zip(work_pts, labels, strict=True):
            value = cv2.GC_FGD if label == 1 else cv2.GC_BGD
            cv2.circle(trimap, (round(px), round(py)), radius, int(value), -1)

        work_mask = self._run_grabcut(
            work,
            trimap,
            work_rect,
            plain_box=work_rect is not None and prior is None and len(points) == 0,
            grow_check=work_rect is None and prior is None,
        )
        roi_mask = cv2.resize(
            work_mask.astype(np.float32),
            (roi.x1 - roi.x0, roi.y1 - roi.y0),
            interpolation=cv2.INTER_LINEAR,
        )
        mask = np.zeros((h, w), dtype=bool)
        mask[roi.y0 : roi.y1, roi.x0 : roi.x1] = roi_mask >= 0.5
        return mask

    def _run_grabcut(
        self,
        work: np.ndarray,
        trimap: np.ndarray,
        work_rect: tuple[int, int, int, int] | None,
        *,
        plain_box: bool,
        grow_check: bool,
    ) -> np.ndarray:
        """GrabCut on the work image; returns its (h, w) bool foreground.

        GrabCut's colour models start from k-means with a random initialisation, and on noisy,
        low-contrast images its smoothness term can win over the colour term so that the result
        collapses to the seeds. OpenCV's RNG (per thread) is seeded, so the same prompts give the
        same mask, and a collapsed result is retried on a smoothed image (``DENOISE_SIGMAS``);
        if every attempt collapses, the largest result is returned.
        """
        is_fg = np.isin(trimap, (cv2.GC_FGD, cv2.GC_PR_FGD))
        if is_fg.all() or not is_fg.any():
            return is_fg  # nothing to separate: GrabCut needs samples of both
        # A result no larger than this "collapsed": the definite seeds, or for points alone the
        # initial probable-foreground discs (GrabCut did not grow them at all).
        floor = int(is_fg.sum()) if grow_check else int((trimap == cv2.GC_FGD).sum())
        best = is_fg
        for attempt, sigma in enumerate(DENOISE_SIGMAS):
            labels = trimap.copy()
            image = work if sigma == 0 else cv2.GaussianBlur(work, (0, 0), sigma)
            fg_model = np.zeros((1, 65), np.float64)
            bg_model = np.zeros((1, 65), np.float64)
            cv2.setRNGSeed(attempt)
            mode = cv2.GC_INIT_WITH_RECT if plain_box else cv2.GC_INIT_WITH_MASK
            cv2.grabCut(image, labels, work_rect if plain_box else None, bg_model, fg_model,
                        self.iterations, mode)  # fmt: skip
            result = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD))
            if result.sum() > floor:
                return result
            if attempt == 0 or result.sum() > best.sum():
                best = result
        return best


# --- low-res logits (SAM's 256x256 frame) ------------------------------------------------------


def _low_res_extent(w: int, h: int) -> tuple[int, int]:
    """(w, h) of the image inside SAM's 256x256 low-res frame (longest side 256, rounded)."""
    scale = LOW_RES / max(w, h)
    return max(1, int(w * scale + 0.5)), max(1, int(h * scale + 0.5))


def mask_to_low_res_logits(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool mask -> (256, 256) float32 logits in SAM's frame (padding is -LOGIT_SCALE).

    The mask is area-averaged onto the low-res grid; a cell's logit is proportional to its
    covered fraction minus one half, so the 0 level set follows the mask's outline.
    """
    h, w = mask.shape
    lw, lh = _low_res_extent(w, h)
    frac = cv2.resize(mask.astype(np.float32), (lw, lh), interpolation=cv2.INTER_AREA)
    out = np.full((LOW_RES, LOW_RES), -LOGIT_SCALE, dtype=np.float32)
    out[:lh, :lw] = (frac * 2.0 - 1.0) * LOGIT_SCALE
    return out


def low_res_logits_to_mask(logits: np.ndarray, w: int, h: int) -> np.ndarray:
    """(256, 256) logits in SAM's frame -> (H, W) bool mask (bilinear, then > 0), like SAM."""
    lw, lh = _low_res_extent(w, h)
    up = cv2.resize(
        np.ascontiguousarray(logits[:lh, :lw], dtype=np.float32),
        (w, h),
        interpolation=cv2.INTER_LINEAR,
    )
    return up > 0


# --- input checks -------------------------------------------------------------------------------


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        dtype = getattr(image, "dtype", type(image).__name__)
        raise InputError(f"the image must be a uint8 array (got {dtype}); convert it to 8-bit")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(
            f"the image must have shape (H, W, 3) RGB or (H, W) gray, not {image.shape}"
        )
    return np.ascontiguousarray(image).copy()


def _check_points(
    coords: np.ndarray | None, labels: np.ndarray | None, w: int, h: int
) -> tuple[np.ndarray, np.ndarray]:
    if coords is None and labels is None:
        return np.zeros((0, 2)), np.zeros((0,), dtype=np.int64)
    if coords is None or labels is None:
        raise PromptError("point_coords and point_labels must be given together")
    pts = np.asarray(coords, dtype=np.float64)
    lab = np.asarray(labels)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise PromptError(f"point_coords must have shape (N, 2) as x, y; got {pts.shape}")
    if lab.shape != (len(pts),):
        raise PromptError(f"point_labels must have shape ({len(pts)},); got {lab.shape}")
    if not np.isfinite(pts).all():
        raise PromptError("point_coords contain NaN or infinity")
    if not np.isin(lab, (0, 1)).all():
        raise PromptError("point_labels must be 1 (foreground) or 0 (background)")
    tol = POINT_TOLERANCE
    outside = (
        (pts[:, 0] < -tol) | (pts[:, 0] > w + tol) | (pts[:, 1] < -tol) | (pts[:, 1] > h + tol)
    )
    if outside.any():
        x, y = pts[np.argmax(outside)]
        raise PromptError(f"point ({x:g}, {y:g}) is outside the {w}x{h} image")
    pts = np.clip(pts, 0, [w - 1, h - 1])
    return pts, lab.astype(np.int64)


def _check_box(box: np.ndarray | None, w: int, h: int) -> tuple[int, int, int, int] | None:
    """The box clipped to the image as pixel edges (x0, y0, x1, y1), end-exclusive.

    Like SAM's, box corners are pixel coordinates: pixels x0..x1 and y0..y1 are inside.
    """
    if box is None:
        return None
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not np.isfinite(b).all():
        raise PromptError("box must be 4 finite numbers x0, y0, x1, y1")
    x0, y0, x1, y1 = b
    if x1 < x0 or y1 < y0:
        raise PromptError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) has x1 < x0 or y1 < y0")
    ix0, iy0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    ix1, iy1 = min(w, int(np.floor(x1)) + 1), min(h, int(np.floor(y1)) + 1)
    if ix1 - ix0 < 2 or iy1 - iy0 < 2:
        raise PromptError(
            f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) covers less than 2x2 pixels of the "
            f"{w}x{h} image; draw a larger box inside the image"
        )
    return ix0, iy0, ix1, iy1


def _check_mask_input(mask_input: np.ndarray | None, w: int, h: int) -> np.ndarray | None:
    """A (H, W) bool prior from low-res logits (1, 256, 256) or a full-size mask/logits."""
    if mask_input is None:
        return None
    m = np.asarray(mask_input)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if not np.isfinite(m.astype(np.float32)).all():
        raise PromptError("mask_input contains NaN or infinity")
    if m.shape == (LOW_RES, LOW_RES) and (h, w) != (LOW_RES, LOW_RES):
        return low_res_logits_to_mask(m.astype(np.float32), w, h)
    if m.shape == (h, w):
        return m > 0
    raise PromptError(
        f"mask_input must be (1, 256, 256) low-res logits or a ({h}, {w}) mask; got "
        f"{np.asarray(mask_input).shape}"
    )


# --- mask helpers ------------------------------------------------------------------------------


def _seed_radius(roi: _Roi) -> int:
    """Radius in work pixels of the definite-label disc around each point."""
    return max(2, round(max(roi.work_w, roi.work_h) / 100))


def _keep_components_with(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Only the 8-connected parts of ``mask`` that contain one of ``points`` (x, y)."""
    count, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    ids = {int(comp[round(y), round(x)]) for x, y in points} - {0}
    return np.isin(comp, list(ids)) if ids else mask


def _paint_seeds(mask: np.ndarray, points: np.ndarray, labels: np.ndarray, radius: float) -> None:
    """Force full-resolution discs around seeds: positives in the mask, negatives out."""
    r = max(1, round(radius))
    canvas = mask.astype(np.uint8)
    for (x, y), label in zip(points, labels, strict=True):
        cv2.circle(canvas, (round(x), round(y)), r, int(label), -1)
    mask[...] = canvas > 0
