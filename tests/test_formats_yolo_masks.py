"""YOLO-seg labels and label-image (masks) exports, and all-or-nothing export writing."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path, PurePosixPath, PureWindowsPath

import cv2
import numpy as np
import pytest
import tifffile

from samdesk.annotation import Document
from samdesk.annotation.formats import masks as masks_format
from samdesk.annotation.formats import yolo
from samdesk.annotation.geometry import rings_to_mask
from samdesk.errors import InputError, SaveError
from tests.support import masks

W, H = masks.WIDTH, masks.HEIGHT


def project(tmp_path: Path) -> tuple[Document, int]:
    doc = Document()
    image_id = doc.add_image(tmp_path / "imgs" / "frame 1.png", size=(W, H))
    return doc, image_id


def read_yolo(path: Path) -> list[tuple[int, np.ndarray]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        values = line.split()
        rows.append((int(values[0]), np.array(values[1:], dtype=float).reshape(-1, 2)))
    return rows


def test_yolo_lines_per_part_normalised(tmp_path: Path) -> None:
    doc, image_id = project(tmp_path)
    doc.add_instance(image_id, masks.parts(), "parts")
    doc.add_instance(image_id, masks.concave(), "星 ⭐")
    doc.add_instance(image_id, masks.diagonal_line(), "parts")
    report = doc.export("yolo", tmp_path / "out")
    rows = read_yolo(tmp_path / "out" / "labels" / "frame 1.txt")
    assert [c for c, _ in rows] == [0, 0, 0, 1, 0]
    assert report.parts == 5 and report.objects == 3 and not report.dropped
    for _, points in rows:
        assert points.min() >= 0 and points.max() <= 1
    # Drawing the lines back (times the image size) gives the masks again.
    drawn = rings_to_mask([(p * [W, H]).ravel().tolist() for _, p in rows[:3]], H, W)
    assert masks.iou(drawn, masks.parts()) >= 0.98
    classes = (tmp_path / "out" / "classes.txt").read_text(encoding="utf-8").splitlines()
    assert classes == ["parts", "星 ⭐"]
    data = (tmp_path / "out" / "data.yaml").read_text(encoding="utf-8")
    assert "nc: 2" in data and '  1: "星 ⭐"' in data


def test_yolo_reports_holes_and_empty_masks(tmp_path: Path) -> None:
    doc, image_id = project(tmp_path)
    doc.add_instance(image_id, masks.nested(), "n")
    doc.add_instance(image_id, masks.blank(), "n")
    report = doc.export("yolo", tmp_path / "out")
    assert report.changed == {yolo.HOLES_FILLED: 2}
    assert report.dropped == {yolo.EMPTY: 1}
    assert "2: hole(s) filled" in report.summary().replace("changed ", "")


def test_yolo_names_and_collisions(tmp_path: Path) -> None:
    doc = Document()
    doc.add_image(tmp_path / "a" / "img.png", size=(W, H))
    doc.add_image(tmp_path / "b" / "img.png", size=(W, H))
    doc.add_image(tmp_path / "b" / "other.png", size=(W, H))
    doc.export("yolo", tmp_path / "out")
    labels = sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.txt")
    )
    assert labels == ["classes.txt", "labels/a/img.txt", "labels/b/img.txt", "labels/b/other.txt"]
    doc.add_image(tmp_path / "b" / "img.tif", size=(W, H))
    with pytest.raises(InputError, match="same output file name"):
        doc.export("yolo", tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def test_masks_export_ids_classes_and_overlap_rule(tmp_path: Path) -> None:
    doc, image_id = project(tmp_path)
    big = doc.add_instance(image_id, masks.disk(48, 36, 20), "cell", score=0.7)
    doc.add_instance(image_id, masks.disk(60, 36, 4), "core")  # on top of big
    hidden = doc.add_instance(image_id, masks.disk(40, 36, 3), "cell")
    doc.add_instance(image_id, masks.disk(40, 36, 5), "core")  # covers `hidden`
    report = doc.export("masks", tmp_path / "out")
    assert report.dropped == {masks_format.HIDDEN: 1}
    assert report.changed == {masks_format.PARTLY_HIDDEN: 1}
    instances = cv2.imread(str(tmp_path / "out/instances/frame 1.png"), cv2.IMREAD_UNCHANGED)
    assert instances.dtype == np.uint16 and instances.shape == (H, W)
    sidecar = json.loads((tmp_path / "out/instances/frame 1.json").read_text(encoding="utf-8"))
    by_value = {e["value"]: e for e in sidecar["instances"]}
    assert by_value[1]["samdesk_id"] == big and by_value[1]["score"] == 0.7
    assert hidden not in [e["samdesk_id"] for e in sidecar["instances"]]
    assert "later object" in sidecar["overlap_rule"]
    assert sidecar["image"] == "../../imgs/frame 1.png"
    assert set(np.unique(instances)) == {0, 1, 2, 4}
    assert (instances[36, 40], instances[36, 60], instances[36, 48]) == (4, 2, 1)
    semantic = cv2.imread(str(tmp_path / "out/semantic/frame 1.png"), cv2.IMREAD_UNCHANGED)
    assert semantic.dtype == np.uint8
    classes = json.loads((tmp_path / "out/classes.json").read_text(encoding="utf-8"))
    value = {c["name"]: c["value"] for c in classes["classes"]}
    assert semantic[36, 40] == value["core"] and semantic[36, 48] == value["cell"]
    assert np.array_equal(tifffile.imread(tmp_path / "out/tiff/frame 1.tif"), instances)


def test_masks_semantic_is_16_bit_with_many_classes(tmp_path: Path) -> None:
    doc, image_id = project(tmp_path)
    for n in range(300):
        doc.add_category(f"class {n}")
    doc.add_instance(image_id, masks.one_pixel(), "class 299")
    doc.export("masks", tmp_path / "out", tiff=False)
    semantic = cv2.imread(str(tmp_path / "out/semantic/frame 1.png"), cv2.IMREAD_UNCHANGED)
    assert semantic.dtype == np.uint16 and semantic[20, 30] == 300
    assert not (tmp_path / "out" / "tiff").exists()


def test_export_failure_leaves_no_partial_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = Document()
    for n in range(3):
        image_id = doc.add_image(tmp_path / f"img{n}.png", size=(W, H))
        doc.add_instance(image_id, masks.disk(20 + n, 20, 8), "cell")
    out = tmp_path / "out"
    real_replace = os.replace
    calls = {"n": 0}

    def disk_full_on_third(source, target, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(source, target, **kwargs)

    monkeypatch.setattr(os, "replace", disk_full_on_third)
    with pytest.raises(SaveError, match="disk is full"):
        doc.export("labelme", out)
    monkeypatch.undo()
    assert [p for p in out.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("fmt", ["coco", "labelme", "yolo", "masks"])
def test_an_export_never_replaces_a_project(tmp_path: Path, fmt: str) -> None:
    """``samdesk export p.json --to coco p.json`` (a slip of the keyboard) must not destroy the
    project; nor may a per-image file that happens to have a project's name."""
    doc = Document()
    image_id = doc.add_image(tmp_path / "p.png", size=(W, H))
    doc.add_instance(image_id, masks.ring(), "cell")
    names = {"coco": "p.json", "labelme": "p.json", "yolo": "classes.txt", "masks": "classes.json"}
    project = doc.save(tmp_path / names[fmt])
    project.write_bytes(b"\xef\xbb\xbf" + project.read_bytes())  # also behind a byte-order mark
    before = project.read_bytes()
    out = project if fmt == "coco" else tmp_path
    with pytest.raises(SaveError, match="an export never replaces"):
        doc.export(fmt, out)
    assert project.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [project.name]  # nothing written


