"""The one long-lived inference worker per model: loads images, encodes, answers prompts.

The app (or a script) talks to an :class:`InferenceWorker` through non-blocking calls and gets
results back as events passed to ``on_event`` *from a worker thread* (the app marshals them to
its GUI thread). Two threads do the work:

* the **interactive** thread loads the image the user is looking at, fetches or computes its
  embedding (cancelled at the next encoder step when another image is opened) and answers
  prompts; a newer prompt supersedes an older one that has not started;
* the **prefetch** thread encodes the next images into the caches with a one-thread budget at
  reduced OS priority, and pauses between encoder steps whenever the interactive thread has
  anything to do, so clicks stay fast while it runs.

Every request and every event carries an :class:`ImageRef` (image id + generation number). The
caller bumps the generation whenever what it shows changes and drops events whose ref is not its
current one; the worker itself also drops prompts for an image that is no longer open. A result
for another image is therefore never drawn.

Threads are created by ``thread_factory(target, name)``; the default makes ``threading.Thread``
objects, the app passes a factory that runs ``target`` in a ``QThread``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from samdesk.engine.backend import Backend
from samdesk.engine.embedding import Embedding
from samdesk.engine.jobs import CancelToken
from samdesk.engine.region import AUTO_REGION_SIDE, Region
from samdesk.errors import CancelledError, PromptError, SamdeskError
from samdesk.imaging import LoadedImage, file_sha256, load_image
from samdesk.imaging.errors import TooManyPixelsError

log = logging.getLogger(__name__)

#: Nice value added to the prefetch thread (Linux: per thread). Higher = lower priority.
PREFETCH_NICE = 10
#: Threads the prefetch encoder may use; the rest of the CPU stays free for clicks.
PREFETCH_THREADS = 1


# --- requests and events ----------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    """Which image a request or result is for: ``generation`` changes whenever the caller's view
    changes (another image, another model), so an old result can be recognised and dropped."""

    image_id: str
    generation: int


@dataclass(frozen=True)
class Prompt:
    """One decoder request. Coordinates are x, y in original-image pixels.

    Attributes:
        point_coords: (N, 2) float32 or None.
        point_labels: (N,) int32 (1 = foreground, 0 = background) or None.
        box: (4,) float32 x0, y0, x1, y1 or None.
        mask_input: (1, 256, 256) float32 low-resolution logits of the previous mask, or None.
        multimask_output: ask for 3 candidates instead of 1.
        region: encode and segment only this crop of the image (region mode, ADR 0066); the
            coordinates stay in original-image pixels (the worker shifts them), points must lie
            in the region, ``mask_input`` must come from an answer for the same region.
    """

    point_coords: np.ndarray | None = None
    point_labels: np.ndarray | None = None
    box: np.ndarray | None = None
    mask_input: np.ndarray | None = None
    multimask_output: bool = True
    region: Region | None = None


@dataclass(frozen=True)
class ImageLoaded:
    ref: ImageRef
    image: LoadedImage


@dataclass(frozen=True)
class ImageFailed:
    """The image could not be opened. For an image over the pixel cap, ``width``, ``height``,
    ``pixels`` and ``limit`` say by how much (so the app can offer to open it anyway with
    ``max_pixels=pixels``); None otherwise."""

    ref: ImageRef
    message: str
    width: int | None = None
    height: int | None = None
    pixels: int | None = None
    limit: int | None = None


@dataclass(frozen=True)
class EncodeProgress:
    ref: ImageRef
    done: int
    total: int


@dataclass(frozen=True)
class EmbeddingReady:
    ref: ImageRef
    seconds: float
    source: str  # "computed" | "memory" | "disk" | "prefetch"
    region: Region | None = None  # the embedding of this crop (region mode), None: whole image


@dataclass(frozen=True)
class PromptResult:
    """Masks for one prompt: masks (C, H, W) bool, scores (C,) float32, low_res_logits
    (C, 256, 256) float32; ``seconds`` is the time spent in ``predict``.

    With a ``region`` (region mode) the masks cover only that crop, (C, region.height,
    region.width): local pixel (u, v) is image pixel (u + x0, v + y0), and the logits are in the
    region's low-resolution frame. :meth:`full_masks` places them in the whole image. Keeping the
    crop saves C full-size arrays per answer on a huge image."""

    ref: ImageRef
    seq: int
    masks: np.ndarray
    scores: np.ndarray
    low_res_logits: np.ndarray
    seconds: float
    region: Region | None = None

    def full_masks(self, image_shape: tuple[int, int]) -> np.ndarray:
        """The masks in the whole image's frame, (C, H, W) bool."""
        if self.region is None:
            return self.masks
        return self.region.to_full(self.masks, image_shape)


