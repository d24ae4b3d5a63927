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

Speed (ADR 0061): GrabCut's cost grows faster than its pixel count and with the image's noise
and texture, so it runs on a region of interest (ROI) downscaled so that its longest side is at
most ``max_side`` pixels (default 224), whatever the image size:

- a box: the box, any positive points and a margin of context (``box_margin``); one run of
  ``iterations`` (default 3);
- a previous mask: its bounding box with the points, and the same margin; one run of
  ``refine_iterations`` (default 1: it starts from a good labelling);
- points alone: GrabCut's background model must come from a region that is mostly background,
  so a first pass runs on the whole image downscaled to ``click_side`` (default 192; prepared in
  ``set_embedding``), and its result is then refined like a previous mask, also at
  ``click_side``.

Without a box the object may extend past the ROI: when the kept result touches an ROI edge that
is not the image's edge, the ROI doubles and GrabCut runs again (up to the whole image). The
work mask is scaled back with the exact per-axis factors into the ROI only, then the seed discs
are re-applied at full resolution, so a positive point is always inside the mask and a negative
point always outside it. The low-res logits are computed from the work mask, and a previous
mask's logits are sampled straight onto the work grid, so no full-size float image is made.

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

Box = tuple[int, int, int, int]


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

    def to_work(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) image x, y -> work-grid x, y (pixel centres: x_work + 0.5 = (x + 0.5 - x0) sx,
        cv2.resize's convention)."""
        return (points + 0.5 - np.array([self.x0, self.y0])) * np.array([self.sx, self.sy]) - 0.5

    def touches_inner_edge(self, work_mask: np.ndarray, w: int, h: int) -> bool:
        """Whether ``work_mask`` reaches an ROI edge that is not an edge of the w x h image."""
        return bool(
            (self.x0 > 0 and work_mask[:, 0].any())
            or (self.y0 > 0 and work_mask[0].any())
            or (self.x1 < w and work_mask[:, -1].any())
            or (self.y1 < h and work_mask[-1].any())
        )


class ClassicBackend:
    """GrabCut behind the SAM predictor interface; no weights, no torch, no cache."""

    name = "Classic (GrabCut, no model)"
    cache_key: str | None = None
    device = "cpu"

    def __init__(
        self,
        *,
        max_side: int = 224,
        iterations: int = 3,
        refine_iterations: int = 1,
        box_margin: float = 0.2,
        click_side: int = 192,
    ):
        """
        Args:
            max_side: longest side in pixels of the (downscaled) region GrabCut works on.
            iterations: GrabCut iterations per prediction.
            refine_iterations: GrabCut iterations when a previous mask is given.
            box_margin: context around a box or a previous mask, as a fraction of its longer
                side.
            click_side: ``max_side`` for a click without a box or previous mask, which runs
                GrabCut twice (module docstring).
        """
        if (
            max_side < 32
            or click_side < 32
            or iterations < 1
            or refine_iterations < 1
            or box_margin < 0
        ):
            raise InputError(
                "ClassicBackend needs max_side >= 32, click_side >= 32, iterations >= 1, "
                "refine_iterations >= 1 and box_margin >= 0"
            )
        self.max_side = int(max_side)
        self.iterations = int(iterations)
        self.refine_iterations = int(refine_iterations)
        self.box_margin = float(box_margin)
        self.click_side = int(click_side)
        self._embedding: Embedding | None = None
        self._whole_work: tuple[np.ndarray, tuple[int, int], np.ndarray] | None = None

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
        self._whole_work = None
        # the first pass of every click works on the whole image downscaled: prepare it now,
        # while the image is being opened, rather than in the first click (~40 ms at 12 MP)
        h, w = f.shape[:2]
        self._work_image(f, self._sized(0, 0, w, h, self.click_side))

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        if image_format not in ("RGB", "BGR"):
            raise InputError(f"image_format must be 'RGB' or 'BGR', not {image_format!r}")
        if image_format == "BGR" and image.ndim == 3:
            image = image[..., ::-1]
        self.set_embedding(self.compute_embedding(image))

    def reset_image(self) -> None:
        self._embedding = None
        self._whole_work = None

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

        if prior is not None and len(positives) and prior.bbox() is None:
            prior = None  # an empty previous mask adds nothing to the clicks
        iterations = self.iterations if prior is None else self.refine_iterations
        side = self.max_side
        if rect is None and prior is None:
            # Points alone: GrabCut's background model needs the region to be mostly background,
            # so a first, coarse pass runs on the whole image; its result is then refined on a
            # region around it at a finer scale, like a previous mask.
            side = self.click_side
            whole = self._sized(0, 0, w, h, side)
            coarse = self._grabcut(rgb, whole, points, labels, None, None, iterations)
            coarse = _keep_components_with(coarse, whole.to_work(positives))
            if (whole.work_w, whole.work_h) == (w, h):  # already at full resolution
                return _outputs(coarse, whole, w, h, points, labels, return_logits)
            prior = _Prior.from_work(coarse, whole, w, h)
            iterations = self.refine_iterations
        roi = self._first_roi(w, h, rect, positives, prior, side)
        while True:
            work_mask = self._grabcut(rgb, roi, points, labels, rect, prior, iterations)
            if len(positives):
                work_mask = _keep_components_with(work_mask, roi.to_work(positives))
            if rect is not None or not roi.touches_inner_edge(work_mask, w, h):
                break
            roi = self._grown(roi, w, h, side)  # the object does not fit: more context, run again
        return _outputs(work_mask, roi, w, h, points, labels, return_logits)

    # --- regions of interest --------------------------------------------------------------------

    def _first_roi(
        self,
        w: int,
        h: int,
        rect: Box | None,
        positives: np.ndarray,
        prior: _Prior | None,
        side: int,
    ) -> _Roi:
        """The box or the previous mask, with any positive points and a margin of context
        (``box_margin``); the whole image when there is neither."""
        core = rect if rect is not None else (prior.bbox() if prior is not None else None)
        if core is None:
            return self._sized(0, 0, w, h, side)
        x0, y0, x1, y1 = _union(core, _points_box(positives))
        margin = max(8, round(self.box_margin * max(x1 - x0, y1 - y0)))
        return self._sized(
            max(0, x0 - margin),
            max(0, y0 - margin),
            min(w, x1 + margin),
            min(h, y1 + margin),
            side,
        )

    def _grown(self, roi: _Roi, w: int, h: int, side: int) -> _Roi:
        """``roi`` with its width and height doubled about its centre (clipped to the image)."""
        half_w, half_h = roi.x1 - roi.x0, roi.y1 - roi.y0
        cx, cy = (roi.x0 + roi.x1) // 2, (roi.y0 + roi.y1) // 2
        return self._sized(
            max(0, cx - half_w),
            max(0, cy - half_h),
            min(w, cx + half_w),
            min(h, cy + half_h),
            side,
        )

    @staticmethod
    def _sized(x0: int, y0: int, x1: int, y1: int, side: int) -> _Roi:
        """The ROI (x0, y0, x1, y1) with its work size: longest side ``side`` or less (never
        enlarged)."""
        scale = min(1.0, side / max(x1 - x0, y1 - y0))
        work_w = max(1, round((x1 - x0) * scale))
        work_h = max(1, round((y1 - y0) * scale))
        return _Roi(x0, y0, x1, y1, work_w, work_h)

    # --- GrabCut -----------------------------------------------------------------------------

    def _grabcut(
        self,
        rgb: np.ndarray,
        roi: _Roi,
        points: np.ndarray,
        labels: np.ndarray,
        rect: Box | None,
        prior: _Prior | None,
        iterations: int,
    ) -> np.ndarray:
        """Run GrabCut on the downscaled ROI; returns the (work_h, work_w) bool foreground."""
        work = self._work_image(rgb, roi)
        work_pts = roi.to_work(points)
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
            trimap[prior.on_work_grid(roi)] = cv2.GC_PR_FGD
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

        return self._run_grabcut(
            work,
            trimap,
            work_rect,
            iterations,
            plain_box=work_rect is not None and prior is None and len(points) == 0,
            grow_check=work_rect is None and prior is None,
        )

    def _work_image(self, rgb: np.ndarray, roi: _Roi) -> np.ndarray:
        """The ROI downscaled to its work size (area averaging) after a 3x3 median filter,
        which removes pixel noise and keeps edges. The whole image's is kept (per image, see
        ``set_embedding``): every click starts with it."""
        h, w = rgb.shape[:2]
        whole = (roi.x0, roi.y0, roi.x1, roi.y1) == (0, 0, w, h)
        key = (roi.work_w, roi.work_h)
        cached = self._whole_work  # (image, size, work image): one read, safe across threads
        if whole and cached is not None and cached[0] is rgb and cached[1] == key:
            return cached[2]
        crop = rgb[roi.y0 : roi.y1, roi.x0 : roi.x1]
        work = cv2.medianBlur(cv2.resize(crop, key, interpolation=cv2.INTER_AREA), 3)
        if whole:
            self._whole_work = (rgb, key, work)
        return work

    def _run_grabcut(
        self,
        work: np.ndarray,
        trimap: np.ndarray,
        work_rect: tuple[int, int, int, int] | None,
        iterations: int,
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
                        iterations, mode)  # fmt: skip
            result = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD))
            if result.sum() > floor:
                return result
            if attempt == 0 or result.sum() > best.sum():
                best = result
        return best


