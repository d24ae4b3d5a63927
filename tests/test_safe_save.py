"""Saving never loses work: failed saves leave the old file byte-identical and nothing behind;
damaged and newer project files are refused, never misread or overwritten."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from samdesk.annotation import Document, atomic_write, move_aside
from samdesk.errors import CorruptProjectError, ProjectError, ProjectVersionError, SaveError
from tests.support import masks

REAL = {name: getattr(os, name) for name in ("open", "write", "fsync", "close", "replace")}


class Faults:
    """Makes one os call fail with an errno, but only for samdesk's temporary files."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.temp_fds: set[int] = set()
        self.fail: dict[str, int] = {}
        monkeypatch.setattr(os, "open", self._open)
        for name in ("write", "fsync", "close"):
            monkeypatch.setattr(os, name, self._on_fd(name))
        monkeypatch.setattr(os, "replace", self._replace)

    def _open(self, path, flags, mode=0o777, **kwargs):
        temp = str(path).endswith(".samdesk-tmp")
        if temp and "open" in self.fail:
            raise OSError(self.fail["open"], os.strerror(self.fail["open"]), str(path))
        fd = REAL["open"](path, flags, mode, **kwargs)
        if temp:
            self.temp_fds.add(fd)
        return fd

    def _on_fd(self, name: str):
        def call(fd, *args):
            if fd in self.temp_fds and name in self.fail:
                if name == "close":
                    REAL["close"](fd)
                    self.temp_fds.discard(fd)
                raise OSError(self.fail[name], os.strerror(self.fail[name]))
            return REAL[name](fd, *args)

        return call

    def _replace(self, source, target, **kwargs):
        if str(source).endswith(".samdesk-tmp") and "replace" in self.fail:
            raise OSError(self.fail["replace"], os.strerror(self.fail["replace"]))
        return REAL["replace"](source, target, **kwargs)


def saved_project(tmp_path: Path) -> tuple[Document, Path, bytes]:
    doc = Document()
    image_id = doc.add_image(tmp_path / "a.png", size=(masks.WIDTH, masks.HEIGHT))
    doc.add_instance(image_id, masks.ring(), "cell")
    path = doc.save(tmp_path / "p.samdesk.json")
    doc.add_instance(image_id, masks.disk(20, 20, 5), "cell")  # unsaved change
    return doc, path, path.read_bytes()


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".samdesk-tmp")]


@pytest.mark.parametrize(
    ("call", "code"),
    [
        ("write", errno.ENOSPC),
        ("fsync", errno.ENOSPC),
        ("fsync", errno.EIO),
        ("close", errno.EDQUOT),
        ("replace", errno.ENOSPC),
        ("replace", errno.EACCES),
        ("open", errno.EROFS),
        ("open", errno.EACCES),
    ],
)
def test_failed_save_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, code: int
) -> None:
    doc, path, before = saved_project(tmp_path)
    revision = doc.revision
    faults = Faults(monkeypatch)
    faults.fail[call] = code
    with pytest.raises(SaveError) as caught:
        doc.save()
    monkeypatch.undo()
    message = str(caught.value)
    assert str(path) in message and "not changed" in message
    if code == errno.ENOSPC:
        assert "disk is full" in message
    if code == errno.EROFS:
        assert "read-only" in message
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    assert doc.dirty and doc.revision == revision
    doc.save()  # once the fault is gone, saving works
    assert not doc.dirty and len(Document.load(path).instances) == 2


