"""Exports checked against what their consumers accept.

- COCO: ``pycocotools.coco.COCO`` itself (installed): loads, every polygon has at least 6 numbers.
- YOLO-seg: Ultralytics is not installed here; ``ultralytics_check`` transcribes the checks of
  its ``verify_image_label`` (ultralytics/data/utils.py): a line with more than 6 values is a
  segment, class ids below ``nc``, coordinates in [0, 1], rows (class + box) not duplicated.
- labelme: not installed (it needs Qt); ``labelme_check`` transcribes ``_load_shape_json_obj``
  and ``LabelFile.load`` (labelme/_label_file.py) and both ways labelme turns a ``mask`` shape
  back into pixels (``shapes_to_label`` in labelme/utils/shape.py: 5.4-5.5 slice from the
  integer points, inclusive; newer versions paste the patch at the rounded first point).
- label images: OpenCV and tifffile read the 16-bit instance ids that the sidecar documents.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path, PureWindowsPath
from typing import Any

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image
from pycocotools.coco import COCO

from samdesk.annotation import Document
from samdesk.annotation.geometry import rings_to_mask
from tests.support import masks
from tests.test_annotation_document import write_png

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

W, H = masks.WIDTH, masks.HEIGHT


@pytest.fixture
def project(tmp_path: Path) -> Document:
    doc = Document()
    first = doc.add_image(write_png(tmp_path / "images" / "a.png"))
    second = doc.add_image(write_png(tmp_path / "images" / "b 🧪.png", seed=2))
    labels = ["cell", "细胞", "🧫"]
    for n, mask in enumerate(masks.varied().values()):
        doc.add_instance(first if n % 2 else second, mask, labels[n % 3])
    doc.add_instance(first, masks.disk(30, 30, 12), "cell")  # overlaps earlier objects
    doc.add_instance(second, masks.blank(), "cell")
    return doc


def test_coco_polygons_have_at_least_three_points(project: Document, tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    project.export("coco", out)
    api = COCO(str(out))
    polygons = [
        ring
        for a in api.dataset["annotations"]
        if isinstance(a["segmentation"], list)
        for ring in a["segmentation"]
    ]
    assert polygons and all(len(r) >= 6 and len(r) % 2 == 0 for r in polygons)
    for annotation in api.dataset["annotations"]:
        original = project.instance(annotation["id"])
        assert np.array_equal(api.annToMask(annotation).astype(bool), original.mask())


def ultralytics_check(label_file: Path, classes: int) -> list[tuple[int, np.ndarray]]:
    """The label checks of Ultralytics' ``verify_image_label``; returns (class, points)."""
    rows = [line.split() for line in label_file.read_text(encoding="utf-8").splitlines() if line]
    assert all(len(row) > 6 for row in rows), "every line must be a segment (> 6 values)"
    assert all(len(row) % 2 == 1 for row in rows), "x and y come in pairs after the class"
    kinds = np.array([row[0] for row in rows], dtype=np.float32)
    segments = [np.array(row[1:], dtype=np.float32).reshape(-1, 2) for row in rows]
    boxes = np.array([[*s.min(axis=0), *s.max(axis=0)] for s in segments], dtype=np.float32)
    table = np.concatenate((kinds[:, None], boxes), axis=1)
    assert (table >= 0).all(), "negative label values"
    assert (table[:, 1:] <= 1).all(), "non-normalized or out of bounds coordinates"
    assert table[:, 0].max() < classes and np.array_equal(kinds, kinds.round())
    assert len(np.unique(table, axis=0)) == len(rows), "duplicate rows would be dropped"
    return [(int(k), s) for k, s in zip(kinds, segments, strict=True)]


def test_yolo_lines_pass_ultralytics_checks(project: Document, tmp_path: Path) -> None:
    report = project.export("yolo", tmp_path / "y")
    classes = (tmp_path / "y" / "classes.txt").read_text(encoding="utf-8").splitlines()
    assert classes == ["cell", "细胞", "🧫"]
    lines = 0
    for image in project.images:
        rows = ultralytics_check(tmp_path / "y" / "labels" / f"{image.path.stem}.txt", 3)
        lines += len(rows)
        drawn = rings_to_mask([(s * [W, H]).ravel().tolist() for _, s in rows], H, W)
        expected = np.zeros((H, W), dtype=bool)
        for record in project.instances_of(image.id):
            expected |= record.mask()
        assert (drawn | ~expected).all()  # every object pixel is covered (holes are filled)
    assert lines == report.parts


