"""Image encoder speed: samdesk vs the official segment-anything vs ONNX Runtime, same weights.

Builds a seeded random ViT-B (and MobileSAM TinyViT) in the official checkpoint layout, then
times ``set_image`` of samdesk's Predictor (fp32, int8, optionally bf16; the one "auto" picks on
this CPU is marked), segment-anything's SamPredictor, and the official encoder exported to ONNX
run by ONNX Runtime (fp32 and with int8 dynamic quantisation, what X-AnyLabeling / AnyLabeling
ship), all at the same thread count. Every row also gives the embedding's relative error and the
mask IoU against the official fp32 result (ONNX embeddings go through the official decoder), and
the peak RSS of a process holding ViT-B at the default precision with an image set.

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


#: Prompts as fractions of the image width and height.
POINTS = [(0.2, 0.3), (0.5, 0.5), (0.78, 0.25), (0.3, 0.78), (0.68, 0.68)]
BOX = (0.15, 0.2, 0.63, 0.68)


def prompts(shape: tuple[int, ...]) -> tuple[list[np.ndarray], np.ndarray]:
    """The benchmark's point prompts (each (1, 2)) and box (4,) in pixels of an image."""
    h, w = shape[:2]
    points = [np.array([[x * w, y * h]]) for x, y in POINTS]
    return points, np.array(BOX) * np.array([w, h, w, h])


def official_masks(theirs, features: torch.Tensor | None = None) -> list[np.ndarray]:
    """Masks of the official decoder for the benchmark prompts, on the official embedding of the
    current image or on ``features`` (an embedding from another encoder)."""
    saved = theirs.features
    if features is not None:
        theirs.features = features
    points, box = prompts(theirs.original_size)
    try:
        out = [theirs.predict(p, np.array([1]))[0] for p in points]
        out.append(theirs.predict(box=box)[0])
    finally:
        theirs.features = saved
    return out


def agreement(masks: list[np.ndarray], reference: list[np.ndarray]) -> tuple[float, float]:
    """(mean, min) IoU over every mask of every prompt."""
    pairs = zip(np.concatenate(masks), np.concatenate(reference), strict=True)
    ious = [iou(m, r) for m, r in pairs]
    return float(np.mean(ious)), float(np.min(ious))


