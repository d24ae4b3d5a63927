"""COCO instances JSON: export and import.

Export writes one JSON file that ``pycocotools.coco.COCO`` loads. An object becomes polygons
(pixel-corner frame, see :mod:`samdesk.annotation.geometry`) when they reproduce its mask, and
a compressed RLE (``{"size": [h, w], "counts": "<str>"}``, ``iscrowd`` 0) when the mask has holes,
when polygons cannot reproduce it, or when ``rle=True``. ``bbox`` is ``[x, y, w, h]`` and ``area``
the pixel count, both of the mask. Categories carry their samdesk colour as an extra ``color``
field. Empty masks are left out and counted.

Import accepts polygons and RLE (compressed strings and uncompressed count lists) and checks the
whole file before pycocotools sees any of it (whose C code trusts its input); see
:func:`validate`.
"""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from samdesk.annotation import rle
from samdesk.annotation.formats.common import (
    OutputFiles,
    Problems,
    check_points,
    chunk_results,
    expected_image_path,
    find_image,
    is_int,
    is_number,
    read_json,
    too_large,
)
from samdesk.annotation.formats.report import ExportReport, ImportReport
from samdesk.annotation.geometry import flat_ring, padded, rings_to_rle, trace_many
from samdesk.annotation.project_file import paused_gc, relative_path
from samdesk.annotation.records import is_color, is_label
from samdesk.errors import InputError, SamdeskError

#: Polygons are written only if pycocotools draws them back with at least this IoU.
POLYGON_MIN_IOU = 0.99

EMPTY = "empty mask (no pixels)"
AS_RLE_HOLES = "written as RLE because the mask has holes"
AS_RLE_INEXACT = "written as RLE because polygons could not reproduce the mask"
AS_RLE_ASKED = "written as RLE (asked for)"

_MAX_SIDE = 1 << 20


def export(doc: Any, out: Path, *, rle: bool = False, tolerance: float = 0.0) -> ExportReport:
    """Write ``out`` (a ``.json`` file; a folder gets ``annotations.json`` inside).

    ``tolerance`` (pixels) simplifies the polygons; the default 0 writes exact pixel outlines.
    """
    if out.is_dir():
        out = out / "annotations.json"
    report = ExportReport("coco")
    folder = Path(os.path.abspath(out.parent))
    categories = {c.name: c for c in doc.categories}
    images_json = [
        {
            "id": image.id,
            "file_name": relative_path(image.path, folder),
            "width": image.width,
            "height": image.height,
        }
        for image in doc.images
    ]
    instances = list(doc.instances)
    work = partial(_segmentations, as_rle=rle, tolerance=tolerance)
    dump = _dumper()
    # Each chunk is written as soon as it is traced, while the next chunks are being traced.
    fragments = []
    with paused_gc():  # many short-lived lists, no cycles
        for chunk, results in chunk_results(instances, work):
            annotations = [
                _annotation(instance, result, categories, report, dump)
                for instance, result in zip(chunk, results, strict=True)
            ]
            fragments.append(",".join(a for a in annotations if a is not None))
    head = {
        "info": {"description": "exported by samdesk", "version": "1.0"},
        "licenses": [],
        "images": images_json,
    }
    categories_json = [
        {"id": c.id, "name": c.name, "supercategory": "", "color": c.color} for c in doc.categories
    ]
    text = (
        dump(head)[:-1]
        + ',"annotations":['
        + ",".join(f for f in fragments if f)
        + '],"categories":'
        + dump(categories_json)
        + "}"
    )
    files = OutputFiles()
    files.add(out, text)
    report.files = files.commit()
    return report


