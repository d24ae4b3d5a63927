"""COCO export loads in pycocotools and reproduces every mask; COCO import refuses malformed
files with JSON paths and leaves the project unchanged."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO

from samdesk.annotation import Document
from samdesk.annotation.formats import coco
from samdesk.errors import FormatError, InputError
from tests.support import masks
from tests.test_annotation_document import write_png

# pycocotools' own decoder (used here as the reference) warns under numpy 2.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def fixture_project(tmp_path: Path) -> Document:
    doc = Document()
    first = doc.add_image(write_png(tmp_path / "images" / "a.png"))
    second = doc.add_image(write_png(tmp_path / "images" / "sub" / "b 🧪.png", seed=3))
    labels = ["cell", "细胞", "🧫"]
    for n, mask in enumerate(masks.varied().values()):
        doc.add_instance(first if n % 2 else second, mask, labels[n % 3], score=0.5 + n / 100)
    doc.add_instance(first, masks.blank(), "cell")  # empty: dropped and counted
    return doc


def test_export_loads_in_pycocotools_and_reproduces_masks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = fixture_project(tmp_path)
    out = tmp_path / "export" / "coco.json"
    out.parent.mkdir()
    report = doc.export("coco", out)
    assert report.files == [out]
    assert report.dropped == {coco.EMPTY: 1}
    assert report.objects == len(doc.instances) - 1
    api = COCO(str(out))
    ious = []
    for annotation in api.dataset["annotations"]:
        original = doc.instance(annotation["id"])
        drawn = api.annToMask(annotation).astype(bool)
        ious.append(masks.iou(drawn, original.mask()))
        assert annotation["iscrowd"] == 0
        assert annotation["area"] == original.area
        assert annotation["bbox"] == list(original.bbox)
        assert api.cats[annotation["category_id"]]["name"] == original.label
    with capsys.disabled():
        print(
            f"\n[coco] {len(ious)} masks: annToMask IoU "
            f"min {min(ious):.4f} mean {np.mean(ious):.4f}"
        )
    assert min(ious) >= 0.97 and np.mean(ious) >= 0.99
    names = {image["file_name"] for image in api.dataset["images"]}
    assert names == {"../images/a.png", "../images/sub/b 🧪.png"}


def test_holes_are_rle_and_plain_shapes_polygons(tmp_path: Path) -> None:
    doc = Document()
    image_id = doc.add_image(tmp_path / "a.png", size=(masks.WIDTH, masks.HEIGHT))
    ring = doc.add_instance(image_id, masks.ring(), "ring")
    parts = doc.add_instance(image_id, masks.parts(), "parts")
    report = doc.export("coco", tmp_path / "c.json")
    content = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    by_id = {a["id"]: a for a in content["annotations"]}
    assert by_id[ring]["segmentation"]["counts"] == doc.instance(ring).rle
    assert isinstance(by_id[ring]["segmentation"]["counts"], str)
    assert len(by_id[parts]["segmentation"]) == 3
    assert report.changed == {coco.AS_RLE_HOLES: 1}
    assert report.parts == 3


def test_rle_option(tmp_path: Path) -> None:
    doc = fixture_project(tmp_path)
    report = doc.export("coco", tmp_path / "c.json", rle=True)
    content = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    assert all(isinstance(a["segmentation"], dict) for a in content["annotations"])
    assert report.changed[coco.AS_RLE_ASKED] == report.objects
    api = COCO(str(tmp_path / "c.json"))
    for annotation in api.dataset["annotations"]:
        assert np.array_equal(api.annToMask(annotation), doc.instance(annotation["id"]).mask())


def test_unknown_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no option holes"):
        Document().export("coco", tmp_path / "c.json", holes="fill")
    with pytest.raises(InputError, match="Unknown export format"):
        Document().export("voc", tmp_path / "c.json")


def test_import_round_trip_is_exact(tmp_path: Path) -> None:
    doc = fixture_project(tmp_path)
    doc.export("coco", tmp_path / "c.json")
    imported, report = Document.from_import("coco", tmp_path / "c.json")
    assert report.objects == len(doc.instances) - 1 and report.images_added == 2
    assert not report.images_missing
    assert [c.name for c in imported.categories] == [c.name for c in doc.categories]
    pairs = zip([i for i in doc.instances if i.area], list(imported.instances), strict=True)
    for original, again in pairs:
        assert again.label == original.label and again.score == original.score
        assert np.array_equal(again.mask(), original.mask())


def test_import_merges_into_an_open_project_and_reports_missing_images(tmp_path: Path) -> None:
    doc = fixture_project(tmp_path)
    doc.export("coco", tmp_path / "c.json")
    content = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    content["images"].append({"id": 99, "file_name": "gone.png", "width": 8, "height": 6})
    content["annotations"].append(
        {"id": 999, "image_id": 99, "category_id": 1, "segmentation": [[1, 1, 5, 1, 5, 4]]}
    )
    (tmp_path / "c2.json").write_text(json.dumps(content), encoding="utf-8")
    target = fixture_project(tmp_path)
    before = len(target.instances)
    report = target.import_file("coco", tmp_path / "c2.json")
    assert report.images_missing == ["gone.png"]
    assert report.images_added == 1  # the two others are already in the project
    assert len(target.instances) == before + report.objects
    missing = target.image(target.find_image(tmp_path / "gone.png"))
    assert (missing.width, missing.height) == (8, 6) and missing.sha256 is None


def test_import_finds_images_in_a_given_folder(tmp_path: Path) -> None:
    write_png(tmp_path / "pictures" / "x.png")
    content = valid_coco(masks.WIDTH, masks.HEIGHT)
    content["images"][0]["file_name"] = "some/where/x.png"
    (tmp_path / "c.json").write_text(json.dumps(content), encoding="utf-8")
    doc, report = Document.from_import(
        "coco", tmp_path / "c.json", images_dir=tmp_path / "pictures"
    )
    assert not report.images_missing
    assert doc.images[1].path == tmp_path / "pictures" / "x.png"


def test_uncompressed_and_compressed_rle_import(tmp_path: Path) -> None:
    mask = masks.ring()
    doc = Document()
    doc.add_instance(doc.add_image(tmp_path / "a.png", size=(96, 72)), mask, "ring")
    runs = doc.instances[1].run_lengths().tolist()
    content = valid_coco(width=96, height=72)
    content["annotations"] = [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 1,
            "segmentation": {"size": [72, 96], "counts": runs},
        },
        {
            "id": 2,
            "image_id": 1,
            "category_id": 1,
            "segmentation": {"size": [72, 96], "counts": doc.instances[1].rle},
            "iscrowd": 1,
        },
    ]
    (tmp_path / "c.json").write_text(json.dumps(content), encoding="utf-8")
    imported, report = Document.from_import("coco", tmp_path / "c.json")
    assert [np.array_equal(i.mask(), mask) for i in imported.instances] == [True, True]
    assert "crowd" in report.notes[0]


# --- malformed input: one test per case ---------------------------------------------------------


def valid_coco(width: int = 10, height: int = 8) -> dict[str, Any]:
    return {
        "images": [{"id": 1, "file_name": "x.png", "width": width, "height": height}],
        "categories": [{"id": 1, "name": "cell"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": [[1, 1, 6, 1, 6, 5]],
                "bbox": [1, 1, 5, 4],
                "area": 10.0,
                "iscrowd": 0,
            }
        ],
    }


def _broken(change) -> dict[str, Any]:
    content = valid_coco()
    change(content)
    return content


MALFORMED = {
    "missing images": (lambda c: c.pop("images"), "images: missing"),
    "annotations not a list": (lambda c: c.update(annotations={}), "annotations: expected a list"),
    "image id not a number": (
        lambda c: c["images"][0].update(id="1"),
        r"images\[0\].id: expected a whole number",
    ),
    "missing file name": (
        lambda c: c["images"][0].pop("file_name"),
        r"images\[0\].file_name: missing",
    ),
    "zero width": (lambda c: c["images"][0].update(width=0), r"images\[0\].width"),
    "dangling image id": (
        lambda c: c["annotations"][0].update(image_id=7),
        r"annotations\[0\].image_id: no image has id 7",
    ),
    "dangling category id": (
        lambda c: c["annotations"][0].update(category_id=3),
        r"annotations\[0\].category_id: no category",
    ),
    "duplicate annotation id": (
        lambda c: c["annotations"].append(dict(c["annotations"][0])),
        r"annotations\[1\].id: duplicate id 1",
    ),
    "duplicate image id": (
        lambda c: c["images"].append(dict(c["images"][0], file_name="y.png")),
        r"images\[1\].id: duplicate id 1",
    ),
    "four-number polygon": (
        lambda c: c["annotations"][0].update(segmentation=[[1, 1, 5, 5]]),
        r"annotations\[0\].segmentation\[0\]: 4 numbers, a polygon needs at least 6",
    ),
    "odd-length polygon": (
        lambda c: c["annotations"][0].update(segmentation=[[1, 1, 5, 1, 5, 5, 2]]),
        r"segmentation\[0\]: 7 numbers, an odd count",
    ),
    "NaN coordinate": (
        lambda c: c["annotations"][0].update(segmentation=[[1, 1, float("nan"), 1, 5, 5]]),
        r"segmentation\[0\]: holds nan",
    ),
    "huge coordinate": (
        lambda c: c["annotations"][0].update(segmentation=[[1, 1, 1e300, 1, 5, 5]]),
        r"segmentation\[0\]: coordinates reach .* outside the 10 x 8 image",
    ),
    "polygon outside the image": (
        lambda c: c["annotations"][0].update(segmentation=[[1, 1, 30, 1, 30, 5]]),
        "outside the 10 x 8 image",
    ),
    "bbox outside the image": (
        lambda c: c["annotations"][0].update(bbox=[5, 5, 20, 2]),
        r"annotations\[0\].bbox: coordinates reach",
    ),
    "RLE counts not matching the size": (
        lambda c: c["annotations"][0].update(segmentation={"size": [8, 10], "counts": [5, 10]}),
        r"segmentation.counts: RLE covers 15 pixels but the mask is 8 x 10",
    ),
    "RLE size not the image's": (
        lambda c: c["annotations"][0].update(segmentation={"size": [80, 10], "counts": "0"}),
        r"segmentation.size: \[80, 10\] does not match",
    ),
    "RLE string cut off": (
        lambda c: c["annotations"][0].update(segmentation={"size": [8, 10], "counts": "1P"}),
        "middle of a number",
    ),
    "empty segmentation": (
        lambda c: c["annotations"][0].update(segmentation=[]),
        "an empty list: no polygon",
    ),
    "segmentation of the wrong type": (
        lambda c: c["annotations"][0].update(segmentation="polygon"),
        "expected a list of polygons",
    ),
    "negative score": (lambda c: c["annotations"][0].update(score="high"), r"\.score: expected"),
    "label that is not valid text": (
        lambda c: c["categories"][0].update(name="cell \ud800"),
        r"categories\[0\].name: .* not valid text",
    ),
    "RLE that adds up only by wrapping around": (
        lambda c: c["annotations"][0].update(
            segmentation={"size": [8, 10], "counts": masks.wrapped_rle(8, 10)}
        ),
        r"segmentation.counts: RLE has a run longer than the whole mask",
    ),
    "image too large for RLE": (
        lambda c: c["images"][0].update(width=1 << 20, height=1 << 20),
        r"images\[0\]: 1048576 x 1048576 pixels is more than COCO run-length masks can hold",
    ),
}


@pytest.fixture
def project_with_work(tmp_path: Path) -> tuple[Document, Path, bytes]:
    doc = Document()
    doc.add_instance(doc.add_image(tmp_path / "a.png", size=(96, 72)), masks.ring(), "ring")
    path = doc.save(tmp_path / "p.samdesk.json")
    return doc, path, path.read_bytes()


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_coco_is_refused_and_changes_nothing(
    tmp_path: Path, project_with_work: tuple[Document, Path, bytes], case: str
) -> None:
    change, expected = MALFORMED[case]
    source = tmp_path / "bad.json"
    source.write_text(json.dumps(_broken(change)), encoding="utf-8")
    doc, path, saved = project_with_work
    revision, images, objects = doc.revision, len(doc.images), len(doc.instances)
    with pytest.raises(FormatError) as caught:
        doc.import_file("coco", source)
    assert caught.value.problems, case
    assert any(re.search(expected, p) for p in caught.value.problems), caught.value.problems
    assert (doc.revision, len(doc.images), len(doc.instances)) == (revision, images, objects)
    assert path.read_bytes() == saved


def test_not_json_is_refused_with_position(tmp_path: Path) -> None:
    source = tmp_path / "bad.json"
    source.write_text('{"images": [}', encoding="utf-8")
    with pytest.raises(FormatError, match=r"not valid JSON: .* line 1, column 13"):
        Document().import_file("coco", source)


def test_non_utf8_is_refused_with_byte_offset(tmp_path: Path) -> None:
    source = tmp_path / "gbk.json"
    text = json.dumps(valid_coco(), ensure_ascii=False).replace('"cell"', '"细胞"')
    source.write_bytes(text.encode("gbk"))
    try:
        source.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        offset = err.start
    with pytest.raises(FormatError, match=rf"byte {offset} \(0x[0-9a-f]{{2}}\).*GBK"):
        Document().import_file("coco", source)


def test_top_level_not_an_object(tmp_path: Path) -> None:
    source = tmp_path / "list.json"
    source.write_text("[]", encoding="utf-8")
    with pytest.raises(FormatError, match="top level"):
        Document().import_file("coco", source)


def test_image_of_another_size_is_refused(tmp_path: Path) -> None:
    write_png(tmp_path / "x.png", 40, 30)
    source = tmp_path / "c.json"
    source.write_text(json.dumps(valid_coco()), encoding="utf-8")  # says 10 x 8
    doc = Document()
    with pytest.raises(FormatError, match="40 x 30 pixels but the file says 10 x 8"):
        doc.import_file("coco", source)
    assert len(doc.images) == 0 and doc.revision == 0


def test_an_image_file_that_cannot_be_read_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_text("not a picture", encoding="utf-8")
    source = tmp_path / "c.json"
    source.write_text(json.dumps(valid_coco()), encoding="utf-8")
    doc = Document()
    with pytest.raises(FormatError) as caught:
        doc.import_file("coco", source)
    assert re.search(r"images\[0\].file_name: .*x.png cannot be read", caught.value.problems[0])
    assert len(doc.images) == 0 and doc.revision == 0


def test_one_image_stated_twice_with_different_sizes_is_a_problem(tmp_path: Path) -> None:
    content = valid_coco()
    content["images"].append({"id": 2, "file_name": "x.png", "width": 20, "height": 8})
    content["annotations"].append(
        {"id": 2, "image_id": 2, "category_id": 1, "segmentation": [[1, 1, 16, 1, 16, 5]]}
    )
    source = tmp_path / "c.json"
    source.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(FormatError, match=r"already in the project as an image of 10 x 8"):
        Document().import_file("coco", source)


def test_a_file_name_too_long_for_the_file_system_is_a_missing_image(tmp_path: Path) -> None:
    content = valid_coco()
    content["images"][0]["file_name"] = "a" * 5000 + ".png"
    source = tmp_path / "c.json"
    source.write_text(json.dumps(content), encoding="utf-8")
    doc, report = Document.from_import("coco", source)
    assert report.images_missing == [content["images"][0]["file_name"]]
    assert len(doc.instances) == 1
    assert "is missing" in doc.image_changed(1)
    again = Document.load(doc.save(tmp_path / "p.samdesk.json"))  # and opens again
    assert again.image(1).path == doc.image(1).path and "is missing" in again.image_changed(1)


def test_utf16_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Windows PowerShell writes UTF-16 files by default."""
    text = json.dumps(valid_coco(), ensure_ascii=False).replace('"cell"', '"细胞"')
    source = tmp_path / "c.json"
    source.write_bytes(text.encode("utf-16"))
    doc, report = Document.from_import("coco", source)
    assert report.objects == 1 and doc.instances[1].label == "细胞"
    source.write_bytes(b"\xff\xfe" + text.encode("utf-16-le")[:-1])  # cut in a character
    with pytest.raises(FormatError, match="UTF-16 byte-order mark but byte"):
        Document().import_file("coco", source)


