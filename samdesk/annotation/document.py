"""The annotation document: images, labelled masks and categories, saved without ever losing work.

Every change is one explicit method call that returns what an undo needs (the id it created, or
the record it replaced or removed) and bumps :attr:`Document.revision`; :attr:`Document.dirty` says
whether anything changed since the last successful save. Records are immutable snapshots
(:mod:`samdesk.annotation.records`); lookups by id and per image are dictionary lookups, not
scans.

Coordinates are original-image pixels; masks are ``H x W`` bool arrays of the image's size.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from samdesk.annotation import rle
from samdesk.annotation.records import (
    NOT_STARTED,
    STATUSES,
    Category,
    ImageRecord,
    InstanceRecord,
    box_of,
    is_color,
    is_label,
    next_color,
    utc_now,
)
from samdesk.errors import ImageError, InputError

if TYPE_CHECKING:
    from samdesk.annotation.formats.report import ExportReport, ImportReport

R = TypeVar("R", ImageRecord, InstanceRecord)

_UNSET: Any = object()


class RecordView(Generic[R]):
    """A read-only, live view of records by id: iterate (in id order), ``len``, ``id in view``,
    ``view[id]`` (KeyError if absent) and ``view.get(id)``."""

    def __init__(self, records: Mapping[int, R]) -> None:
        self._records = records

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[R]:
        return iter(self._records.values())

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._records

    def __getitem__(self, record_id: int) -> R:
        return self._records[record_id]

    def get(self, record_id: int) -> R | None:
        return self._records.get(record_id)

    def ids(self) -> list[int]:
        return list(self._records)


class Document:
    """An annotation project. Create empty with ``Document()`` or open one with
    :meth:`Document.load`; save with :meth:`save`."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.revision = 0
        self._saved_revision = 0
        self._images: dict[int, ImageRecord] = {}
        self._instances: dict[int, InstanceRecord] = {}
        self._by_image: dict[int, dict[int, None]] = {}
        self._categories: dict[str, Category] = {}
        self._by_path: dict[str, int] = {}
        self._next_image = 1
        self._next_instance = 1
        self._next_category = 1

    # --- state ----------------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """True when something changed since the document was loaded or last saved."""
        return self.revision != self._saved_revision

    def _changed(self) -> None:
        self.revision += 1

    def mark_saved(self, path: str | os.PathLike[str], revision: int) -> None:
        """Record that the state at ``revision`` is now on disk at ``path`` (called by save;
        an app saving in the background calls it after its own successful write)."""
        self.path = Path(os.path.abspath(path))
        self._saved_revision = revision

    # --- reading ---------------------------------------------------------------------------------

    @property
    def images(self) -> RecordView[ImageRecord]:
        return RecordView(self._images)

    @property
    def instances(self) -> RecordView[InstanceRecord]:
        """All objects, in id (creation) order."""
        return RecordView(self._instances)

    @property
    def categories(self) -> tuple[Category, ...]:
        """Categories in the order they were created."""
        return tuple(self._categories.values())

    def image(self, image_id: int) -> ImageRecord:
        try:
            return self._images[image_id]
        except KeyError:
            raise InputError(f"There is no image with id {image_id} in this project.") from None

    def instance(self, instance_id: int) -> InstanceRecord:
        try:
            return self._instances[instance_id]
        except KeyError:
            raise InputError(f"There is no object with id {instance_id} in this project.") from None

    def instances_of(self, image_id: int) -> list[InstanceRecord]:
        """The objects on one image in id order (later objects are drawn on top)."""
        self.image(image_id)
        ids = self._by_image.get(image_id, {})
        return [self._instances[i] for i in sorted(ids)]

    def category(self, name: str) -> Category:
        try:
            return self._categories[name]
        except KeyError:
            raise InputError(f"There is no category named {name!r} in this project.") from None

    def find_image(self, path: str | os.PathLike[str]) -> int | None:
        """The id of the image at ``path`` (compared as an absolute path), or None."""
        return self._by_path.get(_path_key(path))

    # --- images ----------------------------------------------------------------------------------

    def add_image(
        self,
        path: str | os.PathLike[str],
        *,
        size: tuple[int, int] | None = None,
        sha256: str | None = None,
        status: str = NOT_STARTED,
    ) -> int:
        """Add an image and return its id (the existing id if that path is already in).

        Reads the oriented size from the file header and hashes the file, unless ``size =
        (width, height)`` is given (then the file is not read and may be missing, e.g. for an
        imported annotation whose image is elsewhere).
        """
        existing = self.find_image(path)
        if existing is not None:
            return existing
        absolute = Path(os.path.abspath(path))
        if status not in STATUSES:
            raise InputError(f"Unknown image status {status!r}; use one of {', '.join(STATUSES)}.")
        if size is None:
            from samdesk.imaging import file_sha256, probe_image

            info = probe_image(absolute)
            width, height = info.width, info.height
            sha256 = file_sha256(absolute)
        else:
            width, height = (int(v) for v in size)
            if width <= 0 or height <= 0:
                raise InputError(f"Image size must be positive, got {width} x {height}.")
        record = ImageRecord(self._next_image, absolute, width, height, sha256, status)
        self._put_image(record)
        return record.id

    def restore_image(
        self, record: ImageRecord, instances: list[InstanceRecord] | tuple = ()
    ) -> None:
        """Put back an image (and its objects) exactly as :meth:`remove_image` returned them."""
        if record.id in self._images:
            raise InputError(f"Image id {record.id} is already in use.")
        if _path_key(record.path) in self._by_path:
            raise InputError(f"{record.path} is already in this project.")
        self._put_image(record)
        for instance in instances:
            self.restore_instance(instance)

    def _put_image(self, record: ImageRecord) -> None:
        self._images[record.id] = record
        if record.id < self._next_image:
            _sort_in_place(self._images)
        self._by_path[_path_key(record.path)] = record.id
        self._by_image.setdefault(record.id, {})
        self._next_image = max(self._next_image, record.id + 1)
        self._changed()

    def remove_image(self, image_id: int) -> tuple[ImageRecord, list[InstanceRecord]]:
        """Remove an image and its objects; returns both (give them to :meth:`restore_image`)."""
        record = self.image(image_id)
        removed = [self._instances.pop(i) for i in sorted(self._by_image.pop(image_id, {}))]
        del self._images[image_id]
        del self._by_path[_path_key(record.path)]
        self._changed()
        return record, removed

    def set_status(self, image_id: int, status: str) -> str:
        """Set an image's status (one of :data:`STATUSES`); returns the previous status."""
        record = self.image(image_id)
        if status not in STATUSES:
            raise InputError(f"Unknown image status {status!r}; use one of {', '.join(STATUSES)}.")
        if status != record.status:
            self._images[image_id] = _replace(record, status=status)
            self._changed()
        return record.status

    def image_changed(self, image_id: int) -> str | None:
        """None if the image file still is the one the annotations were made on, else a message
        saying what changed (missing, unreadable, another size, other content)."""
        from samdesk.imaging import file_sha256, probe_image

        record = self.image(image_id)
        try:
            present = record.path.is_file()
        except OSError:  # e.g. a name too long for this file system
            present = False
        if not present:
            return f"{record.path} is missing. Find the file, or remove the image from the project."
        try:
            info = probe_image(record.path)
        except ImageError as err:
            return f"{record.path} can no longer be read: {err}"
        if (info.width, info.height) != (record.width, record.height):
            return (
                f"{record.path} is now {info.width} x {info.height} pixels, but its annotations "
                f"were made on a {record.width} x {record.height} image. They would not line up; "
                "restore the original file."
            )
        if record.sha256 is not None and file_sha256(record.path) != record.sha256:
            return (
                f"{record.path} has the same size but different content than when it was "
                "annotated. Check that the annotations still fit before going on."
            )
        return None

    # --- categories ------------------------------------------------------------------------------

    def add_category(self, name: str, color: str | None = None) -> Category:
        """Create a category (or return the existing one of that name)."""
        name = _clean_label(name)
        if name in self._categories:
            return self._categories[name]
        if color is None:
            color = next_color(c.color for c in self._categories.values())
        elif not is_color(color):
            raise InputError(f"Colour {color!r} is not of the form #rrggbb.")
        category = Category(self._next_category, name, color.lower())
        self._put_category(category)
        return category

    def _put_category(self, category: Category) -> None:
        self._categories[category.name] = category
        self._next_category = max(self._next_category, category.id + 1)
        self._changed()

    def rename_category(self, old: str, new: str) -> None:
        """Rename a category; every object labelled ``old`` is relabelled ``new``."""
        self.category(old)
        new = _clean_label(new)
        if new == old:
            return
        if new in self._categories:
            raise InputError(
                f"A category named {new!r} already exists. Relabel the objects instead."
            )
        renamed = [
            (new, _replace(c, name=new)) if name == old else (name, c)
            for name, c in self._categories.items()
        ]
        self._categories.clear()
        self._categories.update(renamed)
        for instance in list(self._instances.values()):
            if instance.label == old:
                self._instances[instance.id] = _replace(instance, label=new)
        self._changed()

    def set_category_color(self, name: str, color: str) -> str:
        """Recolour a category (``#rrggbb``); returns the previous colour."""
        category = self.category(name)
        if not is_color(color):
            raise InputError(f"Colour {color!r} is not of the form #rrggbb.")
        if color.lower() != category.color:
            self._categories[name] = _replace(category, color=color.lower())
            self._changed()
        return category.color

    def remove_category(self, name: str) -> Category:
        """Remove a category no object uses; returns it (:meth:`restore_category` re-adds it)."""
        category = self.category(name)
        users = sum(1 for i in self._instances.values() if i.label == name)
        if users:
            raise InputError(
                f"Category {name!r} is used by {users} object(s); relabel or delete them first."
            )
        del self._categories[name]
        self._changed()
        return category

    def restore_category(self, category: Category) -> None:
        if category.name in self._categories:
            raise InputError(f"A category named {category.name!r} already exists.")
        if any(c.id == category.id for c in self._categories.values()):
            raise InputError(f"Category id {category.id} is already in use.")
        self._put_category(category)

    # --- objects ---------------------------------------------------------------------------------

    def add_instance(
        self,
        image_id: int,
        mask: np.ndarray,
        label: str,
        *,
        score: float | None = None,
        prompts: Any = None,
        instance_id: int | None = None,
    ) -> int:
        """Add an object and return its id.

        ``mask`` is an ``H x W`` bool array with the image's size (non-zero is foreground);
        ``label`` is a category name, created with a new colour on first use; ``prompts`` is
        JSON-able data (copied). ``instance_id`` re-uses a given free id (to redo an add).
        """
        image = self.image(image_id)
        mask = np.asarray(mask)
        if mask.shape != (image.height, image.width):
            raise InputError(
                f"The mask is {_shape_text(mask.shape)} but image {image.name} is "
                f"{image.width} x {image.height} (width x height); a mask must have the "
                "image's size."
            )
        counts = rle.encode(mask)
        return self.add_instance_rle(
            image_id, counts, label, score=score, prompts=prompts, instance_id=instance_id
        )

    def add_instance_rle(
        self,
        image_id: int,
        counts: str,
        label: str,
        *,
        score: float | None = None,
        prompts: Any = None,
        instance_id: int | None = None,
    ) -> int:
        """Like :meth:`add_instance` for a mask given as a compressed COCO RLE of the image's
        size (checked); cheaper when the RLE is at hand (imports, scripts)."""
        image = self.image(image_id)
        if instance_id is not None and instance_id in self._instances:
            raise InputError(f"Object id {instance_id} is already in use.")
        runs = rle.compact(rle.counts_from_string(counts, image.height, image.width), *image.size)
        area = rle.area_of(runs)
        now = utc_now()
        record = InstanceRecord(
            id=self._next_instance if instance_id is None else int(instance_id),
            image_id=image_id,
            label=self.add_category(label).name,
            rle=counts,
            height=image.height,
            width=image.width,
            area=area,
            bbox=box_of(runs, image.height) if area else None,
            score=_clean_score(score),
            prompts=_json_copy(prompts),
            created=now,
            modified=now,
            runs=runs,
        )
        self._put_instance(record)
        return record.id

    def restore_instance(self, record: InstanceRecord) -> int:
        """Put back an object exactly as :meth:`delete_instance` or :meth:`update_instance`
        returned it (same id, times and mask); returns its id."""
        image = self.image(record.image_id)
        if record.id in self._instances:
            raise InputError(f"Object id {record.id} is already in use.")
        if (record.height, record.width) != (image.height, image.width):
            raise InputError(
                f"Object {record.id} has a {record.width} x {record.height} mask but image "
                f"{image.name} is {image.width} x {image.height}."
            )
        if record.label not in self._categories:
            self.add_category(record.label)
        self._put_instance(_with_runs(record))
        return record.id

    def _put_instance(self, record: InstanceRecord) -> None:
        self._instances[record.id] = record
        if record.id < self._next_instance:
            _sort_in_place(self._instances)
        self._by_image.setdefault(record.image_id, {})[record.id] = None
        self._next_instance = max(self._next_instance, record.id + 1)
        self._changed()

    def update_instance(
        self,
        instance_id: int,
        *,
        mask: np.ndarray | None = None,
        label: str | None = None,
        score: float | None = _UNSET,
        prompts: Any = _UNSET,
    ) -> InstanceRecord:
        """Change an object's mask, label, score and/or prompts; returns the previous record
        (for undo: :meth:`replace_instance` with it)."""
        old = self.instance(instance_id)
        changes: dict[str, Any] = {}
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (old.height, old.width):
                raise InputError(
                    f"The mask is {_shape_text(mask.shape)} but the image is "
                    f"{old.width} x {old.height} (width x height)."
                )
            counts = rle.encode(mask)
            runs = rle.compact(rle.counts_from_string(counts, old.height, old.width), *mask.shape)
            area = rle.area_of(runs)
            changes.update(
                rle=counts, runs=runs, area=area, bbox=box_of(runs, old.height) if area else None
            )
        if label is not None:
            changes["label"] = self.add_category(label).name
        if score is not _UNSET:
            changes["score"] = _clean_score(score)
        if prompts is not _UNSET:
            changes["prompts"] = _json_copy(prompts)
        if changes:
            self._instances[instance_id] = _replace(old, modified=utc_now(), **changes)
            self._changed()
        return old

    def relabel(self, instance_id: int, label: str) -> InstanceRecord:
        """Give an object another label; returns the previous record."""
        return self.update_instance(instance_id, label=label)

    def replace_instance(self, record: InstanceRecord) -> InstanceRecord:
        """Swap in a complete record for the object with the same id (undo of an update);
        returns the record it replaced."""
        old = self.instance(record.id)
        if record.image_id != old.image_id or (record.height, record.width) != (
            old.height,
            old.width,
        ):
            raise InputError(f"The record for object {record.id} belongs to another image.")
        if record.label not in self._categories:
            self.add_category(record.label)
        self._instances[record.id] = _with_runs(record)
        self._changed()
        return old

    def delete_instance(self, instance_id: int) -> InstanceRecord:
        """Remove an object; returns its record (give it to :meth:`restore_instance`)."""
        record = self.instance(instance_id)
        del self._instances[instance_id]
        del self._by_image[record.image_id][instance_id]
        self._changed()
        return record

    # --- files -----------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the project (atomically, see :mod:`samdesk.annotation.safe_io`) to ``path`` or,
        when None, where it was loaded from or last saved. Returns the path written.

        Raises :class:`~samdesk.errors.SaveError` when that fails; the file on disk is then
        unchanged and the document stays dirty. A different existing file is replaced only if it
        is a readable samdesk project of this version: a damaged project, a newer one or any
        other file is never overwritten.
        """
        from samdesk.annotation.project_file import check_replaceable, write_project

        if path is None:
            if self.path is None:
                raise InputError("This project has not been saved yet; choose a file name.")
            path = self.path
        target = Path(os.path.abspath(path))
        if target != self.path and target.exists():
            check_replaceable(target)
        revision = self.revision
        write_project(self, target)
        self.mark_saved(target, revision)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Document:
        """Open a project file. Raises ProjectVersionError for a file from a newer samdesk and
        CorruptProjectError (naming file and position) for a damaged one, which is left as is."""
        from samdesk.annotation.project_file import read_project

        return read_project(Path(os.path.abspath(path)), cls())

    def export(self, fmt: str, out_path: str | os.PathLike[str], **options: Any) -> ExportReport:
        """Write the annotations as ``coco``, ``yolo``, ``labelme`` or ``masks``; see
        :mod:`samdesk.annotation.formats`. Returns what was written and what was dropped."""
        from samdesk.annotation.formats import export

        return export(self, fmt, Path(out_path), **options)

    def import_file(
        self,
        fmt: str,
        path: str | os.PathLike[str],
        *,
        images_dir: str | os.PathLike[str] | None = None,
    ) -> ImportReport:
        """Merge a ``coco`` or ``labelme`` file into this project, all or nothing: a malformed
        file raises FormatError listing its problems and the project is left unchanged."""
        from samdesk.annotation.formats import import_into

        trial = self.copy()
        report = import_into(
            trial, fmt, Path(path), None if images_dir is None else Path(images_dir)
        )
        self._adopt(trial)
        return report

    @classmethod
    def from_import(
        cls,
        fmt: str,
        path: str | os.PathLike[str],
        *,
        images_dir: str | os.PathLike[str] | None = None,
    ) -> tuple[Document, ImportReport]:
        """A new, unsaved project holding one imported ``coco`` or ``labelme`` file."""
        document = cls()
        report = document.import_file(fmt, path, images_dir=images_dir)
        return document, report

    def copy(self) -> Document:
        """An independent copy (records are immutable, so this is cheap)."""
        other = Document()
        other._adopt(self, count_as_change=False)
        other.path, other.revision, other._saved_revision = (
            self.path,
            self.revision,
            self._saved_revision,
        )
        return other

    def _adopt(self, other: Document, *, count_as_change: bool = True) -> None:
        # In place, so views handed out earlier (doc.images, doc.instances) stay live.
        for mine, theirs in (
            (self._images, other._images),
            (self._instances, other._instances),
            (self._categories, other._categories),
            (self._by_path, other._by_path),
        ):
            mine.clear()
            mine.update(theirs)  # type: ignore[arg-type]
        self._by_image = {k: dict(v) for k, v in other._by_image.items()}
        self._next_image = other._next_image
        self._next_instance = other._next_instance
        self._next_category = other._next_category
        if count_as_change:
            self._changed()


def _with_runs(record: InstanceRecord) -> InstanceRecord:
    """The record with its run lengths (checked) attached."""
    if record.runs is not None:
        return record
    runs = rle.counts_from_string(record.rle, record.height, record.width)
    return _replace(record, runs=rle.compact(runs, record.height, record.width))


def _sort_in_place(records: dict[int, Any]) -> None:
    ordered = sorted(records.items())
    records.clear()
    records.update(ordered)


def _path_key(path: str | os.PathLike[str]) -> str:
    return os.path.normcase(os.path.abspath(path))


def _replace(record: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(record, **changes)


def _clean_label(label: object) -> str:
    if not isinstance(label, str) or not label.strip():
        raise InputError(f"A label must be a non-empty text, got {label!r}.")
    if not is_label(label.strip()):
        raise InputError(
            f"The label {label!r} holds characters that are not valid Unicode text; type it again."
        )
    return label.strip()


def _clean_score(score: object) -> float | None:
    if score is None:
        return None
    try:
        value = float(score)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"A score must be a number, got {score!r}.") from None
    if not np.isfinite(value):
        raise InputError(f"A score must be a finite number, got {score!r}.")
    return value


def _json_copy(data: Any) -> Any:
    if data is None:
        return None
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False, default=_plain)
        return json.loads(text)
    except (TypeError, ValueError) as err:
        raise InputError(
            f"Prompts must be JSON-able data (numbers, text, lists, dicts): {err}"
        ) from None


def _plain(value: Any) -> Any:
    """numpy arrays and scalars in prompts become lists and numbers."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def _shape_text(shape: tuple[int, ...]) -> str:
    if len(shape) == 2:
        return f"{shape[1]} x {shape[0]} (width x height)"
    return f"an array of shape {shape}"
