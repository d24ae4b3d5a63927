"""The project file: versioned JSON, UTF-8, written only through :func:`safe_io.atomic_write`.

Layout (one record per line, so a damaged file can be read and diffed by a person)::

    {"format": "samdesk-project", "version": 1, "saved": "<UTC time>", "next_ids": {...},
    "categories": [ {"id": 1, "name": "cell", "color": "#e6194b"}, ... ],
    "images": [ {"id": 1, "path": "images/a.png", "absolute_path": "/data/images/a.png",
                 "width": 1024, "height": 768, "sha256": "...", "status": "done"}, ... ],
    "instances": [ {"id": 1, "image_id": 1, "label": "cell", "size": [768, 1024],
                    "counts": "<COCO compressed RLE>", "area": 512, "bbox": [x, y, w, h],
                    "score": 0.93, "prompts": {...}, "created": "...", "modified": "..."}, ... ]}

Image paths are stored relative to the project file's folder (with ``/``), so a project folder
can be moved or shared; an image on another drive is stored absolute. ``absolute_path`` is a
fallback used when the relative path does not lead to the file (the project file was moved
without its images).

Reading is strict about what carries meaning (ids, sizes, labels, masks; ``NaN`` and
``Infinity``, which are not JSON, are refused) and lenient about what a person editing the file
by hand may add: a UTF-8 byte-order mark is accepted. An object's ``area`` and ``bbox`` are
written for people and other tools; on reading they are computed again from the mask, which is
the truth.
"""

from __future__ import annotations

import gc
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from samdesk import __version__
from samdesk.annotation import rle
from samdesk.annotation.records import (
    STATUSES,
    Category,
    ImageRecord,
    InstanceRecord,
    is_color,
    is_label,
    utc_now,
)
from samdesk.annotation.safe_io import atomic_write
from samdesk.errors import CorruptProjectError, ProjectError, ProjectVersionError

FORMAT = "samdesk-project"
VERSION = 1


def project_text(doc: Any, target: Path) -> str:
    """The project as it would be saved at ``target`` (image paths relative to its folder)."""
    folder = target.parent
    header = {
        "format": FORMAT,
        "version": VERSION,
        "generator": f"samdesk {__version__}",
        "saved": utc_now(),
        "next_ids": {
            "image": doc._next_image,
            "instance": doc._next_instance,
            "category": doc._next_category,
        },
    }
    dump = _dumper()
    parts = [dump(header)[:-1]]
    parts.append(_section("categories", [_category_json(c) for c in doc.categories], dump))
    parts.append(_section("images", [_image_json(i, folder) for i in doc.images], dump))
    parts.append(_section("instances", [_instance_json(i) for i in doc.instances], dump))
    return "".join(parts) + "}\n"


#: (mtime_ns, size, inode) of the files this process wrote, so that writing the same file again
#: (an autosave) needs no re-reading.
_WRITTEN: dict[str, tuple[int, int, int]] = {}


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


def check_replaceable(target: Path) -> None:
    """Raise SaveError unless ``target`` is a readable samdesk project this version can write
    over (it is parsed, not trusted from its first line; a file this process wrote and nobody
    changed since is known to be one)."""
    from samdesk.errors import SaveError

    if _WRITTEN.get(str(target)) == _signature(target):
        return
    ours, version = False, None
    try:
        if looks_like_project(target):  # a large file of another kind is not read whole
            content = json.loads(_without_bom(target.read_bytes()).decode("utf-8"))
            ours = isinstance(content, dict) and content.get("format") == FORMAT
            version = content.get("version") if ours else None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        ours, version = False, None
    if not ours:
        problem = "is not a readable samdesk project (it may be damaged, or another file)"
    elif not isinstance(version, int) or version > VERSION:
        problem = f"is a samdesk project of another version ({version!r})"
    else:
        return
    raise SaveError(
        f"{target} {problem}; samdesk does not overwrite it. Choose another file name, or move "
        "the file aside first."
    )


def write_project(doc: Any, target: Path) -> None:
    """Save atomically; raises SaveError and leaves the old file untouched on failure."""
    atomic_write(target, project_text(doc, target))
    signature = _signature(target)
    if signature is not None:
        _WRITTEN[str(target)] = signature


