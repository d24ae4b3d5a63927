"""The inference worker: generations, superseded prompts, prefetch that yields, clean shutdown.

Most tests use a scripted backend (``ScriptedBackend``) whose timing the test controls, so the
ordering guarantees are checked deterministically; the last tests run the real Predictor on a
small random-weight checkpoint and the real Classic backend.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samdesk.engine.embedding import Embedding
from samdesk.engine.worker import (
    BackendFailed,
    BackendReady,
    EmbeddingReady,
    EncodeProgress,
    ImageFailed,
    ImageLoaded,
    ImageRef,
    InferenceWorker,
    PrefetchUpdate,
    Prompt,
    PromptResult,
    WorkerError,
)
from samdesk.errors import CancelledError, ModelError

TIMEOUT = 10.0


class ScriptedBackend:
    """A Backend whose encoder takes ``steps`` steps of ``step_s`` seconds and whose predict
    returns a mask filled with the encoded image's mean grey value (so a test can tell which
    image's embedding answered)."""

    def __init__(self, key: str = "scripted-v1", steps: int = 8, step_s: float = 0.01) -> None:
        self.name = f"Scripted {key}"
        self.cache_key: str | None = key
        self.device = "cpu"
        self.precision = "fp32"
        self.steps = steps
        self.step_s = step_s
        self.encodes: list[tuple[int, int | None]] = []  # (mean value, num_threads)
        self.step_log: list[tuple[str, float]] = []  # (thread name, time)
        self.predict_log: list[tuple[float, float]] = []  # (start, end)
        self.predict_gate: threading.Event | None = None
        self.predict_error: Exception | None = None
        self._embedding: Embedding | None = None
        self._lock = threading.Lock()

    def compute_embedding(self, image, *, cancel=None, num_threads=None, step_hook=None):
        value = round(float(image.mean()))
        for i in range(self.steps):
            if step_hook is not None:
                step_hook(i, self.steps)
            if cancel is not None:
                cancel.check()
            with self._lock:
                self.step_log.append((threading.current_thread().name, time.perf_counter()))
            time.sleep(self.step_s)
        with self._lock:
            self.encodes.append((value, num_threads))
        h, w = image.shape[:2]
        features = np.full((4, 4), value, np.float32)
        return Embedding(features, (h, w), (h, w), str(self.cache_key))

    def set_embedding(self, embedding):
        self._embedding = embedding

    def set_image(self, image, image_format="RGB"):
        self.set_embedding(self.compute_embedding(image))

    def reset_image(self):
        self._embedding = None

    @property
    def is_image_set(self):
        return self._embedding is not None

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None,
                multimask_output=True, return_logits=False):  # fmt: skip
        start = time.perf_counter()
        if self.predict_gate is not None:
            self.predict_gate.wait(TIMEOUT)
        if self.predict_error is not None:
            raise self.predict_error
        emb = self._embedding
        assert emb is not None
        h, w = emb.original_size
        value = float(emb.features[0, 0])
        masks = np.zeros((1, h, w), bool)
        masks[0, : int(value) % h] = True
        with self._lock:
            self.predict_log.append((start, time.perf_counter()))
        return masks, np.array([value], np.float32), np.full((1, 256, 256), value, np.float32)


class DictCache:
    def __init__(self) -> None:
        self.data: dict[tuple[str, str], Embedding] = {}

    def get(self, content_hash, model_key):
        return self.data.get((content_hash, model_key))

    def put(self, content_hash, embedding):
        self.data[(content_hash, embedding.model_key)] = embedding


class Recorder:
    def __init__(self) -> None:
        self.events: list[object] = []
        self.cond = threading.Condition()

    def __call__(self, event: object) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait_for(self, predicate, timeout: float = TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"event not seen; got {self.types()}")
                self.cond.wait(left)

    def of(self, kind):
        with self.cond:
            return [e for e in self.events if isinstance(e, kind)]

    def types(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


def grey_png(path: Path, value: int, size: tuple[int, int] = (48, 64)) -> Path:
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)
    return path


POINT = Prompt(np.array([[5.0, 5.0]], np.float32), np.array([1], np.int32))


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    return [grey_png(tmp_path / f"img{i}.png", 10 + 10 * i) for i in range(5)]