def _dumper() -> Any:
    return json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _annotation(
    instance: Any,
    result: tuple[str | None, int, str],
    categories: dict[str, Any],
    report: ExportReport,
    dump: Any,
) -> str | None:
    """One annotation as JSON text (its segmentation already is), None for an empty mask."""
    segmentation, parts, change = result
    if change:
        report.changed[change] += 1
    if segmentation is None:
        report.dropped[EMPTY] += 1
        return None
    report.parts += parts
    annotation: dict[str, Any] = {
        "id": instance.id,
        "image_id": instance.image_id,
        "category_id": categories[instance.label].id,
        "area": float(instance.area),
        "bbox": [float(v) for v in instance.bbox],
        "iscrowd": 0,
    }
    if instance.score is not None:
        annotation["score"] = instance.score
    report.objects += 1
    return f'{dump(annotation)[:-1]},"segmentation":{segmentation}}}'


def _segmentations(
    chunk: list[Any], *, as_rle: bool, tolerance: float
) -> list[tuple[str | None, int, str]]:
    """``(segmentation as JSON text, polygon parts, what was changed or "")`` per object of a
    chunk (None for an empty mask), traced together. Runs in a worker thread: touches no shared
    state."""
    wanted = [i for i in chunk if i.bbox is not None and not as_rle]
    boxes = [i.crop_box() for i in wanted]
    pixels = rle.paint_crops([i.run_lengths() for i in wanted], [i.height for i in wanted], boxes)
    crops = [(padded(p), (b[0] - 1, b[1] - 1)) for p, b in zip(pixels, boxes, strict=True)]
    traced = iter(trace_many(crops, tolerance=tolerance, stop_at_holes=True))
    dump = _dumper()
    result: list[tuple[str | None, int, str]] = []
    outlines: list[list[np.ndarray]] = []  # the outer rings of each object written as polygons
    for instance in chunk:
        if instance.bbox is None:
            result.append((None, 0, ""))
            continue
        as_rle_text = dump({"size": [instance.height, instance.width], "counts": instance.rle})
        if as_rle:
            result.append((as_rle_text, 0, AS_RLE_ASKED))
            continue
        rings = next(traced)
        if rings.has_holes:
            result.append((as_rle_text, 0, AS_RLE_HOLES))
        elif not rings.iou >= POLYGON_MIN_IOU:
            result.append((as_rle_text, 0, AS_RLE_INEXACT))
        else:
            outlines.append([group[0] for group in rings.groups])
            result.append(("", len(rings.groups), ""))  # the text is filled in below
    ring_texts = iter(_rings_json([ring for rings in outlines for ring in rings], dump))
    filled = []
    for text, parts, change in result:
        if text == "":  # an object written as polygons: its next `parts` rings
            text = "[" + ",".join(next(ring_texts) for _ in range(parts)) + "]"
        filled.append((text, parts, change))
    return filled


def _rings_json(rings: list[np.ndarray], dump: Any) -> list[str]:
    """Each ``N x 2`` ring as the JSON list ``[x1,y1,x2,y2,...]`` (pixel-corner frame).

    Rings on whole pixel corners (most) are written by :func:`_int_rings_json` all at once;
    the others are rounded to 3 decimals (:func:`flat_ring`) and encoded one by one.
    """
    whole = [n for n, r in enumerate(rings) if np.issubdtype(r.dtype, np.integer)]
    texts = [""] * len(rings)
    for n, text in zip(whole, _int_rings_json([rings[n] for n in whole]), strict=True):
        texts[n] = text
    for n, ring in enumerate(rings):
        if not texts[n]:
            texts[n] = dump(flat_ring(ring))
    return texts


