"""The annotator: turns what the user does on the canvas into decoder requests, overlays,
Document changes and undoable commands.

It owns the per-image sessions (the object being segmented + an undo stack per image, kept for
the whole session) and talks to the inference worker only through non-blocking calls. Worker
events arrive through :meth:`handle_event` in the GUI thread; any event whose ImageRef is not
the current one — another image, or the same image before a model change — is dropped, and a
prompt result whose sequence number is not the latest request is dropped as superseded. So a
mask from a previous image can never be drawn, and the mouse never waits for inference.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoGroup, QUndoStack

from samdesk.engine.region import Region
from samdesk.engine.worker import (
    BackendFailed,
    BackendReady,
    EmbeddingReady,
    EncodeProgress,
    ImageFailed,
    ImageLoaded,
    ImageRef,
    PrefetchUpdate,
    Prompt,
    PromptResult,
    WorkerError,
)
from samdesk.ui.canvas import ImageCanvas
from samdesk.ui.docbridge import DocumentView
from samdesk.ui.history import (
    AcceptCommand,
    DeleteInstanceCommand,
    InstanceMaskCommand,
    RelabelCommand,
    StateCommand,
)
from samdesk.ui.masks import MaskDiff, bbox, stroke_mask_region
from samdesk.ui.session import Candidates, ObjectState

log = logging.getLogger(__name__)

#: The candidates not shown are packed this long after an answer, once it is on screen.
PACK_DELAY_MS = 200


@dataclass
class ImageSession:
    """One image's annotation state for this run of the app."""

    image_id: int
    shape: tuple[int, int]  # (H, W)
    stack: QUndoStack
    state: ObjectState = field(default_factory=ObjectState)
    pending_seq: int | None = None
    pending_state: ObjectState | None = None


