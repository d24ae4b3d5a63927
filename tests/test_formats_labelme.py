"""labelme export (one JSON per image, holes as mask shapes) and import (validated, grouped)."""

from __future__ import annotations

import base64
import io
import json
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from samdesk.annotation import Document
from samdesk.annotation.formats import labelme
from samdesk.errors import FormatError
from tests.support import masks
from tests.test_annotation_document import write_png

W, H = masks.WIDTH, masks.HEIGHT


def test_export_structure_and_round_trip(tmp_path: Path) -> None:
    doc = Document()
    image_id = doc.add_image(write_png(tmp_path / "imgs" / "ö 1.png"))
    for n, mask in enumerate(masks.varied().values()):
        doc.add_instance(image_id, mask, ["cell", "细胞"][n % 2])
    doc.add_instance(image_id, masks.blank(), "cell")
    report = doc.export("labelme", tmp_path / "out")
    assert report.files == [tmp_path / "out" / "ö 1.json"]
    assert report.dropped == {labelme.EMPTY: 1}
    assert report.changed == {labelme.AS_MASK: 3}  # ring, nested, border
    content = json.loads(report.files[0].read_text(encoding="utf-8"))
    assert content["version"] == labelme.LABELME_VERSION
    assert content["imagePath"] == "../imgs/ö 1.png" and content["imageData"] is None
    assert (content["imageWidth"], content["imageHeight"]) == (W, H)
    parts = [s for s in content["shapes"] if s["group_id"] == doc.instances_of(image_id)[2].id]
    assert len(parts) == 3 and {s["shape_type"] for s in parts} == {"polygon"}
    imported, import_report = Document.from_import("labelme", report.files[0])
    assert import_report.objects == report.objects and not import_report.images_missing
    originals = [i for i in doc.instances if i.area]
    for original, again in zip(originals, imported.instances, strict=True):
        assert again.label == original.label
        assert np.array_equal(again.mask(), original.mask()), original.id


def test_holes_fill_option(tmp_path: Path) -> None:
    doc = Document()
    doc.add_instance(doc.add_image(tmp_path / "a.png", size=(W, H)), masks.ring(), "ring")
    report = doc.export("labelme", tmp_path / "out", holes="fill")
    assert report.changed == {labelme.HOLES_FILLED: 1}
    (shape,) = json.loads((tmp_path / "out" / "a.json").read_text(encoding="utf-8"))["shapes"]
    assert shape["shape_type"] == "polygon"


