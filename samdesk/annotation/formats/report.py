"""What an export or import did: files, objects, and everything dropped or changed, with why."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ExportReport:
    """The result of :meth:`Document.export`.

    ``objects`` counts objects written; ``parts`` polygon parts written (polygon formats);
    ``dropped`` counts objects or parts left out, by reason; ``changed`` counts things written
    differently from the mask, by reason (e.g. holes filled in YOLO, masks written as RLE in COCO).
    """

    format: str
    files: list[Path] = field(default_factory=list)
    objects: int = 0
    parts: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    changed: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def lossless(self) -> bool:
        return not self.dropped

    def summary(self) -> str:
        """Several lines for a person: what was written, then what was dropped or changed."""
        lines = [
            f"{self.format}: wrote {self.objects} object(s)"
            + (f" as {self.parts} polygon part(s)" if self.parts else "")
            + f" to {len(self.files)} file(s)"
        ]
        lines += [f"  dropped {n}: {reason}" for reason, n in sorted(self.dropped.items()) if n]
        lines += [f"  changed {n}: {reason}" for reason, n in sorted(self.changed.items()) if n]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


@dataclass
class ImportReport:
    """The result of :meth:`Document.import_file`.

    ``images_added`` new images in the project, ``images_missing`` image files that were not
    found (their annotations are imported with the size the file states), ``objects`` objects
    added, ``skipped`` shapes not imported, by reason (e.g. labelme points and lines, which have
    no area).
    """

    format: str
    source: Path
    images_added: int = 0
    objects: int = 0
    images_missing: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"{self.format}: imported {self.objects} object(s) on {self.images_added} new "
            f"image(s) from {self.source}"
        ]
        if self.images_missing:
            shown = ", ".join(self.images_missing[:5])
            more = len(self.images_missing) - 5
            lines.append(
                f"  {len(self.images_missing)} image file(s) not found: {shown}"
                + (f" and {more} more" if more > 0 else "")
            )
        lines += [f"  skipped {n}: {reason}" for reason, n in sorted(self.skipped.items())]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)
