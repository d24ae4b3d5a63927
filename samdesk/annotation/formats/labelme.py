"""labelme JSON, one file per image: export and import.

Export writes ``<out>/<image stem>.json`` with ``version``, ``flags``, ``shapes``, ``imagePath``
(relative to the JSON file, ``/`` separators), ``imageData`` null, ``imageHeight`` and
``imageWidth``. Every object gets its own ``group_id`` (its samdesk object id), shared by all its
parts, so the parts of one object stay one object. Polygons are in the pixel-corner frame (pixel
``(x, y)`` spans ``[x, x+1]``), which is how labelme's canvas shows them.

labelme polygons have no holes. By default (``holes="mask"``) an object with holes is written as
one ``shape_type: "mask"`` shape (labelme's AI-mask shape, since late 2023: ``points`` is the box
``[[x0, y0], [x1, y1]]`` in pixels, inclusive, and ``mask`` a base64 PNG of the box) - lossless,
counted in the report.
``holes="fill"`` writes the outer outlines instead and counts the holes as filled.

Import reads a labelme JSON file or a folder of them (recursively): ``polygon``, ``rectangle``,
``circle`` and ``mask`` shapes become objects (shapes with the same label and ``group_id`` become
one object), ``point``/``line``/``linestrip``/``points`` have no area and are counted as skipped.
Polygons are rasterised like COCO polygons (pycocotools, pixel-corner frame).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import os
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as coco_mask

from samdesk.annotation import rle
from samdesk.annotation.formats.common import (
    OutputFiles,
    Problems,
    check_points,
    expected_image_path,
    find_image,
    is_int,
    is_number,
    per_image_names,
    polygons_per_image,
    read_json,
    too_large,
)
from samdesk.annotation.formats.report import ExportReport, ImportReport
from samdesk.annotation.geometry import DEFAULT_TOLERANCE, Polygons, rings_to_rle
from samdesk.annotation.project_file import looks_like_project, relative_path
from samdesk.annotation.records import is_label
from samdesk.errors import FormatError, InputError, SamdeskError

LABELME_VERSION = "5.5.0"
EMPTY = "empty mask (no pixels)"
AS_MASK = "object with holes written as a labelme mask shape"
HOLES_FILLED = "hole(s) filled: labelme polygons cannot represent holes"

_AREA_SHAPES = {"polygon", "rectangle", "circle", "mask"}
_NO_AREA_SHAPES = {"point", "points", "line", "linestrip"}
_CIRCLE_VERTICES = 64
_MAX_MASK_PIXELS = 1 << 30  # a full-size bool mask is built for each mask shape


def export(
    doc: Any, out: Path, *, tolerance: float = DEFAULT_TOLERANCE, holes: str = "mask"
) -> ExportReport:
    if holes not in ("mask", "fill"):
        raise InputError(f"holes must be 'mask' or 'fill', got {holes!r}.")
    report = ExportReport("labelme")
    images = list(doc.images)
    names = per_image_names(images, ".json")
    files = OutputFiles()
    for image, instances, empty, traced in polygons_per_image(doc, images, tolerance):
        target = out / names[image.id]
        shapes: list[dict[str, Any]] = []
        if empty:
            report.dropped[EMPTY] += empty
        for instance, polygons in zip(instances, traced, strict=True):
            shapes += _instance_shapes(instance, polygons, holes, report)
        content = {
            "version": LABELME_VERSION,
            "flags": {},
            "shapes": shapes,
            "imagePath": relative_path(image.path, Path(os.path.abspath(target.parent))),
            "imageData": None,
            "imageHeight": image.height,
            "imageWidth": image.width,
        }
        files.add(target, _json(content))
    report.files = files.commit()
    return report


def _json(content: dict[str, Any]) -> str:
    """The file as JSON with one shape per line (readable, and quick to write)."""
    dump = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    shapes = content.pop("shapes")
    head = ",\n".join(f"{dump(k)}: {dump(v)}" for k, v in content.items())
    body = ",\n".join(dump(s) for s in shapes)
    return f'{{{head},\n"shapes": [\n{body}\n]}}\n' if shapes else f'{{{head},\n"shapes": []}}\n'


def _shape(label: str, group_id: int, shape_type: str, points: list[list[float]]) -> dict:
    return {
        "label": label,
        "points": points,
        "group_id": group_id,
        "description": "",
        "shape_type": shape_type,
        "flags": {},
        "mask": None,
    }


def _instance_shapes(
    instance: Any, polygons: Polygons, holes: str, report: ExportReport
) -> list[dict[str, Any]]:
    if polygons.has_holes and holes == "mask":
        x, y, w, h = instance.bbox
        crop, _ = instance.crop()
        shape = _shape(instance.label, instance.id, "mask", [[x, y], [x + w - 1, y + h - 1]])
        shape["mask"] = _png_base64(crop)
        report.changed[AS_MASK] += 1
        report.objects += 1
        return [shape]
    report.dropped.update(polygons.dropped)
    if polygons.hole_count:
        report.changed[HOLES_FILLED] += polygons.hole_count
    shapes = []
    for part in polygons.parts:
        coords = np.round(np.asarray(part.exterior.coords)[:-1], 3).tolist()
        shapes.append(_shape(instance.label, instance.id, "polygon", coords))
        report.parts += 1
    if shapes:
        report.objects += 1
    else:
        report.dropped["object with no drawable part"] += 1
    return shapes


def _png_base64(mask: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(bool)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# --- import ------------------------------------------------------------------------------------


def import_into(doc: Any, path: Path, images_dir: Path | None) -> ImportReport:
    """Add the images and objects of one labelme file, or of every ``*.json`` under a folder."""
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    # A folder of labelme files is often where the project (and its autosave) is saved too.
    projects = [f for f in files if path.is_dir() and looks_like_project(f)]
    files = [f for f in files if f not in projects]
    if not files:
        raise FormatError(f"{path} holds no labelme .json files.")
    parsed = [(f, read_json(f, "labelme")) for f in files]
    plans = []
    problems = Problems()
    for file, content in parsed:
        prefix = f"{file.name}: " if len(parsed) > 1 else ""
        plans.append(_validate(content, file, images_dir, problems, prefix))
    problems.raise_if_any(path, "labelme")
    report = ImportReport("labelme", path)
    if projects:
        report.notes.append(f"{len(projects)} samdesk project file(s) in the folder left out")
    for plan in plans:
        _apply(doc, plan, report)
    return report


def _validate(
    content: Any, file: Path, images_dir: Path | None, problems: Problems, prefix: str
) -> dict[str, Any]:
    plan: dict[str, Any] = {"file": file, "objects": []}
    if not isinstance(content, dict):
        problems.add(f"{prefix}(top level)", "expected a labelme object with shapes")
        return plan
    image_path = content.get("imagePath")
    if not isinstance(image_path, str) or not image_path.strip():
        problems.add(f"{prefix}imagePath", "missing" if "imagePath" not in content else "not text")
        return plan
    found = find_image(image_path, file.parent, images_dir)
    plan["image"] = found or expected_image_path(image_path, file.parent, images_dir)
    plan["found"] = found is not None
    plan["image_name"] = image_path
    size = _image_size(content, found, problems, prefix)
    shapes = content.get("shapes")
    if not isinstance(shapes, list):
        problems.add(f"{prefix}shapes", "missing" if "shapes" not in content else "not a list")
        return plan
    if size is None:
        return plan
    plan["size"] = size
    groups: dict[tuple[str, int], list[str]] = defaultdict(list)
    order: list[tuple[str, Any]] = []
    for n, shape in enumerate(shapes):
        where = f"{prefix}shapes[{n}]"
        counts = _shape_counts(shape, where, size, problems, plan)
        if counts is None:
            continue
        group = shape.get("group_id")
        key = (shape["label"].strip(), group if group is not None else ("single", n))
        if key not in groups:
            order.append(key)
        groups[key].append(counts)
    plan["objects"] = [(key[0], groups[key]) for key in order]
    return plan


def _image_size(
    content: dict[str, Any], found: Path | None, problems: Problems, prefix: str
) -> tuple[int, int] | None:
    stated = [content.get("imageWidth"), content.get("imageHeight")]
    valid = all(is_int(v) and v > 0 for v in stated)
    if valid and too_large(*stated):
        problems.add(f"{prefix}imageWidth", str(too_large(*stated)))
        return None
    if found is not None:
        from samdesk.imaging import probe_image

        try:
            info = probe_image(found)
        except SamdeskError as err:  # an ImageError names the file and why
            problems.add(f"{prefix}imagePath", f"{found} cannot be read: {err}")
            return None
        if too_large(info.width, info.height):
            problems.add(f"{prefix}imagePath", str(too_large(info.width, info.height)))
            return None
        if valid and (info.width, info.height) != tuple(stated):
            problems.add(
                f"{prefix}imageWidth",
                f"{found} is {info.width} x {info.height} pixels but the file says "
                f"{stated[0]} x {stated[1]}; the shapes would not line up",
            )
            return None
        return info.width, info.height
    if not valid:
        problems.add(
            f"{prefix}imageHeight",
            "the image file is missing and imageWidth/imageHeight are not positive whole numbers",
        )
        return None
    return stated[0], stated[1]


def _shape_counts(
    shape: Any, where: str, size: tuple[int, int], problems: Problems, plan: dict[str, Any]
) -> str | None:
    """The RLE of one area shape, None for a shape that is skipped or has a problem."""
    width, height = size
    if not isinstance(shape, dict):
        problems.add(where, "expected an object")
        return None
    label = shape.get("label")
    if not isinstance(label, str) or not label.strip():
        problems.add(
            f"{where}.label", "missing" if "label" not in shape else "not a non-empty text"
        )
        return None
    if not is_label(label.strip()):
        problems.add(f"{where}.label", f"{label!r} holds characters that are not valid text")
        return None
    shape_type = shape.get("shape_type") or "polygon"
    if not isinstance(shape_type, str):
        problems.add(f"{where}.shape_type", f"expected a shape type name, got {shape_type!r}")
        return None
    if shape_type in _NO_AREA_SHAPES:
        plan.setdefault("skipped", []).append(f"{shape_type} shapes have no area")
        return None
    if shape_type not in _AREA_SHAPES:
        problems.add(f"{where}.shape_type", f"unknown shape type {shape_type!r}")
        return None
    group = shape.get("group_id")
    if group is not None and not is_int(group):
        problems.add(f"{where}.group_id", f"expected a whole number or null, got {group!r}")
        return None
    points = shape.get("points")
    if not (
        isinstance(points, list)
        and all(
            isinstance(p, list) and len(p) == 2 and all(is_number(v) for v in p) for p in points
        )
    ):
        problems.add(f"{where}.points", "expected a list of [x, y] pairs of finite numbers")
        return None
    needed = {"polygon": 3, "rectangle": 2, "circle": 2, "mask": 2}[shape_type]
    if len(points) < needed or (shape_type != "polygon" and len(points) != needed):
        problems.add(f"{where}.points", f"{len(points)} point(s); a {shape_type} needs {needed}")
        return None
    xy = np.asarray(points, dtype=np.float64)
    # A circle's centre and rim point are on the image in labelme too; checking them also keeps
    # the radius, and so the coordinates given to pycocotools, within reach of the image.
    if not check_points(problems, f"{where}.points", xy[:, 0], xy[:, 1], width, height):
        return None
    if shape_type == "mask":
        return _mask_counts(shape, where, xy, size, problems)
    ring = _ring(shape_type, xy)
    counts = rings_to_rle([ring], height, width)
    if rle.area(counts, height, width) == 0:
        plan.setdefault("skipped", []).append("shape covers no pixel centre")
        return None
    return counts


def _ring(shape_type: str, xy: np.ndarray) -> list[float]:
    if shape_type == "rectangle":
        (x0, y0), (x1, y1) = xy
        xy = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    elif shape_type == "circle":
        (cx, cy), (px, py) = xy
        radius = math.hypot(px - cx, py - cy)
        angles = np.linspace(0, 2 * np.pi, _CIRCLE_VERTICES, endpoint=False)
        xy = np.stack((cx + radius * np.cos(angles), cy + radius * np.sin(angles)), axis=1)
    return xy.ravel().tolist()


def _mask_counts(
    shape: dict[str, Any], where: str, xy: np.ndarray, size: tuple[int, int], problems: Problems
) -> str | None:
    width, height = size
    if width * height > _MAX_MASK_PIXELS:
        problems.add(f"{where}", f"mask shapes on a {width} x {height} image are too large")
        return None
    data = shape.get("mask")
    if not isinstance(data, str):
        problems.add(f"{where}.mask", "a mask shape needs a base64 PNG in 'mask'")
        return None
    try:
        with Image.open(io.BytesIO(base64.b64decode(data, validate=True))) as picture:
            # labelme's patch is the object's box (plus a row and a column); a larger one is not
            # a labelme mask, and is not decoded (it could be a decompression bomb).
            if picture.width > width + 1 or picture.height > height + 1:
                problems.add(
                    f"{where}.mask",
                    f"the mask image is {picture.width} x {picture.height} pixels, larger than "
                    f"the {width} x {height} image",
                )
                return None
            patch = np.asarray(picture).astype(bool)
    except (
        binascii.Error,
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        ValueError,
    ) as err:
        problems.add(f"{where}.mask", f"not a base64 PNG image ({err})")
        return None
    if patch.ndim == 3:
        patch = patch.any(axis=2)
    x0, y0 = (round(float(v)) for v in xy[0])
    full = np.zeros((height, width), dtype=bool)
    ys, xs = (
        slice(max(y0, 0), min(y0 + patch.shape[0], height)),
        slice(max(x0, 0), min(x0 + patch.shape[1], width)),
    )
    if ys.start >= ys.stop or xs.start >= xs.stop:
        problems.add(f"{where}.mask", "the mask lies outside the image")
        return None
    full[ys, xs] = patch[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return rle.encode(full)


def _apply(doc: Any, plan: dict[str, Any], report: ImportReport) -> None:
    for reason in plan.get("skipped", []):
        report.skipped[reason] += 1
    if "size" not in plan:
        return
    before = len(doc.images)
    if plan["found"]:
        image_id = doc.add_image(plan["image"])
    else:
        report.images_missing.append(str(PurePosixPath(plan["image_name"])))
        image_id = doc.add_image(plan["image"], size=plan["size"])
    report.images_added += len(doc.images) - before
    image = doc.image(image_id)
    if (image.width, image.height) != plan["size"]:
        raise FormatError(
            f"{plan['file']}: {image.path} is already in the project as a "
            f"{image.width} x {image.height} image, but this file says "
            f"{plan['size'][0]} x {plan['size'][1]}; nothing was imported."
        )
    for label, parts in plan["objects"]:
        counts = parts[0] if len(parts) == 1 else _union(parts, image.height, image.width)
        doc.add_instance_rle(image_id, counts, label)
        report.objects += 1


def _union(parts: list[str], height: int, width: int) -> str:
    """The union of RLEs made by pycocotools here (trusted), without building pixel arrays."""
    objects = [{"size": [height, width], "counts": c.encode("ascii")} for c in parts]
    return coco_mask.merge(objects, intersect=False)["counts"].decode("ascii")