# --- previous masks (mask_input) ---------------------------------------------------------------


class _Prior:
    """A previous mask, readable on any ROI's work grid.

    ``values`` is a grid of logits (float, positive inside) or a mask (uint8 0/1) covering the
    image region starting at (x0, y0) with ``sx``, ``sy`` grid cells per image pixel (pixel
    centres as in :meth:`_Roi.to_work`). That is SAM's low-res frame for ``mask_input`` logits
    (sampled bilinearly, as SAM's upscaling would, without building a full-size mask), the image
    itself for a full-size mask, or a work grid for the first, coarse pass of a click."""

    def __init__(
        self, values: np.ndarray, x0: int, y0: int, sx: float, sy: float, w: int, h: int
    ) -> None:
        self.values = np.ascontiguousarray(values)
        self.x0, self.y0, self.sx, self.sy = x0, y0, sx, sy
        self.w, self.h = w, h

    @classmethod
    def from_low_res(cls, logits: np.ndarray, w: int, h: int) -> _Prior:
        lw, lh = _low_res_extent(w, h)
        return cls(logits[:lh, :lw].astype(np.float32), 0, 0, lw / w, lh / h, w, h)

    @classmethod
    def from_work(cls, work_mask: np.ndarray, roi: _Roi, w: int, h: int) -> _Prior:
        return cls(work_mask.astype(np.uint8), roi.x0, roi.y0, roi.sx, roi.sy, w, h)

    def bbox(self) -> Box | None:
        """(x0, y0, x1, y1) in image pixels holding every positive pixel; None if there is none."""
        x, y, gw, gh = cv2.boundingRect(np.ascontiguousarray(self.values > 0).view(np.uint8))
        if gw == 0:
            return None
        x0 = int(np.floor(self.x0 + x / self.sx))
        y0 = int(np.floor(self.y0 + y / self.sy))
        x1 = int(np.ceil(self.x0 + (x + gw) / self.sx))
        y1 = int(np.ceil(self.y0 + (y + gh) / self.sy))
        return max(0, x0), max(0, y0), min(self.w, x1), min(self.h, y1)

    def on_work_grid(self, roi: _Roi) -> np.ndarray:
        """(work_h, work_w) bool: the previous mask seen on ``roi``'s work grid."""
        # work pixel j -> image x + 0.5 = roi.x0 + (j + 0.5) / roi.sx -> grid u + 0.5 =
        # (x + 0.5 - x0) * sx: an affine map from the work grid to this grid
        ax, ay = self.sx / roi.sx, self.sy / roi.sy
        bx = (roi.x0 - self.x0 + 0.5 / roi.sx) * self.sx - 0.5
        by = (roi.y0 - self.y0 + 0.5 / roi.sy) * self.sy - 0.5
        logits = self.values.dtype != np.uint8
        sampled = cv2.warpAffine(
            self.values,
            np.array([[ax, 0.0, bx], [0.0, ay, by]]),
            (roi.work_w, roi.work_h),
            flags=(cv2.INTER_LINEAR if logits else cv2.INTER_NEAREST) | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE if logits else cv2.BORDER_CONSTANT,
        )
        return sampled > 0


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


