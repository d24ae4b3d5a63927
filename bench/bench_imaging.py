"""Timings of samdesk.imaging: loading 12 MP images of each kind, thumbnails, hashing, refusing a
decompression bomb, and a region of a 400 MP tiled TIFF.

Run on a quiet machine (other engineers share the CPU)::

    flock -x /tmp/samdesk-cpu.lock python bench/bench_imaging.py

Every figure is the median of ``--repeats`` runs (wall clock). The files are generated in a
temporary folder and deleted afterwards: a 4000x3000 photo-like image (smooth, so it compresses
as photos do) saved as JPEG (quality 90) and PNG (fast compression), a uint16 TIFF, a float32
TIFF with one +Inf pixel, 200 MiB of random bytes, a 100 x 100 kilopixel PNG header with almost
no data, and a 20,000 x 20,000 deflate-tiled TIFF whose tiles share one compressed tile (a few kB
on disk).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from samdesk.errors import ImageTooLargeError  # noqa: E402
from samdesk.imaging import (  # noqa: E402
    file_sha256,
    load_image,
    probe_image,
    read_region,
    thumbnail,
)
from tests.support.images import forged_png, shared_tile_tiff  # noqa: E402

HASHED_MIB = 200


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(what: str, seconds: float, extra: str = "") -> None:
    shown = f"{seconds * 1000:8.1f} ms" if seconds < 10 else f"{seconds:8.1f} s "
    print(f"{what:<58} {shown}{extra}", flush=True)


def photo_like(height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8: random colours enlarged 10x (bicubic), smooth like a photo."""
    small = np.random.default_rng(0).integers(0, 256, (height // 10, width // 10, 3), np.uint8)
    large = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(large)


def refuse(path: Path) -> None:
    try:
        probe_image(path)
    except ImageTooLargeError:
        return
    raise SystemExit(f"{path.name} was not refused")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure (median)")
    args = parser.parse_args()
    n = args.repeats
    with tempfile.TemporaryDirectory(prefix="samdesk-bench-") as tmp:
        folder = Path(tmp)
        photo = photo_like(3000, 4000)
        jpeg, png = folder / "photo.jpg", folder / "photo.png"
        Image.fromarray(photo).save(jpeg, quality=90)
        Image.fromarray(photo).save(png, compress_level=1)
        report(
            f"load_image JPEG 4000x3000 ({jpeg.stat().st_size / 1e6:.1f} MB)",
            median_seconds(lambda: load_image(jpeg), n),
        )
        report(
            "  Pillow alone: open, decode, to numpy (for comparison)",
            median_seconds(lambda: np.asarray(Image.open(jpeg).convert("RGB")), n),
        )
        report(
            "thumbnail JPEG 4000x3000 -> 512 (DCT scaling)",
            median_seconds(lambda: thumbnail(jpeg, 512), n),
        )
        report(
            f"load_image PNG 4000x3000 ({png.stat().st_size / 1e6:.1f} MB)",
            median_seconds(lambda: load_image(png), n),
        )

        rng = np.random.default_rng(1)
        deep = folder / "deep.tif"
        tifffile.imwrite(deep, (rng.random((3000, 4000)) * 4000).astype(np.uint16))
        report("load_image TIFF uint16 4000x3000", median_seconds(lambda: load_image(deep), n))
        values = rng.random((3000, 4000)).astype(np.float32)
        values[0, 0] = np.inf
        floats = folder / "float.tif"
        tifffile.imwrite(floats, values)
        report(
            "load_image TIFF float32 4000x3000 with one +Inf",
            median_seconds(lambda: load_image(floats), n),
        )

        blob = folder / "blob.bin"
        blob.write_bytes(rng.integers(0, 256, HASHED_MIB << 20, np.uint8).tobytes())
        seconds = median_seconds(lambda: file_sha256(blob), max(1, n // 2))
        report(f"file_sha256 {HASHED_MIB} MiB", seconds, f"  ({HASHED_MIB / seconds:,.0f} MiB/s)")
        blob.unlink()

        bomb = forged_png(folder / "bomb.png", 100_000, 100_000)
        report(
            f"refuse a PNG claiming 100,000 x 100,000 ({bomb.stat().st_size} bytes)",
            median_seconds(lambda: refuse(bomb), n),
        )

        tile = (np.add.outer(np.arange(256) * 3, np.arange(256) * 5) % 251).astype(np.uint8)
        huge = shared_tile_tiff(folder / "huge.tif", 20_000, 20_000, tile)
        report(
            "read_region 1024x768 of a 400 MP tiled TIFF",
            median_seconds(lambda: read_region(huge, 9000, 9000, 10024, 9768), n),
        )
        report(
            "thumbnail 1024 of a 400 MP tiled TIFF (max_pixels raised)",
            median_seconds(lambda: thumbnail(huge, 1024, max_pixels=400_000_000), max(1, n // 2)),
        )


if __name__ == "__main__":
    main()
