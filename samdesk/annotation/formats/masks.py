"""Label images: per image an instance-id PNG, a class PNG, a JSON sidecar and a TIFF.

Writes into the folder ``out``, for every image (names as in the other per-image formats):

- ``instances/<stem>.png``: 16-bit, 0 = background, objects numbered 1..N in object-id
  (creation) order;
- ``instances/<stem>.json``: the sidecar, mapping each number to the object (samdesk id, label,
  category id, score) and stating the overlap rule;
- ``semantic/<stem>.png``: class values, 0 = background, category ``n`` (1-based, in
  ``classes.json`` order) -> ``n``; 8-bit when there are fewer than 256 classes, else 16-bit;
- ``tiff/<stem>.tif``: the instance numbers again as a 16-bit TIFF label image (zlib
  compressed) for microscopy tools, written with tifffile (if tifffile is not installed the
  report says so and no TIFF is written);
- ``classes.json``: value -> category name and colour.

Overlaps: where objects overlap, the later object (higher id) wins, in both label images. An
object entirely covered by later ones cannot appear and is counted as dropped; a partly covered
one is counted as changed.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from samdesk.annotation.formats.common import OutputFiles, per_image_names
from samdesk.annotation.formats.report import ExportReport
from samdesk.annotation.project_file import relative_path
from samdesk.errors import SaveError

EMPTY = "empty mask (no pixels)"
HIDDEN = "object entirely covered by later objects (later objects win)"
PARTLY_HIDDEN = "object partly covered by later objects (later objects win)"
TOO_MANY = "more than 65535 objects on one image (16-bit limit)"
OVERLAP_RULE = "where objects overlap, the later object (higher samdesk id) wins"


def export(doc: Any, out: Path, *, tiff: bool = True) -> ExportReport:
    report = ExportReport("masks")
    images = list(doc.images)
    names = per_image_names(images, "")
    categories = list(doc.categories)
    class_value = {c.name: n for n, c in enumerate(categories, start=1)}
    class_dtype = np.uint8 if len(categories) < 256 else np.uint16
    tifffile = _tifffile(report) if tiff else None
    files = OutputFiles()
    for image in images:
        stem = names[image.id]
        instances, semantic, sidecar = _render(doc, image, class_value, class_dtype, report)
        folder = Path(os.path.abspath(out / "instances" / stem)).parent
        sidecar["image"] = relative_path(image.path, folder)
        files.add(out / "instances" / f"{stem}.png", _png(instances))
        files.add(
            out / "instances" / f"{stem}.json",
            json.dumps(sidecar, ensure_ascii=False, indent=1),
        )
        files.add(out / "semantic" / f"{stem}.png", _png(semantic))
        if tifffile is not None:
            buffer = io.BytesIO()
            tifffile.imwrite(buffer, instances, compression="zlib")
            files.add(out / "tiff" / f"{stem}.tif", buffer.getvalue())
    classes = {
        "background": 0,
        "classes": [
            {"value": class_value[c.name], "name": c.name, "color": c.color, "category_id": c.id}
            for c in categories
        ],
    }
    files.add(out / "classes.json", json.dumps(classes, ensure_ascii=False, indent=1))
    report.files = files.commit()
    return report


def _tifffile(report: ExportReport) -> Any:
    try:
        import tifffile
    except ImportError:
        report.notes.append(
            "tifffile is not installed, so no TIFF label images were written "
            "(pip install tifffile); the PNG label images hold the same numbers"
        )
        return None
    return tifffile


def _render(
    doc: Any,
    image: Any,
    class_value: dict[str, int],
    class_dtype: type,
    report: ExportReport,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    instances = np.zeros((image.height, image.width), dtype=np.uint16)
    semantic = np.zeros((image.height, image.width), dtype=class_dtype)
    entries = []
    drawn: list[tuple[int, Any]] = []
    for record in doc.instances_of(image.id):
        if record.bbox is None:
            report.dropped[EMPTY] += 1
            continue
        value = len(drawn) + 1
        if value > 0xFFFF:
            report.dropped[TOO_MANY] += 1
            continue
        crop, (x0, y0) = record.crop()
        window = (slice(y0, y0 + crop.shape[0]), slice(x0, x0 + crop.shape[1]))
        instances[window][crop] = value
        semantic[window][crop] = class_value[record.label]
        drawn.append((value, record))
    visible_areas = np.bincount(instances.ravel(), minlength=len(drawn) + 1)
    for value, record in drawn:
        visible = int(visible_areas[value])
        entry = {
            "value": value,
            "samdesk_id": record.id,
            "label": record.label,
            "category_id": doc.category(record.label).id,
            "score": record.score,
            "area": record.area,
            "visible_area": visible,
        }
        if visible == 0:
            report.dropped[HIDDEN] += 1
            continue
        if visible < record.area:
            report.changed[PARTLY_HIDDEN] += 1
        entries.append(entry)
        report.objects += 1
    sidecar = {
        "width": image.width,
        "height": image.height,
        "background": 0,
        "overlap_rule": OVERLAP_RULE,
        "instances": entries,
    }
    return instances, semantic, sidecar


def _png(array: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise SaveError(f"Could not encode a {array.dtype} label image as PNG.")
    return encoded.tobytes()