def test_names_for_images_on_several_drives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows: images on C: and D: have no common folder (os.path.commonpath raises)."""
    from samdesk.annotation.formats import common

    assert common._folder_name(PureWindowsPath(r"D:\scans\day 1"), None) == PurePosixPath(
        "D/scans/day 1"
    )
    assert common._folder_name(PureWindowsPath(r"\\server\share\x"), None) == PurePosixPath(
        "server/share/x"
    )
    doc = Document()
    doc.add_image(tmp_path / "a" / "img.png", size=(W, H))
    doc.add_image(tmp_path / "b" / "img.png", size=(W, H))

    def no_common_folder(paths: list[str]) -> str:
        raise ValueError("Paths don't have the same drive")

    monkeypatch.setattr(common.os.path, "commonpath", no_common_folder)
    doc.export("yolo", tmp_path / "out")
    labels = sorted(p for p in (tmp_path / "out" / "labels").rglob("*.txt"))
    expected = [tmp_path / "out" / "labels" / Path(*(tmp_path / d).parts[1:]) / "img.txt"
                for d in ("a", "b")]  # fmt: skip
    assert labels == expected


def test_a_name_too_long_for_the_file_system_is_a_save_error(tmp_path: Path) -> None:
    doc = Document()
    doc.add_image(tmp_path / ("a" * 300 + ".png"), size=(W, H))  # e.g. from an imported file
    with pytest.raises(SaveError, match="Could not save"):
        doc.export("yolo", tmp_path / "out")
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("name", ["a\x00b.png", "\ud800.png"])
def test_a_name_no_file_can_have_is_a_save_error(tmp_path: Path, name: str) -> None:
    """An imported file name with a NUL or a lone surrogate (JSON escapes allow both) becomes an
    output file name no file system takes."""
    doc = Document()
    doc.add_image(tmp_path / name, size=(W, H))
    for fmt in ("yolo", "labelme", "masks"):
        with pytest.raises(SaveError, match=r"cannot be used on this system|Could not"):
            doc.export(fmt, tmp_path / fmt)
        assert [p for p in (tmp_path / fmt).rglob("*") if p.is_file()] == []
    doc.export("coco", tmp_path / "c.json")  # the name is only text inside the file