@dataclass(frozen=True)
class PrefetchUpdate:
    image_id: str
    state: str  # "done" | "cached" | "failed"
    seconds: float


@dataclass(frozen=True)
class BackendReady:
    name: str
    device: str
    precision: str


@dataclass(frozen=True)
class BackendFailed:
    message: str


@dataclass(frozen=True)
class WorkerError:
    ref: ImageRef | None
    message: str


class EmbeddingCache(Protocol):
    """What the worker needs from a cache (memory or disk)."""

    def get(self, content_hash: str, model_key: str) -> Embedding | None: ...

    def put(self, content_hash: str, embedding: Embedding) -> None: ...


class ThreadHandle(Protocol):
    def start(self) -> None: ...

    def join(self, timeout: float | None = None) -> Any: ...

    def is_alive(self) -> bool: ...


ThreadFactory = Callable[[Callable[[], None], str], ThreadHandle]


def python_threads(target: Callable[[], None], name: str) -> ThreadHandle:
    """The default ``thread_factory``: a daemon ``threading.Thread``."""
    return threading.Thread(target=target, name=name, daemon=True)


def lower_current_thread_priority(nice: int = PREFETCH_NICE) -> bool:
    """Lower the OS priority of the calling thread only (Linux); True when it worked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:
        return False
    return True


def error_message(err: BaseException) -> str:
    """A user-facing sentence for ``err``: samdesk's own messages as they are, others labelled."""
    if isinstance(err, SamdeskError):
        return str(err)
    if isinstance(err, MemoryError) or "out of memory" in str(err).lower():
        return (
            "Out of memory while running the model. Close other programs, choose a smaller "
            "model (MobileSAM, ViT-B) or switch the device to CPU."
        )
    return f"Internal error in the inference worker ({type(err).__name__}: {err})."


# --- the worker -------------------------------------------------------------------------------


@dataclass
class _Open:
    ref: ImageRef
    path: Path
    max_pixels: int | None
    cancel: CancelToken


@dataclass
class _Current:
    ref: ImageRef
    path: Path
    content_hash: str
    image: LoadedImage | None
    ready: bool = False
    max_pixels: int | None = None
    whole: Embedding | None = None  # the whole image's embedding (restored after a region)
    region: Region | None = None  # the region whose embedding the backend holds, if any


class _InFlight:
    """An encode running on the prefetch thread that the interactive thread may wait for."""

    def __init__(self, path: Path, content_hash: str, model_key: str) -> None:
        self.path = path
        self.content_hash = content_hash
        self.model_key = model_key
        self.done = threading.Event()
        self.embedding: Embedding | None = None
        self.boosted_for: ImageRef | None = None  # set when the open image waits for it

    @property
    def boosted(self) -> bool:
        return self.boosted_for is not None


