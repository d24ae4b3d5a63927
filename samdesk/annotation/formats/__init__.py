"""Export to and import from other tools' formats.

======== ====== ====== ==================================================================
format   export import output / input
======== ====== ====== ==================================================================
coco     yes    yes    one instances JSON (polygons, or RLE for holes; ``rle=True``)
yolo     yes    no     a folder: ``labels/*.txt``, ``classes.txt``, ``data.yaml``
labelme  yes    yes    one JSON per image (a folder); import takes a file or a folder
masks    yes    no     a folder of 16-bit instance PNGs + JSON sidecars, class PNGs, TIFFs
======== ====== ====== ==================================================================

Every export returns an :class:`ExportReport` (files written, objects and parts written, what was
dropped or changed and why) and writes each file atomically after preparing all of them.
Imports check the whole input first and raise :class:`~samdesk.errors.FormatError` listing every
problem with its JSON path; :meth:`Document.import_file` applies them to a copy and swaps it in
only on success.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from samdesk.annotation.formats import coco, labelme, masks, yolo
from samdesk.annotation.formats.report import ExportReport, ImportReport
from samdesk.errors import InputError

EXPORTERS: dict[str, Callable[..., ExportReport]] = {
    "coco": coco.export,
    "yolo": yolo.export,
    "labelme": labelme.export,
    "masks": masks.export,
}
IMPORTERS: dict[str, Callable[..., ImportReport]] = {
    "coco": coco.import_into,
    "labelme": labelme.import_into,
}

__all__ = ["EXPORTERS", "IMPORTERS", "ExportReport", "ImportReport", "export", "import_into"]


def export(doc: Any, fmt: str, out: Path, **options: Any) -> ExportReport:
    """Export ``doc`` as ``fmt`` to ``out``; unknown formats and options are refused."""
    exporter = EXPORTERS.get(fmt)
    if exporter is None:
        raise InputError(f"Unknown export format {fmt!r}; use one of {', '.join(EXPORTERS)}.")
    accepted = [
        name
        for name, p in inspect.signature(exporter).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InputError(
            f"The {fmt} export has no option {', '.join(unknown)}; it accepts "
            f"{', '.join(accepted) or 'none'}."
        )
    report = exporter(doc, Path(out), **options)
    missing = [image.path for image in doc.images if not _is_file(image.path)]
    if missing:
        report.notes.append(
            f"{len(missing)} image file(s) are not where the project records them (e.g. "
            f"{missing[0]}); the exported image paths point there. Put the images back there "
            "before using the export."
        )
    return report


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def import_into(doc: Any, fmt: str, path: Path, images_dir: Path | None) -> ImportReport:
    """Import ``path`` in format ``fmt`` into ``doc`` (callers pass a copy; see Document)."""
    importer = IMPORTERS.get(fmt)
    if importer is None:
        raise InputError(f"Unknown import format {fmt!r}; use one of {', '.join(IMPORTERS)}.")
    if not path.exists():
        raise InputError(f"{path} does not exist.")
    if images_dir is not None and not images_dir.is_dir():
        raise InputError(f"The image folder {images_dir} does not exist.")
    return importer(doc, path, images_dir)
