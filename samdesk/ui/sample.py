"""The sample image on the start view, drawn by this module (no third-party pictures).

A synthetic fluorescence-microscopy-like scene, 1024 x 768: bright cells of several sizes on a
dark, noisy background, some with a darker nucleus, two ring-shaped (a hole in the middle) —
good for trying clicks, boxes, refinements and holes. Deterministic: the same pixels on every
machine, so the copy in ``resources/`` can be regenerated (``python -m samdesk.ui.sample``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 1024, 768
SAMPLE_NAME = "sample-cells.jpg"
JPEG_QUALITY = 92

# (centre x, centre y, semi-axis a, semi-axis b, angle, grey level, kind)
_CELLS = [
    (190, 200, 120, 85, 20, 215, "nucleus"),
    (470, 150, 70, 60, 0, 190, "plain"),
    (760, 220, 130, 100, -15, 200, "ring"),
    (300, 520, 95, 95, 0, 225, "ring"),
    (590, 470, 80, 55, 35, 180, "nucleus"),
    (860, 560, 105, 70, 70, 205, "nucleus"),
    (120, 650, 50, 40, 10, 170, "plain"),
    (480, 680, 45, 35, -30, 195, "plain"),
    (660, 660, 35, 30, 0, 220, "plain"),
    (960, 80, 40, 32, 45, 185, "plain"),
]
#: A faint warm tint, as in a stained fluorescence channel; objects differ by brightness only,
#: so that the label colours of the overlays stand out.
_TINT = (1.0, 0.96, 0.88)


def _ellipse_mask(a: float, b: float, cx: float, cy: float, angle: float) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.ellipse(mask, ((cx, cy), (2 * a, 2 * b), angle), 255, -1, cv2.LINE_AA)
    return mask.astype(np.float32) / 255.0


def make_sample() -> np.ndarray:
    """The sample image: (768, 1024, 3) uint8 RGB."""
    rng = np.random.default_rng(20240605)
    base = rng.normal(0.0, 1.0, (HEIGHT // 8, WIDTH // 8)).astype(np.float32)
    base = cv2.resize(base, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    background = 18 + 6 * base
    image = np.repeat(background[:, :, None], 3, axis=2)
    for cx, cy, a, b, angle, grey, kind in _CELLS:
        color = tuple(grey * t for t in _TINT)
        body = _ellipse_mask(a, b, cx, cy, angle)
        if kind == "ring":
            body = np.clip(body - _ellipse_mask(a * 0.5, b * 0.5, cx, cy, angle), 0.0, 1.0)
        body = cv2.GaussianBlur(body, (0, 0), 1.2)
        texture = 0.80 + 0.20 * cv2.GaussianBlur(
            rng.random((HEIGHT, WIDTH)).astype(np.float32), (0, 0), 3.0
        )
        shade = body * texture
        for channel in range(3):
            image[:, :, channel] = image[:, :, channel] * (1 - body) + shade * color[channel]
        if kind == "nucleus":
            nucleus = cv2.GaussianBlur(
                _ellipse_mask(a * 0.35, b * 0.35, cx + a * 0.15, cy - b * 0.1, angle), (0, 0), 2.0
            )
            image = image * (1 - 0.55 * nucleus[:, :, None])
    image += rng.normal(0.0, 3.0, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def resources_dir() -> Path:
    """Where icons and the sample live: ``samdesk/resources`` in an installed wheel (the
    top-level ``resources/`` folder is packaged there), else ``resources/`` of a checkout."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "resources"
    return installed if installed.is_dir() else package.parent / "resources"


def sample_path(folder: Path | None = None) -> Path:
    """A copy of the sample image the user may annotate: in ``folder`` (default: the user data
    folder's ``sample`` sub-folder), so its project is saved there and never next to the
    installed resources. Copied from ``resources/`` when present, else drawn."""
    from samdesk.engine.paths import data_dir

    target = (folder or data_dir() / "sample") / SAMPLE_NAME
    if target.is_file():
        return target
    shipped = resources_dir() / SAMPLE_NAME
    if shipped.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(shipped.read_bytes())
        tmp.replace(target)
        return target
    return write_sample(target)


def write_sample(path: Path) -> Path:
    """Write the sample as a JPEG to ``path`` (atomically: temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(make_sample(), cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError(f"could not encode the sample image for {path}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data.tobytes())
    tmp.replace(path)
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else resources_dir() / SAMPLE_NAME
    print(write_sample(target))