def test_open_encode_and_prompt(make_worker, images):
    backend = ScriptedBackend()
    worker, rec = make_worker(backend)
    ref = ImageRef("a", 1)
    worker.open_image(ref, images[0])
    loaded = rec.wait_for(lambda e: isinstance(e, ImageLoaded))
    assert loaded.image.rgb.shape == (48, 64, 3)
    ready = rec.wait_for(lambda e: isinstance(e, EmbeddingReady))
    assert ready.ref == ref and ready.source == "computed"
    progress = rec.of(EncodeProgress)
    assert [p.done for p in progress] == list(range(backend.steps))
    worker.submit_prompt(ref, 1, POINT)
    result = rec.wait_for(lambda e: isinstance(e, PromptResult))
    assert result.ref == ref and result.seq == 1
    assert result.masks.shape == (1, 48, 64) and result.masks.dtype == bool
    assert result.scores[0] == 10.0  # the embedding of image 0 (grey 10) answered


def test_prompt_before_embedding_is_applied_once_ready(make_worker, images):
    backend = ScriptedBackend(steps=10, step_s=0.03)
    worker, rec = make_worker(backend)
    ref = ImageRef("a", 1)
    worker.open_image(ref, images[1])
    worker.submit_prompt(ref, 7, POINT)
    result = rec.wait_for(lambda e: isinstance(e, PromptResult))
    kinds = rec.types()
    assert kinds.index("EmbeddingReady") < kinds.index("PromptResult")
    assert result.seq == 7 and result.scores[0] == 20.0


def test_switching_image_mid_encode_never_delivers_the_old_image(make_worker, images):
    backend = ScriptedBackend(steps=50, step_s=0.02)
    worker, rec = make_worker(backend)
    old, new = ImageRef("a", 1), ImageRef("b", 2)
    worker.open_image(old, images[0])
    rec.wait_for(lambda e: isinstance(e, EncodeProgress) and e.ref == old)
    worker.submit_prompt(old, 1, POINT)
    backend.steps = 3
    worker.open_image(new, images[2])
    worker.submit_prompt(new, 2, POINT)
    result = rec.wait_for(lambda e: isinstance(e, PromptResult))
    assert result.ref == new and result.scores[0] == 30.0
    time.sleep(0.2)
    assert all(e.ref == new for e in rec.of(EmbeddingReady))
    assert all(e.ref == new for e in rec.of(PromptResult))
    assert [v for v, _ in backend.encodes] == [30]  # the old encode was cancelled, not finished


def test_prompt_for_an_image_that_is_not_open_is_dropped(make_worker, images):
    worker, rec = make_worker(ScriptedBackend())
    ref = ImageRef("a", 1)
    worker.open_image(ref, images[0])
    rec.wait_for(lambda e: isinstance(e, EmbeddingReady))
    worker.submit_prompt(ImageRef("a", 0), 1, POINT)  # an older generation
    worker.submit_prompt(ref, 2, POINT)
    result = rec.wait_for(lambda e: isinstance(e, PromptResult))
    time.sleep(0.1)
    assert [r.seq for r in rec.of(PromptResult)] == [2] and result.ref == ref


def test_newer_prompt_supersedes_pending_one(make_worker, images):
    backend = ScriptedBackend()
    worker, rec = make_worker(backend)
    ref = ImageRef("a", 1)
    worker.open_image(ref, images[0])
    rec.wait_for(lambda e: isinstance(e, EmbeddingReady))
    backend.predict_gate = threading.Event()
    worker.submit_prompt(ref, 1, POINT)
    deadline = time.monotonic() + TIMEOUT
    while not worker._interactive_busy and time.monotonic() < deadline:
        time.sleep(0.001)
    for seq in (2, 3, 4):
        worker.submit_prompt(ref, seq, POINT)
    backend.predict_gate.set()
    rec.wait_for(lambda e: isinstance(e, PromptResult) and e.seq == 4)
    assert [r.seq for r in rec.of(PromptResult)] == [1, 4]


def test_prefetch_fills_cache_with_one_thread_and_opening_hits_it(make_worker, images):
    backend = ScriptedBackend()
    cache = DictCache()
    worker, rec = make_worker(backend, memory_cache=cache)
    worker.prefetch([("b", images[1]), ("c", images[2])])
    rec.wait_for(lambda e: isinstance(e, PrefetchUpdate) and e.image_id == "c")
    assert [u.state for u in rec.of(PrefetchUpdate)] == ["done", "done"]
    assert sorted(backend.encodes) == [(20, 1), (30, 1)]  # budget of one thread
    worker.open_image(ImageRef("b", 1), images[1])
    ready = rec.wait_for(lambda e: isinstance(e, EmbeddingReady))
    assert ready.source == "memory"
    assert len(backend.encodes) == 2  # not encoded again


