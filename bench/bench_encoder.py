"""Image encoder speed: samdesk vs the official segment-anything vs ONNX Runtime, same weights.

Builds a seeded random ViT-B (and MobileSAM TinyViT) in the official checkpoint layout, then
times ``set_image`` of samdesk's Predictor (default precision and fp32), segment-anything's
SamPredictor, and the official encoder exported to ONNX run by ONNX Runtime (fp32 and with int8
dynamic quantisation, what X-AnyLabeling / AnyLabeling ship), all at the same thread count. Also
reports how close samdesk's embedding and masks are to the official ones and the peak RSS of a
process holding ViT-B with an image set.

Run on a quiet machine:  flock -x /tmp/samdesk-cpu.lock python bench/bench_encoder.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from samdesk.engine.predictor import Predictor  # noqa: E402
from samdesk.engine.predictor_images import preprocess  # noqa: E402
from samdesk.model.testing import save_random_checkpoint  # noqa: E402


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A synthetic photo-like RGB image: smooth gradients, a few objects, texture, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 180 + 40, yy / h * 150 + 60, (xx + yy) / (h + w) * 120 + 50], -1)
    for _ in range(6):
        cy, cx, r = rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w, rng.uniform(0.05, 0.2)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < (r * min(h, w)) ** 2
        img[inside] = rng.uniform(0, 255, 3)
    img += 20 * np.sin(xx / 7.0)[..., None] * np.cos(yy / 11.0)[..., None]
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def timed(fn, repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def fmt(times: list[float]) -> str:
    return f"{statistics.median(times):7.2f} s  (min {min(times):.2f}, n={len(times)})"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def rss_probe(checkpoint: str, threads: int) -> None:
    """Child process: load ViT-B, set an image, print peak RSS in MB as JSON."""
    import resource

    torch.set_num_threads(threads)
    predictor = Predictor.from_checkpoint(
        checkpoint, device="cpu", hash_cache_dir=tempfile.gettempdir()
    )
    predictor.set_image(scene(1024, 1024))
    predictor.predict(np.array([[500.0, 500.0]]), np.array([1]))
    # VmHWM belongs to this process image; ru_maxrss would include the parent's peak on Linux
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak_kb = int(line.split()[1])
    print(json.dumps({"peak_rss_mb": peak_kb / 1024}))


def onnx_times(encoder: torch.nn.Module, x: torch.Tensor, folder: Path, threads: int, repeats: int):
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32_path = folder / "encoder.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder,
            (x,),
            str(fp32_path),
            opset_version=17,
            input_names=["x"],
            output_names=["y"],
            dynamo=False,
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    results = {}
    session = ort.InferenceSession(str(fp32_path), options, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    results["ONNX Runtime fp32"] = (timed(lambda: session.run(None, feed), repeats), session)
    int8_path = folder / "encoder_int8.onnx"
    try:
        logging.getLogger().setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)
        q_session = ort.InferenceSession(
            str(int8_path), options, providers=["CPUExecutionProvider"]
        )
        results["ONNX Runtime int8"] = (
            timed(lambda: q_session.run(None, feed), repeats),
            q_session,
        )
    except Exception as err:  # report, do not hide: int8 quantisation is optional
        print(f"  (int8 quantisation failed: {type(err).__name__}: {err})")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--official-repeats", type=int, default=2)
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime figures")
    parser.add_argument("--no-mobile", action="store_true", help="skip MobileSAM")
    parser.add_argument("--bf16", action="store_true", help="also time precision='bf16'")
    parser.add_argument("--rss-probe", metavar="CKPT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_probe:
        rss_probe(args.rss_probe, args.threads)
        return 0

    sys.path.insert(0, str(ROOT))
    from tests.support.official import official_predictor

    torch.set_num_threads(args.threads)
    image = scene(1024, 1024)
    print(f"torch {torch.__version__}, {args.threads} threads, image 1024x1024, random weights")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ckpt = save_random_checkpoint(folder / "sam_vit_b.pth", "vit_b", seed=0)
        ours = Predictor.from_checkpoint(ckpt, device="cpu", hash_cache_dir=folder)
        ours_fp32 = Predictor.from_checkpoint(
            ckpt, device="cpu", precision="fp32", hash_cache_dir=folder
        )
        theirs = official_predictor(ckpt)
        rows: dict[str, list[float]] = {}
        rows[f"samdesk ({ours.precision}, default)"] = timed(
            lambda: ours.set_image(image), args.repeats
        )
        if ours.precision != "fp32":
            rows["samdesk fp32"] = timed(lambda: ours_fp32.set_image(image), args.repeats)
        if ours.precision != "bf16" and args.bf16:
            ours_bf16 = Predictor.from_checkpoint(
                ckpt, device="cpu", precision="bf16", hash_cache_dir=folder
            )
            rows["samdesk bf16 (autocast)"] = timed(
                lambda: ours_bf16.set_image(image), args.repeats
            )
        rows["segment-anything (official fp32)"] = timed(
            lambda: theirs.set_image(image), args.official_repeats
        )
        if not args.no_onnx:
            x, _ = preprocess(image, "sam")
            for name, (times, _) in onnx_times(
                theirs.model.image_encoder, x, folder, args.threads, args.repeats
            ).items():
                rows[name] = times
        official = statistics.median(rows["segment-anything (official fp32)"])
        print("\nViT-B set_image (1024x1024):")
        for name, times in rows.items():
            print(
                f"  {name:36s} {fmt(times)}   {statistics.median(times) / official:5.2f}x official"
            )

        # agreement with the official fp32 result on the same image and prompts
        ours.set_image(image)
        emb, ref = ours.get_image_embedding(), theirs.features
        rel = float((emb - ref).norm() / ref.norm())
        points = [(200.0, 300.0), (512.0, 512.0), (800.0, 250.0), (300.0, 800.0), (700.0, 700.0)]
        ious = []
        for px, py in points:
            a = ours.predict(np.array([[px, py]]), np.array([1]))[0]
            b = theirs.predict(np.array([[px, py]]), np.array([1]))[0]
            ious += [iou(m, o) for m, o in zip(a, b, strict=True)]
        print(
            f"  embedding relative error vs official: {rel:.2e}; mask IoU mean {np.mean(ious):.4f}"
            f" min {np.min(ious):.4f} ({len(ious)} masks)"
        )

        probe = subprocess.run(
            [sys.executable, __file__, "--rss-probe", str(ckpt), "--threads", str(args.threads)],
            capture_output=True,
            text=True,
            check=False,
            env=dict(os.environ),
        )
        if probe.returncode == 0:
            peak = json.loads(probe.stdout.strip().splitlines()[-1])["peak_rss_mb"]
            print(f"  peak RSS, ViT-B loaded + image set + one click: {peak:.0f} MB")
        else:
            print(f"  (RSS probe failed: {probe.stderr.strip()[-300:]})")

        if not args.no_mobile:
            mckpt = save_random_checkpoint(folder / "mobile_sam.pt", "tiny_vit", seed=0)
            m_ours = Predictor.from_checkpoint(mckpt, device="cpu", hash_cache_dir=folder)
            m_theirs = official_predictor(mckpt)
            mine = timed(lambda: m_ours.set_image(image), args.repeats)
            off = timed(lambda: m_theirs.set_image(image), args.repeats)
            print("\nMobileSAM (TinyViT) set_image (1024x1024):")
            ratio = statistics.median(mine) / statistics.median(off)
            print(f"  {'samdesk':36s} {fmt(mine)}   {ratio:5.2f}x official")
            print(f"  {'mobile_sam (official)':36s} {fmt(off)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