def _work_mask_to_low_res_logits(work_mask: np.ndarray, roi: _Roi, w: int, h: int) -> np.ndarray:
    """Like :func:`mask_to_low_res_logits` for the mask that is ``work_mask`` on ``roi`` and
    empty elsewhere, without building it at full size: each low-res cell averages the work
    pixels by the area they share with it (cv2.INTER_AREA's rule), so the cost does not depend
    on the image size."""
    lw, lh = _low_res_extent(w, h)
    cols = _area_weights(lw, w / lw, roi.x0, 1 / roi.sx, roi.work_w)
    rows = _area_weights(lh, h / lh, roi.y0, 1 / roi.sy, roi.work_h)
    frac = rows @ work_mask.astype(np.float32) @ cols.T
    out = np.full((LOW_RES, LOW_RES), -LOGIT_SCALE, dtype=np.float32)
    out[:lh, :lw] = (frac * 2.0 - 1.0) * LOGIT_SCALE
    return out


def _area_weights(cells: int, cell: float, start: float, step: float, count: int) -> np.ndarray:
    """(cells, count) float32: the fraction of low-res cell c (covering [c * cell, (c + 1) *
    cell) image pixels) that work pixel j (covering [start + j * step, start + (j + 1) * step))
    fills."""
    cell_lo = np.arange(cells)[:, None] * cell
    pix_lo = start + np.arange(count)[None, :] * step
    overlap = np.minimum(cell_lo + cell, pix_lo + step) - np.maximum(cell_lo, pix_lo)
    return (np.clip(overlap, 0.0, None) / cell).astype(np.float32)


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


