"""``samdesk export`` and ``samdesk import`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from samdesk.annotation import Document
from samdesk.cli import main
from tests.support import masks
from tests.test_annotation_document import write_png


def make_project(tmp_path: Path) -> Path:
    doc = Document()
    image_id = doc.add_image(tmp_path / "images" / "a.png", size=(masks.WIDTH, masks.HEIGHT))
    doc.add_instance(image_id, masks.ring(), "ring")
    doc.add_instance(image_id, masks.parts(), "细胞")
    doc.add_instance(image_id, masks.blank(), "ring")
    return doc.save(tmp_path / "p.samdesk.json")


@pytest.mark.parametrize("fmt", ["coco", "yolo", "labelme", "masks"])
def test_export_prints_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    project = make_project(tmp_path)
    out = tmp_path / ("out.json" if fmt == "coco" else "out")
    assert main(["export", str(project), "--to", fmt, str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{fmt}: wrote 2 object(s)" in printed
    assert "dropped 1: empty mask (no pixels)" in printed
    assert out.exists()


def test_export_rle_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(tmp_path)
    assert main(["export", str(project), "--to", "coco", str(tmp_path / "c.json"), "--rle"]) == 0
    content = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    assert all(isinstance(a["segmentation"], dict) for a in content["annotations"])
    assert "written as RLE (asked for)" in capsys.readouterr().out
    assert main(["export", str(project), "--to", "yolo", str(tmp_path / "y"), "--rle"]) == 1
    assert "no option rle" in capsys.readouterr().err


def test_export_of_a_damaged_project_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "p.json"
    project.write_text('{"format": "samdesk-project", "version": 1, "images": [', encoding="utf-8")
    assert main(["export", str(project), "--to", "coco", str(tmp_path / "c.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("samdesk: error:") and "damaged at line 1" in err
    assert "Traceback" not in err


def test_import_creates_then_merges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source_project = make_project(tmp_path)
    main(["export", str(source_project), "--to", "coco", str(tmp_path / "c.json")])
    capsys.readouterr()
    target = tmp_path / "new" / "imported.samdesk.json"
    target.parent.mkdir()
    args = ["import", str(tmp_path / "c.json"), "--format", "coco", "--project", str(target)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert (
        "imported 2 object(s) on 1 new image(s)" in printed and "not found: images/a.png" in printed
    )
    assert len(Document.load(target).instances) == 2
    assert main(args) == 0  # merging the same file again adds the objects again
    assert len(Document.load(target).instances) == 4


def test_malformed_import_leaves_the_project_byte_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path)
    before = project.read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "x.png", "width": 10, "height": 8}],
                "categories": [{"id": 1, "name": "c"}],
                "annotations": [
                    {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 2, 3, 4]]},
                    {"id": 2, "image_id": 4, "category_id": 1, "segmentation": [[1, 1, 2, 1, 2]]},
                ],
            }
        ),
        encoding="utf-8",
    )
    code = main(["import", str(bad), "--format", "coco", "--project", str(project)])
    assert code == 1
    err = capsys.readouterr().err
    assert "annotations[0].segmentation[0]: 4 numbers, a polygon needs at least 6" in err
    assert "annotations[1].image_id: no image has id 4" in err
    assert project.read_bytes() == before


def test_labelme_import_from_a_folder_with_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path)
    main(["export", str(project), "--to", "labelme", str(tmp_path / "lm")])
    capsys.readouterr()
    write_png(tmp_path / "images" / "a.png")  # the image the project was made on
    target = tmp_path / "t.json"
    code = main(
        [
            "import",
            str(tmp_path / "lm"),
            "--format",
            "labelme",
            "--project",
            str(target),
            "--images",
            str(tmp_path / "images"),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "labelme: imported 2 object(s)" in printed and "not found" not in printed
