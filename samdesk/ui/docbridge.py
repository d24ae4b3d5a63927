"""The app's window onto a :class:`samdesk.annotation.document.Document`.

Not a second document model: every read and write goes straight to the Document. This adds what
the GUI needs on top — tolerant lookups (None instead of an error for a deleted object), a small
cache of decoded masks (a brush stroke on an object must not decode its RLE every time), label
colours as RGB tuples, and a copy-save for autosave that leaves the project's own path and
"unsaved" state alone.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from samdesk.annotation.document import Document
from samdesk.annotation.records import ImageRecord, InstanceRecord, next_color

#: Decoded instance masks kept (most recently used first out): enough for editing a few objects.
MASK_CACHE_SIZE = 8


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    value = color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


class DocumentView:
    """Thin, GUI-friendly access to one Document (ids are the Document's ints)."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self._masks: OrderedDict[int, tuple[str, np.ndarray]] = OrderedDict()
        self._pending: list[str] = []

    @property
    def revision(self) -> int:
        return self.doc.revision

    # --- images -----------------------------------------------------------------------------

    def image_ids(self) -> list[int]:
        return self.doc.images.ids()

    def image(self, image_id: int) -> ImageRecord | None:
        return self.doc.images.get(image_id)

    def image_path(self, image_id: int) -> Path:
        return self.doc.image(image_id).path

    def status(self, image_id: int) -> str:
        record = self.doc.images.get(image_id)
        return record.status if record is not None else ""

    def set_status(self, image_id: int, status: str) -> None:
        self.doc.set_status(image_id, status)

    def add_image(self, path: Path, **kwargs: Any) -> int:
        return self.doc.add_image(path, **kwargs)

    # --- instances --------------------------------------------------------------------------

    def instance(self, instance_id: int) -> InstanceRecord | None:
        return self.doc.instances.get(instance_id)

    def instances_of(self, image_id: int) -> list[InstanceRecord]:
        if image_id not in self.doc.images:
            return []
        return self.doc.instances_of(image_id)

    def instance_mask(self, instance_id: int) -> np.ndarray:
        """The object's (H, W) bool mask, read-only (decoded once per version and cached)."""
        record = self.doc.instance(instance_id)
        cached = self._masks.get(instance_id)
        if cached is not None and cached[0] is record.rle:
            self._masks.move_to_end(instance_id)
            return cached[1]
        mask = record.mask()
        mask.setflags(write=False)
        self._masks[instance_id] = (record.rle, mask)
        while len(self._masks) > MASK_CACHE_SIZE:
            self._masks.popitem(last=False)
        return mask

    def instance_crop(self, instance_id: int) -> tuple[np.ndarray, int, int] | None:
        """The object's mask inside its bounding box and the box's top-left (x0, y0), decoded
        from the RLE without building the full-size mask; None for an empty mask."""
        record = self.doc.instance(instance_id)
        if record.bbox is None:
            return None
        crop, (x0, y0) = record.crop()
        return crop, x0, y0

    def add_instance(
        self, image_id: int, mask: np.ndarray, label: str, extra: dict[str, Any]
    ) -> int:
        self.ensure_label(label)
        return self.doc.add_instance(
            image_id, mask, label, score=extra.get("score"), prompts=extra.get("prompts")
        )

    def restore_instance(self, record: InstanceRecord) -> None:
        self.doc.restore_instance(record)

    def remove_instance(self, instance_id: int) -> InstanceRecord:
        self._masks.pop(instance_id, None)
        return self.doc.delete_instance(instance_id)

    def relabel_instance(self, instance_id: int, label: str) -> None:
        self.ensure_label(label)
        self.doc.relabel(instance_id, label)

    def set_instance_mask(self, instance_id: int, mask: np.ndarray) -> None:
        self.doc.update_instance(instance_id, mask=mask, score=None)

    # --- labels -----------------------------------------------------------------------------

    def labels(self, extra: list[str]) -> list[tuple[str, tuple[int, int, int]]]:
        """``extra`` (the user's label set from the settings, in its order — keys 1-9 follow
        it), then the project's other categories, each with its colour; a name not yet in the
        project is shown in the colour it will get."""
        self.remember_labels(extra)
        names = list(dict.fromkeys(extra))
        names += [c.name for c in self.doc.categories if c.name not in names]
        return [(name, self.color_of(name)) for name in names]

    def color_of(self, label: str) -> tuple[int, int, int]:
        for category in self.doc.categories:
            if category.name == label:
                return hex_to_rgb(category.color)
        return hex_to_rgb(self._preview_color(label))

    def _preview_color(self, label: str) -> str:
        """The colour ``label`` will get: labels known from the settings are coloured in their
        order, as if they were created one after the other."""
        existing = {c.name for c in self.doc.categories}
        used = [c.color for c in self.doc.categories]
        order = [n for n in self._pending if n not in existing]
        if label not in order:
            order.append(label)
        for name in order:
            color = next_color(used)
            if name == label:
                return color
            used.append(color)
        return next_color(used)  # not reached: label is in order

    def remember_labels(self, names: list[str]) -> None:
        """Label names from the settings, in order, for stable preview colours."""
        self._pending = [n for n in names if n]

    def ensure_label(self, label: str) -> None:
        """Create the category (with the colour it was previewed in) if it does not exist."""
        if all(c.name != label for c in self.doc.categories):
            color = self._preview_color(label)
            self.doc.add_category(label, color)

    # --- files ------------------------------------------------------------------------------

    def save(self, path: Path) -> Path:
        return self.doc.save(path)

    def save_copy(self, path: Path) -> Path:
        """Write the project to ``path`` (safe save) without changing where the document is
        saved or whether it counts as unsaved (the autosave)."""
        return self.doc.copy().save(path)

    def export(self, fmt: str, out: Path, **options: Any) -> Any:
        return self.doc.export(fmt, out, **options)