def _check_box(box: np.ndarray | None, w: int, h: int) -> Box | None:
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


def _check_mask_input(mask_input: np.ndarray | None, w: int, h: int) -> _Prior | None:
    """The previous mask from low-res logits (1, 256, 256) or a full-size mask/logits."""
    if mask_input is None:
        return None
    m = np.asarray(mask_input)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.dtype.kind == "f" and not np.isfinite(m).all():
        raise PromptError("mask_input contains NaN or infinity")
    if m.shape == (LOW_RES, LOW_RES) and (h, w) != (LOW_RES, LOW_RES):
        return _Prior.from_low_res(m, w, h)
    if m.shape == (h, w):
        return _Prior((m > 0).view(np.uint8), 0, 0, 1.0, 1.0, w, h)
    raise PromptError(
        f"mask_input must be (1, 256, 256) low-res logits or a ({h}, {w}) mask; got "
        f"{np.asarray(mask_input).shape}"
    )


# --- mask helpers ------------------------------------------------------------------------------


def _outputs(
    work_mask: np.ndarray,
    roi: _Roi,
    w: int,
    h: int,
    points: np.ndarray,
    labels: np.ndarray,
    return_logits: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``predict``'s results from the work mask of ``roi`` (the mask is empty outside it)."""
    mask = np.zeros((h, w), dtype=bool)
    mask[roi.y0 : roi.y1, roi.x0 : roi.x1] = _to_roi_size(work_mask, roi)
    _paint_seeds(mask, points, labels, _seed_radius(roi) / min(roi.sx, roi.sy))
    score = np.array([1.0 if work_mask.any() or mask.any() else 0.0], dtype=np.float32)
    low_res = _work_mask_to_low_res_logits(work_mask, roi, w, h)[None]
    if return_logits:
        out = np.where(mask, LOGIT_SCALE, -LOGIT_SCALE).astype(np.float32)[None]
    else:
        out = mask[None]
    return out, score, low_res


def _points_box(points: np.ndarray) -> Box | None:
    """The pixel box (x0, y0, x1, y1), end-exclusive, holding ``points`` (x, y); None if none."""
    if len(points) == 0:
        return None
    x0, y0 = (int(v) for v in points.min(axis=0))
    x1, y1 = (int(v) + 1 for v in points.max(axis=0))
    return x0, y0, x1, y1


def _union(a: Box, b: Box | None) -> Box:
    if b is None:
        return a
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _seed_radius(roi: _Roi) -> int:
    """Radius in work pixels of the definite-label disc around each point."""
    return max(2, round(max(roi.work_w, roi.work_h) / 100))


def _keep_components_with(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Only the 8-connected parts of ``mask`` that contain one of ``points`` (x, y in
    ``mask``'s pixels; points off the grid are moved onto its edge)."""
    count, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    h, w = mask.shape
    ids = {
        int(comp[min(max(round(y), 0), h - 1), min(max(round(x), 0), w - 1)]) for x, y in points
    } - {0}
    return np.isin(comp, list(ids)) if ids else mask


def _to_roi_size(work_mask: np.ndarray, roi: _Roi) -> np.ndarray:
    """The (work_h, work_w) bool mask scaled back to the ROI's size (bilinear, then >= 0.5)."""
    size = (roi.x1 - roi.x0, roi.y1 - roi.y0)
    if size == (roi.work_w, roi.work_h):
        return work_mask
    scaled = cv2.resize(work_mask.astype(np.uint8) * 255, size, interpolation=cv2.INTER_LINEAR)
    return scaled >= 128


def _paint_seeds(mask: np.ndarray, points: np.ndarray, labels: np.ndarray, radius: float) -> None:
    """Force full-resolution discs around seeds, in place: positives in the mask, negatives out."""
    r = max(1, round(radius))
    canvas = mask.view(np.uint8)  # the bool array's bytes (0 / 1), drawn on without a copy
    for (x, y), label in zip(points, labels, strict=True):
        cv2.circle(canvas, (round(x), round(y)), r, int(label), -1)
