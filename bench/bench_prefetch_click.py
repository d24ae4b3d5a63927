"""Click latency while the next image is being encoded in the background.

The app prefetches (encodes) the next image while the user clicks on the current one. This
measures click latency (predict on a 1024x1024 image) in three situations:

* idle: nothing else running;
* naive: a background thread encodes with torch's default threads at normal priority;
* samdesk: the background thread encodes with ``compute_embedding(num_threads=1)`` after
  ``lower_current_thread_priority()`` (ADR 0013), the foreground keeps its threads.

The encoder is a random ViT-B (a long encode); clicks come every 30 ms.

Run on a quiet machine:  flock -x /tmp/samdesk-cpu.lock python bench/bench_prefetch_click.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_encoder import scene  # noqa: E402
from samdesk.engine.predictor import Predictor  # noqa: E402
from samdesk.engine.predictor_threads import lower_current_thread_priority  # noqa: E402
from samdesk.model.testing import save_random_checkpoint  # noqa: E402


def clicks(predictor: Predictor, n: int, gap_s: float = 0.03) -> np.ndarray:
    rng = np.random.default_rng(1)
    out = []
    for _ in range(n):
        point = np.array([[rng.uniform(0, 1024), rng.uniform(0, 1024)]])
        start = time.perf_counter()
        predictor.predict(point, np.array([1]), multimask_output=True)
        out.append(time.perf_counter() - start)
        time.sleep(gap_s)
    return np.array(out) * 1000.0


def during_encode(predictor: Predictor, n: int, *, tuned: bool) -> tuple[np.ndarray, int]:
    stop = threading.Event()
    started = threading.Event()
    encodes = []
    other = scene(1024, 1024, seed=7)

    def background() -> None:
        if tuned:
            lower_current_thread_priority(10)
        while not stop.is_set():
            started.set()
            predictor.compute_embedding(other, num_threads=1 if tuned else None)
            encodes.append(1)

    worker = threading.Thread(target=background, daemon=True)
    worker.start()
    started.wait()
    time.sleep(0.5)  # well into the encode
    try:
        return clicks(predictor, n), len(encodes)
    finally:
        stop.set()
        worker.join()


def row(name: str, t: np.ndarray) -> str:
    return (
        f"  {name:40s} median {np.median(t):6.1f}  p95 {np.percentile(t, 95):6.1f}  "
        f"max {t.max():6.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clicks", type=int, default=60)
    parser.add_argument("--arch", default="vit_b", help="encoder of the background encode")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_random_checkpoint(Path(tmp) / "model.pth", args.arch, seed=0)
        predictor = Predictor.from_checkpoint(ckpt, device="cpu", hash_cache_dir=tmp)
        predictor.set_image(scene(1024, 1024))
        print(f"torch {torch.__version__}, {args.threads} threads, {args.arch} background encode")
        idle = clicks(predictor, args.clicks)
        naive, _ = during_encode(predictor, args.clicks, tuned=False)
        tuned, _ = during_encode(predictor, args.clicks, tuned=True)
        print(row("idle", idle))
        print(row("during encode, naive (default threads)", naive))
        print(row("during encode, 1 thread + lower priority", tuned))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
