"""How fast the annotation document saves, loads and exports a large project.

Builds a project of 200 images of 1024 x 768 (records with a known size; no image files are
needed) and 10,000 objects shaped like segmentation output (irregular blobs, some with holes),
then times save, load (in a new Python process, as when the app opens a project, and again in
this warm one), a COCO export and the other exports, and prints the figures next to the targets
(save <= 1 s, COCO export <= 3 s, load <= 1 s).

Run on a quiet machine:  flock -x /tmp/samdesk-cpu.lock python bench/bench_annotation.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from samdesk.annotation import Document, rle
from samdesk.annotation.geometry import rings_to_rle

WIDTH, HEIGHT = 1024, 768
TARGETS = {"save": 1.0, "load (new process)": 1.0, "load": 1.0, "export coco": 3.0}


def blob_ring(rng: np.random.Generator, radius: float) -> np.ndarray:
    """An irregular closed outline around the origin (N x 2), like a segmented object."""
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    wobble = 1 + 0.25 * np.sin(3 * angles + rng.uniform(0, 6)) + 0.1 * rng.standard_normal(48)
    radii = radius * np.clip(wobble, 0.4, 1.6)
    return np.stack((radii * np.cos(angles), radii * np.sin(angles)), axis=1)


def build(images: int, objects: int, seed: int = 0) -> Document:
    rng = np.random.default_rng(seed)
    doc = Document()
    image_ids = [
        doc.add_image(Path(f"images/frame_{n:04d}.png"), size=(WIDTH, HEIGHT))
        for n in range(images)
    ]
    labels = ["cell", "nucleus", "细胞", "débris 🧫", "vessel"]
    for n in range(objects):
        radius = float(rng.uniform(8, 60))
        centre = rng.uniform([radius, radius], [WIDTH - radius, HEIGHT - radius])
        rings = [(blob_ring(rng, radius) + centre).ravel().tolist()]
        counts = rings_to_rle(rings, HEIGHT, WIDTH)
        if n % 10 == 0:  # every tenth object has a hole
            inner = [(blob_ring(rng, radius / 3) + centre).ravel().tolist()]
            hole = rle.decode(rings_to_rle(inner, HEIGHT, WIDTH), HEIGHT, WIDTH)
            counts = rle.encode(rle.decode(counts, HEIGHT, WIDTH) & ~hole)
        doc.add_instance_rle(
            image_ids[n % images],
            counts,
            labels[n % len(labels)],
            score=float(rng.uniform(0.5, 1.0)),
            prompts={"points": [[float(centre[0]), float(centre[1])]], "labels": [1]},
        )
    return doc


_FRESH_LOAD = """
import sys, time
sys.path.insert(0, sys.argv[2])
from samdesk.annotation import Document
start, cpu = time.perf_counter(), time.process_time()
Document.load(sys.argv[1])
print(time.perf_counter() - start, time.process_time() - cpu)
"""


def load_in_fresh_process(project: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of ``Document.load`` in a new Python process, as when the app opens a
    project: nothing is warm (imports are done before the clock starts)."""
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", _FRESH_LOAD, str(project), root],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def timed(name: str, action, results: dict[str, tuple[float, float]]) -> object:
    """Run ``action``; record (wall seconds, CPU seconds of this process, all threads)."""
    start, cpu = time.perf_counter(), time.process_time()
    value = action()
    results[name] = (time.perf_counter() - start, time.process_time() - cpu)
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--all-formats", action="store_true", help="also time yolo/labelme/masks")
    args = parser.parse_args()
    print(f"building {args.images} images, {args.objects} objects ...", flush=True)
    doc = build(args.images, args.objects)
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        project = folder / "bench.samdesk.json"
        timed("save", lambda: doc.save(project), results)
        results["load (new process)"] = load_in_fresh_process(project)
        loaded = timed("load", lambda: Document.load(project), results)
        assert len(loaded.instances) == args.objects
        report = timed("export coco", lambda: loaded.export("coco", folder / "coco.json"), results)
        size_mb = project.stat().st_size / 1e6
        if args.all_formats:
            for fmt in ("yolo", "labelme", "masks"):
                timed(f"export {fmt}", lambda f=fmt: loaded.export(f, folder / f), results)
    print(f"project file: {size_mb:.1f} MB")
    print(report.summary())
    # Wall time is what a user waits; CPU time shows what the code costs when the shared
    # machine's other jobs take turns on the cores (then wall time grows, CPU time does not).
    failed = False
    for name, (seconds, cpu) in results.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else (" ok" if seconds <= target else " OVER TARGET")
        failed |= target is not None and seconds > target
        limit = f" (target <= {target:g} s)" if target else ""
        print(f"{name:19s} {seconds:7.3f} s wall, {cpu:7.3f} s CPU{limit}{verdict}")
    print(f"load average while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