def ours_masks(predictor: Predictor) -> list[np.ndarray]:
    points, box = prompts(predictor.original_size)
    out = [predictor.predict(p, np.array([1]))[0] for p in points]
    out.append(predictor.predict(box=box)[0])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--official-repeats", type=int, default=2)
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime figures")
    parser.add_argument("--no-mobile", action="store_true", help="skip MobileSAM")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS probe")
    parser.add_argument("--bf16", action="store_true", help="also time precision='bf16'")
    parser.add_argument(
        "--paired",
        type=int,
        default=3,
        help="rounds of samdesk (auto) and official back to back, for a ratio robust to a "
        "shared host's changing load (0: skip)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="a real SAM ViT checkpoint (sam_vit_b_01ec64.pth, ...) instead of random weights",
    )
    parser.add_argument(
        "--image", type=Path, help="an image file instead of the synthetic scene (RGB, any size)"
    )
    parser.add_argument("--rss-probe", metavar="CKPT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_probe:
        rss_probe(args.rss_probe, args.threads)
        return 0

    sys.path.insert(0, str(ROOT))
    from tests.support.official import official_predictor

    torch.set_num_threads(args.threads)
    if args.image is not None:
        from PIL import Image

        image = np.asarray(Image.open(args.image).convert("RGB"))
    else:
        image = scene(1024, 1024)
    weights = args.checkpoint.name if args.checkpoint is not None else "random weights"
    print(
        f"torch {torch.__version__}, {args.threads} threads, image "
        f"{image.shape[1]}x{image.shape[0]}, {weights}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ckpt = args.checkpoint or save_random_checkpoint(
            folder / "sam_vit_b.pth", "vit_b", seed=args.seed
        )
        default = Predictor.from_checkpoint(ckpt, device="cpu", hash_cache_dir=folder)
        print(f"precision='auto' resolves to {default.precision!r} on this CPU")
        precisions = ["fp32", "int8"] + (["bf16"] if args.bf16 else [])
        theirs = official_predictor(ckpt)
        theirs.set_image(image)
        reference_masks = official_masks(theirs)
        reference = theirs.features.clone()

        # name -> (times, embedding relative error, (mean IoU, min IoU))
        rows: dict[str, tuple[list[float], float, tuple[float, float]]] = {}
        for precision in precisions:
            ours = Predictor.from_checkpoint(
                ckpt, device="cpu", precision=precision, hash_cache_dir=folder
            )
            label = f"samdesk {ours.precision}"
            if ours.precision == default.precision:
                label += " (auto)"
            if ours.precision != precision:
                label += f" [{precision} unavailable]"
            times = timed(lambda p=ours: p.set_image(image), args.repeats)
            emb = ours.get_image_embedding()
            rel = float((emb - reference).norm() / reference.norm())
            rows[label] = (times, rel, agreement(ours_masks(ours), reference_masks))
            del ours
        rows["segment-anything (official fp32)"] = (
            timed(lambda: theirs.set_image(image), args.official_repeats),
            0.0,
            (1.0, 1.0),
        )
        if not args.no_onnx:
            x, _ = preprocess(image, "sam")
            for name, (times, session) in onnx_times(
                theirs.model.image_encoder, x, folder, args.threads, args.repeats
            ).items():
                emb = torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
                rel = float((emb - reference).norm() / reference.norm())
                theirs.set_image(image)
                masks = official_masks(theirs, emb)
                rows[name] = (times, rel, agreement(masks, reference_masks))
        official = statistics.median(rows["segment-anything (official fp32)"][0])
        print(
            f"\n{default.name} set_image; error and IoU against the official fp32 result "
            f"({len(reference_masks) * 3} masks: {len(POINTS)} points + a box, 3 masks each):"
        )
        header = f"{'median':>9s}  {'':17s}  {'ratio':>13s}  {'emb. error':>10s}  IoU mean/min"
        print(f"  {'':36s} {header}")
        for name, (times, rel, (mean_iou, min_iou)) in rows.items():
            print(
                f"  {name:36s} {fmt(times)}   {statistics.median(times) / official:5.2f}x official"
                f"  {rel:10.2e}  {mean_iou:.4f} / {min_iou:.4f}"
            )

        if args.paired:
            default.set_image(image)  # warm
            ratios = []
            for _ in range(args.paired):
                mine = timed(lambda: default.set_image(image), 1, warmup=0)[0]
                theirs_s = timed(lambda: theirs.set_image(image), 1, warmup=0)[0]
                ratios.append(mine / theirs_s)
            print(
                f"  paired rounds, samdesk {default.precision} (auto) then official back to back: "
                f"ratio median {statistics.median(ratios):.2f}x "
                f"(range {min(ratios):.2f}-{max(ratios):.2f}, n={len(ratios)})"
            )

        if not args.no_rss:
            command = [sys.executable, __file__, "--rss-probe", str(ckpt)]
            probe = subprocess.run(
                [*command, "--threads", str(args.threads)],
                capture_output=True,
                text=True,
                check=False,
                env=dict(os.environ),
            )
            if probe.returncode == 0:
                peak = json.loads(probe.stdout.strip().splitlines()[-1])["peak_rss_mb"]
                print(
                    f"  peak RSS, ViT-B loaded ({default.precision}) + image set + one click: "
                    f"{peak:.0f} MB"
                )
            else:
                print(f"  (RSS probe failed: {probe.stderr.strip()[-300:]})")

        if not args.no_mobile:
            mckpt = save_random_checkpoint(folder / "mobile_sam.pt", "tiny_vit", seed=args.seed)
            m_ours = Predictor.from_checkpoint(mckpt, device="cpu", hash_cache_dir=folder)
            m_theirs = official_predictor(mckpt)
            mine = timed(lambda: m_ours.set_image(image), args.repeats)
            off = timed(lambda: m_theirs.set_image(image), args.repeats)
            m_ref = m_theirs.features
            rel = float((m_ours.get_image_embedding() - m_ref).norm() / m_ref.norm())
            mean_iou, min_iou = agreement(ours_masks(m_ours), official_masks(m_theirs))
            print(f"\nMobileSAM (TinyViT) set_image (1024x1024), samdesk {m_ours.precision}:")
            ratio = statistics.median(mine) / statistics.median(off)
            print(
                f"  {'samdesk':36s} {fmt(mine)}   {ratio:5.2f}x official  {rel:10.2e}  "
                f"{mean_iou:.4f} / {min_iou:.4f}"
            )
            print(f"  {'mobile_sam (official)':36s} {fmt(off)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