def _dumper() -> Any:
    encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(", ", ": "))
    return encoder.encode


def _section(name: str, records: list[dict[str, Any]], dump: Any) -> str:
    if not records:
        return f',\n"{name}": []'
    return f',\n"{name}": [\n' + ",\n".join(dump(r) for r in records) + "\n]"


def _category_json(category: Category) -> dict[str, Any]:
    return {"id": category.id, "name": category.name, "color": category.color}


def _image_json(image: ImageRecord, folder: Path) -> dict[str, Any]:
    return {
        "id": image.id,
        "path": relative_path(image.path, folder),
        "absolute_path": str(image.path),
        "width": image.width,
        "height": image.height,
        "sha256": image.sha256,
        "status": image.status,
    }


def relative_path(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` with ``/`` separators, or absolute on another drive."""
    try:
        return PurePath(os.path.relpath(path, folder)).as_posix()
    except ValueError:  # Windows: another drive
        return str(path)


def _instance_json(instance: InstanceRecord) -> dict[str, Any]:
    return {
        "id": instance.id,
        "image_id": instance.image_id,
        "label": instance.label,
        "size": [instance.height, instance.width],
        "counts": instance.rle,
        "area": instance.area,
        "bbox": None if instance.bbox is None else list(instance.bbox),
        "score": instance.score,
        "prompts": instance.prompts,
        "created": instance.created,
        "modified": instance.modified,
    }


# --- reading --------------------------------------------------------------------------------------


_HEADER = re.compile(rb'\s*\{\s*"format"\s*:\s*"samdesk-project"')


def looks_like_project(path: Path) -> bool:
    """True if ``path`` is a file that begins like a samdesk project (or its autosave): samdesk
    writes ``{"format": "samdesk-project"`` first. Reads only the first bytes."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(256)
    except (OSError, ValueError):  # missing, a folder, unreadable, a name no file can have
        return False
    return bool(_HEADER.match(_without_bom(head)))


def _without_bom(data: bytes) -> bytes:
    """A UTF-8 byte-order mark (Windows editors add one) is not part of the JSON."""
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


class _NotANumber(ValueError):
    pass


def _not_a_number(token: str) -> float:
    """Python's JSON reader accepts ``NaN`` and ``Infinity``; JSON does not, and samdesk could
    not save them again."""
    raise _NotANumber(f"it contains {token}, which is not a number JSON allows")


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cycle collector while building many objects that hold no cycles (it would
    otherwise rescan the whole heap several times during a large load)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def corrupt(path: Path, problem: str, line: int | None = None, column: int | None = None):
    """A CorruptProjectError naming the file (and position), with ``path``, ``line`` and
    ``column`` attributes for the app."""
    where = f" at line {line}, column {column}" if line is not None else ""
    err = CorruptProjectError(
        f"{path} is damaged{where}: {problem}. It was not changed or overwritten; restore it from "
        "a backup, or move it aside and start a new project."
    )
    err.path, err.line, err.column = path, line, column  # type: ignore[attr-defined]
    return err


def read_project(path: Path, doc: Any) -> Any:
    """Fill the empty Document ``doc`` from the project file at ``path`` and return it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ProjectError(f"{path} does not exist.") from None
    except OSError as err:
        raise ProjectError(f"Cannot read {path}: {err.strerror or err}.") from None
    data = _without_bom(data)
    if not data.strip():
        raise corrupt(path, "the file is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise corrupt(path, f"byte {err.start} is not valid UTF-8", line, column) from None
    with paused_gc():
        try:
            content = json.loads(text, parse_constant=_not_a_number)
        except json.JSONDecodeError as err:
            raise corrupt(
                path, f"{err.msg} (the file may be cut off)", err.lineno, err.colno
            ) from None
        except _NotANumber as err:
            raise corrupt(path, str(err)) from None
        except RecursionError:
            raise corrupt(path, "the JSON is nested too deeply") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise corrupt(path, "it is not a samdesk project (no 'format': 'samdesk-project')")
    version = content.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise corrupt(path, f"'version' must be a positive whole number, not {version!r}")
    if version > VERSION:
        err = ProjectVersionError(
            f"{path} was saved by a newer samdesk (project format version {version}; this "
            f"samdesk {__version__} reads version {VERSION}). Update samdesk to open it; the "
            "file was not changed."
        )
        err.path = path  # type: ignore[attr-defined]
        raise err
    with paused_gc():
        _Reader(path, doc).fill(content)
    doc.revision = 0
    doc.mark_saved(path, 0)
    return doc


class _Reader:
    """Turns the parsed JSON into records, refusing anything malformed with its JSON path."""

    def __init__(self, path: Path, doc: Any) -> None:
        self.path = path
        self.doc = doc
        self.instance_ids: set[int] = set()

    def fail(self, where: str, problem: str) -> CorruptProjectError:
        return corrupt(self.path, f"{where}: {problem}")

    def field(self, entry: Any, key: str, kind: Any, where: str, optional: bool = False) -> Any:
        if not isinstance(entry, dict):
            raise self.fail(where, "expected an object")
        if key not in entry:
            if optional:
                return None
            raise self.fail(f"{where}.{key}", "missing")
        value = entry[key]
        if value is None and optional:
            return None
        ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise self.fail(f"{where}.{key}", f"unexpected value {value!r}")
        return value

    def records(self, content: dict[str, Any], key: str) -> list[Any]:
        value = content.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, "expected a list")
        return value

    def fill(self, content: dict[str, Any]) -> None:
        doc = self.doc
        folder = self.path.parent
        category_ids: set[int] = set()
        for n, entry in enumerate(self.records(content, "categories")):
            where = f"categories[{n}]"
            category = Category(
                self.field(entry, "id", int, where),
                self.field(entry, "name", str, where),
                self.field(entry, "color", str, where),
            )
            if not is_label(category.name):
                raise self.fail(f"{where}.name", f"{category.name!r} is not a usable label")
            if not is_color(category.color):
                raise self.fail(f"{where}.color", f"{category.color!r} is not of the form #rrggbb")
            if category.name in doc._categories:
                raise self.fail(where, f"category {category.name!r} appears twice")
            if category.id in category_ids:
                raise self.fail(f"{where}.id", f"category id {category.id} appears twice")
            category_ids.add(category.id)
            doc._categories[category.name] = category
        # Labels used by objects but missing from the list get new ids after these.
        doc._next_category = max([1, *(i + 1 for i in category_ids)])
        for n, entry in enumerate(self.records(content, "images")):
            where = f"images[{n}]"
            image = ImageRecord(
                id=self.field(entry, "id", int, where),
                path=_resolve(
                    self.field(entry, "path", str, where),
                    self.field(entry, "absolute_path", str, where, optional=True),
                    folder,
                ),
                width=self.field(entry, "width", int, where),
                height=self.field(entry, "height", int, where),
                sha256=self.field(entry, "sha256", str, where, optional=True),
                status=self.field(entry, "status", str, where),
            )
            for key in ("width", "height"):
                if getattr(image, key) <= 0:
                    raise self.fail(f"{where}.{key}", "an image size must be positive")
            if image.status not in STATUSES:
                raise self.fail(f"{where}.status", f"unknown status {image.status!r}")
            if image.id in doc._images:
                raise self.fail(f"{where}.id", f"image id {image.id} appears twice")
            doc._images[image.id] = image
            doc._by_path[os.path.normcase(str(image.path))] = image.id
            doc._by_image[image.id] = {}
        entries = [
            self.instance(entry, f"instances[{n}]")
            for n, entry in enumerate(self.records(content, "instances"))
        ]
        try:
            all_runs, areas, boxes = rle.masks_from_strings(
                [e["counts"] for e in entries], [tuple(e["size"]) for e in entries]
            )
        except rle.RleError as err:
            index = getattr(err, "index", 0)
            raise self.fail(f"instances[{index}].counts", str(err)) from None
        for entry, runs, area, box in zip(entries, all_runs, areas, boxes, strict=True):
            record = _record(entry, runs, area, box)
            doc._instances[record.id] = record
            doc._by_image[record.image_id][record.id] = None
        for records_by_id in (doc._images, doc._instances):
            if list(records_by_id) != sorted(records_by_id):
                ordered = sorted(records_by_id.items())
                records_by_id.clear()
                records_by_id.update(ordered)
        ids = content.get("next_ids", {})
        doc._next_image = max([doc._next_image, *(i + 1 for i in doc._images)])
        doc._next_instance = max([doc._next_instance, *(i + 1 for i in doc._instances)])
        doc._next_category = max(
            [doc._next_category, *(c.id + 1 for c in doc._categories.values())]
        )
        if isinstance(ids, dict):
            for key, attr in (("image", "_next_image"), ("instance", "_next_instance")):
                if isinstance(ids.get(key), int):
                    setattr(doc, attr, max(getattr(doc, attr), ids[key]))

    def instance(self, entry: Any, where: str) -> dict[str, Any]:
        """Check one object entry; a quick test first, the precise complaint only on failure."""
        try:
            size, bbox, score = entry["size"], entry.get("bbox"), entry.get("score")
            quick = (
                type(entry["id"]) is int
                and type(entry["image_id"]) is int
                and type(entry["label"]) is str
                and type(entry["counts"]) is str
                and type(entry["area"]) is int
                and type(entry["created"]) is str
                and type(entry["modified"]) is str
                and type(size) is list
                and len(size) == 2
                and type(size[0]) is int
                and type(size[1]) is int
                and (bbox is None or (type(bbox) is list and len(bbox) == 4))
                and (score is None or type(score) in (int, float))
                and is_label(entry["label"])
            )
        except (KeyError, TypeError, AttributeError):
            quick = False
        if not quick or (bbox is not None and not all(type(v) is int for v in bbox)):
            self._explain(entry, where)
        image = self.doc._images.get(entry["image_id"])
        if image is None:
            raise self.fail(f"{where}.image_id", f"no image has id {entry['image_id']}")
        if [image.height, image.width] != size:
            raise self.fail(f"{where}.size", "does not match the image's size")
        if entry["id"] in self.instance_ids:
            raise self.fail(f"{where}.id", f"object id {entry['id']} appears twice")
        self.instance_ids.add(entry["id"])
        if entry["label"] not in self.doc._categories:
            self.doc.add_category(entry["label"])
        return entry

    def _explain(self, entry: Any, where: str) -> None:
        """Raise the precise CorruptProjectError for an object entry that failed the quick test."""
        size = self.field(entry, "size", list, where)
        if len(size) != 2 or not all(type(v) is int and v >= 0 for v in size):
            raise self.fail(f"{where}.size", f"expected [height, width], got {size!r}")
        bbox = self.field(entry, "bbox", list, where, optional=True)
        if bbox is not None and (len(bbox) != 4 or not all(type(v) is int for v in bbox)):
            raise self.fail(f"{where}.bbox", f"expected [x, y, w, h], got {bbox!r}")
        label = self.field(entry, "label", str, where)
        if not is_label(label):
            raise self.fail(f"{where}.label", f"{label!r} is not a usable label")
        for key, kind in (
            ("id", int),
            ("image_id", int),
            ("label", str),
            ("counts", str),
            ("area", int),
            ("created", str),
            ("modified", str),
        ):
            self.field(entry, key, kind, where)
        self.field(entry, "score", float, where, optional=True)


def _record(
    entry: dict[str, Any], runs: np.ndarray, area: int, box: tuple[int, int, int, int] | None
) -> InstanceRecord:
    """The record of a checked entry; ``area`` and ``box`` (x0, y0, x1, y1) come from the mask,
    not from the file (an edited or stale ``bbox`` would crop the mask in every export)."""
    height, width = entry["size"]
    return InstanceRecord(
        id=entry["id"],
        image_id=entry["image_id"],
        label=entry["label"],
        rle=entry["counts"],
        height=height,
        width=width,
        area=area,
        bbox=None if box is None else (box[0], box[1], box[2] - box[0], box[3] - box[1]),
        score=entry.get("score"),
        prompts=entry.get("prompts"),
        created=entry["created"],
        modified=entry["modified"],
        runs=runs,
    )


def _resolve(stored: str, absolute: str | None, folder: Path) -> Path:
    candidate = Path(stored)
    if not candidate.is_absolute():
        candidate = folder / candidate
    candidate = Path(os.path.abspath(candidate))
    if not _exists(candidate) and absolute and _exists(Path(absolute)):
        return Path(os.path.abspath(absolute))
    return candidate


def _exists(path: Path) -> bool:
    """``path.exists()``, False also for a name the file system refuses (e.g. too long)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False