class InferenceWorker:
    """One long-lived worker per model; see the module docstring for the threading model.

    Args:
        on_event: called with each event object, from a worker thread. Must not block for long.
        backend: the segmentation backend; None selects the Classic (GrabCut) backend.
        memory_cache / disk_cache: embedding caches (``get``/``put``); None disables one.
        thread_factory: makes the two worker threads (default: Python threads).
    """

    def __init__(
        self,
        on_event: Callable[[object], None],
        *,
        backend: Backend | None = None,
        memory_cache: EmbeddingCache | None = None,
        disk_cache: EmbeddingCache | None = None,
        thread_factory: ThreadFactory | None = None,
    ) -> None:
        if backend is None:
            from samdesk.engine.classic import ClassicBackend

            backend = ClassicBackend()
        self._on_event = on_event
        self._backend: Backend = backend
        self._memory = memory_cache
        self._disk = disk_cache
        self._factory = thread_factory or python_threads
        self._cond = threading.Condition()
        self._closing = False
        self._started = False
        # interactive state (guarded by _cond)
        self._pending_open: _Open | None = None
        self._pending_prompt: tuple[ImageRef, int, Prompt] | None = None
        self._pending_backend: Callable[[], Backend] | None = None
        self._current: _Current | None = None
        self._running_open: _Open | None = None
        self._region_cancel: CancelToken | None = None  # a region encode running
        self._region_encoding: Region | None = None  # ... and the region it encodes
        self._interactive_busy = False
        # prefetch state (guarded by _cond)
        self._prefetch_items: list[tuple[str, Path]] = []
        self._prefetch_epoch = 0
        self._prefetch_cancel: CancelToken | None = None
        self._prefetch_flight: _InFlight | None = None
        self._in_flight: dict[tuple[str, str], _InFlight] = {}
        self._threads: list[ThreadHandle] = []

    # --- public API (any thread) -------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        return self._backend

    def start(self) -> None:
        """Start the worker threads (idempotent)."""
        with self._cond:
            if self._started:
                return
            self._started = True
        for target, name in (
            (self._interactive_loop, "samdesk-inference"),
            (self._prefetch_loop, "samdesk-prefetch"),
        ):
            thread = self._factory(target, name)
            self._threads.append(thread)
            thread.start()

    def open_image(self, ref: ImageRef, path: Path | str, *, max_pixels: int | None = None) -> None:
        """Load ``path``, then fetch or compute its embedding; cancels the previous open."""
        with self._cond:
            for previous in (self._running_open, self._pending_open):
                if previous is not None:
                    previous.cancel.cancel("another image was opened")
            if self._region_cancel is not None:
                self._region_cancel.cancel("another image was opened")
            if self._current is not None and self._current.ref.image_id != ref.image_id:
                # a huge image's pixels (kept for region crops) must not stay alive while the
                # next image is decoded; the caller has its own copy for display
                self._current.image = None
            self._pending_open = _Open(ref, Path(path), max_pixels, CancelToken())
            if self._pending_prompt is not None and self._pending_prompt[0] != ref:
                self._pending_prompt = None
            self._cond.notify_all()

    def submit_prompt(self, ref: ImageRef, seq: int, prompt: Prompt) -> None:
        """Queue a decoder run for ``ref``; supersedes a pending one. Answered by PromptResult."""
        with self._cond:
            self._pending_prompt = (ref, seq, prompt)
            if self._region_cancel is not None and self._region_encoding != prompt.region:
                # the region being encoded is for a prompt nobody waits for any more
                self._region_cancel.cancel("a prompt in another region superseded it")
            self._cond.notify_all()

    def cancel_prompts(self, ref: ImageRef) -> None:
        """The caller no longer wants answers for ``ref``'s prompts (the object was cleared,
        undone or edited): drop a queued prompt and stop a region encode started for one."""
        with self._cond:
            if self._pending_prompt is not None and self._pending_prompt[0] == ref:
                self._pending_prompt = None
            if self._region_cancel is not None:
                self._region_cancel.cancel("the prompt was withdrawn")

    def prefetch(self, items: Sequence[tuple[str, Path | str]]) -> None:
        """Encode these (image_id, path) pairs into the caches in the background, in order.

        Replaces the previous prefetch list; an encode of an image no longer listed is
        cancelled at its next step.
        """
        with self._cond:
            new = [(image_id, Path(p)) for image_id, p in items]
            if new == self._prefetch_items:
                return
            self._prefetch_items = new
            self._prefetch_epoch += 1
            if self._prefetch_cancel is not None and not self._flight_wanted():
                self._prefetch_cancel.cancel("prefetch list changed")
            self._cond.notify_all()

    def set_backend(self, load: Callable[[], Backend]) -> None:
        """Load a backend with ``load()`` on the worker; on success it replaces the current one
        and the open image is encoded again (same ref); on failure the old one stays."""
        with self._cond:
            self._pending_backend = load
            if self._running_open is not None:  # re-queued by _reopen_current after the switch
                self._running_open.cancel.cancel("the model is being changed")
            if self._region_cancel is not None:
                self._region_cancel.cancel("the model is being changed")
            if self._prefetch_cancel is not None:
                self._prefetch_cancel.cancel("the model is being changed")
            self._cond.notify_all()

    def close(self, timeout: float = 2.0) -> bool:
        """Cancel all work and wait up to ``timeout`` seconds; True when every thread ended."""
        with self._cond:
            self._closing = True
            if self._prefetch_cancel is not None:
                self._prefetch_cancel.cancel("closing")
            for req in (self._running_open, self._pending_open):
                if req is not None:
                    req.cancel.cancel("closing")
            if self._region_cancel is not None:
                self._region_cancel.cancel("closing")
            for flight in self._in_flight.values():
                flight.done.set()
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    # --- helpers --------------------------------------------------------------------------------

    def _emit(self, event: object) -> None:
        try:
            self._on_event(event)
        except Exception:  # an observer's bug must not kill the worker
            log.exception("on_event raised for %r", type(event).__name__)

    def _cache_get(self, content_hash: str, model_key: str) -> tuple[Embedding, str] | None:
        for cache, source in ((self._memory, "memory"), (self._disk, "disk")):
            if cache is None:
                continue
            try:
                emb = cache.get(content_hash, model_key)
            except Exception:
                log.exception("embedding cache lookup failed")
                continue
            if emb is not None:
                if source == "disk" and self._memory is not None:
                    self._memory.put(content_hash, emb)
                return emb, source
        return None

    def _cache_put(self, content_hash: str, embedding: Embedding) -> None:
        for cache in (self._memory, self._disk):
            if cache is None:
                continue
            try:
                cache.put(content_hash, embedding)
            except Exception:
                log.exception("embedding cache store failed")

    # --- interactive thread --------------------------------------------------------------------

    def _interactive_loop(self) -> None:
        while True:
            with self._cond:
                while not self._closing and not self._has_interactive_work():
                    self._interactive_busy = False
                    self._cond.notify_all()
                    self._cond.wait()
                if self._closing:
                    self._interactive_busy = False
                    self._cond.notify_all()
                    return
                self._interactive_busy = True
                load_backend, self._pending_backend = self._pending_backend, None
                opening = None if load_backend else self._pending_open
                if opening is not None:
                    self._pending_open = None
                    self._running_open = opening
                prompt = None
                if load_backend is None and opening is None and self._prompt_ready():
                    prompt, self._pending_prompt = self._pending_prompt, None
            try:
                if load_backend is not None:
                    self._switch_backend(load_backend)
                elif opening is not None:
                    self._open(opening)
                elif prompt is not None:
                    self._run_prompt(*prompt)
            except Exception as err:  # never let the thread die
                log.exception("inference worker step failed")
                ref = opening.ref if opening else (prompt[0] if prompt else None)
                self._emit(WorkerError(ref, error_message(err)))
            finally:
                with self._cond:
                    self._running_open = None

    def _has_interactive_work(self) -> bool:
        return (
            self._pending_backend is not None
            or self._pending_open is not None
            or self._prompt_ready()
        )

    def _prompt_ready(self) -> bool:
        pending = self._pending_prompt
        if pending is None:
            return False
        current = self._current
        if current is None or current.ref != pending[0]:
            # for an image that is not open (any more, or not yet): dropped unless it is opening
            opening = self._pending_open
            if opening is None or opening.ref != pending[0]:
                self._pending_prompt = None
            return False
        return current.ready

    def _switch_backend(self, load: Callable[[], Backend]) -> None:
        try:
            backend = load()
            _ = backend.cache_key  # computed here, on the worker, never under the lock
        except Exception as err:
            log.info("backend failed to load: %s", err)
            self._emit(BackendFailed(error_message(err)))
            self._restart_prefetch()
            self._reopen_current()
            return
        self._backend = backend
        precision = str(getattr(backend, "precision", "fp32"))
        self._emit(BackendReady(backend.name, backend.device, precision))
        self._restart_prefetch()
        self._reopen_current()

    def _reopen_current(self) -> None:
        with self._cond:
            current = self._current
            if current is None or self._pending_open is not None:
                return
            self._current = None
            self._pending_open = _Open(current.ref, current.path, current.max_pixels, CancelToken())
            self._cond.notify_all()

    def _restart_prefetch(self) -> None:
        with self._cond:
            self._prefetch_epoch += 1
            self._cond.notify_all()

    def _open(self, req: _Open) -> None:
        ref = req.ref
        if req.cancel.cancelled:
            return
        try:
            image = load_image(req.path, max_pixels=req.max_pixels)
        except (SamdeskError, OSError) as err:
            with self._cond:
                self._current = None
            message = (
                str(err) if isinstance(err, SamdeskError) else f"Cannot read {req.path}: {err}"
            )
            if isinstance(err, TooManyPixelsError):
                self._emit(ImageFailed(ref, message, err.width, err.height, err.pixels, err.limit))
            else:
                self._emit(ImageFailed(ref, message))
            return
        with self._cond:
            if req.cancel.cancelled:
                return
            self._current = _Current(
                ref, req.path, image.content_hash, image, max_pixels=req.max_pixels
            )
        self._emit(ImageLoaded(ref, image))
        backend = self._backend
        start = time.perf_counter()
        try:
            embedding, source = self._embedding_for(image, backend, req.cancel, ref)
        except CancelledError:
            return
        except Exception as err:
            log.exception("encoding failed")
            self._emit(WorkerError(ref, error_message(err)))
            return
        with self._cond:
            if req.cancel.cancelled or self._current is None or self._current.ref != ref:
                return
            backend.set_embedding(embedding)
            self._current.ready = True
            self._current.whole = embedding
            if max(image.width, image.height) <= AUTO_REGION_SIDE:
                # the caller has it; keep no second copy alive (a region prompt reloads it).
                # A large image is kept: region mode (on by default for it) crops it.
                self._current.image = None
        self._emit(EmbeddingReady(ref, time.perf_counter() - start, source))

    def _embedding_for(
        self, image: LoadedImage, backend: Backend, cancel: CancelToken, ref: ImageRef
    ) -> tuple[Embedding, str]:
        key = backend.cache_key
        if key is not None:
            hit = self._cache_get(image.content_hash, key)
            if hit is not None:
                return hit
            with self._cond:
                flight = self._in_flight.get((image.content_hash, key))
                if flight is not None:  # the prefetcher is encoding this very image: wait for it
                    flight.boosted_for = ref
                    self._cond.notify_all()
            if flight is not None:
                while not flight.done.wait(0.05):
                    cancel.check()
                cancel.check()
                if flight.embedding is not None:
                    return flight.embedding, "prefetch"

        embedding = self._encode(image.rgb, image.content_hash, key, backend, cancel, ref)
        return embedding, "computed"

    def _encode(
        self,
        rgb: np.ndarray,
        content_hash: str,
        key: str | None,
        backend: Backend,
        cancel: CancelToken,
        ref: ImageRef,
    ) -> Embedding:
        """Encode ``rgb`` (H, W, 3 uint8) reporting progress for ``ref``, then cache it under
        ``content_hash`` (a whole image's hash, or a region's :meth:`Region.cache_hash`) when
        the backend has a cache ``key``."""

        def step(done: int, total: int) -> None:
            cancel.check()
            self._emit(EncodeProgress(ref, done, total))

        embedding = backend.compute_embedding(rgb, cancel=cancel, step_hook=step)
        if key is not None:
            self._cache_put(content_hash, embedding)
        return embedding

    def _run_prompt(self, ref: ImageRef, seq: int, prompt: Prompt) -> None:
        region = prompt.region
        if not self._select_embedding(ref, region):
            return  # cancelled (another image, model or closing) or no longer current
        if region is not None:
            prompt = region.to_local(prompt)
        start = time.perf_counter()
        masks, scores, logits = self._backend.predict(
            point_coords=prompt.point_coords,
            point_labels=prompt.point_labels,
            box=prompt.box,
            mask_input=prompt.mask_input,
            multimask_output=prompt.multimask_output,
        )
        seconds = time.perf_counter() - start
        with self._cond:
            if self._current is None or self._current.ref != ref:
                return  # the user moved on while it ran: never deliver it
        self._emit(PromptResult(ref, seq, masks, scores, logits, seconds, region))

    def _select_embedding(self, ref: ImageRef, region: Region | None) -> bool:
        """Make the backend hold the embedding ``region`` needs (None: the whole image):
        from the caches (keyed by content hash + region box) or encoded from the crop now.
        False when the work was cancelled or the image is no longer the current one."""
        with self._cond:
            current = self._current
            if current is None or current.ref != ref:
                return False
            if current.region == region:
                return True
            if region is None and current.whole is not None:
                self._backend.set_embedding(current.whole)
                current.region = None
                return True
            cancel = CancelToken()
            self._region_cancel = cancel
            self._region_encoding = region
        try:
            if region is None:  # no whole embedding kept (cannot happen after an open)
                raise PromptError("the image has no embedding yet")
            embedding, source, seconds = self._region_embedding(current, region, cancel, ref)
        except CancelledError:
            return False
        finally:
            with self._cond:
                if self._region_cancel is cancel:
                    self._region_cancel = None
                    self._region_encoding = None
        with self._cond:
            if cancel.cancelled or self._current is not current:
                return False
            self._backend.set_embedding(embedding)
            current.region = region
        self._emit(EmbeddingReady(ref, seconds, source, region))
        return True

    def _region_embedding(
        self, current: _Current, region: Region, cancel: CancelToken, ref: ImageRef
    ) -> tuple[Embedding, str, float]:
        start = time.perf_counter()
        backend = self._backend
        key = backend.cache_key
        region_hash = region.cache_hash(current.content_hash)
        if key is not None:
            hit = self._cache_get(region_hash, key)
            if hit is not None:
                return hit[0], hit[1], time.perf_counter() - start
        image = current.image
        if image is None:  # dropped after the open (a small image): read it again
            image = load_image(current.path, max_pixels=current.max_pixels)
            if image.content_hash != current.content_hash:
                raise PromptError(
                    f"{current.path.name} changed on disk since it was opened; open it again"
                )
            with self._cond:
                if self._current is current:
                    current.image = image
        if not region.fits(image.width, image.height):
            raise PromptError(
                f"the region {region.as_tuple()} does not fit in the image "
                f"({image.width} x {image.height})"
            )
        embedding = self._encode(region.crop(image.rgb), region_hash, key, backend, cancel, ref)
        return embedding, "computed", time.perf_counter() - start

    # --- prefetch thread -----------------------------------------------------------------------

    def _prefetch_loop(self) -> None:
        lower_current_thread_priority()
        done_for: dict[tuple[str, str], None] = {}  # (path, model_key) finished this session
        while True:
            backend = self._backend
            # Outside the lock: the first read may hash a multi-GB checkpoint.
            key = backend.cache_key
            with self._cond:
                if self._closing:
                    return
                job = None
                if backend is self._backend:
                    job = self._next_prefetch(done_for, key)
                if job is None:
                    if backend is self._backend:
                        self._cond.wait()
                    continue
                epoch = self._prefetch_epoch
                cancel = CancelToken()
                self._prefetch_cancel = cancel
            image_id, path, key = job
            done_for[(str(path), key)] = None
            try:
                state, seconds = self._prefetch_one(path, backend, key, cancel, epoch)
            except CancelledError:
                done_for.pop((str(path), key), None)
                continue
            except Exception as err:
                log.info("prefetch of %s failed: %s", path, err)
                state, seconds = "failed", 0.0
            self._emit(PrefetchUpdate(image_id, state, seconds))

    def _next_prefetch(
        self, done_for: dict[tuple[str, str], None], key: str | None
    ) -> tuple[str, Path, str] | None:
        """The next (image_id, path, model key) to prefetch, or None (call with _cond held)."""
        no_cache = self._memory is None and self._disk is None
        if key is None or no_cache or self._interactive_busy or self._pending_backend is not None:
            return None
        current_path = self._current.path if self._current else None
        for image_id, path in self._prefetch_items:
            if path != current_path and (str(path), key) not in done_for:
                return image_id, path, key
        return None

    def _flight_wanted(self) -> bool:
        """Whether the running prefetch encode is still needed (call with ``_cond`` held): its
        image is still listed, or it is the image being opened (which waits for it)."""
        flight = self._prefetch_flight
        if flight is None:
            return False
        if flight.boosted or any(flight.path == p for _, p in self._prefetch_items):
            return True
        opening = [r.path for r in (self._pending_open, self._running_open) if r is not None]
        return flight.path in opening

    def _wait_while_interactive(
        self, cancel: CancelToken, epoch: int, flight: _InFlight | None = None
    ) -> None:
        with self._cond:
            while (
                self._interactive_busy
                and not cancel.cancelled
                and not self._closing
                and not (flight is not None and flight.boosted)
            ):
                self._cond.wait(0.05)
            if self._closing:
                cancel.cancel("closing")
            elif self._prefetch_epoch != epoch and not self._flight_wanted():
                cancel.cancel("prefetch list changed")
        cancel.check()

    def _prefetch_one(
        self, path: Path, backend: Backend, key: str, cancel: CancelToken, epoch: int
    ) -> tuple[str, float]:
        start = time.perf_counter()
        content_hash = file_sha256(path)
        if self._cache_get(content_hash, key) is not None:
            return "cached", time.perf_counter() - start
        self._wait_while_interactive(cancel, epoch)
        image = load_image(path)
        flight = _InFlight(path, content_hash, key)
        with self._cond:
            self._in_flight[(content_hash, key)] = flight
            self._prefetch_flight = flight

        def step(done: int, total: int) -> None:
            self._wait_while_interactive(cancel, epoch, flight)
            if flight.boosted_for is not None:
                self._emit(EncodeProgress(flight.boosted_for, done, total))

        try:
            embedding = backend.compute_embedding(
                image.rgb, cancel=cancel, num_threads=PREFETCH_THREADS, step_hook=step
            )
            flight.embedding = embedding
            self._cache_put(content_hash, embedding)
        finally:
            with self._cond:
                self._in_flight.pop((content_hash, key), None)
                self._prefetch_flight = None
            flight.done.set()
        return "done", time.perf_counter() - start