def _int_rings_json(rings: list[np.ndarray]) -> list[str]:
    """``json.dumps(ring.ravel().tolist(), separators=(",", ":"))`` for many integer rings at
    once: the digits of every number are placed into one byte buffer by numpy, a few times
    faster than encoding millions of Python ints one by one.

    Each ring's text is ``[`` then each number followed by ``,`` (``]`` after its last one).
    """
    if not rings:
        return []
    values = np.concatenate([r.ravel() for r in rings]).astype(np.int64)
    if values.min() < 0:  # not on the image: never happens for exported outlines
        dump = _dumper()
        return [dump(r.ravel().tolist()) for r in rings]
    sizes = np.array([r.size for r in rings], dtype=np.int64)
    digits = np.ones(values.size, dtype=np.int64)
    power = 10
    while power <= values.max():
        digits += values >= power
        power *= 10
    ring = np.repeat(np.arange(len(rings)), sizes)
    first_digit = np.cumsum(digits + 1) - digits + ring  # one "[" per ring so far, own included
    buffer = np.full(int(first_digit[-1] + digits[-1] + 1), ord(","), dtype=np.uint8)
    ring_end = np.cumsum(sizes) - 1
    buffer[first_digit[ring_end] + digits[ring_end]] = ord("]")
    ring_start = first_digit[ring_end - sizes + 1] - 1
    buffer[ring_start] = ord("[")
    rest = values.copy()
    for place in range(int(digits.max())):  # ones, tens, hundreds, ...
        has = np.flatnonzero(digits > place)
        buffer[first_digit[has] + digits[has] - 1 - place] = rest[has] % 10 + ord("0")
        rest //= 10
    text = buffer.tobytes().decode("ascii")
    bounds = [*ring_start.tolist(), len(text)]
    return [text[bounds[n] : bounds[n + 1]] for n in range(len(rings))]


# --- import ------------------------------------------------------------------------------------


def import_into(doc: Any, path: Path, images_dir: Path | None) -> ImportReport:
    """Add the images, categories and objects of a COCO file to ``doc`` (a trial copy: the
    caller swaps it in only when this returns)."""
    content = read_json(path, "COCO")
    plan = validate(content, path)
    report = ImportReport("coco", path)
    source_dir = path.parent
    image_ids: dict[int, int] = {}
    problems = Problems()
    for n, image in enumerate(content["images"]):
        found = find_image(image["file_name"], source_dir, images_dir)
        size = (image["width"], image["height"])
        before = len(doc.images)
        if found is None:
            report.images_missing.append(image["file_name"])
            target = expected_image_path(image["file_name"], source_dir, images_dir)
            new_id = doc.add_image(target, size=size)
        else:
            try:
                new_id = doc.add_image(found)
            except SamdeskError as err:  # an ImageError names the file and why
                problems.add(f"images[{n}].file_name", f"{found} cannot be read: {err}")
                continue
        record = doc.image(new_id)
        if (record.width, record.height) != size:
            new = len(doc.images) > before
            what = "is" if new else "is already in the project as an image of"
            problems.add(
                f"images[{n}]",
                f"{record.path} {what} {record.width} x {record.height} pixels but the file "
                f"says {size[0]} x {size[1]}; the annotations would not line up",
            )
        report.images_added += len(doc.images) - before
        image_ids[image["id"]] = new_id
    problems.raise_if_any(path, "COCO")
    labels = {}
    for category in content["categories"]:
        color = category.get("color")
        labels[category["id"]] = doc.add_category(
            category["name"], color if is_color(color) else None
        ).name
    crowd = 0
    for annotation in content["annotations"]:
        width, height = plan[annotation["image_id"]]
        counts = _counts(annotation["segmentation"], height, width)
        if rle.area(counts, height, width) == 0:
            report.skipped["annotation covers no pixel"] += 1
            continue
        score = annotation.get("score")
        doc.add_instance_rle(
            image_ids[annotation["image_id"]],
            counts,
            labels[annotation["category_id"]],
            score=score if is_number(score) else None,
        )
        report.objects += 1
        crowd += annotation.get("iscrowd") == 1
    if crowd:
        report.notes.append(f"{crowd} crowd region(s) (iscrowd 1) imported as ordinary objects")
    return report


def _counts(segmentation: Any, height: int, width: int) -> str:
    if isinstance(segmentation, list):
        return rings_to_rle(segmentation, height, width)
    counts = segmentation["counts"]
    if isinstance(counts, str):
        return counts
    return rle.counts_to_string(counts, height, width)