def test_prefetch_pauses_while_a_prompt_runs(make_worker, images):
    backend = ScriptedBackend(steps=40, step_s=0.005)
    worker, rec = make_worker(backend, memory_cache=DictCache())
    ref = ImageRef("a", 1)
    worker.open_image(ref, images[0])
    rec.wait_for(lambda e: isinstance(e, EmbeddingReady))
    backend.predict_gate = threading.Event()
    worker.prefetch([("b", images[1])])
    deadline = time.monotonic() + TIMEOUT
    while not any(n == "samdesk-prefetch" for n, _ in backend.step_log):
        assert time.monotonic() < deadline
        time.sleep(0.001)
    worker.submit_prompt(ref, 1, POINT)
    time.sleep(0.15)  # the prompt is blocked inside predict: the prefetch must be paused
    backend.predict_gate.set()
    rec.wait_for(lambda e: isinstance(e, PrefetchUpdate))
    (start, end), *_ = backend.predict_log  # predict ran (blocked) from start to end
    assert end - start > 0.1
    prefetch_steps = [t for n, t in backend.step_log if n == "samdesk-prefetch"]
    during = [t for t in prefetch_steps if start + 0.02 < t < end]
    assert during == [], "prefetch kept encoding while a prompt was being answered"
    assert any(t > end for t in prefetch_steps), "prefetch did not resume after the prompt"


def test_opening_an_image_being_prefetched_waits_for_that_encode(make_worker, images):
    backend = ScriptedBackend(steps=30, step_s=0.01)
    worker, rec = make_worker(backend, memory_cache=DictCache())
    worker.prefetch([("b", images[1])])
    deadline = time.monotonic() + TIMEOUT
    while not backend.step_log:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    ref = ImageRef("b", 1)
    worker.open_image(ref, images[1])
    worker.prefetch([("c", images[2])])  # the app moves the prefetch window on at once
    ready = rec.wait_for(lambda e: isinstance(e, EmbeddingReady))
    assert ready.source in ("prefetch", "memory")
    assert [v for v, _ in backend.encodes].count(20) == 1


def test_backend_failure_keeps_previous_backend(make_worker, images):
    backend = ScriptedBackend()
    worker, rec = make_worker(backend)
    ref = ImageRef("a", 1)
    worker.open_image(ref, images[0])
    rec.wait_for(lambda e: isinstance(e, EmbeddingReady))

    def broken():
        raise ModelError("sam_vit_h.pth: looks like ViT-B weights")

    worker.set_backend(broken)
    failed = rec.wait_for(lambda e: isinstance(e, BackendFailed))
    assert "ViT-B" in failed.message
    assert worker.backend is backend
    worker.submit_prompt(ref, 1, POINT)
    assert rec.wait_for(lambda e: isinstance(e, PromptResult)).scores[0] == 10.0


def test_backend_switch_reencodes_open_image(make_worker, images):
    worker, rec = make_worker(ScriptedBackend("one"))
    ref = ImageRef("a", 1)
    worker.open_image(ref, images[0])
    rec.wait_for(lambda e: isinstance(e, EmbeddingReady))
    second = ScriptedBackend("two")
    worker.set_backend(lambda: second)
    ready = rec.wait_for(lambda e: isinstance(e, BackendReady))
    assert ready.name == "Scripted two"
    rec.wait_for(lambda e: isinstance(e, EmbeddingReady) and e is not rec.of(EmbeddingReady)[0])
    assert second.encodes == [(10, None)]
    worker.submit_prompt(ref, 1, POINT)
    rec.wait_for(lambda e: isinstance(e, PromptResult))
    assert worker.backend is second


def test_unreadable_image_reports_and_next_image_works(make_worker, images, tmp_path):
    worker, rec = make_worker(ScriptedBackend())
    bad = tmp_path / "notes.png"
    bad.write_text("not an image at all", encoding="utf-8")
    worker.open_image(ImageRef("bad", 1), bad)
    failed = rec.wait_for(lambda e: isinstance(e, ImageFailed))
    assert "notes.png" in failed.message
    worker.open_image(ImageRef("ok", 2), images[0])
    assert rec.wait_for(lambda e: isinstance(e, EmbeddingReady)).ref == ImageRef("ok", 2)


def test_exception_in_predict_is_reported_and_worker_lives_on(make_worker, images):
    backend = ScriptedBackend()
    worker, rec = make_worker(backend)
    ref = ImageRef("a", 1)
    worker.open_image(ref, images[0])
    rec.wait_for(lambda e: isinstance(e, EmbeddingReady))
    backend.predict_error = RuntimeError("boom")
    worker.submit_prompt(ref, 1, POINT)
    error = rec.wait_for(lambda e: isinstance(e, WorkerError))
    assert "boom" in error.message and error.ref == ref
    backend.predict_error = None
    worker.submit_prompt(ref, 2, POINT)
    assert rec.wait_for(lambda e: isinstance(e, PromptResult)).seq == 2


