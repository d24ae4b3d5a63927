"""The main window: canvas in the middle, files on the left, labels / object / instances on the
right, a message bar above the canvas and timings in the status bar.

The window wires the parts together; the logic lives in :mod:`samdesk.ui.annotator` (prompts,
overlays, undo), :mod:`samdesk.ui.project` (open, save, autosave, recovery, export) and
:mod:`samdesk.ui.models` (model menu, loading, the model manager).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from samdesk import __version__
from samdesk.ui.actions import SHORTCUTS_HELP, build_actions
from samdesk.ui.annotator import Annotator
from samdesk.ui.bridge import WorkerBridge
from samdesk.ui.canvas import ImageCanvas, Tool
from samdesk.ui.dialogs import Dialogs
from samdesk.ui.errors_hook import ErrorReporter
from samdesk.ui.messages import MessageBar
from samdesk.ui.models import ModelController
from samdesk.ui.panels import FileList, InstancePanel, LabelPanel, ObjectPanel
from samdesk.ui.polygon_edit import PolygonEditor
from samdesk.ui.project import ProjectController
from samdesk.ui.sample import sample_path
from samdesk.ui.settings import Settings
from samdesk.ui.start_view import StartView

log = logging.getLogger(__name__)

#: How many images after the current one are encoded in the background.
PREFETCH_AHEAD = 2
#: Seconds the worker gets to stop when the window closes.
CLOSE_TIMEOUT = 2.0

WorkerFactory = Callable[[Callable[[object], None]], Any]


def real_worker(on_event: Callable[[object], None], disk_cache: Any) -> Any:
    """The inference worker: Classic backend until a model loads, its loops in QThreads,
    embeddings cached in memory and in ``disk_cache``."""
    from samdesk.engine.cache import MemoryCache
    from samdesk.engine.worker import InferenceWorker
    from samdesk.ui.qt_threads import qt_thread_factory

    return InferenceWorker(
        on_event,
        memory_cache=MemoryCache(),
        disk_cache=disk_cache,
        thread_factory=qt_thread_factory,
    )


def _megapixels(pixels: int) -> str:
    """400_000_000 -> "400", 40_000 -> "0.04"."""
    mp = pixels / 1e6
    return f"{mp:,.0f}" if mp >= 10 else f"{mp:.2g}"


def huge_image_memory(width: int, height: int) -> int:
    """Rough bytes needed to open an image: RGB pixels (3 per pixel), their display tiles
    (4) and two full-size masks (1 each: the object being edited and an accepted one)."""
    return int(width) * int(height) * (3 + 4 + 2)


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: Settings,
        *,
        worker_factory: WorkerFactory | None = None,
        dialogs: Dialogs | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("samdesk")
        self.setObjectName("samdesk-main")
        self.setAcceptDrops(True)
        self.settings = settings
        self.dialogs = dialogs or Dialogs(self)
        self.messages = MessageBar(self)
        self.reporter = ErrorReporter(lambda text: self.messages.show_message(text, "error"), self)

        self.canvas = ImageCanvas(self)
        self.canvas.set_brush_radius(settings.brush_radius())
        self.start_view = StartView(self)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.start_view)
        self.stack.addWidget(self.canvas)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.messages)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.project = ProjectController(self)
        self.annotator = Annotator(self.project.view, self.canvas, self)
        self.files = FileList(self)
        self.labels_panel = LabelPanel(self)
        self.object_panel = ObjectPanel(self)
        self.instances_panel = InstancePanel(self)
        self.polygon_editor = PolygonEditor(self.canvas, self.annotator)
        self._dock("Images", self.files, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("Labels", self.labels_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Object", self.object_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock(
            "Objects on this image", self.instances_panel, Qt.DockWidgetArea.RightDockWidgetArea
        )

        self.status_model = QLabel(self)
        self.status_encoder = QLabel(self)
        self.status_click = QLabel(self)
        self.status_cursor = QLabel(self)
        self.status_zoom = QLabel(self)
        for widget in (self.status_cursor, self.status_zoom):
            self.statusBar().addWidget(widget)
        for widget in (self.status_click, self.status_encoder, self.status_model):
            self.statusBar().addPermanentWidget(widget)

        self.bridge = WorkerBridge(self)
        self.disk_cache: Any = None
        if worker_factory is None:
            from samdesk.engine.cache import DiskCache

            self.disk_cache = DiskCache()
            self.worker = real_worker(self.bridge.on_event, self.disk_cache)
        else:
            self.worker = worker_factory(self.bridge.on_event)
        self._cache_warned = False
        #: images the user chose to open over the pixel cap: file path -> its pixel count (a
        #: path, not an image id: ids restart in every project)
        self._lifted_caps: dict[str, int] = {}
        self._region_auto = False  # region mode was turned on by a huge image, not the user
        self.annotator.worker = self.worker
        self.bridge.event.connect(self.annotator.handle_event)
        self.models = ModelController(self)
        self.actions = build_actions(self)
        self.models.build_menu(self.actions.model_menu)
        for view_action in (d.toggleViewAction() for d in self.findChildren(QDockWidget)):
            self.view_menu.addAction(view_action)
        self._connect()
        self.worker.start()
        self._closed = False

        self._restore_layout()
        for warning in settings.warnings:
            self.messages.show_message(warning, "warning")
        self.refresh_recent()
        self.update_labels()
        self.update_title()
        self.stack.setCurrentWidget(self.start_view)

    # --- construction helpers ---------------------------------------------------------------

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        a = self.annotator
        a.object_changed.connect(self._object_changed)
        a.instances_changed.connect(self._instances_changed)
        a.instances_changed.connect(self.project.note_change)
        a.image_shown.connect(self._image_shown)
        a.image_failed.connect(self._image_failed)
        a.image_too_large.connect(self._image_too_large)
        a.embedding_ready.connect(self._embedding_ready)
        a.prompt_answered.connect(self._prompt_answered)
        a.prefetched.connect(self._prefetched)
        a.message.connect(lambda text, kind: self.messages.show_message(text, kind))
        a.worker_error.connect(self.reporter.report_message)
        a.backend_ready.connect(self.models.on_backend_ready)
        a.backend_failed.connect(self.models.on_backend_failed)
        self.files.image_activated.connect(self.show_image)
        self.labels_panel.label_chosen.connect(self.set_label)
        self.labels_panel.label_created.connect(self.create_label)
        self.labels_panel.search.returnPressed.connect(self.canvas.setFocus)
        self.instances_panel.selected.connect(self.select_instance)
        self.instances_panel.visibility_changed.connect(a.set_visible)
        self.instances_panel.delete_requested.connect(a.delete_instance)
        self.instances_panel.relabel_requested.connect(a.relabel)
        self.object_panel.candidate_chosen.connect(self.choose_candidate)
        self.object_panel.accept_requested.connect(self.accept_object)
        self.object_panel.clear_requested.connect(self.clear_object)
        self.canvas.cursor_moved.connect(self._cursor_moved)
        self.canvas.zoom_changed.connect(lambda z: self.status_zoom.setText(f"{z * 100:.0f}%"))
        self.canvas.files_dropped.connect(self.open_paths)
        sv = self.start_view
        sv.open_image.connect(self.choose_image)
        sv.open_folder.connect(self.choose_folder)
        sv.open_project.connect(self.choose_project)
        sv.open_sample.connect(self.open_sample)
        sv.open_recent.connect(lambda p: self.open_paths([p]))
        self.project.document_changed.connect(self._document_changed)

    def _restore_layout(self) -> None:
        geometry, state = self.settings.window_geometry(), self.settings.window_state()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1400, 900)
        if state is not None:
            self.restoreState(state)

    # --- opening ----------------------------------------------------------------------------

    def open_paths(self, paths: list[str]) -> bool:
        """Open images, a folder or a project (command line, drag and drop, recent files)."""
        if not paths:
            return False
        opened = self.project.open_paths([Path(p) for p in paths])
        if opened:
            self.after_project_opened()
        return opened

    def after_project_opened(self) -> None:
        self.annotator.forget_images()
        self.polygon_editor.stop()
        self.update_file_list()
        self.update_labels()
        self.refresh_recent()
        self.update_title()
        first = self.project.initial_image
        if first is None and self.files.ids():
            first = self.files.ids()[0]
        self.stack.setCurrentWidget(self.canvas)
        if first is not None:
            self.show_image(first)
        else:
            self.canvas.set_message("This folder has no images samdesk can open.")

    def choose_image(self) -> None:
        path = self.dialogs.open_image(self.project.start_folder())
        if path is not None:
            self.open_paths([str(path)])

    def choose_folder(self) -> None:
        path = self.dialogs.open_folder(self.project.start_folder())
        if path is not None:
            self.open_paths([str(path)])

    def choose_project(self) -> None:
        path = self.dialogs.open_project(self.project.start_folder())
        if path is not None:
            self.open_paths([str(path)])

    def open_sample(self) -> None:
        self.open_paths([str(sample_path())])

    def close_project(self) -> None:
        if not self.project.confirm_discard():
            return
        self.project.close()
        self.annotator.forget_images()
        self.polygon_editor.stop()
        self.files.set_images([])
        self.instances_panel.set_instances([], [], None)
        self.stack.setCurrentWidget(self.start_view)
        self.refresh_recent()
        self.update_title()

    def refresh_recent(self) -> None:
        recent = self.settings.recent()
        self.start_view.set_recent(recent)
        menu = self.actions.recent_menu
        menu.clear()
        for path in recent:
            menu.addAction(path, lambda p=path: self.open_paths([p]))
        menu.setEnabled(bool(recent))

    # --- images -----------------------------------------------------------------------------

    def show_image(self, image_id: int | str) -> None:
        if image_id in self.files.failed and isinstance(image_id, str):
            self.files.select(image_id)  # a file that could not be added: just say why
            self.annotator.close_image()
            self.instances_panel.set_instances([], [], None)
            self.canvas.set_message(f"Cannot open this image.\n\n{self.files.failed[image_id]}")
            return
        record = self.project.view.image(image_id)
        if record is None:
            return
        self.polygon_editor.stop()
        self.files.select(image_id)
        self.instances_panel.set_instances([], [], None)
        path = self.project.view.image_path(image_id)
        self.annotator.show_image(image_id, path, max_pixels=self._lifted_caps.get(str(path)))
        self.update_title()

    def next_image(self) -> None:
        target = self.files.neighbour(self.annotator.current_id, +1)
        if target is not None:
            self.show_image(target)

    def previous_image(self) -> None:
        target = self.files.neighbour(self.annotator.current_id, -1)
        if target is not None:
            self.show_image(target)

    def _prefetch_next(self) -> None:
        """Encode the next PREFETCH_AHEAD openable images in the background."""
        items = []
        image_id = self.annotator.current_id
        while len(items) < PREFETCH_AHEAD:
            image_id = self.files.neighbour(image_id, +1)
            if image_id is None:
                break
            if image_id in self.files.failed or isinstance(image_id, str):
                continue
            items.append((str(image_id), self.project.view.image_path(image_id)))
        self.worker.prefetch(items)

    def _image_shown(self, image_id: int) -> None:
        self._instances_changed(image_id)
        self._prefetch_next()
        self._auto_region_mode()

    # --- huge images (ADR 0066) -------------------------------------------------------------

    def ask_open_huge(self, width: int, height: int, pixels: int, limit: int) -> bool:
        """Ask whether to open an image over the pixel cap; True for "Open anyway"."""
        needed = huge_image_memory(width, height)
        text = (
            f"This image is {width:,} x {height:,} pixels ({_megapixels(pixels)} MP), more than "
            f"the {_megapixels(limit)} MP samdesk opens without asking.\n\n"
            f"Opening it needs roughly {needed / 2**30:,.1f} GB of memory (the RGB pixels, "
            "their display tiles and the masks being edited). Segmentation runs on the part "
            "in view (View > Segment in the visible region).\n\n"
            "Open it anyway?"
        )
        answer = self.dialogs.ask("Very large image", text, ["Open anyway", "Cancel"], "Cancel")
        return answer == "Open anyway"

    def _image_too_large(self, image_id: int | str, event: Any) -> None:
        path = self.annotator.current_path
        if path is None or image_id != self.annotator.current_image:
            return
        if self.ask_open_huge(event.width, event.height, event.pixels, event.limit):
            if image_id != self.annotator.current_image:
                return  # another image was chosen while the question was open
            self._lifted_caps[str(path)] = int(event.pixels)
            self.annotator.show_image(image_id, path, max_pixels=int(event.pixels))
        elif image_id == self.annotator.current_image:
            self.annotator.fail_current(event.message)

    def region_mode_triggered(self) -> None:
        """View > Segment in the visible region (R) was toggled by the user."""
        self._region_auto = False
        self.set_region_mode(self.actions["region_mode"].isChecked())

    def set_region_mode(self, on: bool, reason: str = "") -> None:
        self.actions["region_mode"].setChecked(on)
        self.annotator.region_mode = on
        if on:
            text = (
                reason or "Region mode: new objects are segmented in the part of the image in view"
            )
        else:
            text = "Region mode off: objects are segmented in the whole image"
        self.statusBar().showMessage(f"{text} (R toggles).", 8000)

    def _auto_region_mode(self) -> None:
        """Region mode goes on by itself for an image whose long side exceeds
        AUTO_REGION_SIDE (and off again for a smaller one, unless the user chose it)."""
        from samdesk.engine.region import AUTO_REGION_SIDE

        size = self.canvas.image_size
        if size is None:
            return
        huge = max(size) > AUTO_REGION_SIDE
        if huge and not self.annotator.region_mode:
            self._region_auto = True
            self.set_region_mode(
                True,
                f"Large image ({size[0]:,} x {size[1]:,}): segmenting in the part in view, "
                "zoom in on small objects",
            )
        elif not huge and self._region_auto and self.annotator.region_mode:
            self._region_auto = False
            self.set_region_mode(False)

    def _image_failed(self, image_id: int, message: str) -> None:
        self.files.mark_failed(image_id, message)
        self.messages.show_message(message, "error")
        self._prefetch_next()

    def _check_cache(self) -> None:
        """The disk cache went read-only or full: say so once (embeddings stay in memory)."""
        warning = getattr(self.disk_cache, "warning", None)
        if warning and not self._cache_warned:
            self._cache_warned = True
            self.messages.show_message(warning, "warning")

    def _embedding_ready(self, image_id: int, seconds: float, source: str) -> None:
        self._check_cache()
        where = {"computed": "", "memory": " (cached)", "disk": " (from disk cache)"}.get(
            source, f" ({source})"
        )
        self.status_encoder.setText(f"Encoder: {seconds:.2f} s{where}")

    def _prefetched(self, image_id: int, state: str, _seconds: float) -> None:
        self.files.mark_prefetched(image_id, state != "failed")
        self._check_cache()

    def _prompt_answered(self, latency: float, decoder: float) -> None:
        self.status_click.setText(f"Click: {latency * 1000:.0f} ms")
        self.status_click.setToolTip(f"Decoder {decoder * 1000:.0f} ms, the rest is display")

    def toggle_done(self) -> None:
        image_id = self.annotator.current_id
        if image_id is None:
            return
        self.project.toggle_done(image_id)

    # --- labels, objects, instances ---------------------------------------------------------

    def update_labels(self) -> None:
        labels = self.project.view.labels(self.settings.labels())
        current = self.annotator.label
        if current not in [name for name, _ in labels] and labels:
            current = labels[0][0]
        self.labels_panel.set_labels(labels, current)
        self.set_label(current)

    def set_label(self, label: str) -> None:
        self.annotator.set_label(label)
        self.instances_panel.current_label = label

    def create_label(self, label: str) -> None:
        self.project.view.ensure_label(label)
        labels = self.settings.labels()
        if label not in labels:
            self.settings.set_labels([*labels, label])
        self.annotator.label = label
        self.update_labels()
        self.labels_panel.choose(label)

    def new_label(self) -> None:
        text = self.dialogs.text("New label", "Name of the new label:")
        if text and text.strip():
            self.create_label(" ".join(text.split()))

    def choose_label_index(self, index: int) -> None:
        self.labels_panel.choose_index(index)

    def accept_object(self) -> None:
        if self.labels_panel.typing:  # Enter in the label search box
            self.labels_panel.commit()
            self.canvas.setFocus()  # keys 1-9, D, A ... are shortcuts again
            return
        if self.annotator.accept() is not None:
            self.project.mark_in_progress(self.annotator.current_id)

    def clear_object(self) -> None:
        if self.labels_panel.typing:  # Esc in the label search box leaves it
            self.labels_panel.search.clear()
            self.canvas.setFocus()
            return
        self.annotator.clear_object()

    def choose_candidate(self, index: int) -> None:
        session = self.annotator.session
        if session is None or session.state.candidates is None:
            return
        while session.state.chosen != index and self.annotator.cycle_candidate():
            pass

    def select_instance(self, instance_id: int | None) -> None:
        self.annotator.select_instance(instance_id)
        if self.polygon_editor.active:
            self.polygon_editor.start(instance_id) if instance_id else self.polygon_editor.stop()

    def delete_selected(self) -> None:
        iid = self.instances_panel.current_id()
        if iid is not None:
            self.annotator.delete_instance(iid)

    def relabel_selected(self) -> None:
        iid = self.instances_panel.current_id()
        if iid is not None:
            self.annotator.relabel(iid, self.annotator.label)

    def toggle_polygon_edit(self) -> None:
        iid = self.instances_panel.current_id()
        if self.polygon_editor.active or iid is None:
            self.polygon_editor.stop()
            if iid is None:
                self.messages.show_message(
                    "Select an object in the list first, then press G to edit its polygon.",
                    "info",
                )
        else:
            self.polygon_editor.start(iid)
        self.actions["polygon"].setChecked(self.polygon_editor.active)

    def set_tool(self, name: str) -> None:
        tool = Tool(name)
        self.canvas.set_tool(tool)
        self.actions[f"tool_{name}"].setChecked(True)

    def resize_brush(self, factor: float) -> None:
        self.canvas.set_brush_radius(self.canvas.brush_radius * factor)
        self.settings.set_brush_radius(self.canvas.brush_radius)
        self.statusBar().showMessage(f"Brush radius {self.canvas.brush_radius:.0f} px", 1500)

    def _object_changed(self) -> None:
        session = self.annotator.session
        if session is None:
            self.object_panel.show_state(0, None, None, 0, False)
            return
        state = session.state
        scores = None if state.candidates is None else [float(s) for s in state.candidates.scores]
        prompts = len(state.points) + (state.box is not None)
        self.object_panel.show_state(prompts, scores, state.chosen, len(state.edits), state.waiting)

    def _instances_changed(self, image_id: int) -> None:
        view = self.project.view
        count = len(view.instances_of(image_id))
        self.files.update_image(image_id, status=view.status(image_id), count=count)
        if image_id != self.annotator.current_id:
            return
        rows = [
            (r.id, r.label, view.color_of(r.label), r.score, r.id not in self.annotator.hidden)
            for r in view.instances_of(image_id)
        ]
        labels = [name for name, _ in view.labels(self.settings.labels())]
        selected = self.annotator.selected_instance
        if selected not in [r[0] for r in rows]:
            selected = None
        self.instances_panel.set_instances(rows, labels, selected)
        if self.polygon_editor.active:
            self.polygon_editor.refresh()

    def _document_changed(self) -> None:
        self.update_title()
        image_id = self.annotator.current_id
        if image_id is not None:
            self.files.update_image(image_id, status=self.project.view.status(image_id))

    def update_file_list(self) -> None:
        view = self.project.view
        self.files.set_images(
            [
                (
                    image_id,
                    view.image_path(image_id).name,
                    view.status(image_id),
                    len(view.instances_of(image_id)),
                )
                for image_id in view.image_ids()
            ]
        )
        for path, message in self.project.unreadable:
            self.files.add_unreadable(f"unreadable:{path}", path.name, message)
            self.messages.show_message(message, "error")

    def update_title(self) -> None:
        name = self.project.display_name()
        dirty = "*" if self.project.has_unsaved_changes() else ""
        self.setWindowTitle(f"{dirty}{name} — samdesk" if name else "samdesk")

    def _cursor_moved(self, x: int, y: int) -> None:
        self.status_cursor.setText("" if x < 0 else f"x {x}, y {y}")

    # --- saving, export, models -------------------------------------------------------------

    def save(self) -> bool:
        ok = self.project.save()
        self.update_title()
        return ok

    def save_as(self) -> bool:
        ok = self.project.save_as()
        self.update_title()
        return ok

    def export_dialog(self) -> None:
        self.project.export_dialog()

    def manage_models(self) -> None:
        self.models.open_manager()

    def import_model(self) -> None:
        self.models.import_file()

    def show_shortcuts(self) -> None:
        self.dialogs.inform("Keyboard shortcuts", SHORTCUTS_HELP)

    def show_about(self) -> None:
        self.dialogs.inform(
            "About samdesk",
            f"samdesk {__version__}\nDesktop image annotation with Segment Anything.\n"
            "Apache-2.0. Everything runs on this computer.",
        )

    # --- drag and drop, closing -------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            QTimer.singleShot(0, lambda: self.open_paths(paths))

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._closed and not self.project.confirm_discard():
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def terminate(self) -> None:
        """Quit without asking (a signal from the terminal): autosave, stop, close."""
        self.project.autosave()
        self.shutdown()
        self.close()

    def shutdown(self) -> bool:
        """Stop the worker (at most CLOSE_TIMEOUT s), save the layout; True if threads ended."""
        if self._closed:
            return True
        self._closed = True
        self.project.shutdown()
        self.annotator.shutdown()
        self.bridge.detach()
        ended = bool(self.worker.close(CLOSE_TIMEOUT))
        if not ended:
            log.warning("the inference worker did not stop within %.1f s", CLOSE_TIMEOUT)
        self.settings.set_window_layout(
            QByteArray(self.saveGeometry()), QByteArray(self.saveState())
        )
        self.settings.sync()
        return ended