def validate(content: Any, path: Path) -> dict[int, tuple[int, int]]:
    """Check a parsed COCO file completely; raise FormatError listing every problem with its JSON
    path. Returns image id -> (width, height) for the import."""
    problems = Problems()
    if not isinstance(content, dict):
        problems.add("(top level)", "expected an object with images, annotations, categories")
        problems.raise_if_any(path, "COCO")
    for key in ("images", "annotations", "categories"):
        if not isinstance(content.get(key), list):
            problems.add(key, "missing" if key not in content else "expected a list")
    problems.raise_if_any(path, "COCO")
    sizes = _validate_images(content["images"], problems)
    categories = _validate_categories(content["categories"], problems)
    seen: dict[int, int] = {}
    for n, annotation in enumerate(content["annotations"]):
        where = f"annotations[{n}]"
        if not isinstance(annotation, dict):
            problems.add(where, "expected an object")
            continue
        _unique_id(annotation, where, n, seen, problems)
        image_id = annotation.get("image_id")
        size = None
        if not is_int(image_id):
            problems.add(f"{where}.image_id", _missing_or("a whole number", annotation, "image_id"))
        elif image_id not in sizes:
            problems.add(f"{where}.image_id", f"no image has id {image_id}")
        else:
            size = sizes[image_id]
        category_id = annotation.get("category_id")
        if not is_int(category_id):
            problems.add(
                f"{where}.category_id", _missing_or("a whole number", annotation, "category_id")
            )
        elif category_id not in categories:
            problems.add(f"{where}.category_id", f"no category has id {category_id}")
        if "segmentation" not in annotation:
            problems.add(f"{where}.segmentation", "missing")
        elif size is not None:
            segmentation = annotation["segmentation"]
            _validate_segmentation(segmentation, f"{where}.segmentation", size, problems)
        if "bbox" in annotation and size is not None:
            _validate_bbox(annotation["bbox"], f"{where}.bbox", size, problems)
        for key in ("area", "score"):
            if key in annotation and annotation[key] is not None and not is_number(annotation[key]):
                problems.add(f"{where}.{key}", f"expected a finite number, got {annotation[key]!r}")
        if "iscrowd" in annotation and annotation["iscrowd"] not in (0, 1):
            problems.add(f"{where}.iscrowd", f"expected 0 or 1, got {annotation['iscrowd']!r}")
    problems.raise_if_any(path, "COCO")
    return sizes


def _missing_or(expected: str, entry: dict[str, Any], key: str) -> str:
    if key not in entry:
        return "missing"
    return f"expected {expected}, got {entry[key]!r}"


def _unique_id(
    entry: dict[str, Any], where: str, n: int, seen: dict[int, int], problems: Problems
) -> None:
    value = entry.get("id")
    if not is_int(value):
        problems.add(f"{where}.id", _missing_or("a whole number", entry, "id"))
    elif value in seen:
        problems.add(f"{where}.id", f"duplicate id {value} (also entry [{seen[value]}])")
    else:
        seen[value] = n


def _validate_images(images: list[Any], problems: Problems) -> dict[int, tuple[int, int]]:
    sizes: dict[int, tuple[int, int]] = {}
    seen: dict[int, int] = {}
    for n, image in enumerate(images):
        where = f"images[{n}]"
        if not isinstance(image, dict):
            problems.add(where, "expected an object")
            continue
        _unique_id(image, where, n, seen, problems)
        name = image.get("file_name")
        if not isinstance(name, str) or not name.strip():
            problems.add(f"{where}.file_name", _missing_or("a file name", image, "file_name"))
        dims = []
        for key in ("width", "height"):
            value = image.get(key)
            if not is_int(value) or not 0 < value <= _MAX_SIDE:
                problems.add(
                    f"{where}.{key}", _missing_or(f"a whole number 1..{_MAX_SIDE}", image, key)
                )
            dims.append(value)
        if is_int(image.get("id")) and all(is_int(v) and 0 < v <= _MAX_SIDE for v in dims):
            problem = too_large(dims[0], dims[1])
            if problem:
                problems.add(where, problem)
            sizes.setdefault(image["id"], (dims[0], dims[1]))
    return sizes