def test_close_while_encoding_ends_all_threads_quickly(images):
    # Threads that existed before (e.g. the records CPython keeps forever for QThreads that ran
    # Python code in earlier app tests) are not this worker's.
    before = set(threading.enumerate())
    backend = ScriptedBackend(steps=10_000, step_s=0.01)
    rec = Recorder()
    worker = InferenceWorker(rec, backend=backend, memory_cache=DictCache())
    worker.start()
    assert {t.name for t in set(threading.enumerate()) - before} >= {
        "samdesk-inference",
        "samdesk-prefetch",
    }
    worker.open_image(ImageRef("a", 1), images[0])
    worker.prefetch([("b", images[1])])
    rec.wait_for(lambda e: isinstance(e, EncodeProgress))
    start = time.perf_counter()
    assert worker.close(timeout=2.0)
    assert time.perf_counter() - start < 2.0
    assert not any(t.name.startswith("samdesk-") for t in set(threading.enumerate()) - before)
    assert rec.of(EmbeddingReady) == []


def test_cancelled_error_is_not_reported_as_a_failure(make_worker, images):
    backend = ScriptedBackend(steps=100, step_s=0.01)
    worker, rec = make_worker(backend)
    worker.open_image(ImageRef("a", 1), images[0])
    rec.wait_for(lambda e: isinstance(e, EncodeProgress))
    worker.open_image(ImageRef("b", 2), images[1])
    time.sleep(0.05)
    backend.steps = 2
    rec.wait_for(lambda e: isinstance(e, EmbeddingReady))
    assert rec.of(WorkerError) == []
    assert issubclass(CancelledError, Exception)


def test_classic_backend_is_the_default_and_segments(make_worker, tmp_path):
    image = np.full((120, 160, 3), 30, np.uint8)
    image[30:90, 40:120] = (220, 200, 40)
    rng = np.random.default_rng(0)
    image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    path = tmp_path / "square.png"
    Image.fromarray(image).save(path)
    worker, rec = make_worker(None)
    assert "Classic" in worker.backend.name
    ref = ImageRef("sq", 1)
    worker.open_image(ref, path)
    rec.wait_for(lambda e: isinstance(e, EmbeddingReady))
    box = Prompt(box=np.array([35, 25, 125, 95], np.float32))
    worker.submit_prompt(ref, 1, box)
    result = rec.wait_for(lambda e: isinstance(e, PromptResult))
    truth = np.zeros((120, 160), bool)
    truth[30:90, 40:120] = True
    best = result.masks[int(np.argmax(result.scores))]
    iou = (best & truth).sum() / (best | truth).sum()
    assert iou > 0.9


def test_real_predictor_small_checkpoint(make_worker, tmp_path):
    from samdesk.engine.predictor import Predictor
    from samdesk.model.testing import save_random_checkpoint

    ckpt = save_random_checkpoint(tmp_path / "small.pth", arch="small", seed=0)
    predictor = Predictor.from_checkpoint(ckpt, device="cpu", precision="fp32")
    path = grey_png(tmp_path / "g.png", 90, size=(200, 300))
    worker, rec = make_worker(predictor, memory_cache=DictCache())
    ref = ImageRef("g", 1)
    worker.open_image(ref, path)
    worker.submit_prompt(ref, 1, Prompt(np.array([[150.0, 100.0]], np.float32), np.array([1])))
    result = rec.wait_for(lambda e: isinstance(e, PromptResult))
    assert result.masks.shape == (3, 200, 300)
    assert result.low_res_logits.shape == (3, 256, 256)
    progress = rec.of(EncodeProgress)
    assert progress and progress[-1].total >= 4  # one step per encoder block at least


class SlowKeyBackend(ScriptedBackend):
    """A backend whose cache_key takes long to compute the first time (like hashing a
    multi-GB checkpoint)."""

    def __init__(self) -> None:
        super().__init__()
        self._key: str | None = None

    @property  # type: ignore[override]
    def cache_key(self) -> str:
        if self._key is None:
            time.sleep(0.5)
            self._key = "slow-key"
        return self._key

    @cache_key.setter
    def cache_key(self, value) -> None:
        pass


def test_calls_from_the_gui_thread_never_wait_for_the_cache_key(make_worker, images):
    worker, rec = make_worker(SlowKeyBackend(), memory_cache=DictCache())
    worker.prefetch([("b", images[1])])
    time.sleep(0.05)  # the prefetch thread is now computing the key
    start = time.perf_counter()
    worker.open_image(ImageRef("a", 1), images[0])
    worker.submit_prompt(ImageRef("a", 1), 1, POINT)
    assert time.perf_counter() - start < 0.1
    rec.wait_for(lambda e: isinstance(e, PromptResult))
