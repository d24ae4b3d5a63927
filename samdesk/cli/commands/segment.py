"""``samdesk segment IMAGE --model M --point X,Y[,LABEL]... [--box X0,Y0,X1,Y1] --out OUT``.

Segments one object headlessly. OUT ``.png`` gets the best mask as an 8-bit PNG (0 / 255);
OUT ``.json`` gets a COCO file with that one object (through samdesk.annotation's COCO exporter).
Both are written atomically. Coordinates are x, y in image pixels (x to the right, y down), in
the image's displayed orientation (EXIF applied). The embedding comes from / goes to the
embedding cache, so segmenting the same image again skips the encoder.
"""

from __future__ import annotations

import argparse
import os
import re
from typing import TYPE_CHECKING

from samdesk.engine.options import DEVICES, PRECISIONS

if TYPE_CHECKING:  # heavy imports happen inside run(), when the command is used
    from pathlib import Path

    import numpy as np

    from samdesk.imaging import LoadedImage

NAME = "segment"
HELP = "segment one object in an image from points and/or a box, without the app"
ORDER = 20

OUT_SUFFIXES = (".png", ".json")


def configure(parser: argparse.ArgumentParser) -> None:
    # "--point -5,20" must reach parse_prompts, which says the point is outside the image. Before
    # Python 3.13 argparse takes "-5,20" for an unknown option ("expected one argument", exit 2)
    # unless it matches this pattern, which is the one Python 3.13 itself uses.
    parser._negative_number_matcher = re.compile(r"-\.?\d")
    parser.add_argument("image", metavar="IMAGE", help="the image file")
    parser.add_argument(
        "--model",
        required=True,
        metavar="PATH_OR_NAME",
        help="a model name (vit_b, vit_l, vit_h, mobile_sam, medsam, an imported custom name), "
        "a checkpoint file, or 'classic' (GrabCut, no model)",
    )
    parser.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y[,LABEL]",
        help="a click in image pixels; LABEL 1 = object (default), 0 = background; repeatable",
    )
    parser.add_argument("--box", metavar="X0,Y0,X1,Y1", help="a box around the object")
    parser.add_argument(
        "--multimask",
        action="store_true",
        help="let the model propose 3 masks and keep the one with the best score",
    )
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--precision", default="auto", choices=PRECISIONS)
    parser.add_argument("--label", default="object", help="category name in a .json output")
    parser.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the embedding cache"
    )
    parser.add_argument("--out", required=True, metavar="OUT", help="output .png or .json file")


def parse_numbers(text: str, counts: tuple[int, ...], what: str, example: str) -> list[float]:
    """Comma-separated finite numbers, as many as one of ``counts``; PromptError otherwise."""
    import math

    from samdesk.errors import PromptError

    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) not in counts or not all(math.isfinite(v) for v in values):
        raise PromptError(f"{what} {text!r} is not understood; write it like {example}")
    return values


def parse_prompts(
    points: list[str], box: str | None, width: int, height: int
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(point_coords (N, 2) float32 | None, point_labels (N,) int32 | None, box (4,) | None),
    checked against the image size; PromptError with the offending value otherwise."""
    import numpy as np

    from samdesk.errors import PromptError

    coords, labels = [], []
    for text in points:
        values = parse_numbers(text, (2, 3), "--point", "--point 120,45 or --point 120,45,0")
        x, y = values[0], values[1]
        label = 1 if len(values) == 2 else values[2]
        if label not in (0, 1):
            raise PromptError(f"--point {text!r}: the label must be 1 (object) or 0 (background)")
        if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
            raise PromptError(
                f"--point {text!r} is outside the image, which is {width} x {height} pixels "
                f"(x 0..{width - 1}, y 0..{height - 1})"
            )
        coords.append((x, y))
        labels.append(int(label))
    box_array = None
    if box is not None:
        x0, y0, x1, y1 = parse_numbers(box, (4,), "--box", "--box 10,20,200,180")
        if x1 < x0 or y1 < y0:
            raise PromptError(f"--box {box!r}: x1 < x0 or y1 < y0; give the top-left corner first")
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise PromptError(
                f"--box {box!r} reaches outside the image, which is {width} x {height} pixels"
            )
        box_array = np.array([x0, y0, x1, y1], dtype=np.float32)
    if not coords and box_array is None:
        raise PromptError("say what to segment: give at least one --point X,Y or a --box")
    if not coords:
        return None, None, box_array
    return (
        np.array(coords, dtype=np.float32),
        np.array(labels, dtype=np.int32),
        box_array,
    )


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    import numpy as np

    from samdesk.engine.cache import EmbeddingCache, MemoryCache
    from samdesk.engine.loading import load_backend
    from samdesk.errors import InputError
    from samdesk.imaging import load_image

    out = Path(args.out)
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise InputError(f"--out {out}: write a .png (mask image) or a .json (COCO) file")
    if not os.path.isdir(out.parent):  # os.path: False, not OSError, for a too-long name
        raise InputError(f"--out {out}: the folder {out.parent} does not exist")
    if os.path.isdir(out):
        raise InputError(f"--out {out}: this is a folder; give the name of the file to write")

    start = time.perf_counter()
    image = load_image(args.image)
    coords, labels, box = parse_prompts(args.point, args.box, image.width, image.height)
    backend = load_backend(args.model, device=args.device, precision=args.precision)
    loaded = time.perf_counter()

    cache = EmbeddingCache(MemoryCache(), None) if args.no_cache else EmbeddingCache.default()
    embedding, source = cache.get_or_compute(
        image.content_hash, backend, lambda: backend.compute_embedding(image.rgb)
    )
    backend.set_embedding(embedding)
    encoded = time.perf_counter()
    masks, scores, _ = backend.predict(
        point_coords=coords, point_labels=labels, box=box, multimask_output=args.multimask
    )
    decoded = time.perf_counter()
    best = int(np.argmax(scores))
    mask = np.asarray(masks[best], dtype=bool)

    if out.suffix.lower() == ".png":
        _write_png(out, mask)
        summary = f"wrote {out} ({int(mask.sum())} pixels in the mask)"
    else:
        summary = _write_coco(out, image, mask, args.label, float(scores[best]))

    where = {"computed": "computed", "memory": "from cache", "disk": "from the disk cache"}
    print(f"model: {backend.name} on {backend.device}")
    print(
        f"score {float(scores[best]):.3f} (mask {best + 1} of {len(scores)}); "
        f"load {loaded - start:.2f} s, embedding {where[source]} {encoded - loaded:.2f} s, "
        f"decoder {1000 * (decoded - encoded):.0f} ms"
    )
    print(summary)  # a cache that could not be written was reported by the cache's log warning
    return 0


def _write_png(out: Path, mask: np.ndarray) -> None:
    import cv2
    import numpy as np

    from samdesk.annotation import atomic_write
    from samdesk.errors import SaveError

    ok, png = cv2.imencode(".png", np.where(mask, 255, 0).astype(np.uint8))
    if not ok:
        raise SaveError(f"{out}: the mask could not be encoded as PNG")
    atomic_write(out, png.tobytes())


def _write_coco(out: Path, image: LoadedImage, mask: np.ndarray, label: str, score: float) -> str:
    """One image, one object, through samdesk.annotation's COCO exporter (atomic)."""
    from samdesk.annotation import Document

    doc = Document()
    image_id = doc.add_image(
        image.path, size=(image.width, image.height), sha256=image.content_hash
    )
    doc.add_instance(image_id, mask, label, score=score)
    return doc.export("coco", out).summary()