def _validate_categories(categories: list[Any], problems: Problems) -> set[int]:
    ids: set[int] = set()
    seen: dict[int, int] = {}
    names: dict[str, int] = {}
    for n, category in enumerate(categories):
        where = f"categories[{n}]"
        if not isinstance(category, dict):
            problems.add(where, "expected an object")
            continue
        _unique_id(category, where, n, seen, problems)
        name = category.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.add(f"{where}.name", _missing_or("a non-empty text", category, "name"))
        elif not is_label(name.strip()):
            problems.add(f"{where}.name", f"{name!r} holds characters that are not valid text")
        elif name.strip() in names:
            problems.add(
                f"{where}.name", f"duplicate name {name!r} (also categories[{names[name.strip()]}])"
            )
        else:
            names[name.strip()] = n
        if is_int(category.get("id")):
            ids.add(category["id"])
    return ids


def _validate_segmentation(
    segmentation: Any, where: str, size: tuple[int, int], problems: Problems
) -> None:
    width, height = size
    if isinstance(segmentation, list):
        if not segmentation:
            problems.add(where, "an empty list: no polygon")
        for k, ring in enumerate(segmentation):
            _validate_ring(ring, f"{where}[{k}]", width, height, problems)
    elif isinstance(segmentation, dict):
        _validate_rle(segmentation, where, width, height, problems)
    else:
        problems.add(where, f"expected a list of polygons or an RLE object, got {segmentation!r}")


def _validate_bbox(bbox: Any, where: str, size: tuple[int, int], problems: Problems) -> None:
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(is_number(v) for v in bbox)):
        problems.add(where, f"expected [x, y, width, height] as finite numbers, got {bbox!r}")
        return
    x, y, w, h = bbox
    if w < 0 or h < 0:
        problems.add(where, f"negative width or height in {bbox}")
        return
    xs = np.asarray([x, x + w], dtype=np.float64)
    ys = np.asarray([y, y + h], dtype=np.float64)
    check_points(problems, where, xs, ys, *size)


def _validate_ring(ring: Any, where: str, width: int, height: int, problems: Problems) -> None:
    if not isinstance(ring, list):
        problems.add(where, f"expected a list of numbers [x1, y1, x2, y2, ...], got {ring!r}")
        return
    if not all(is_number(v) for v in ring):
        bad = next(v for v in ring if not is_number(v))
        problems.add(where, f"holds {bad!r}; coordinates must be finite numbers")
        return
    if len(ring) % 2:
        problems.add(where, f"{len(ring)} numbers, an odd count; x and y must come in pairs")
        return
    if len(ring) < 6:
        problems.add(where, f"{len(ring)} numbers, a polygon needs at least 6 (3 points)")
        return
    values = np.asarray(ring, dtype=np.float64)
    check_points(problems, where, values[0::2], values[1::2], width, height)


def _validate_rle(
    segmentation: dict[str, Any], where: str, width: int, height: int, problems: Problems
) -> None:
    size = segmentation.get("size")
    counts = segmentation.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(is_int(v) for v in size)):
        problems.add(f"{where}.size", _missing_or("[height, width]", segmentation, "size"))
        return
    if size != [height, width]:
        problems.add(f"{where}.size", f"{size} does not match the image's [{height}, {width}]")
        return
    try:
        if isinstance(counts, str):
            rle.counts_from_string(counts, height, width)
        elif isinstance(counts, list) and all(is_int(v) for v in counts):
            if any(not 0 <= v <= height * width for v in counts):
                problems.add(f"{where}.counts", "run lengths must be 0..height*width")
            else:
                rle.counts_to_string(counts, height, width)
        else:
            problems.add(
                f"{where}.counts",
                _missing_or("an RLE string or a list of whole numbers", segmentation, "counts"),
            )
    except InputError as err:
        problems.add(f"{where}.counts", str(err))
