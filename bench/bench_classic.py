"""Speed and accuracy of the Classic (GrabCut) backend: a box, a click and a refinement click
on textured, noisy synthetic scenes at 640x480 and 4000x3000.

Run on a quiet machine (other engineers share the CPU)::

    flock -x /tmp/samdesk-cpu.lock python bench/bench_classic.py
    # before/after: the same figures for another version of classic.py, e.g. the previous one
    git show HEAD~1:samdesk/engine/classic.py > /tmp/classic_before.py
    flock -x /tmp/samdesk-cpu.lock python bench/bench_classic.py --baseline /tmp/classic_before.py

Scenes are those of tests/test_classic.py (ellipse, rectangle, triangle, star; object and
background 25-45 grey levels apart, sinusoidal texture, noise sigma 20), drawn at 320x240 and
resized to the benchmark size with fresh noise (sigma 12) added at that size. Prompts: the
object's tight box; one click at the point deepest inside the object; then a refinement: a
second click at the point deepest inside the error of the first mask (positive if it belongs to
the object, else negative) with the first result's low-res logits as ``mask_input``, as the app
sends it. Each prompt is timed ``--repeats`` times; the table shows the median and the worst
time over scenes and repeats, and the mean / minimum IoU against the truth.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_classic import SHAPES, _bbox, _inner_point, _iou, _scene  # noqa: E402

SIZES = ((480, 640), (3000, 4000))


def load_module(path: Path, name: str) -> ModuleType:
    """A classic.py from any path (e.g. an older version), imported under ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def scene(kind: str, seed: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 image and (H, W) bool truth."""
    image, truth = _scene(kind, seed)
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    noise = np.random.default_rng(seed + 100).normal(0, 12, image.shape)
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    truth = cv2.resize(truth.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    return image, truth.astype(bool)


def second_click(mask: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, int]:
    """(1, 2) x, y deepest inside the error of ``mask``, and its label (1 = object)."""
    error = (mask != truth).astype(np.uint8)
    depth = cv2.distanceTransform(error, cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(depth.argmax()), depth.shape)
    return np.array([[x, y]], dtype=np.float64), int(truth[y, x])


def timed(backend: object, repeats: int, **prompts: object) -> tuple[list[float], tuple]:
    """``repeats`` wall-clock times of ``backend.predict(**prompts)`` and its last result."""
    times, result = [], ()
    for _ in range(repeats):
        start = time.perf_counter()
        result = backend.predict(**prompts)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - start)
    return times, result


def run(module: ModuleType, label: str, scenes_per_shape: int, repeats: int) -> None:
    for h, w in SIZES:
        scenes = [scene(k, s, h, w) for k in SHAPES for s in range(scenes_per_shape)]
        backend = module.ClassicBackend()
        figures: dict[str, tuple[list[float], list[float]]] = {
            "box": ([], []),
            "click": ([], []),
            "refinement click": ([], []),
        }
        for image, truth in scenes:
            backend.set_image(image)
            box = _bbox(truth)
            times, (masks, _, _) = timed(backend, repeats, box=box)
            figures["box"][0].extend(times)
            figures["box"][1].append(_iou(masks[0], truth))

            first = _inner_point(truth)
            times, (masks, _, low_res) = timed(
                backend, repeats, point_coords=first, point_labels=np.array([1])
            )
            figures["click"][0].extend(times)
            figures["click"][1].append(_iou(masks[0], truth))

            point, positive = second_click(masks[0], truth)
            coords, labels = np.vstack([first, point]), np.array([1, positive])
            times, (masks, _, _) = timed(
                backend, repeats, point_coords=coords, point_labels=labels, mask_input=low_res
            )
            figures["refinement click"][0].extend(times)
            figures["refinement click"][1].append(_iou(masks[0], truth))

        for prompt, (times, ious) in figures.items():
            print(
                f"{label:<8} {w}x{h:<5} {prompt:<17} median {1000 * statistics.median(times):5.0f} "
                f"ms  worst {1000 * max(times):5.0f} ms  IoU mean {np.mean(ious):.3f} "
                f"min {np.min(ious):.3f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="another classic.py to measure first")
    parser.add_argument("--scenes", type=int, default=2, help="scenes per shape (4 shapes)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per prompt and scene")
    args = parser.parse_args()
    print(
        f"Classic backend, {len(SHAPES) * args.scenes} scenes x {args.repeats} repeats per "
        f"prompt; OpenCV {cv2.__version__}, {cv2.getNumThreads()} OpenCV threads"
    )
    if args.baseline is not None:
        run(load_module(args.baseline, "classic_baseline"), "before", args.scenes, args.repeats)
    from samdesk.engine import classic

    run(classic, "now", args.scenes, args.repeats)


if __name__ == "__main__":
    main()