def test_integer_rings_are_written_exactly_as_json_would() -> None:
    rng = np.random.default_rng(0)
    rings = [np.array([[0, 9], [10, 99], [100, 999], [1000, 10**6]])]
    for _ in range(300):
        scale = int(rng.choice([1, 9, 10, 100, 1000, 10**6, 10**7]))
        rings.append(rng.integers(0, scale + 1, (int(rng.integers(3, 40)), 2)))
    expected = [json.dumps(r.ravel().tolist(), separators=(",", ":")) for r in rings]
    assert coco._int_rings_json(rings) == expected
    assert coco._int_rings_json([]) == []
    floats = np.array([[0.5, 1.25], [3, 4], [5, 6.1254]])
    texts = coco._rings_json([floats, rings[0]], coco._dumper())
    assert texts == ["[0.5,1.25,3.0,4.0,5.0,6.125]", expected[0]]


def test_a_self_intersecting_polygon_comes_back_valid(tmp_path: Path) -> None:
    """A bow tie imported from another tool is exported as valid polygons that pycocotools
    draws exactly as the imported object."""
    from shapely.geometry import Polygon

    content = valid_coco(width=40, height=30)
    content["annotations"][0]["segmentation"] = [[2, 2, 30, 25, 30, 2, 2, 25]]  # crossing edges
    content["annotations"][0].pop("bbox")
    (tmp_path / "c.json").write_text(json.dumps(content), encoding="utf-8")
    doc, _ = Document.from_import("coco", tmp_path / "c.json")
    original = doc.instances[1].mask()
    assert original.sum() > 100
    doc.export("coco", tmp_path / "out.json")
    api = COCO(str(tmp_path / "out.json"))
    (annotation,) = api.dataset["annotations"]
    rings = annotation["segmentation"]
    assert isinstance(rings, list) and rings
    assert all(Polygon(np.reshape(r, (-1, 2))).is_valid for r in rings)
    assert np.array_equal(api.annToMask(annotation).astype(bool), original)