class Annotator(QObject):
    """Connects canvas, worker, Document and undo history for the image being shown."""

    #: the object being segmented changed (prompts, candidates, mask)
    object_changed = Signal()
    #: instances of this image were added, removed, relabelled or edited
    instances_changed = Signal(object)
    #: the image is shown (image_id)
    image_shown = Signal(object)
    #: the image could not be opened (image_id, message)
    image_failed = Signal(object, str)
    #: the image is over the pixel cap (image_id, the ImageFailed event with its size): the
    #: window asks whether to open it anyway (:meth:`show_image` with max_pixels) or calls
    #: :meth:`fail_current` with the message
    image_too_large = Signal(object, object)
    #: the embedding of the shown image is ready (image_id, seconds, source)
    embedding_ready = Signal(object, float, str)
    #: click -> result latency of the last prompt (seconds, decoder seconds)
    prompt_answered = Signal(float, float)
    #: a background encode finished (image_id, state, seconds)
    prefetched = Signal(object, str, float)
    #: the worker switched models (name, device, precision) or failed to (message)
    backend_ready = Signal(str, str, str)
    backend_failed = Signal(str)
    #: something to tell the user (text, kind: "info" | "warning" | "error")
    message = Signal(str, str)
    #: the worker reported an error in inference (shown once per distinct message)
    worker_error = Signal(str)

    def __init__(self, docs: DocumentView, canvas: ImageCanvas, parent: QObject | None = None):
        super().__init__(parent)
        self.docs = docs
        self.canvas = canvas
        self.worker: Any = None
        self.undo_group = QUndoGroup(self)
        self.sessions: dict[int, ImageSession] = {}
        self.current_ref: ImageRef | None = None
        self.current_image: int | None = None
        self.current_path: Path | None = None
        self.loaded = False  # the current image is shown
        self.ready = False  # its embedding is ready
        self.current_max_pixels: int | None = None  # the pixel cap the user lifted for it
        #: region mode (ADR 0066): a new object is segmented in the crop of the image in view
        self.region_mode = False
        self.label = "object"
        self.selected_instance: int | None = None
        self.hidden: set[int] = set()
        self._generation = 0
        self._seq = 0
        self._to_pack: list[Candidates] = []
        self._pack_timer = QTimer(self)
        self._pack_timer.setObjectName("pack-candidates")
        self._pack_timer.setSingleShot(True)
        self._pack_timer.setInterval(PACK_DELAY_MS)
        self._pack_timer.timeout.connect(self._pack_pending)
        self._sent_at: dict[int, float] = {}

        canvas.point_clicked.connect(self.add_point)
        canvas.box_drawn.connect(self.add_box)
        canvas.stroke_finished.connect(self.stroke)

    # --- images -------------------------------------------------------------------------------

    @property
    def current_id(self) -> int | None:
        return self.current_image if self.current_ref is not None else None

    @property
    def session(self) -> ImageSession | None:
        image_id = self.current_id
        return self.sessions.get(image_id) if image_id is not None and self.loaded else None

    def show_image(self, image_id: int, path: Path, *, max_pixels: int | None = None) -> None:
        """Open ``path`` on the worker; the canvas shows it when the worker has decoded it.
        ``max_pixels``: the pixel cap for this image only (the user chose to open a huge one)."""
        previous = self.session
        if previous is not None:
            previous.state.drop_mask()
            previous.pending_seq = None
        self._generation += 1
        self.current_ref = ImageRef(str(image_id), self._generation)
        self.current_image = image_id
        self.current_path = Path(path)
        self.current_max_pixels = max_pixels
        self.loaded = False
        self.ready = False
        self.selected_instance = None
        self.canvas.set_image(None)
        self.canvas.set_message(None)
        self.canvas.busy.show_progress(f"Opening {Path(path).name} …")
        self.undo_group.setActiveStack(None)
        if self.worker is not None:
            self.worker.open_image(self.current_ref, Path(path), max_pixels=max_pixels)

    def model_switched(self) -> None:
        """The worker now uses another model: results made with the old one are stale, so the
        generation changes and the shown image is encoded again (prompts are asked again)."""
        if self.current_ref is None or self.current_path is None or self.worker is None:
            return
        self._generation += 1
        self.current_ref = ImageRef(str(self.current_image), self._generation)
        self.ready = False
        session = self.session
        if session is not None:
            session.pending_seq = None
            session.pending_state = None
        self.canvas.busy.show_progress("Encoding the image for the new model …")
        self.worker.open_image(
            self.current_ref, self.current_path, max_pixels=self.current_max_pixels
        )

    def close_image(self) -> None:
        self.current_ref = None
        self.current_path = None
        self.loaded = False
        self.ready = False
        self.canvas.set_image(None)
        self.canvas.busy.hide()
        self.undo_group.setActiveStack(None)

    def forget_images(self) -> None:
        """Another project was opened: drop every session and its history."""
        self.close_image()
        for session in self.sessions.values():
            self.undo_group.removeStack(session.stack)
            session.stack.deleteLater()
        self.sessions.clear()
        self.hidden.clear()

    # --- worker events ------------------------------------------------------------------------

    def handle_event(self, event: object) -> None:
        """Apply one worker event (GUI thread). Events for anything but the current ref drop."""
        if isinstance(event, PrefetchUpdate):
            self.prefetched.emit(_as_id(event.image_id), event.state, event.seconds)
            return
        if isinstance(event, BackendReady):
            self.backend_ready.emit(event.name, event.device, event.precision)
            return
        if isinstance(event, BackendFailed):
            self.backend_failed.emit(event.message)
            return
        ref = getattr(event, "ref", None)
        if isinstance(event, WorkerError):
            if ref is None or ref == self.current_ref:
                self.worker_error.emit(event.message)
                if ref is not None:
                    self.canvas.busy.hide()
                    self._abandon_pending()
            return
        if ref is None or ref != self.current_ref:
            return  # stale: another image or another generation
        if isinstance(event, ImageLoaded):
            self._on_loaded(event)
        elif isinstance(event, EncodeProgress):
            percent = 100 * event.done // max(1, event.total)
            self.canvas.busy.show_progress(f"Encoding image … {percent}%", event.done, event.total)
        elif isinstance(event, EmbeddingReady):
            self.ready = True
            self.canvas.busy.hide()
            source = event.source if event.region is None else f"region, {event.source}"
            self.embedding_ready.emit(self.current_image, event.seconds, source)
        elif isinstance(event, PromptResult):
            self._on_result(event)
        elif isinstance(event, ImageFailed):
            if event.pixels is not None and self.current_max_pixels is None:
                self.canvas.busy.hide()
                self.image_too_large.emit(self.current_image, event)
                return
            self.fail_current(event.message)

    def fail_current(self, message: str) -> None:
        """The current image cannot be shown: say why on the canvas and to the window."""
        self.loaded = False
        self.canvas.busy.hide()
        self.canvas.set_image(None)
        self.canvas.set_message(f"Cannot open this image.\n\n{message}")
        self.image_failed.emit(self.current_image, message)

    def _on_loaded(self, event: ImageLoaded) -> None:
        image = event.image
        image_id = self.current_image
        if image_id is None:
            return
        shape = (int(image.height), int(image.width))
        record = self.docs.image(image_id)
        if record is not None and (record.height, record.width) != shape:
            # fault 16: the file was replaced by another image; its annotations would not line up
            message = (
                f"{image.path.name} is now {image.width} x {image.height} pixels, but this "
                f"project annotated it at {record.width} x {record.height}. Restore the original "
                "file (annotations are kept and were not changed)."
            )
            self.loaded = False
            self.canvas.busy.hide()
            self.canvas.set_image(None)
            self.canvas.set_message(f"Cannot annotate this image.\n\n{message}")
            self.image_failed.emit(image_id, message)
            return
        if record is not None and record.sha256 and record.sha256 != image.content_hash:
            self.message.emit(
                f"{image.path.name} has the same size but other content than when it was "
                "annotated. Check that the objects still fit before going on.",
                "warning",
            )
        session = self.sessions.get(image_id)
        reloaded = self.loaded and session is not None and session.shape == shape
        if session is None or session.shape != shape:
            stack = QUndoStack(self.undo_group)
            session = ImageSession(image_id, shape, stack)
            self.sessions[image_id] = session
        if not reloaded:  # a reload (new model) keeps the view as it is
            self.canvas.set_image(image.rgb)
        self.loaded = True
        self.undo_group.setActiveStack(session.stack)
        self.canvas.busy.show_progress("Encoding image …")
        if not reloaded:
            self.refresh_instances()
        # an unanswered prompt from an earlier visit is asked again (it waits for the embedding)
        self.set_object_state(image_id, session.state)
        self.image_shown.emit(image_id)

    def _on_result(self, event: PromptResult) -> None:
        session = self.session
        if session is None or event.seq != session.pending_seq or session.pending_state is None:
            return  # superseded by a newer request, or undone meanwhile
        waiting = session.pending_state
        if event.region != waiting.region:
            return  # for another region (never expected: seq changes with every request)
        sent = self._sent_at.pop(event.seq, None)
        best = int(np.argmax(event.scores)) if len(event.scores) else 0
        candidates = Candidates.from_result(
            event.masks,
            event.scores,
            event.low_res_logits,
            pack=best,
            region=event.region,
            shape=session.shape,
        )
        self._to_pack.append(candidates)  # the others, once the overlay is painted
        self._pack_timer.start()
        resolved = waiting.resolved(candidates)
        if event.region is None:
            resolved.set_mask_cache(np.asarray(event.masks[resolved.chosen], dtype=bool))
        else:
            resolved.set_mask_cache(candidates.mask(resolved.chosen))
        waiting.remember_resolution(resolved)
        waiting.drop_mask()  # it shared the previous answer's full-size mask while waiting
        session.pending_seq = None
        session.pending_state = None
        if session.state is waiting:
            session.state = resolved
            self._show_object(session)
        if sent is not None:
            self.prompt_answered.emit(time.perf_counter() - sent, event.seconds)

    def _pack_pending(self) -> None:
        pending, self._to_pack = self._to_pack, []
        for candidates in pending:
            candidates.pack_all()

    def shutdown(self) -> None:
        """Stop the deferred work (the window is closing)."""
        self._pack_timer.stop()
        self._pack_pending()

    def _abandon_pending(self) -> None:
        """The worker failed on the pending prompt: stop showing "segmenting"."""
        session = self.session
        if session is None or session.pending_state is None:
            return
        if session.state is session.pending_state:
            session.state = replace(session.state, waiting=False, _cache={})
        session.pending_seq = None
        session.pending_state = None
        self._show_object(session)

    # --- the object being segmented -------------------------------------------------------

    def set_object_state(self, image_id: int, state: ObjectState) -> None:
        """Make ``state`` current (undo/redo and new actions all come through here)."""
        session = self.sessions.get(image_id)
        if session is None:
            return
        if state.waiting and state.resolution is not None:
            state = state.resolution
        if session.state is not state:
            session.state.drop_mask()
        asked = session.pending_seq is not None  # a decoder answer was awaited
        session.state = state
        session.pending_seq = None
        session.pending_state = None
        if state.waiting and session is self.session:
            self._request(session, state)
        elif asked and session is self.session and self.worker is not None and self.current_ref:
            # nothing waits for an answer now: stop a queued prompt or a region encode for one
            self.worker.cancel_prompts(self.current_ref)
        self._show_object(session)

    def _request(self, session: ImageSession, state: ObjectState) -> None:
        request = state.request(session.shape)
        if request is None or self.worker is None or self.current_ref is None:
            return
        self._seq += 1
        session.pending_seq = self._seq
        session.pending_state = state
        self._sent_at = {self._seq: time.perf_counter()}
        prompt = Prompt(
            point_coords=request.point_coords,
            point_labels=request.point_labels,
            box=request.box,
            mask_input=request.mask_input,
            multimask_output=request.multimask_output,
            region=request.region,
        )
        self.worker.submit_prompt(self.current_ref, self._seq, prompt)

    def _show_object(self, session: ImageSession) -> None:
        if session is not self.session:
            return
        state = session.state
        mask = None if state.candidates is None and not state.edits else state.mask(session.shape)
        box = None  # the packed candidate knows its bounding box: no second pass over the mask
        if state.candidates is not None and not state.edits:
            box = state.candidates.packed(state.chosen).box
        self.canvas.set_object_mask(mask, self.docs.color_of(self.label), box)
        self.canvas.set_prompts(list(state.points), state.box)
        self.canvas.set_region(None if state.region is None else state.region.as_tuple())
        self.object_changed.emit()

    def _push_state(self, after: ObjectState, text: str) -> None:
        session = self.session
        if session is None:
            return
        session.stack.push(StateCommand(self, session.image_id, session.state, after, text))

    def add_point(self, x: int, y: int, positive: bool) -> None:
        session = self.session
        if session is None:
            return
        found = self._region_for(session, (x, y, x, y))
        if found is False:
            return
        kind = "positive" if positive else "negative"
        state = session.state.with_point(x, y, positive, found)
        self._push_state(state, f"Add {kind} point")

    def add_box(self, x0: int, y0: int, x1: int, y1: int) -> None:
        session = self.session
        if session is None:
            return
        found = self._region_for(session, (x0, y0, x1, y1))
        if found is False:
            return
        self._push_state(session.state.with_box((x0, y0, x1, y1), found), "Draw box")

    def region_in_view(self, include: tuple[int, int, int, int] | None = None) -> Region | None:
        """The region region mode would encode now: the crop under the view (ADR 0066)."""
        size = self.canvas.image_size
        if size is None:
            return None
        view = self.canvas.visible_rect()
        if include is not None:  # e.g. a mask painted before panning: widen the view to it
            vx0, vy0, vx1, vy1 = view
            ix0, iy0, ix1, iy1 = include
            view = (min(vx0, ix0), min(vy0, iy0), max(vx1, ix1 + 1), max(vy1, iy1 + 1))
        return Region.around(view, size, include=include)

    def _region_for(
        self, session: ImageSession, prompt_box: tuple[int, int, int, int]
    ) -> Region | bool | None:
        """The region for a new prompt covering the inclusive pixel box ``prompt_box``: the
        object's own once it has prompts (a prompt outside it is refused: False), else the
        crop under the view in region mode, else None (the whole image)."""
        state = session.state
        if state.has_prompts:
            region = state.region
            if region is not None and not region.contains_box(prompt_box):
                x0, y0, x1, y1 = region.as_tuple()
                self.message.emit(
                    f"That prompt is outside the region this object is segmented in "
                    f"(x {x0}-{x1 - 1}, y {y0}-{y1 - 1}). Accept (Enter) or clear (Esc) the "
                    "object first, then prompt in the new view.",
                    "info",
                )
                return False
            return region
        if not self.region_mode:
            return None
        painted = bbox(state.mask(session.shape)) if state.edits else None
        include = prompt_box
        if painted is not None:  # brushed before the first prompt: keep that mask in the region
            py0, px0, py1, px1 = painted
            x0, y0, x1, y1 = prompt_box
            include = (min(x0, px0), min(y0, py0), max(x1, px1 - 1), max(y1, py1 - 1))
        region = self.region_in_view(include)
        if region is None:
            return None
        if not region.contains_box(include):
            what = "That box is" if painted is None else "The painted mask and this prompt are"
            self.message.emit(
                f"{what} larger than a region can be ({region.width} x {region.height} "
                "pixels at most). Draw a smaller box or turn off View > Segment in the visible "
                "region.",
                "info",
            )
            return False
        return region

    def cycle_candidate(self) -> bool:
        """Tab: show the next of SAM's candidates for an ambiguous click."""
        session = self.session
        if session is None or session.state.candidates is None:
            return False
        count = len(session.state.candidates)
        if count < 2:
            return False
        nxt = (session.state.chosen + 1) % count
        self._push_state(session.state.with_choice(nxt), f"Choose candidate {nxt + 1}")
        return True

    def remove_last_prompt(self) -> bool:
        """Backspace: drop the last prompt and go back to the mask shown before it."""
        session = self.session
        if session is None:
            return False
        before = session.state.before_last_prompt()
        if before is None:
            return False
        self._push_state(before, "Remove last prompt")
        return True

    def clear_object(self) -> bool:
        """Esc: forget the object being segmented (undoable)."""
        session = self.session
        if session is None or session.state.is_empty:
            return False
        self._push_state(ObjectState(), "Clear object")
        return True

    def accept(self) -> int | None:
        """Enter: the current mask becomes an instance with the current label."""
        session = self.session
        if session is None:
            return None
        state = session.state
        if state.candidates is None and not state.edits:
            self.message.emit("Nothing to accept yet: click on an object first.", "info")
            return None
        if not state.mask(session.shape).any():
            self.message.emit("The mask is empty; nothing was accepted.", "info")
            return None
        command = AcceptCommand(self, session.image_id, state, session.shape, self.label)
        session.stack.push(command)
        return command.instance_id

    def stroke(self, points: list[tuple[float, float]], radius: float, erase: bool) -> None:
        """A brush (or eraser) stroke: edits the current object, else the selected instance,
        else starts a new object from the painted pixels."""
        session = self.session
        if session is None:
            return
        found = stroke_mask_region(session.shape, points, radius)
        if found is None:
            return
        (y0, x0, y1, x1), footprint = found
        verb = "Erase" if erase else "Brush"
        target = self.selected_instance if session.state.is_empty else None
        if target is not None and self.docs.instance(target) is not None:
            mask = self.docs.instance_mask(target)
            before = mask[y0:y1, x0:x1]
            after = before & ~footprint if erase else before | footprint
            diff = MaskDiff.from_crops(before, after, (y0, x0), session.shape)
            if not diff.empty:
                session.stack.push(InstanceMaskCommand(self, target, diff, f"{verb} instance"))
            return
        state = session.state
        if state.region is not None and state.has_prompts:
            clipped = _clip_to_region(state.region, (y0, x0, y1, x1), footprint)
            if clipped is None or clipped[0] != (y0, x0, y1, x1):
                self.message.emit(
                    "In region mode the brush paints only inside the region this object is "
                    "segmented in (dotted outline): SAM's next answer covers that region. "
                    "Accept (Enter) or clear (Esc) the object to paint elsewhere.",
                    "info",
                )
            if clipped is None:
                return
            (y0, x0, y1, x1), footprint = clipped
        mask = state.mask(session.shape)
        before = mask[y0:y1, x0:x1]
        after = before & ~footprint if erase else before | footprint
        diff = MaskDiff.from_crops(before, after, (y0, x0), session.shape)
        if diff.empty:
            return
        new_state = state.with_edit(diff)
        edited = mask.copy()
        edited[y0:y1, x0:x1] = after
        new_state.set_mask_cache(edited)
        self._push_state(new_state, f"{verb} stroke")

    # --- instances ------------------------------------------------------------------------

    def set_label(self, label: str) -> None:
        self.label = label
        session = self.session
        if session is not None:
            self._show_object(session)

    def delete_instance(self, instance_id: int) -> None:
        session = self.session
        record = self.docs.instance(instance_id)
        if session is None or record is None:
            return
        session.stack.push(DeleteInstanceCommand(self, instance_id, record.label))

    def relabel(self, instance_id: int, label: str) -> None:
        session = self.session
        record = self.docs.instance(instance_id)
        if session is None or record is None or record.label == label:
            return
        session.stack.push(RelabelCommand(self, instance_id, record.label, label))

    def edit_instance_by_mask(self, instance_id: int, new_mask: np.ndarray, text: str) -> None:
        """Replace an instance's mask (a vertex drag), undoably, as a sparse diff."""
        session = self.session
        if session is None or self.docs.instance(instance_id) is None:
            return
        diff = MaskDiff.between(self.docs.instance_mask(instance_id), new_mask)
        if not diff.empty:
            session.stack.push(InstanceMaskCommand(self, instance_id, diff, text))

    def set_visible(self, instance_id: int, visible: bool) -> None:
        if visible:
            self.hidden.discard(instance_id)
        else:
            self.hidden.add(instance_id)
        self.canvas.set_instance_visible(instance_id, visible)

    def select_instance(self, instance_id: int | None) -> None:
        previous, self.selected_instance = self.selected_instance, instance_id
        for iid in {previous, instance_id} - {None}:
            self._show_instance(iid)

    def refresh_instances(self) -> None:
        """Redraw every instance of the current image (after opening it or reloading)."""
        image_id = self.current_id
        for iid in self.canvas.instance_ids():
            self.canvas.remove_instance(iid)
        if image_id is None:
            return
        for record in self.docs.instances_of(image_id):
            self._show_instance(record.id)

    def _show_instance(self, instance_id: int) -> None:
        record = self.docs.instance(instance_id)
        if record is None or record.image_id != self.current_id or not self.loaded:
            self.canvas.remove_instance(instance_id)
            return
        color = self.docs.color_of(record.label)
        selected = instance_id == self.selected_instance
        visible = instance_id not in self.hidden
        found = self.docs.instance_crop(instance_id)
        crop, x0, y0 = found if found is not None else (None, 0, 0)
        self.canvas.set_instance(
            instance_id, crop, x0, y0, color, visible=visible, selected=selected
        )

    # --- history.Target: applying commands to the Document ----------------------------------

    def add_instance(self, image_id: int, mask: np.ndarray, label: str, extra: dict) -> int:
        instance_id = self.docs.add_instance(image_id, mask, label, extra)
        self._show_instance(instance_id)
        self.instances_changed.emit(image_id)
        return instance_id

    def restore_instance(self, record: Any) -> None:
        self.docs.restore_instance(record)
        self._show_instance(record.id)
        self.instances_changed.emit(record.image_id)

    def remove_instance(self, instance_id: int) -> Any:
        record = self.docs.remove_instance(instance_id)
        self.canvas.remove_instance(instance_id)
        if self.selected_instance == instance_id:
            self.selected_instance = None
        self.instances_changed.emit(record.image_id)
        return record

    def relabel_instance(self, instance_id: int, label: str) -> None:
        self.docs.relabel_instance(instance_id, label)
        self._show_instance(instance_id)
        record = self.docs.instance(instance_id)
        if record is not None:
            self.instances_changed.emit(record.image_id)

    def edit_instance_mask(self, instance_id: int, diff: MaskDiff) -> None:
        mask = np.array(self.docs.instance_mask(instance_id), dtype=bool)
        diff.apply(mask)
        self.docs.set_instance_mask(instance_id, mask)
        self._show_instance(instance_id)
        record = self.docs.instance(instance_id)
        if record is not None:
            self.instances_changed.emit(record.image_id)


def _as_id(image_id: str) -> int | str:
    """Image ids travel to the worker as text; the Document's are ints."""
    try:
        return int(image_id)
    except ValueError:
        return image_id


def _clip_to_region(
    region: Region, box: tuple[int, int, int, int], footprint: np.ndarray
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """A brush footprint (H, W bool at ``box`` = y0, x0, y1, x1, end-exclusive) cut to
    ``region``: the same objects when it lies inside, None when nothing is left."""
    y0, x0, y1, x1 = box
    cy0, cx0 = max(y0, region.y0), max(x0, region.x0)
    cy1, cx1 = min(y1, region.y1), min(x1, region.x1)
    if (cy0, cx0, cy1, cx1) == box:
        return box, footprint
    if cy0 >= cy1 or cx0 >= cx1:
        return None
    cut = footprint[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    return ((cy0, cx0, cy1, cx1), cut) if cut.any() else None