def labelme_check(file: Path) -> dict[str, Any]:
    """What labelme's ``LabelFile.load`` and ``_load_shape_json_obj`` require of a file."""
    data = json.loads(file.read_text(encoding="utf-8"))  # labelme opens it as UTF-8
    for key in ("version", "imageData", "imagePath", "shapes"):
        assert key in data, key
    image = file.parent / PureWindowsPath(data["imagePath"]).as_posix()
    assert data["imageData"] is not None or image.is_file()
    width, height = Image.open(image).size
    assert (data["imageWidth"], data["imageHeight"]) == (width, height)
    assert isinstance(data.get("flags") or {}, dict)
    for shape in data["shapes"]:
        assert isinstance(shape["label"], str)
        assert isinstance(shape["points"], list) and shape["points"]
        assert all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, int | float) for v in p)
            for p in shape["points"]
        )
        assert isinstance(shape["shape_type"], str)
        assert all(isinstance(k, str) and isinstance(v, bool) for k, v in shape["flags"].items())
        assert shape.get("description") is None or isinstance(shape["description"], str)
        assert shape.get("group_id") is None or isinstance(shape["group_id"], int)
        if shape.get("mask") is not None:
            picture = Image.open(io.BytesIO(base64.b64decode(shape["mask"])))
            shape["mask"] = np.array(picture).astype(bool)  # labelme's img_b64_to_arr
    return data


def labelme_mask_old(shape: dict[str, Any], size: tuple[int, int]) -> np.ndarray:
    """labelme 5.4-5.5: ``mask[y1 : y2 + 1, x1 : x2 + 1] = shape["mask"]``."""
    out = np.zeros(size, dtype=bool)
    (x1, y1), (x2, y2) = np.asarray(shape["points"]).astype(int)
    out[y1 : y2 + 1, x1 : x2 + 1] = shape["mask"]
    return out


def labelme_mask_new(shape: dict[str, Any], size: tuple[int, int]) -> np.ndarray:
    """Newer labelme: the patch is pasted at the rounded first point, with its own extent."""
    out = np.zeros(size, dtype=bool)
    x1, y1 = np.asarray(shape["points"][0]).round().astype(int)
    h, w = shape["mask"].shape
    out[max(y1, 0) : y1 + h, max(x1, 0) : x1 + w] = shape["mask"][: size[0] - y1, : size[1] - x1]
    return out


def test_labelme_files_load_the_way_labelme_loads_them(project: Document, tmp_path: Path) -> None:
    report = project.export("labelme", tmp_path / "lm")
    assert report.changed  # objects with holes became mask shapes
    for image in project.images:
        data = labelme_check(tmp_path / "lm" / f"{image.path.stem}.json")
        by_object: dict[int, list[dict[str, Any]]] = {}
        for shape in data["shapes"]:
            by_object.setdefault(shape["group_id"], []).append(shape)
        for record in project.instances_of(image.id):
            if not record.area:
                assert record.id not in by_object
                continue
            shapes = by_object[record.id]
            assert {s["label"] for s in shapes} == {record.label}
            if shapes[0]["shape_type"] == "mask":
                (shape,) = shapes
                assert np.array_equal(labelme_mask_old(shape, image.size), record.mask())
                assert np.array_equal(labelme_mask_new(shape, image.size), record.mask())
            else:
                assert {s["shape_type"] for s in shapes} == {"polygon"}
                rings = [np.ravel(s["points"]).tolist() for s in shapes]
                assert masks.iou(rings_to_mask(rings, H, W), record.mask()) >= 0.98


def test_label_images_hold_the_documented_ids(project: Document, tmp_path: Path) -> None:
    project.export("masks", tmp_path / "m")
    classes = json.loads((tmp_path / "m" / "classes.json").read_text(encoding="utf-8"))
    value_of = {c["name"]: c["value"] for c in classes["classes"]}
    for image in project.images:
        stem = image.path.stem
        instances = cv2.imread(str(tmp_path / "m" / "instances" / f"{stem}.png"), -1)
        tiff = tifffile.imread(tmp_path / "m" / "tiff" / f"{stem}.tif")
        semantic = cv2.imread(str(tmp_path / "m" / "semantic" / f"{stem}.png"), -1)
        assert instances.dtype == tiff.dtype == np.uint16 and np.array_equal(instances, tiff)
        sidecar = json.loads(
            (tmp_path / "m" / "instances" / f"{stem}.json").read_text(encoding="utf-8")
        )
        expected_instances = np.zeros((H, W), dtype=np.uint16)
        expected_semantic = np.zeros((H, W), dtype=np.uint8)
        for entry in sidecar["instances"]:  # later objects win, as the sidecar states
            mask = project.instance(entry["samdesk_id"]).mask()
            expected_instances[mask] = entry["value"]
            expected_semantic[mask] = value_of[entry["label"]]
            assert entry["visible_area"] == int((instances == entry["value"]).sum())
        assert np.array_equal(instances, expected_instances)
        assert np.array_equal(semantic, expected_semantic)
