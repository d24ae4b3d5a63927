"""YOLO segmentation labels (Ultralytics "YOLO-seg").

Writes into the folder ``out``:

- ``labels/<image stem>.txt`` for every image (empty for an image without objects): one line per
  polygon *part*, ``<class> x1 y1 x2 y2 ...``, coordinates in the pixel-corner frame divided by
  the image width and height (so in [0, 1]); an object of several parts gives several lines.
- ``classes.txt``: the category names, one per line; a class number is its line number from 0.
- ``data.yaml``: the same names for Ultralytics, with ``path``/``train``/``val`` set to this folder
  and ``images``; put (or link) the images into ``out/images`` so each ``labels/x.txt`` sits
  beside ``images/x.<ext>``, which is how Ultralytics pairs them.

YOLO has no holes: an object's outer outline is written and each hole is counted in the report as
filled. Degenerate parts are dropped and counted; empty masks are dropped and counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from samdesk.annotation.formats.common import OutputFiles, per_image_names, polygons_per_image
from samdesk.annotation.formats.report import ExportReport
from samdesk.annotation.geometry import DEFAULT_TOLERANCE

EMPTY = "empty mask (no pixels)"
HOLES_FILLED = "hole(s) filled: YOLO cannot represent holes"


def export(
    doc: Any, out: Path, *, tolerance: float = DEFAULT_TOLERANCE, decimals: int = 6
) -> ExportReport:
    report = ExportReport("yolo")
    images = list(doc.images)
    names = per_image_names(images, ".txt")
    class_of = {c.name: n for n, c in enumerate(doc.categories)}
    files = OutputFiles()
    number = f"{{:.{decimals}f}}"
    for image, instances, empty, traced in polygons_per_image(doc, images, tolerance):
        lines = []
        if empty:
            report.dropped[EMPTY] += empty
        for instance, polygons in zip(instances, traced, strict=True):
            report.dropped.update(polygons.dropped)
            if polygons.hole_count:
                report.changed[HOLES_FILLED] += polygons.hole_count
            scale = np.array([image.width, image.height], dtype=np.float64)
            for part in polygons.parts:
                points = shapely.get_coordinates(part.exterior)[:-1] / scale
                values = np.clip(np.round(points, decimals), 0.0, 1.0).ravel()
                coordinates = " ".join(map(number.format, values.tolist()))
                lines.append(f"{class_of[instance.label]} {coordinates}")
                report.parts += 1
            report.objects += 1 if polygons.parts else 0
            if not polygons.parts:
                report.dropped["object with no drawable part"] += 1
        files.add(out / "labels" / names[image.id], "".join(f"{line}\n" for line in lines))
    class_names = [_one_line(c.name, report) for c in doc.categories]
    files.add(out / "classes.txt", "".join(f"{name}\n" for name in class_names))
    files.add(out / "data.yaml", _data_yaml(class_names))
    report.files = files.commit()
    return report


def _one_line(name: str, report: ExportReport) -> str:
    if "\n" in name or "\r" in name:
        report.changed["line break in a category name replaced by a space"] += 1
        return " ".join(name.splitlines())
    return name


def _data_yaml(names: list[str]) -> str:
    # A JSON string is a valid YAML double-quoted scalar: any name (quotes, colons, emoji) is safe.
    lines = [
        "# Written by samdesk. Class numbers are the line numbers (from 0) of classes.txt.",
        "# Put the images into ./images so that labels/x.txt sits beside images/x.<ext>.",
        "path: .",
        "train: images",
        "val: images",
        f"nc: {len(names)}",
        "names:",
    ]
    lines += [f"  {n}: {json.dumps(name, ensure_ascii=False)}" for n, name in enumerate(names)]
    return "\n".join(lines) + "\n"