def _png(mask: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _png_header(width: int, height: int) -> str:
    """A base64 PNG that states a size but holds no pixel data (never needs decoding)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode("ascii")


def shape(label: str, points: list, kind: str = "polygon", group: int | None = None, **extra):
    return {"label": label, "points": points, "shape_type": kind, "group_id": group, **extra}


def labelme_file(shapes: list[dict[str, Any]], image: str = "x.png") -> dict[str, Any]:
    return {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": image,
        "imageData": None,
        "imageHeight": 20,
        "imageWidth": 30,
    }


def test_import_shape_types_groups_and_skips(tmp_path: Path) -> None:
    patch = np.zeros((3, 4), dtype=bool)
    patch[1, 1:3] = True
    shapes = [
        shape("box", [[2, 3], [6, 5]], "rectangle"),
        shape("disc", [[15, 10], [15, 14]], "circle"),
        shape("two", [[0, 0], [3, 0], [3, 3]], group=5),
        shape("two", [[10, 10], [13, 10], [13, 13]], group=5),  # same object
        shape("two", [[20, 0], [23, 0], [23, 3]]),  # no group: its own object
        shape("spot", [[4, 4]], "point"),
        shape("path", [[1, 1], [8, 8], [9, 2]], "linestrip"),
        shape("blob", [[20, 12], [23, 14]], "mask", mask=_png(patch)),
    ]
    source = tmp_path / "x.json"
    source.write_text(json.dumps(labelme_file(shapes)), encoding="utf-8")
    doc, report = Document.from_import("labelme", source)
    assert report.objects == 5
    assert report.skipped == {"point shapes have no area": 1, "linestrip shapes have no area": 1}
    assert report.images_missing == ["x.png"]
    box, disc, two, single, blob = doc.instances
    expected = np.zeros((20, 30), dtype=bool)
    expected[3:5, 2:6] = True
    assert np.array_equal(box.mask(), expected)
    assert disc.area == pytest.approx(np.pi * 16, rel=0.1)
    assert two.area == 2 * single.area and two.label == "two"
    assert blob.area == 2 and blob.mask()[13, 21] and blob.mask()[13, 22]


def test_import_folder_and_images_dir(tmp_path: Path) -> None:
    write_png(tmp_path / "pics" / "x.png", 30, 20)
    for n in range(2):
        folder = tmp_path / "ann" / f"part{n}"
        folder.mkdir(parents=True)
        content = labelme_file([shape("a", [[1, 1], [5, 1], [5, 5]])])
        (folder / f"f{n}.json").write_text(json.dumps(content), encoding="utf-8")
    doc, report = Document.from_import("labelme", tmp_path / "ann", images_dir=tmp_path / "pics")
    assert report.images_added == 1 and report.objects == 2 and not report.images_missing
    assert doc.images[1].path == tmp_path / "pics" / "x.png"


MALFORMED = {
    "no shapes": (lambda c: c.pop("shapes"), "shapes: missing"),
    "no image path": (lambda c: c.pop("imagePath"), "imagePath: missing"),
    "bad size and no image": (lambda c: c.update(imageWidth=0), "imageHeight: the image file"),
    "two-point polygon": (
        lambda c: c["shapes"][0].update(points=[[1, 1], [2, 2]]),
        r"shapes\[0\].points: 2 point\(s\); a polygon needs 3",
    ),
    "point not a pair": (
        lambda c: c["shapes"][0].update(points=[[1, 1, 1], [2, 2], [3, 1]]),
        r"shapes\[0\].points: expected a list of \[x, y\] pairs",
    ),
    "NaN point": (
        lambda c: c["shapes"][0].update(points=[[1, float("nan")], [2, 2], [3, 1]]),
        r"shapes\[0\].points: expected .* finite",
    ),
    "outside the image": (
        lambda c: c["shapes"][0].update(points=[[1, 1], [200, 2], [3, 1]]),
        "outside the 30 x 20",
    ),
    "unknown shape type": (
        lambda c: c["shapes"][0].update(shape_type="spline"),
        "unknown shape type 'spline'",
    ),
    "label missing": (lambda c: c["shapes"][0].pop("label"), r"shapes\[0\].label: missing"),
    "group id text": (lambda c: c["shapes"][0].update(group_id="a"), "group_id: expected"),
    "shape type not a name": (
        lambda c: c["shapes"][0].update(shape_type=["polygon"]),
        r"shapes\[0\].shape_type: expected a shape type name",
    ),
    # pycocotools crashed the process (segmentation fault) on the circle's huge coordinates.
    "circle reaching far outside the image": (
        lambda c: c["shapes"][0].update(shape_type="circle", points=[[5, 5], [1e9, 5]]),
        r"shapes\[0\].points: coordinates reach x 5..1e\+09",
    ),
    "circle centred far outside the image": (
        lambda c: c["shapes"][0].update(shape_type="circle", points=[[-1e12, 5], [5, 5]]),
        r"shapes\[0\].points: coordinates reach",
    ),
    "label that is not valid text": (
        lambda c: c["shapes"][0].update(label="\udce9"),
        r"shapes\[0\].label: .* not valid text",
    ),
    "image too large for RLE": (
        lambda c: c.update(imageWidth=1 << 20, imageHeight=1 << 20),
        "more than COCO run-length masks can hold",
    ),
    "mask image larger than the image": (
        lambda c: c["shapes"][0].update(
            shape_type="mask", points=[[1, 1], [3, 3]], mask=_png_header(200, 100)
        ),
        r"shapes\[0\].mask: the mask image is 200 x 100 pixels, larger than the 30 x 20 image",
    ),
    "mask image that is a decompression bomb": (
        lambda c: c["shapes"][0].update(
            shape_type="mask", points=[[1, 1], [3, 3]], mask=_png_header(20000, 10000)
        ),
        r"shapes\[0\].mask: not a base64 PNG image .*decompression bomb",
    ),
    "mask not base64": (
        lambda c: c["shapes"][0].update(shape_type="mask", points=[[1, 1], [3, 3]], mask="@@"),
        r"shapes\[0\].mask: not a base64 PNG",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_labelme_is_refused(tmp_path: Path, case: str) -> None:
    change, expected = MALFORMED[case]
    content = labelme_file([shape("a", [[1, 1], [5, 1], [5, 5]])])
    change(content)
    source = tmp_path / "bad.json"
    source.write_text(json.dumps(content), encoding="utf-8")
    doc = Document()
    with pytest.raises(FormatError) as caught:
        doc.import_file("labelme", source)
    assert any(re.search(expected, p) for p in caught.value.problems), caught.value.problems
    assert doc.revision == 0 and len(doc.images) == 0


@pytest.mark.parametrize(
    ("encoding", "label"), [("gbk", "细胞"), ("shift_jis", "細胞"), ("cp1252", "café")]
)
def test_legacy_labelme_names_encoding_and_offset(
    tmp_path: Path, encoding: str, label: str
) -> None:
    content = labelme_file([shape(label, [[1, 1], [5, 1], [5, 5]])])
    data = json.dumps(content, ensure_ascii=False).encode(encoding)
    source = tmp_path / "gbk.json"
    source.write_bytes(data)
    with pytest.raises(UnicodeDecodeError) as reference:
        data.decode("utf-8")
    with pytest.raises(FormatError, match=rf"not UTF-8 .* byte {reference.value.start} .*GBK"):
        Document().import_file("labelme", source)


def test_one_bad_file_in_a_folder_imports_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "ann"
    folder.mkdir()
    good = labelme_file([shape("a", [[1, 1], [5, 1], [5, 5]])])
    (folder / "a.json").write_text(json.dumps(good), encoding="utf-8")
    bad = labelme_file([shape("a", [[1, 1], [5, 1]])])
    (folder / "b.json").write_text(json.dumps(bad), encoding="utf-8")
    doc = Document()
    with pytest.raises(FormatError, match=r"b.json: shapes\[0\].points"):
        doc.import_file("labelme", folder)
    assert len(doc.instances) == 0


def test_every_export_writes_unicode_labels_as_utf8(tmp_path: Path) -> None:
    """Chinese and emoji labels stay readable (UTF-8, not \\u escapes) in every file written."""
    doc = Document()
    image_id = doc.add_image(tmp_path / "图 1.png", size=(W, H))
    doc.add_instance(image_id, masks.ring(), "细胞")
    doc.add_instance(image_id, masks.parts(), "🧫 dish")
    doc.export("coco", tmp_path / "out" / "coco.json")
    for fmt in ("labelme", "yolo", "masks"):
        doc.export(fmt, tmp_path / "out" / fmt)
    texts = {
        p.relative_to(tmp_path / "out").as_posix(): p.read_bytes().decode("utf-8")
        for p in (tmp_path / "out").rglob("*")
        if p.suffix in (".json", ".txt", ".yaml") and "labels" not in p.parts
    }
    assert len(texts) == 6, sorted(texts)
    for name, text in texts.items():
        assert "细胞" in text and "🧫 dish" in text and "\\u" not in text, name


def test_a_folder_holding_the_project_too(tmp_path: Path) -> None:
    """The project (and its autosave) saved among the labelme files is left out, not refused."""
    content = labelme_file([shape("a", [[1, 1], [5, 1], [5, 5]])])
    (tmp_path / "x.json").write_text(json.dumps(content), encoding="utf-8")
    project = tmp_path / "p.samdesk.json"
    Document().save(project)
    Document().save(tmp_path / "p.samdesk.json.autosave.json")
    doc = Document.load(project)
    report = doc.import_file("labelme", tmp_path)
    assert report.objects == 1 and report.notes == [
        "2 samdesk project file(s) in the folder left out"
    ]
