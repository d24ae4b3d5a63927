"""``samdesk-cli export`` / ``samdesk-cli import`` used as a user would: Unicode paths, an existing
output folder, a folder that cannot be written, a project whose images moved, Ctrl+C half-way.
Every failure is one line on stderr with exit status 1, never a traceback, never half an output.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from samdesk.annotation import Document, safe_io
from samdesk.annotation.formats import common
from samdesk.cli import main
from tests.support import masks
from tests.test_annotation_document import write_png

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed ``samdesk-cli`` (``python -m samdesk`` where it is not installed)."""
    script = Path(sys.executable).with_name("samdesk-cli")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "samdesk"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    return subprocess.run(
        [*command, *map(str, args)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env=env,
        cwd=cwd,
    )


def one_line_error(result: subprocess.CompletedProcess[str] | tuple[int, str]) -> str:
    code, err = (result.returncode, result.stderr) if not isinstance(result, tuple) else result
    assert code == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("samdesk: error: "), err
    return lines[0]


def unicode_project(folder: Path) -> Path:
    doc = Document()
    image_id = doc.add_image(write_png(folder / "画像 🧪" / "细胞 1.png"))
    doc.add_instance(image_id, masks.ring(), "细胞")
    doc.add_instance(image_id, masks.parts(), "🧫 dish")
    return doc.save(folder / "プロジェクト.samdesk.json")


def test_export_and_import_with_unicode_paths(tmp_path: Path) -> None:
    project = unicode_project(tmp_path / "データ")
    out = tmp_path / "出力 ✓" / "coco.json"
    exported = cli("export", project, "--to", "coco", out, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "coco: wrote 2 object(s)" in exported.stdout and str(out) in exported.stdout
    text = out.read_bytes().decode("utf-8")
    assert "细胞" in text and "🧫 dish" in text and "\\u" not in text  # UTF-8, not escaped
    target = tmp_path / "新しい" / "p.samdesk.json"
    target.parent.mkdir()
    imported = cli("import", out, "--format", "coco", "--project", target, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "imported 2 object(s) on 1 new image(s)" in imported.stdout
    assert "not found" not in imported.stdout  # the image was found through the relative path
    again = Document.load(target)
    assert sorted(i.label for i in again.instances) == ["细胞", "🧫 dish"]
    assert again.images[1].path == tmp_path / "データ" / "画像 🧪" / "细胞 1.png"


def test_errors_are_one_line_and_leave_nothing(tmp_path: Path) -> None:
    project = unicode_project(tmp_path)
    before = project.read_bytes()
    missing = cli(
        "export", tmp_path / "nope.json", "--to", "coco", tmp_path / "c.json", cwd=tmp_path
    )
    assert "does not exist" in one_line_error(missing)
    # The project given as the output by mistake is refused, not overwritten.
    itself = cli("export", project, "--to", "coco", project, cwd=tmp_path)
    assert "an export never replaces" in one_line_error(itself)
    assert project.read_bytes() == before
    # A COCO file given as the project to import into is not taken for one, nor overwritten.
    cli("export", project, "--to", "coco", tmp_path / "c.json", cwd=tmp_path)
    coco_bytes = (tmp_path / "c.json").read_bytes()
    wrong = cli("import", tmp_path / "c.json", "--format", "coco", "--project", tmp_path / "c.json",
                cwd=tmp_path)  # fmt: skip
    assert "not a samdesk project" in one_line_error(wrong)
    assert (tmp_path / "c.json").read_bytes() == coco_bytes


def test_export_into_an_existing_folder_keeps_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = unicode_project(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    for _ in range(2):  # the second export replaces the first one's files
        assert main(["export", str(project), "--to", "labelme", str(out)]) == 0
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "细胞 1.json"]
    assert main(["export", str(project), "--to", "coco", str(out)]) == 0  # a folder: inside it
    assert (out / "annotations.json").exists()
    capsys.readouterr()


@pytest.mark.parametrize("fmt", ["coco", "yolo", "labelme", "masks"])
def test_an_output_folder_that_cannot_be_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
) -> None:
    """A read-only folder (simulated: these tests may run as root, whom chmod does not stop)."""
    project = unicode_project(tmp_path)
    out = tmp_path / "read-only"
    out.mkdir()
    real_open, real_mkdir = os.open, Path.mkdir

    def refuse_open(path, flags, mode=0o777, **kwargs):
        if str(path).startswith(str(out)) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, mode, **kwargs)

    def refuse_mkdir(self: Path, *args, **kwargs):
        if str(self).startswith(str(out)) and self != out:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(safe_io.os, "open", refuse_open)
    monkeypatch.setattr(common.Path, "mkdir", refuse_mkdir)
    target = out / "c.json" if fmt == "coco" else out
    code = main(["export", str(project), "--to", fmt, str(target)])
    line = one_line_error((code, capsys.readouterr().err))
    assert str(out) in line
    assert "read-only" in line or "permission denied" in line.lower()
    monkeypatch.undo()
    assert list(out.iterdir()) == []


def test_ctrl_c_half_way_through_an_export_leaves_no_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = Document()
    for n in range(4):
        doc.add_instance(doc.add_image(tmp_path / f"{n}.png", size=(96, 72)), masks.ring(), "c")
    project = doc.save(tmp_path / "p.samdesk.json")
    real_write = safe_io.atomic_write
    calls = []

    def interrupted(path, data):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt
        real_write(path, data)

    monkeypatch.setattr(common, "atomic_write", interrupted)
    assert main(["export", str(project), "--to", "masks", str(tmp_path / "out")]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []


def test_a_project_whose_images_moved(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = unicode_project(tmp_path / "work")
    shutil.move(tmp_path / "work" / "画像 🧪", tmp_path / "elsewhere")
    # Exporting needs only the masks; the report says the image paths lead nowhere.
    assert main(["export", str(project), "--to", "coco", str(tmp_path / "c.json")]) == 0
    printed = capsys.readouterr().out
    assert "1 image file(s) are not where the project records them" in printed
    names = [i["file_name"] for i in json.loads((tmp_path / "c.json").read_bytes())["images"]]
    assert names == ["work/画像 🧪/细胞 1.png"]
    # Importing that export finds the images in the folder they moved to.
    target = tmp_path / "new.samdesk.json"
    args = ["import", str(tmp_path / "c.json"), "--format", "coco", "--project", str(target)]
    assert main([*args, "--images", str(tmp_path / "elsewhere")]) == 0
    assert "not found" not in capsys.readouterr().out
    assert Document.load(target).images[1].path == tmp_path / "elsewhere" / "细胞 1.png"


def test_an_image_folder_that_does_not_exist_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped --images would otherwise import everything as "image not found"."""
    project = unicode_project(tmp_path)
    main(["export", str(project), "--to", "coco", str(tmp_path / "c.json")])
    capsys.readouterr()
    target = tmp_path / "new.samdesk.json"
    args = ["import", str(tmp_path / "c.json"), "--format", "coco", "--project", str(target)]
    code = main([*args, "--images", str(tmp_path / "imgaes")])
    assert "image folder" in one_line_error((code, capsys.readouterr().err))
    assert not target.exists()
