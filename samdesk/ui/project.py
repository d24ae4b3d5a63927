"""Opening, saving, autosaving, recovering and exporting projects.

Where a project lives (ADR 0051):

* opening a **project file** (``*.json``) uses it;
* opening a **folder** uses ``<folder>/samdesk-project.json`` — loaded when it exists (images
  added to the folder since are appended), created on the first save otherwise;
* opening **image files** uses the project of their folder the same way, with those images added.

Autosave: after every change to the document (accept, delete, relabel, edits, undo, redo) a
short timer coalesces a burst of changes and writes ``<project>.autosave.json`` beside the
project through the Document's safe save (temporary file + fsync + rename), never touching the
project file itself. A failing autosave is reported once (until one succeeds again). Ctrl+S
writes the project and removes the autosave. On opening, an autosave newer than its project (or
one whose project was never saved) is offered for recovery.

A project from a newer samdesk, or a damaged one, is refused with a message and never
overwritten; a damaged one can be moved aside (renamed ``<name>.corrupt-<time>``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from samdesk.annotation.document import Document
from samdesk.annotation.formats.report import ExportReport
from samdesk.annotation.safe_io import move_aside
from samdesk.errors import (
    CorruptProjectError,
    ProjectError,
    ProjectVersionError,
    SamdeskError,
)
from samdesk.imaging import SUPPORTED_SUFFIXES, file_sha256, list_images, probe_image
from samdesk.imaging.errors import TooManyPixelsError
from samdesk.ui.docbridge import DocumentView

if TYPE_CHECKING:
    from samdesk.ui.main_window import MainWindow

log = logging.getLogger(__name__)

DEFAULT_PROJECT_NAME = "samdesk-project.json"
AUTOSAVE_SUFFIX = ".autosave.json"
#: Milliseconds between the last change and the autosave (coalesces bursts of changes).
AUTOSAVE_DELAY_MS = 700


def autosave_path(project: Path) -> Path:
    """``<folder>/<name>.autosave.json`` for project ``<folder>/<name>.json``."""
    return project.with_name(project.stem + AUTOSAVE_SUFFIX)


def is_image(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


class ProjectController(QObject):
    """The open project: its Document, where it is saved, autosave and recovery."""

    document_changed = Signal()

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.view = DocumentView(Document())
        self.project_path: Path | None = None
        self.initial_image: int | None = None
        #: files of the opened folder (or selection) that cannot be read: (path, message)
        self.unreadable: list[tuple[Path, str]] = []
        self.is_open = False
        self._saved_revision = self.view.revision
        self._autosaved_revision = self.view.revision
        self._autosave_failed = False
        self._timer = QTimer(self)
        self._timer.setObjectName("autosave")
        self._timer.setSingleShot(True)
        self._timer.setInterval(AUTOSAVE_DELAY_MS)
        self._timer.timeout.connect(self.autosave)

    # --- state ------------------------------------------------------------------------------

    def has_unsaved_changes(self) -> bool:
        return self.is_open and self.view.revision != self._saved_revision

    def display_name(self) -> str:
        if not self.is_open:
            return ""
        if self.project_path is None:
            return "Untitled project"
        return f"{self.project_path.parent.name}/{self.project_path.name}"

    def start_folder(self) -> str:
        if self.project_path is not None:
            return str(self.project_path.parent)
        recent = self.window.settings.recent()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def note_change(self, *_args: object) -> None:
        """The document changed: schedule an autosave, update the title and file list."""
        if self.is_open:
            self._timer.start()
        self.document_changed.emit()

    # --- opening ----------------------------------------------------------------------------

    def open_paths(self, paths: list[Path]) -> bool:
        """Open a project file, a folder, or image files (their folder's project)."""
        paths = [p.expanduser() for p in paths]
        missing = [p for p in paths if not p.exists()]
        if missing:
            self._error(f"Not found: {missing[0]}. Check the path and try again.")
            self.window.settings.remove_recent(missing[0])
            return False
        first = paths[0]
        if first.is_dir():
            return self._open(
                first / DEFAULT_PROJECT_NAME, folder=first, images=None, remember=first
            )
        if first.suffix.lower() == ".json":
            return self._open(first, folder=None, images=None, remember=first)
        images = [p for p in paths if p.is_file() and is_image(p)]
        if not images:
            self._error(
                f"{first.name} is neither an image samdesk can open, a folder, nor a project "
                f"file. Supported images: {', '.join(sorted(SUPPORTED_SUFFIXES))}."
            )
            return False
        project = images[0].parent / DEFAULT_PROJECT_NAME
        return self._open(project, folder=None, images=images, remember=images[0])

    def _open(
        self, project: Path, *, folder: Path | None, images: list[Path] | None, remember: Path
    ) -> bool:
        if self.is_open and not self.confirm_discard():
            return False
        loaded = self._load_or_recover(project)
        if loaded is None:
            return False
        doc, recovered = loaded
        view = DocumentView(doc)
        view.remember_labels(self.window.settings.labels())
        added: list[int] = []
        self.unreadable = []
        to_add = images if images is not None else (list_images(folder) if folder else [])
        known = {view.image_path(i).resolve(): i for i in view.image_ids()}
        first_requested = None
        for path in to_add:
            image_id = known.get(path.resolve())
            if image_id is None:
                try:
                    image_id = _add_image(view, path)
                except (SamdeskError, OSError) as err:
                    message = str(err) if isinstance(err, SamdeskError) else f"{path}: {err}"
                    self.unreadable.append((path, message))
                    continue
                added.append(image_id)
            if first_requested is None:
                first_requested = image_id
        self._timer.stop()
        self.view = view
        self.window.annotator.docs = view
        self.project_path = project
        self.is_open = True
        self.initial_image = first_requested if images is not None else None
        self._saved_revision = -1 if recovered else view.revision
        self._autosaved_revision = view.revision
        self._autosave_failed = False
        if added and project.exists():
            self.note_change()  # new images joined an existing project
        elif added:
            self._saved_revision = view.revision  # a new project: nothing to lose yet
        self.window.settings.add_recent(remember)
        return True

    def _load_or_recover(self, project: Path) -> tuple[Document, bool] | None:
        """The project's Document (or its recovered autosave, then True), a new Document when
        there is no project file yet, or None when it cannot or must not be opened."""
        autosave = autosave_path(project)
        if autosave.exists() and (
            not project.exists() or autosave.stat().st_mtime > project.stat().st_mtime
        ):
            answer = self.window.dialogs.ask(
                "Recover unsaved work?",
                f"samdesk found autosaved work for {project.name} that is newer than the last "
                "save (samdesk may have been closed without saving).\n\nRecover it?",
                ["Recover", "Discard autosave", "Cancel"],
                default="Recover",
            )
            if answer == "Cancel":
                return None
            if answer == "Recover":
                try:
                    doc = Document.load(autosave)
                except ProjectError as err:
                    self._error(f"The autosave cannot be used: {err}")
                else:
                    doc.path = project
                    return doc, True
            else:
                self._remove_autosave(project)
        if not project.exists():
            return Document(), False
        try:
            return Document.load(project), False
        except ProjectVersionError as err:
            self._error(f"{err}\n\nThe project was left untouched.")
            return None
        except CorruptProjectError as err:
            answer = self.window.dialogs.ask(
                "Damaged project",
                f"{err}\n\nsamdesk will not overwrite it. Move it aside (rename it) and start a "
                "new project in its place?",
                ["Move aside", "Cancel"],
                default="Cancel",
            )
            if answer == "Move aside":
                moved = move_aside(project)
                self.window.messages.show_message(
                    f"The damaged project was renamed to {moved.name}.", "warning"
                )
                return Document(), False
            return None
        except ProjectError as err:
            self._error(str(err))
            return None

    def close(self) -> None:
        self._timer.stop()
        self.view = DocumentView(Document())
        self.window.annotator.docs = self.view
        self.project_path = None
        self.unreadable = []
        self.is_open = False
        self._saved_revision = self.view.revision

    # --- saving -----------------------------------------------------------------------------

    def save(self) -> bool:
        """Ctrl+S: write the project (asking where if it has no place yet)."""
        if not self.is_open:
            return False
        if self.project_path is None:
            return self.save_as()
        return self._save_to(self.project_path)

    def save_as(self) -> bool:
        if not self.is_open:
            return False
        target = self.window.dialogs.save_project(self.start_folder())
        if target is None:
            return False
        return self._save_to(target)

    def _save_to(self, target: Path) -> bool:
        try:
            self.view.save(target)
        except SamdeskError as err:
            self._error(f"{err}\n\nUse File > Save as… to save somewhere else.")
            return False
        previous = self.project_path
        self.project_path = target
        self._saved_revision = self.view.revision
        self._autosaved_revision = self.view.revision
        self._timer.stop()
        if previous is not None:
            self._remove_autosave(previous)
        self._remove_autosave(target)
        self.window.settings.add_recent(target)
        self.window.statusBar().showMessage(f"Saved {target}", 4000)
        self.document_changed.emit()
        return True

    def autosave(self) -> bool:
        """Write the autosave file if the document changed since the last one."""
        if not self.is_open or self.project_path is None:
            return False
        if self.view.revision in (self._autosaved_revision, self._saved_revision):
            return False
        target = autosave_path(self.project_path)
        try:
            self.view.save_copy(target)
        except SamdeskError as err:
            if not self._autosave_failed:
                self._autosave_failed = True
                self.window.messages.show_message(
                    f"Autosave failed: {err}\nYour work is still open; save it with "
                    "File > Save as… to a writable folder. (This is shown once.)",
                    "error",
                )
            return False
        self._autosave_failed = False
        self._autosaved_revision = self.view.revision
        return True

    def _remove_autosave(self, project: Path) -> None:
        try:
            autosave_path(project).unlink(missing_ok=True)
        except OSError as err:
            log.info("could not remove the autosave of %s: %s", project, err)

    def confirm_discard(self) -> bool:
        """True when it is fine to close the document (saved, or the user decided)."""
        if not self.has_unsaved_changes():
            return True
        answer = self.window.dialogs.ask(
            "Unsaved changes",
            f"Save the changes to {self.display_name()}?",
            ["Save", "Discard", "Cancel"],
            default="Save",
        )
        if answer == "Save":
            return self.save()
        if answer == "Discard":
            if self.project_path is not None:
                self._remove_autosave(self.project_path)
            self._saved_revision = self.view.revision
            return True
        return False

    def shutdown(self) -> None:
        self._timer.stop()

    # --- image status -----------------------------------------------------------------------

    def mark_in_progress(self, image_id: int | None) -> None:
        if image_id is not None and self.view.status(image_id) == "not started":
            self.view.set_status(image_id, "in progress")
            self.note_change()

    def toggle_done(self, image_id: int) -> None:
        done = self.view.status(image_id) == "done"
        self.view.set_status(image_id, "in progress" if done else "done")
        self.note_change()

    # --- export -----------------------------------------------------------------------------

    def export_dialog(self) -> None:
        from samdesk.ui.export_dialog import ExportDialog

        if not self.is_open:
            self.window.messages.show_message("Open a project before exporting.", "info")
            return
        dialog = ExportDialog(self, self.window)
        dialog.exec()
        dialog.deleteLater()

    def export(self, fmt: str, out: Path, **options: object) -> str:
        """Export and return a summary for the user (raises SamdeskError on failure)."""
        report = self.view.export(fmt, out, **options)
        return format_report(report)

    def _error(self, text: str) -> None:
        self.window.messages.show_message(text, "error")


def format_report(report: ExportReport) -> str:
    """A few lines for the user from an export report: what was written, then anything
    dropped or changed (with the reason), then the files."""
    files = "\n".join(f"  {path}" for path in report.files[:20])
    more = len(report.files) - 20
    if more > 0:
        files += f"\n  … and {more} more"
    return f"{report.summary()}\nFiles:\n{files}" if files else report.summary()


def _add_image(view: DocumentView, path: Path) -> int:
    """Add an image to the project. One over the pixel cap is added too (its header is read
    with the cap lifted: no pixel is decoded); opening it then asks the user (ADR 0066)."""
    try:
        return view.add_image(path)
    except TooManyPixelsError as err:
        info = probe_image(path, max_pixels=err.pixels)
        return view.add_image(path, size=(info.width, info.height), sha256=file_sha256(path))
