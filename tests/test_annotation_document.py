"""The Document API: images, objects, categories, undoable mutations, paths and saving."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samdesk.annotation import DONE, IN_PROGRESS, Document
from samdesk.annotation import project_file as project_module
from samdesk.errors import InputError
from tests.support import masks


def write_png(path: Path, width: int = masks.WIDTH, height: int = masks.HEIGHT, seed: int = 0):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def doc_with_image(tmp_path: Path) -> tuple[Document, int]:
    doc = Document()
    image_id = doc.add_image(write_png(tmp_path / "images" / "a.png"))
    return doc, image_id


def test_add_image_reads_size_and_hash(tmp_path: Path) -> None:
    path = write_png(tmp_path / "images" / "a.png", 40, 30)
    doc = Document()
    image_id = doc.add_image(path)
    image = doc.image(image_id)
    assert (image.width, image.height) == (40, 30)
    assert image.sha256 and len(image.sha256) == 64
    assert image.status == "not started"
    assert image.path == path
    assert doc.add_image(path) == image_id  # the same file is not added twice
    assert len(doc.images) == 1


def test_add_instance_and_lookups(doc_with_image: tuple[Document, int]) -> None:
    doc, image_id = doc_with_image
    first = doc.add_instance(image_id, masks.disk(20, 20, 8), "cell", score=0.9)
    second = doc.add_instance(
        image_id, masks.ring(), "nucleus", prompts={"points": np.array([[3.5, 4.0]])}
    )
    record = doc.instance(first)
    assert np.array_equal(record.mask(), masks.disk(20, 20, 8))
    assert record.area == masks.disk(20, 20, 8).sum()
    assert record.bbox == (12, 12, 17, 17)
    assert record.score == 0.9 and record.created and record.modified
    assert doc.instance(second).prompts == {"points": [[3.5, 4.0]]}
    assert [r.id for r in doc.instances_of(image_id)] == [first, second]
    assert first in doc.instances and doc.instances[second].label == "nucleus"
    assert [c.name for c in doc.categories] == ["cell", "nucleus"]
    assert len({c.color for c in doc.categories}) == 2


def test_wrong_mask_shape_is_refused_with_sizes(doc_with_image: tuple[Document, int]) -> None:
    doc, image_id = doc_with_image
    with pytest.raises(InputError, match=r"96 x 72 .*width x height"):
        doc.add_instance(image_id, np.zeros((masks.WIDTH, masks.HEIGHT), dtype=bool), "cell")
    with pytest.raises(InputError, match="no image with id 99"):
        doc.add_instance(99, masks.one_pixel(), "cell")
    with pytest.raises(InputError, match="label"):
        doc.add_instance(image_id, masks.one_pixel(), "  ")
    with pytest.raises(InputError, match="JSON"):
        doc.add_instance(image_id, masks.one_pixel(), "cell", prompts={"f": object()})
    with pytest.raises(InputError, match="finite"):
        doc.add_instance(image_id, masks.one_pixel(), "cell", score=float("nan"))
    assert len(doc.instances) == 0


def test_every_mutation_is_undoable_and_counted(doc_with_image: tuple[Document, int]) -> None:
    doc, image_id = doc_with_image
    start = doc.revision
    object_id = doc.add_instance(image_id, masks.disk(30, 30, 9), "cell")
    assert doc.revision == start + 2  # the new category, then the object
    before = doc.update_instance(object_id, mask=masks.disk(40, 30, 9), score=0.5)
    assert np.array_equal(doc.instance(object_id).mask(), masks.disk(40, 30, 9))
    doc.replace_instance(before)  # undo the update
    assert np.array_equal(doc.instance(object_id).mask(), masks.disk(30, 30, 9))
    assert doc.instance(object_id).score is None
    previous = doc.relabel(object_id, "细胞 🧫")
    assert doc.instance(object_id).label == "细胞 🧫" and previous.label == "cell"
    removed = doc.delete_instance(object_id)
    assert object_id not in doc.instances and doc.instances_of(image_id) == []
    doc.restore_instance(removed)  # undo the delete: same id, times and mask
    assert doc.instance(object_id) == removed
    assert doc.add_instance(image_id, masks.one_pixel(), "cell", instance_id=77) == 77
    with pytest.raises(InputError, match="already in use"):
        doc.add_instance(image_id, masks.one_pixel(), "cell", instance_id=77)
    assert doc.revision > start + 6


def test_restored_objects_keep_their_order(doc_with_image: tuple[Document, int]) -> None:
    doc, image_id = doc_with_image
    ids = [doc.add_instance(image_id, masks.disk(10 + 5 * n, 20, 3), "cell") for n in range(4)]
    removed = doc.delete_instance(ids[1])
    doc.add_instance(image_id, masks.one_pixel(), "cell")
    doc.restore_instance(removed)
    listed = [r.id for r in doc.instances]
    assert listed == sorted(listed)
    assert [r.id for r in doc.instances_of(image_id)][:4] == ids


def test_categories_rename_recolour_remove(doc_with_image: tuple[Document, int]) -> None:
    doc, image_id = doc_with_image
    a = doc.add_instance(image_id, masks.disk(20, 20, 5), "cel")
    doc.add_category("nucleus")
    with pytest.raises(InputError, match="already exists"):
        doc.rename_category("cel", "nucleus")
    doc.rename_category("cel", "cell")
    assert doc.instance(a).label == "cell"
    assert [c.name for c in doc.categories] == ["cell", "nucleus"]
    old = doc.set_category_color("cell", "#123456")
    assert doc.category("cell").color == "#123456" and old != "#123456"
    with pytest.raises(InputError, match="#rrggbb"):
        doc.set_category_color("cell", "red")
    with pytest.raises(InputError, match="used by 1"):
        doc.remove_category("cell")
    removed = doc.remove_category("nucleus")
    doc.restore_category(removed)
    assert doc.category("nucleus") == removed


def test_many_distinct_category_colours() -> None:
    doc = Document()
    colours = [doc.add_category(f"class {n}").color for n in range(60)]
    assert len(set(colours)) == 60


def test_status_and_image_removal(doc_with_image: tuple[Document, int]) -> None:
    doc, image_id = doc_with_image
    doc.add_instance(image_id, masks.disk(20, 20, 5), "cell")
    assert doc.set_status(image_id, IN_PROGRESS) == "not started"
    doc.set_status(image_id, DONE)
    with pytest.raises(InputError, match="status"):
        doc.set_status(image_id, "finished")
    record, objects = doc.remove_image(image_id)
    assert len(doc.images) == 0 and len(doc.instances) == 0
    doc.restore_image(record, objects)
    assert doc.image(image_id).status == DONE and len(doc.instances_of(image_id)) == 1


def test_save_load_round_trip_with_unicode(tmp_path: Path) -> None:
    folder = tmp_path / "プロジェクト 📁"
    doc = Document()
    image_id = doc.add_image(write_png(folder / "画像" / "细胞 1.png"))
    for n, mask in enumerate(masks.varied().values()):
        doc.add_instance(image_id, mask, ["细胞", "🧫 dish", "plain"][n % 3], score=n / 20)
    project = doc.save(folder / "project.samdesk.json")
    assert not doc.dirty
    text = project.read_text(encoding="utf-8")
    assert "细胞" in text and "\\u" not in text  # UTF-8, not escaped
    stored = json.loads(text)
    assert stored["format"] == "samdesk-project" and stored["version"] == 1
    assert stored["images"][0]["path"] == "画像/细胞 1.png"
    loaded = Document.load(project)
    assert not loaded.dirty and loaded.path == project
    assert loaded.image(image_id).path == folder / "画像" / "细胞 1.png"
    assert [c.name for c in loaded.categories] == [c.name for c in doc.categories]
    for original in doc.instances:
        again = loaded.instance(original.id)
        assert again == original
        assert np.array_equal(again.mask(), original.mask())


def test_relative_paths_follow_a_moved_project_folder(tmp_path: Path) -> None:
    doc = Document()
    doc.add_image(write_png(tmp_path / "old" / "images" / "a.png"))
    doc.save(tmp_path / "old" / "p.json")
    (tmp_path / "old").rename(tmp_path / "new")
    loaded = Document.load(tmp_path / "new" / "p.json")
    (image,) = loaded.images
    assert image.path == tmp_path / "new" / "images" / "a.png"
    assert loaded.image_changed(image.id) is None


def test_image_on_another_drive_is_stored_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = Document()
    path = write_png(tmp_path / "elsewhere" / "a.png")
    doc.add_image(path)

    def other_drive(target: str, start: str | None = None) -> str:
        raise ValueError("path is on mount 'D:', start on mount 'C:'")

    monkeypatch.setattr(project_module.os.path, "relpath", other_drive)
    project = doc.save(tmp_path / "p.json")
    monkeypatch.undo()
    assert json.loads(project.read_text(encoding="utf-8"))["images"][0]["path"] == str(path)
    assert Document.load(project).images.ids() == doc.images.ids()


def test_image_changed_detects_size_content_and_missing(tmp_path: Path) -> None:
    doc = Document()
    path = write_png(tmp_path / "a.png", seed=1)
    image_id = doc.add_image(path)
    assert doc.image_changed(image_id) is None
    write_png(path, seed=2)  # same size, other pixels
    assert "different content" in doc.image_changed(image_id)
    write_png(path, 50, 40)
    message = doc.image_changed(image_id)
    assert "50 x 40" in message and "96 x 72" in message
    os.remove(path)
    assert "missing" in doc.image_changed(image_id)


def test_autosave_after_undo_writes_what_is_in_memory(tmp_path: Path) -> None:
    """An app-style undo stack on top of the Document, autosaving after every step."""
    project = tmp_path / "auto.samdesk.json"
    doc = Document()
    image_id = doc.add_image(write_png(tmp_path / "a.png"))
    undo: list = []

    def autosave() -> None:
        doc.save(project)
        on_disk = Document.load(project)
        assert [(r.id, r.label, r.rle) for r in on_disk.instances] == [
            (r.id, r.label, r.rle) for r in doc.instances
        ]
        assert not doc.dirty

    a = doc.add_instance(image_id, masks.disk(20, 20, 6), "cell")
    undo.append(("delete", a))
    autosave()
    b = doc.add_instance(image_id, masks.ring(), "cell")
    undo.append(("delete", b))
    autosave()
    undo.append(("restore", doc.delete_instance(a)))
    autosave()
    undo.append(("replace", doc.update_instance(b, label="ring")))
    autosave()
    while undo:
        action, payload = undo.pop()
        if action == "delete":
            doc.delete_instance(payload)
        elif action == "restore":
            doc.restore_instance(payload)
        else:
            doc.replace_instance(payload)
        assert doc.dirty
        autosave()
    assert len(Document.load(project).instances) == 0


def test_save_without_a_path_is_refused() -> None:
    with pytest.raises(InputError, match="choose a file name"):
        Document().save()


def test_copy_is_independent(doc_with_image: tuple[Document, int]) -> None:
    doc, image_id = doc_with_image
    doc.add_instance(image_id, masks.disk(20, 20, 5), "cell")
    copy = doc.copy()
    copy.add_instance(image_id, masks.one_pixel(), "other")
    assert len(doc.instances) == 1 and len(copy.instances) == 2
    assert [c.name for c in doc.categories] == ["cell"]


def test_a_label_that_is_not_valid_unicode_is_refused(doc_with_image: tuple[Document, int]) -> None:
    doc, image_id = doc_with_image
    with pytest.raises(InputError, match="not valid Unicode"):
        doc.add_instance(image_id, masks.one_pixel(), "cell \ud800")
    assert len(doc.instances) == 0 and not doc.categories


def test_labels_missing_from_the_category_list_get_new_ids(tmp_path: Path) -> None:
    doc = Document()
    image_id = doc.add_image(tmp_path / "a.png", size=(masks.WIDTH, masks.HEIGHT))
    doc.add_instance(image_id, masks.disk(20, 20, 5), "cell")
    doc.add_instance(image_id, masks.disk(50, 20, 5), "cell")
    path = doc.save(tmp_path / "p.json")
    content = json.loads(path.read_text(encoding="utf-8"))
    content["instances"][1]["label"] = "nucleus"  # edited by hand; not in "categories"
    path.write_text(json.dumps(content), encoding="utf-8")
    loaded = Document.load(path)
    ids = [c.id for c in loaded.categories]
    assert [c.name for c in loaded.categories] == ["cell", "nucleus"]
    assert len(set(ids)) == 2
    loaded.export("coco", tmp_path / "c.json")
    exported = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    names = {c["id"]: c["name"] for c in exported["categories"]}
    assert [names[a["category_id"]] for a in exported["annotations"]] == ["cell", "nucleus"]


def test_area_and_box_are_taken_from_the_mask_not_the_file(tmp_path: Path) -> None:
    """A stale or edited ``bbox`` must not crop the mask in exports."""
    doc = Document()
    image_id = doc.add_image(tmp_path / "a.png", size=(masks.WIDTH, masks.HEIGHT))
    doc.add_instance(image_id, masks.parts(), "parts")
    path = doc.save(tmp_path / "p.json")
    content = json.loads(path.read_text(encoding="utf-8"))
    content["instances"][0].update(bbox=[40, 30, 5, 5], area=7)
    path.write_text(json.dumps(content), encoding="utf-8")
    loaded = Document.load(path)
    assert loaded.instances[1].bbox == doc.instances[1].bbox
    assert loaded.instances[1].area == doc.instances[1].area == masks.parts().sum()
    crop, (x, y) = loaded.instances[1].crop()
    assert crop.sum() == masks.parts().sum() and (x, y) == doc.instances[1].bbox[:2]


@pytest.mark.skipif(sys.platform != "linux", reason="needs file names that are not UTF-8")
def test_a_file_name_that_is_not_utf8_survives_save_and_load(tmp_path: Path) -> None:
    """Linux file names are bytes; Python decodes an invalid one with surrogates (\\udce9)."""
    raw = os.fsencode(tmp_path) + b"/caf\xe9 1.png"
    write_png(Path(os.fsdecode(raw)))
    doc = Document()
    image_id = doc.add_image(os.fsdecode(raw))
    doc.add_instance(image_id, masks.disk(20, 20, 5), "cell")
    project = doc.save(tmp_path / "p.json")
    project.read_bytes().decode("utf-8")  # still a valid UTF-8 file
    loaded = Document.load(project)
    assert os.fsencode(loaded.image(image_id).path) == raw
    assert loaded.image_changed(image_id) is None
    report = loaded.export("coco", tmp_path / "c.json")
    name = json.loads(report.files[0].read_bytes().decode("utf-8"))["images"][0]["file_name"]
    assert os.fsencode(name) == b"caf\xe9 1.png"


def test_autosave_switched_on_while_unsaved_writes_what_is_in_memory(tmp_path: Path) -> None:
    """Work done before autosave was switched on (or while a save kept failing) is in the first
    autosave, and the project file itself is not touched by it."""
    doc = Document()
    image_id = doc.add_image(write_png(tmp_path / "a.png"))
    project = doc.save(tmp_path / "p.samdesk.json")
    saved = project.read_bytes()
    first = doc.add_instance(image_id, masks.disk(20, 20, 6), "cell")  # autosave still off
    doc.add_instance(image_id, masks.ring(), "ring")
    doc.delete_instance(first)
    assert doc.dirty
    autosave = tmp_path / "p.samdesk.json.autosave.json"
    doc.copy().save(autosave)  # autosave switched on: the app saves a copy beside the project
    on_disk = Document.load(autosave)
    assert [(r.id, r.label, r.rle) for r in on_disk.instances] == [
        (r.id, r.label, r.rle) for r in doc.instances
    ]
    assert [c.name for c in on_disk.categories] == [c.name for c in doc.categories]
    assert project.read_bytes() == saved and doc.dirty  # the project is saved only on request
