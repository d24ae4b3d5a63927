"""Generated masks for geometry, format and document tests (and the annotation benchmark).

Every fixture is an ``H x W`` ``bool`` array built from a fixed seed, so a failure is repeatable.
The set covers what breaks polygon code: holes, islands inside holes, several parts, one pixel,
empty, touching the border, one-pixel lines (straight and diagonal), pixels touching only at a
corner, concave shapes and noisy blobs.
"""

from __future__ import annotations

import cv2
import numpy as np

HEIGHT, WIDTH = 72, 96  # deliberately not square, to catch swapped axes


def blank(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    return np.zeros((height, width), dtype=bool)


def disk(cx: int, cy: int, radius: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    canvas = np.zeros((height, width), dtype=np.uint8)
    cv2.circle(canvas, (cx, cy), radius, 1, thickness=-1)
    return canvas.astype(bool)


def ring(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A disk with a round hole."""
    return disk(48, 36, 25, height, width) & ~disk(48, 36, 10, height, width)


def nested(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A ring whose hole holds an island, which has a hole of its own."""
    mask = ring(height, width) | disk(48, 36, 6, height, width)
    mask[36, 48] = False
    return mask


def parts(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Three separate parts of different shapes."""
    mask = disk(15, 15, 9, height, width)
    mask[40:60, 10:30] = True
    pts = np.array([[60, 10], [90, 20], [70, 40]], dtype=np.int32)
    canvas = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(canvas, [pts], 1)
    return mask | canvas.astype(bool)


def one_pixel(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    mask = blank(height, width)
    mask[20, 30] = True
    return mask


def corner_pixel(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    mask = blank(height, width)
    mask[height - 1, width - 1] = True
    return mask


def border(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Touches all four image borders: a frame plus a bar across."""
    mask = blank(height, width)
    mask[:3, :] = mask[-3:, :] = True
    mask[:, :2] = mask[:, -2:] = True
    mask[30:34, :] = True
    return mask


def full(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    return np.ones((height, width), dtype=bool)


def horizontal_line(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    mask = blank(height, width)
    mask[50, 5:90] = True
    return mask


def vertical_line(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    mask = blank(height, width)
    mask[3:70, 77] = True
    return mask


def diagonal_line(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A one-pixel line at 45 degrees: neighbours touch only at corners."""
    mask = blank(height, width)
    idx = np.arange(5, 65)
    mask[idx, idx + 10] = True
    return mask


def anti_diagonal_line(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    mask = blank(height, width)
    idx = np.arange(5, 65)
    mask[idx, 85 - idx] = True
    return mask


def steep_line(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """An anti-aliasing-free line at about 63 degrees (cv2, 8-connected)."""
    canvas = np.zeros((height, width), dtype=np.uint8)
    cv2.line(canvas, (10, 2), (40, 66), 1, thickness=1, lineType=cv2.LINE_8)
    return canvas.astype(bool)


def checker_pair(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Two 2 x 2 checkerboards: pixels touching only at a corner, both diagonals."""
    mask = blank(height, width)
    mask[10, 10] = mask[11, 11] = True
    mask[10, 21] = mask[11, 20] = True
    return mask


def concave(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A five-pointed star (concave vertices, thin spikes)."""
    angles = np.linspace(-np.pi / 2, 1.5 * np.pi, 11)[:-1]
    radii = np.where(np.arange(10) % 2 == 0, 30, 11)
    pts = np.stack((48 + radii * np.cos(angles), 36 + radii * np.sin(angles)), axis=1)
    canvas = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1)
    return canvas.astype(bool)


def blobs(height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> np.ndarray:
    """Smooth random blobs: several parts, some holes, like real segmentation output."""
    rng = np.random.default_rng(seed)
    field = cv2.GaussianBlur(rng.random((height, width)), (0, 0), 3.0)
    return field > np.quantile(field, 0.55)


def noise(height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> np.ndarray:
    """Salt-and-pepper: the worst case for polygons (many tiny parts and holes)."""
    rng = np.random.default_rng(seed)
    return rng.random((height, width)) < 0.3


def varied() -> dict[str, np.ndarray]:
    """Every fixture above except ``noise`` (name -> mask), for round-trip tests."""
    return {
        "ring": ring(),
        "nested": nested(),
        "parts": parts(),
        "one_pixel": one_pixel(),
        "corner_pixel": corner_pixel(),
        "border": border(),
        "full": full(),
        "horizontal_line": horizontal_line(),
        "vertical_line": vertical_line(),
        "diagonal_line": diagonal_line(),
        "anti_diagonal_line": anti_diagonal_line(),
        "steep_line": steep_line(),
        "checker_pair": checker_pair(),
        "concave": concave(),
        "disk": disk(30, 40, 17),
        "blobs": blobs(),
        "blobs_2": blobs(seed=2),
    }


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def rle_string(numbers: list[int]) -> str:
    """Pack numbers into a COCO compressed RLE string exactly as pycocotools does (5-bit groups,
    least significant first, ``0x20`` = more follows, sign in ``0x10`` of the last group),
    *without* any checking: for building malformed strings that pycocotools' encoder cannot."""
    out = []
    for value in numbers:
        more = True
        while more:
            group = value & 0x1F
            value >>= 5
            more = value != -1 if group & 0x10 else value != 0
            out.append(chr(group + (0x20 if more else 0) + 48))
    return "".join(out)


def wrapped_rle(height: int, width: int) -> str:
    """Runs that are each far longer than the mask but whose int64 sum wraps around to exactly
    ``height * width``: 64 runs of 2**58 (summing to 2**64) and one of ``height * width``."""
    runs = [1 << 58] * 64 + [height * width]
    return rle_string([r if k < 3 else r - runs[k - 2] for k, r in enumerate(runs)])