def test_atomic_write_keeps_permissions_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)
    atomic_write(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert leftovers(tmp_path) == []


def test_missing_folder_is_a_save_error(tmp_path: Path) -> None:
    with pytest.raises(SaveError, match="folder does not exist"):
        atomic_write(tmp_path / "nope" / "file.json", "{}")


# --- reading damaged or foreign project files ----------------------------------------------


def test_truncated_project_is_refused_with_position_and_kept(tmp_path: Path) -> None:
    _, path, _ = saved_project(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    damaged = path.read_bytes()
    with pytest.raises(CorruptProjectError) as caught:
        Document.load(path)
    err = caught.value
    assert str(path) in str(err) and "line" in str(err) and "column" in str(err)
    assert err.path == path and err.line >= 1 and err.column >= 1
    assert path.read_bytes() == damaged
    aside = move_aside(path)
    assert not path.exists() and aside.read_bytes() == damaged
    assert aside.name.startswith("p.samdesk.json.corrupt-")
    path.write_bytes(damaged)
    assert move_aside(path) != aside  # never overwrites an earlier one


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b'{"format": "samdesk-project", "version": 1, "images": [', "line 1"),
        (b"[1, 2, 3]", "not a samdesk project"),
        (b'{"format": "labelme"}', "not a samdesk project"),
        (b'{"format": "samdesk-project", "version": "1"}', "version"),
        (b'{"format": "samdesk-project", "version": 1, "images": {}}', "images: expected a list"),
        (
            b'{"format": "samdesk-project", "version": 1, "images": [{"id": 1}]}',
            r"images\[0\].path: missing",
        ),
        (b'{"format": "samdesk-project", "version": 1, "name": "caf\xe9"}', "not valid UTF-8"),
        # Python's JSON reader takes NaN and Infinity; the file could then never be saved again.
        (b'{"format": "samdesk-project", "version": 1, "x": NaN}', "contains NaN"),
        (b'{"format": "samdesk-project", "version": 1, "x": -Infinity}', "contains -Infinity"),
        (
            b'{"format": "samdesk-project", "version": 1, "images": [{"id": 1, "path": "a.png",'
            b' "width": 0, "height": 5, "status": "done"}]}',
            r"images\[0\].width: an image size must be positive",
        ),
        (
            b'{"format": "samdesk-project", "version": 1, "categories": [{"id": 1, "name": "a",'
            b' "color": "#123456"}, {"id": 1, "name": "b", "color": "#654321"}]}',
            r"categories\[1\].id: category id 1 appears twice",
        ),
        (
            b'{"format": "samdesk-project", "version": 1, "categories": [{"id": 1, "name": "a",'
            b' "color": "#123456\\n"}]}',
            r"categories\[0\].color",
        ),
        (
            b'{"format": "samdesk-project", "version": 1, "categories": [{"id": 1, "name": " ",'
            b' "color": "#123456"}]}',
            r"categories\[0\].name: ' ' is not a usable label",
        ),
        (
            b'{"format": "samdesk-project", "version": 1, "categories": [{"id": 1,'
            b' "name": "\\ud800", "color": "#123456"}]}',
            r"categories\[0\].name",
        ),
    ],
)
def test_damaged_projects_are_refused(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "p.json"
    path.write_bytes(content)
    with pytest.raises(CorruptProjectError, match=expected):
        Document.load(path)
    assert path.read_bytes() == content


def test_damaged_object_entries_name_their_json_path(tmp_path: Path) -> None:
    _, path, _ = saved_project(tmp_path)
    project = json.loads(path.read_text(encoding="utf-8"))
    for mutate, expected in [
        (lambda p: p["instances"][0].pop("counts"), r"instances\[0\].counts: missing"),
        (lambda p: p["instances"][0].update(counts="0P"), r"instances\[0\].counts: .*middle"),
        (lambda p: p["instances"][0].update(image_id=9), r"instances\[0\].image_id: no image"),
        (lambda p: p["instances"][0].update(size=[1, 1]), r"instances\[0\].size"),
        (lambda p: p["instances"].append(dict(p["instances"][0])), "appears twice"),
    ]:
        broken = json.loads(json.dumps(project))
        mutate(broken)
        path.write_text(json.dumps(broken), encoding="utf-8")
        with pytest.raises(CorruptProjectError, match=expected):
            Document.load(path)


def test_object_entries_with_unusable_labels_are_refused(tmp_path: Path) -> None:
    _, path, _ = saved_project(tmp_path)
    project = json.loads(path.read_text(encoding="utf-8"))
    for label in [" cell", "", "\ud800"]:
        project["instances"][0]["label"] = label
        path.write_text(json.dumps(project), encoding="utf-8")
        with pytest.raises(CorruptProjectError, match=r"instances\[0\].label"):
            Document.load(path)


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    """Windows editors put a UTF-8 byte-order mark in front of a file edited by hand."""
    _, path, _ = saved_project(tmp_path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(Document.load(path).instances) == 1
    other = Document()
    other.add_category("cell")
    assert other.save(path) == path  # "Save As" over it: it is a readable project
    assert len(Document.load(path).instances) == 0


def test_newer_version_is_refused_not_misread(tmp_path: Path) -> None:
    _, path, _ = saved_project(tmp_path)
    project = json.loads(path.read_text(encoding="utf-8"))
    project["version"] = 2
    path.write_text(json.dumps(project), encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(ProjectVersionError, match=r"newer samdesk.*version 2"):
        Document.load(path)
    assert path.read_bytes() == before


def test_missing_project_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="does not exist"):
        Document.load(tmp_path / "none.json")


def test_large_project_saves_compact_masks(tmp_path: Path) -> None:
    doc = Document()
    image_id = doc.add_image(tmp_path / "big.png", size=(2000, 1500))
    mask = np.zeros((1500, 2000), dtype=bool)
    mask[100:900, 200:1500] = True
    for _ in range(20):
        doc.add_instance(image_id, mask, "cell")
    path = doc.save(tmp_path / "p.json")
    assert path.stat().st_size < 100_000  # RLE strings (~3 kB each), not 3 MB of pixels
    assert np.array_equal(Document.load(path).instances[1].mask(), mask)


@pytest.mark.parametrize(
    "existing",
    [
        b'{"format": "samdesk-project", "version": 1, "images": [',  # damaged project
        b'{"format": "samdesk-project", "version": 7}',  # newer project
        b"my thesis, not a project",
        b'{"format": "labelme"}',
    ],
)
def test_save_never_overwrites_a_file_it_cannot_read(tmp_path: Path, existing: bytes) -> None:
    target = tmp_path / "taken.json"
    target.write_bytes(existing)
    doc = Document()
    doc.add_category("cell")
    with pytest.raises(SaveError, match="does not overwrite"):
        doc.save(target)
    assert target.read_bytes() == existing and doc.dirty
    _, other, _ = saved_project(tmp_path)
    assert doc.save(other) == other  # a readable project may be replaced (Save As)
    assert [c.name for c in Document.load(other).categories] == ["cell"]


def test_a_file_changed_by_someone_else_is_checked_again(tmp_path: Path) -> None:
    doc = Document()
    doc.add_category("cell")
    autosave = tmp_path / "p.autosave.json"
    doc.copy().save(autosave)
    doc.copy().save(autosave)  # our own file: replaced without re-reading
    autosave.write_bytes(b"{ damaged")
    with pytest.raises(SaveError, match="does not overwrite"):
        doc.copy().save(autosave)
    assert autosave.read_bytes() == b"{ damaged"


def test_a_large_file_of_another_kind_is_not_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saving over a file that does not start like a project refuses from its first bytes."""
    target = tmp_path / "video.json"
    target.write_bytes(b"\x00" * 100_000)

    def read_whole(self: Path) -> bytes:
        raise AssertionError(f"{self} was read whole")

    monkeypatch.setattr(Path, "read_bytes", read_whole)
    with pytest.raises(SaveError, match="does not overwrite"):
        Document().save(target)


def test_saving_through_a_symbolic_link_updates_the_linked_file(tmp_path: Path) -> None:
    """A project kept in a synced folder and opened through a link stays a link: the synced
    copy is what gets saved, not a new file that silently takes the link's place."""
    (tmp_path / "synced").mkdir()
    _, real, _ = saved_project(tmp_path / "synced")
    link = tmp_path / "p-link.json"
    link.symlink_to(real)
    opened = Document.load(link)
    opened.add_category("added")
    opened.save()
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert "added" in [c.name for c in Document.load(real).categories]
    assert leftovers(real.parent) == [] and leftovers(tmp_path) == []


def test_a_long_file_name_can_be_saved(tmp_path: Path) -> None:
    """80 Chinese characters are 240 bytes, within the usual 255-byte limit; the temporary file
    beside the target must not push the name over it."""
    target = tmp_path / ("细胞" * 40 + ".json")
    atomic_write(target, "{}")
    assert target.read_text(encoding="utf-8") == "{}" and leftovers(tmp_path) == []
