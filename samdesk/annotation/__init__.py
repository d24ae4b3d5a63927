"""Annotation document, geometry and file formats (imports neither torch nor Qt).

- :class:`Document` - images, labelled masks (stored as COCO RLE) and categories; explicit,
  undoable mutations; :meth:`Document.save` / :meth:`Document.load` (crash-safe, versioned);
  :meth:`Document.export` (coco, yolo, labelme, masks) and :meth:`Document.import_file`
  (coco, labelme).
- :mod:`samdesk.annotation.geometry` - masks <-> polygons (pixel-corner frame).
- :mod:`samdesk.annotation.safe_io` - :func:`atomic_write`, :func:`move_aside`.
"""

from samdesk.annotation.document import Document, RecordView
from samdesk.annotation.formats.report import ExportReport, ImportReport
from samdesk.annotation.records import (
    DONE,
    IN_PROGRESS,
    NOT_STARTED,
    STATUSES,
    Category,
    ImageRecord,
    InstanceRecord,
)
from samdesk.annotation.safe_io import atomic_write, move_aside

__all__ = [
    "DONE",
    "IN_PROGRESS",
    "NOT_STARTED",
    "STATUSES",
    "Category",
    "Document",
    "ExportReport",
    "ImageRecord",
    "ImportReport",
    "InstanceRecord",
    "RecordView",
    "atomic_write",
    "move_aside",
]
