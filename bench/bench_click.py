"""Click latency: samdesk's Predictor.predict vs segment-anything's SamPredictor.predict.

One click = prompt encoder + mask decoder + post-processing to the image size (masks as bool
arrays), single foreground point, multimask on and off, on 1024x1024 and 1536x2048 images; plus
the app's refinement click (a point with the previous mask's low-res logits as ``mask_input``,
one mask), row "1+mask". Both run in this process on the same random weights (the decoder is the
same for every SAM model; the small encoder only keeps set-up short), at the same thread count.

Run on a quiet machine:  flock -x /tmp/samdesk-cpu.lock python bench/bench_click.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

LABEL = np.array([1])
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_encoder import scene  # noqa: E402
from samdesk.engine.predictor import Predictor  # noqa: E402
from samdesk.model.testing import save_random_checkpoint  # noqa: E402
from tests.support.official import official_predictor  # noqa: E402


def latencies(fns, n: int, rounds: int = 3, warmup: int = 3) -> list[np.ndarray]:
    """Milliseconds per call of each function: ``rounds`` rounds in which each function runs
    ``n / rounds`` times in a row (its own steady state, as in an app that runs only one of
    them), so a noisy stretch on a shared machine is spread over all of them."""
    out: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, times in zip(fns, out, strict=True):
            for _ in range(warmup):
                fn()
            for _ in range(max(1, n // rounds)):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
    return [np.array(times) * 1000.0 for times in out]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clicks", type=int, default=60, help="timed clicks per case")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {args.threads} threads; latency per click in ms")
    print(
        f"{'image':>10} {'masks':>6} | {'official med':>12} {'p95':>6} | "
        f"{'samdesk med':>11} {'p95':>6} | ratio"
    )
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_random_checkpoint(Path(tmp) / "small.pth", "small", seed=0)
        ours = Predictor.from_checkpoint(ckpt, device="cpu", precision="fp32", hash_cache_dir=tmp)
        theirs = official_predictor(ckpt)
        for h, w in ((1024, 1024), (1536, 2048)):
            image = scene(h, w)
            ours.set_image(image)
            theirs.set_image(image)
            first = theirs.predict(np.array([[w / 2, h / 2]]), LABEL)
            previous = first[2][np.argmax(first[1])][None]  # (1, 256, 256) low-res logits
            for case in ("3", "1", "1+mask"):
                multimask = case == "3"
                mask_input = previous if case == "1+mask" else None
                points = [np.array([[rng.uniform(0, w), rng.uniform(0, h)]]) for _ in range(8)]
                i, j = iter(range(10**9)), iter(range(10**9))  # the same points for both

                def click_theirs(p=points, m=multimask, mi=mask_input, it=i):
                    theirs.predict(p[next(it) % len(p)], LABEL, mask_input=mi, multimask_output=m)

                def click_ours(p=points, m=multimask, mi=mask_input, it=j):
                    ours.predict(p[next(it) % len(p)], LABEL, mask_input=mi, multimask_output=m)

                t_off, t_ours = latencies([click_theirs, click_ours], args.clicks)
                med_off, med_ours = np.median(t_off), np.median(t_ours)
                print(
                    f"{h}x{w:<5} {case:>6} | {med_off:12.1f} "
                    f"{np.percentile(t_off, 95):6.1f} | {med_ours:11.1f} "
                    f"{np.percentile(t_ours, 95):6.1f} | {med_ours / med_off:.2f}x"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
