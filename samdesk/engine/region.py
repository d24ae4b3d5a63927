"""Segmenting a crop of a large image: the crop box and the exact coordinate shifts (no Qt).

SAM resizes whatever it encodes so that the longest side is 1024 pixels, so on a 20,000-pixel
image a whole-image embedding sees one pixel per 20 and small objects vanish. In *region mode*
the app encodes only the part of the image in view (a :class:`Region`), runs the prompts on that
crop and puts the crop's masks back into the full image at exactly the crop's offset (ADR 0066).

Frames: full-image pixels (x, y) and region-local pixels (u, v) = (x - x0, y - y0). A region is
an integer, end-exclusive pixel box ``[x0, x1) x [y0, y1)`` inside the image.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from samdesk.errors import PromptError

#: Smallest region side (pixels) the app encodes; a smaller view is widened around its centre.
MIN_REGION_SIDE = 256
#: Largest region side (pixels): 4x SAM's input, so an object of 8 pixels still spans 2 input
#: pixels. A larger view is cut to this size around its centre (or around the prompt).
MAX_REGION_SIDE = 4096
#: The app turns region mode on by itself for an image whose longest side exceeds this.
AUTO_REGION_SIDE = 4 * 1024


@dataclass(frozen=True, order=True)
class Region:
    """An integer pixel box ``[x0, x1) x [y0, y1)`` of an image (end-exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int

    def __post_init__(self) -> None:
        if not (0 <= self.x0 < self.x1 and 0 <= self.y0 < self.y1):
            raise ValueError(f"not a region: {self}")

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the crop."""
        return self.height, self.width

    @property
    def slices(self) -> tuple[slice, slice]:
        """``image[region.slices]`` is the crop (rows, columns)."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.x0, self.y0, self.x1, self.y1

    def contains(self, x: float, y: float) -> bool:
        """Whether pixel (x, y) (full-image pixel indices) lies in the region."""
        return self.x0 <= x < self.x1 and self.y0 <= y < self.y1

    def contains_box(self, box: tuple[float, float, float, float]) -> bool:
        """Whether an inclusive pixel box (x0, y0, x1, y1) lies entirely in the region."""
        bx0, by0, bx1, by1 = box
        return self.contains(bx0, by0) and self.contains(bx1, by1)

    def fits(self, width: int, height: int) -> bool:
        """Whether the region lies inside an image of ``width`` x ``height``."""
        return self.x1 <= width and self.y1 <= height

    # --- building ------------------------------------------------------------------------

    @classmethod
    def around(
        cls,
        view: tuple[float, float, float, float],
        image_size: tuple[int, int],
        *,
        include: tuple[float, float, float, float] | None = None,
        min_side: int = MIN_REGION_SIDE,
        max_side: int = MAX_REGION_SIDE,
    ) -> Region:
        """The region to encode for a view of the image.

        Args:
            view: the visible rectangle (x0, y0, x1, y1) in continuous image coordinates (may
                reach outside the image).
            image_size: (width, height) of the image.
            include: an inclusive pixel box (x0, y0, x1, y1) the region should contain (the
                prompt that asked for it); kept inside when it fits in ``max_side``.
            min_side / max_side: bounds on each side (an image smaller than ``min_side`` gives
                its full side).

        Each axis: the view clamped to the image and rounded outwards to whole pixels; widened
        to ``min_side`` or cut to ``max_side`` around the centre of ``include`` (else of the
        view); then shifted (never resized) to keep ``include`` and stay inside the image.
        """
        width, height = image_size
        if width < 1 or height < 1:
            raise ValueError(f"image size must be positive, not {image_size}")
        vx0, vy0, vx1, vy1 = view
        ix0 = iy0 = ix1 = iy1 = None
        if include is not None:
            ix0, iy0, ix1, iy1 = include
        x0, x1 = _axis(vx0, vx1, width, ix0, ix1, min_side, max_side)
        y0, y1 = _axis(vy0, vy1, height, iy0, iy1, min_side, max_side)
        return cls(x0, y0, x1, y1)

    # --- coordinates ---------------------------------------------------------------------

    def point_to_local(self, x: float, y: float) -> tuple[float, float]:
        return x - self.x0, y - self.y0

    def point_to_full(self, u: float, v: float) -> tuple[float, float]:
        return u + self.x0, v + self.y0

    def to_local(self, prompt: Any) -> Any:
        """The prompt (a :class:`samdesk.engine.worker.Prompt` or any dataclass with
        ``point_coords`` (N, 2) and ``box`` (4,)) in region-local pixels: x - x0, y - y0.

        Points must lie in the region (:class:`PromptError` otherwise: the caller starts a new
        region or refuses). A box is clamped to the region. ``mask_input`` is passed unchanged
        (it is in the low-resolution frame of the region's own embedding).
        """
        coords = prompt.point_coords
        if coords is not None:
            coords = np.asarray(coords, dtype=np.float32).reshape(-1, 2)
            outside = [
                (float(x), float(y))
                for x, y in coords
                if not self.contains(math.floor(x), math.floor(y))
            ]
            if outside:
                x, y = outside[0]
                raise PromptError(
                    f"the point ({x:g}, {y:g}) lies outside the region being segmented "
                    f"(x {self.x0}-{self.x1 - 1}, y {self.y0}-{self.y1 - 1})"
                )
            coords = coords - np.array([self.x0, self.y0], dtype=np.float32)
        box = prompt.box
        if box is not None:
            bx0, by0, bx1, by1 = (float(v) for v in np.asarray(box, dtype=np.float32).reshape(4))
            bx0, bx1 = (min(max(v - self.x0, 0.0), self.width - 1.0) for v in (bx0, bx1))
            by0, by1 = (min(max(v - self.y0, 0.0), self.height - 1.0) for v in (by0, by1))
            box = np.array([bx0, by0, bx1, by1], dtype=np.float32)
        return replace(prompt, point_coords=coords, box=box)

    def to_full(self, masks: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
        """Local masks (C, h, w) (or one (h, w)) placed into zeros of the full ``image_shape``
        (H, W) at (y0, x0): local pixel (u, v) becomes full pixel (u + x0, v + y0)."""
        masks = np.asarray(masks)
        if masks.shape[-2:] != self.shape:
            raise ValueError(f"masks of shape {masks.shape} are not this region's {self.shape}")
        height, width = image_shape
        if not self.fits(width, height):
            raise ValueError(f"{self} does not fit in an image of {width} x {height}")
        out = np.zeros((*masks.shape[:-2], height, width), dtype=masks.dtype)
        out[..., self.y0 : self.y1, self.x0 : self.x1] = masks
        return out

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The region of an (H, W, ...) image, contiguous (a copy unless already contiguous)."""
        if not self.fits(int(image.shape[1]), int(image.shape[0])):
            raise ValueError(f"{self} does not fit in an image of shape {image.shape}")
        return np.ascontiguousarray(image[self.slices])

    def cache_hash(self, content_hash: str) -> str:
        """The embedding-cache key of this region of the image with ``content_hash``: a hex
        digest of both, so every cache (memory or disk) keeps regions apart from whole images."""
        text = f"{content_hash}:region:{self.x0},{self.y0},{self.x1},{self.y1}"
        return hashlib.sha256(text.encode()).hexdigest()


def _axis(
    v0: float,
    v1: float,
    size: int,
    i0: float | None,
    i1: float | None,
    min_side: int,
    max_side: int,
) -> tuple[int, int]:
    """One axis of :meth:`Region.around`: an integer [a, b) inside [0, size)."""
    lo = max(0, min(size - 1, math.floor(min(v0, v1))))
    hi = max(lo + 1, min(size, math.ceil(max(v0, v1))))
    low_bound = min(size, max(1, min_side))
    high_bound = min(size, max(low_bound, max_side))
    length = min(max(hi - lo, low_bound), high_bound)
    if length != hi - lo:
        centre = (lo + hi) / 2 if i0 is None or i1 is None else (i0 + i1 + 1) / 2
        lo = math.floor(centre - length / 2)
    if i0 is not None and i1 is not None:
        want0, want1 = math.floor(min(i0, i1)), math.floor(max(i0, i1)) + 1
        if want1 - want0 <= length:  # shift to hold the prompt (it fits)
            lo = min(max(lo, want1 - length), want0)
    lo = min(max(0, lo), size - length)
    return lo, lo + length
