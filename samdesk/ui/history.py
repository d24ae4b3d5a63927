"""Undo / redo commands (Qt's QUndoStack, one stack per image, grouped in a QUndoGroup).

Every command keeps only what it needs to go both ways without copying masks:

* :class:`StateCommand` — prompts, candidate choice, brush strokes on the current object,
  Backspace, Esc: a (before, after) pair of immutable :class:`~samdesk.ui.session.ObjectState`
  objects that share their packed masks and sparse diffs;
* :class:`AcceptCommand` — the current object becomes an instance (and back);
* :class:`DeleteInstanceCommand`, :class:`RelabelCommand`;
* :class:`InstanceMaskCommand` — a brush stroke or a vertex drag on an accepted instance, stored
  as a :class:`~samdesk.ui.masks.MaskDiff` (an XOR of the changed pixels in their bounding box).

The commands call back into a :class:`Target` (the annotator), which applies the change to the
Document and the screen.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from PySide6.QtGui import QUndoCommand

from samdesk.ui.masks import MaskDiff
from samdesk.ui.session import ObjectState


class Target(Protocol):
    """What the commands need from the annotator."""

    def set_object_state(self, image_id: int, state: ObjectState) -> None: ...

    def add_instance(
        self, image_id: int, mask: np.ndarray, label: str, extra: dict[str, Any]
    ) -> int: ...

    def restore_instance(self, record: Any) -> None: ...

    def remove_instance(self, instance_id: int) -> Any: ...

    def relabel_instance(self, instance_id: int, label: str) -> None: ...

    def edit_instance_mask(self, instance_id: int, diff: MaskDiff) -> None: ...


class StateCommand(QUndoCommand):
    """The object being segmented goes from ``before`` to ``after``."""

    def __init__(
        self, target: Target, image_id: int, before: ObjectState, after: ObjectState, text: str
    ) -> None:
        super().__init__(text)
        self.target = target
        self.image_id = image_id
        self.before = before
        self.after = after

    def redo(self) -> None:
        self.target.set_object_state(self.image_id, self.after)

    def undo(self) -> None:
        self.target.set_object_state(self.image_id, self.before)


class AcceptCommand(QUndoCommand):
    """The current object (``before``) becomes an instance labelled ``label``."""

    def __init__(
        self,
        target: Target,
        image_id: int,
        before: ObjectState,
        shape: tuple[int, int],
        label: str,
    ) -> None:
        super().__init__(f"Accept {label}")
        self.target = target
        self.image_id = image_id
        self.before = before
        self.shape = shape
        self.label = label
        self.instance_id: int | None = None
        self._record: Any = None

    def redo(self) -> None:
        if self._record is not None:  # redo after undo: the same instance, same id
            self.target.restore_instance(self._record)
        else:
            mask = np.array(self.before.mask(self.shape), dtype=bool)
            extra = {"score": self.before.score(), "prompts": self.before.prompts_record()}
            self.instance_id = self.target.add_instance(self.image_id, mask, self.label, extra)
        self.target.set_object_state(self.image_id, ObjectState())

    def undo(self) -> None:
        if self.instance_id is not None:
            self._record = self.target.remove_instance(self.instance_id)
        self.target.set_object_state(self.image_id, self.before)


class DeleteInstanceCommand(QUndoCommand):
    def __init__(self, target: Target, instance_id: int, label: str) -> None:
        super().__init__(f"Delete {label}")
        self.target = target
        self.instance_id = instance_id
        self._record: Any = None

    def redo(self) -> None:
        self._record = self.target.remove_instance(self.instance_id)

    def undo(self) -> None:
        if self._record is not None:
            self.target.restore_instance(self._record)


class RelabelCommand(QUndoCommand):
    def __init__(self, target: Target, instance_id: int, old: str, new: str) -> None:
        super().__init__(f"Relabel {old} as {new}")
        self.target = target
        self.instance_id = instance_id
        self.old = old
        self.new = new

    def redo(self) -> None:
        self.target.relabel_instance(self.instance_id, self.new)

    def undo(self) -> None:
        self.target.relabel_instance(self.instance_id, self.old)


class InstanceMaskCommand(QUndoCommand):
    """A change to an accepted instance's mask, stored as the XOR of the changed pixels."""

    def __init__(self, target: Target, instance_id: int, diff: MaskDiff, text: str) -> None:
        super().__init__(text)
        self.target = target
        self.instance_id = instance_id
        self.diff = diff

    def redo(self) -> None:
        self.target.edit_instance_mask(self.instance_id, self.diff)

    def undo(self) -> None:
        self.target.edit_instance_mask(self.instance_id, self.diff)  # XOR: its own inverse
