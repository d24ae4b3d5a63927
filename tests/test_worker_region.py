"""The inference worker in region mode (ADR 0066): the crop is encoded and cached under its box,
prompts are shifted into it, masks come back at the crop's exact offset; huge images report
their size so the app can offer to open them anyway."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samdesk.engine.region import Region
from samdesk.engine.worker import (
    EmbeddingReady,
    EncodeProgress,
    ImageFailed,
    ImageLoaded,
    ImageRef,
    Prompt,
    PromptResult,
    WorkerError,
)
from tests.test_worker import DictCache, Recorder, ScriptedBackend

DISC = (900, 100, 30)  # centre x, centre y, radius
SIZE = (1200, 200)  # width, height


def disc_image(path: Path) -> Path:
    width, height = SIZE
    rng = np.random.default_rng(1)
    image = rng.normal(40, 6, (height, width, 3))
    yy, xx = np.mgrid[:height, :width]
    cx, cy, r = DISC
    inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    image[inside] = (230, 80, 80)
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
    return path


def click(x: float, y: float, region: Region | None = None, **kw) -> Prompt:
    coords = np.array([[x, y]], np.float32)
    return Prompt(coords, np.array([1], np.int32), region=region, **kw)


def test_classic_region_result_is_the_crop_result_at_the_offset(make_worker, tmp_path):
    from samdesk.engine.classic import ClassicBackend

    path = disc_image(tmp_path / "wide.png")
    worker, rec = make_worker(None)
    ref = ImageRef("w", 1)
    worker.open_image(ref, path)
    loaded = rec.wait_for(lambda e: isinstance(e, ImageLoaded))
    rec.wait_for(lambda e: isinstance(e, EmbeddingReady))
    region = Region(700, 0, 1100, 200)
    worker.submit_prompt(ref, 1, click(900, 100, region))
    result = rec.wait_for(lambda e: isinstance(e, PromptResult))
    assert result.region == region
    assert result.masks.shape == (1, 200, 400)  # the crop's size, not the image's
    ready = [e for e in rec.of(EmbeddingReady) if e.region is not None]
    assert [e.region for e in ready] == [region]

    direct = ClassicBackend()
    direct.set_image(loaded.image.rgb[0:200, 700:1100])
    masks, scores, _ = direct.predict(np.array([[200.0, 100.0]]), np.array([1]))
    assert np.array_equal(result.masks, masks)
    assert np.array_equal(result.scores, scores)

    full = result.full_masks((200, 1200))
    assert full.shape == (1, 200, 1200)
    assert np.array_equal(full[0, :, 700:1100], masks[0])
    assert not full[0, :, :700].any() and not full[0, :, 1100:].any()
    ys, xs = np.nonzero(full[0])
    cx, cy, r = DISC
    assert abs(xs.min() - (cx - r)) <= 2 and abs(xs.max() - (cx + r)) <= 2
    assert abs(ys.min() - (cy - r)) <= 2 and abs(ys.max() - (cy + r)) <= 2


def test_region_embedding_is_cached_under_its_box(make_worker, tmp_path):
    path = disc_image(tmp_path / "wide.png")
    backend = ScriptedBackend(steps=2, step_s=0.0)
    cache = DictCache()
    worker, rec = make_worker(backend, memory_cache=cache)
    ref = ImageRef("w", 1)
    worker.open_image(ref, path)
    rec.wait_for(lambda e: isinstance(e, EmbeddingReady))
    a, b = Region(700, 0, 1100, 200), Region(0, 0, 300, 200)
    plan = [(a, 900), (a, 800), (None, 50), (b, 50), (a, 1000), (None, 60)]
    for seq, (region, x) in enumerate(plan, start=1):
        worker.submit_prompt(ref, seq, click(x, 100, region))
        result = rec.wait_for(lambda e, s=seq: isinstance(e, PromptResult) and e.seq == s)
        shape = (200, 1200) if region is None else region.shape
        assert result.masks.shape[1:] == shape and result.region == region
    # whole image once (the open), a and b once each: revisiting a region is a cache hit
    assert [shape for shape, _ in backend.encodes_shapes] == [(200, 1200), (200, 400), (200, 300)]
    sources = [(e.region, e.source) for e in rec.of(EmbeddingReady)]
    assert sources == [(None, "computed"), (a, "computed"), (b, "computed"), (a, "memory")]
    assert len(cache.data) == 3


def test_a_point_outside_the_region_is_an_error_not_a_mask(make_worker, tmp_path):
    path = disc_image(tmp_path / "wide.png")
    worker, rec = make_worker(ScriptedBackend(steps=1, step_s=0.0))
    ref = ImageRef("w", 1)
    worker.open_image(ref, path)
    rec.wait_for(lambda e: isinstance(e, EmbeddingReady))
    worker.submit_prompt(ref, 1, click(50, 100, Region(700, 0, 1100, 200)))
    error = rec.wait_for(lambda e: isinstance(e, WorkerError))
    assert "outside the region" in error.message and error.ref == ref
    assert not rec.of(PromptResult)


def test_over_the_cap_reports_the_size_and_opens_with_a_lifted_cap(
    make_worker, tmp_path, monkeypatch
):
    monkeypatch.setenv("SAMDESK_MAX_IMAGE_PIXELS", "5000")
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((100, 200, 3), np.uint8)).save(path)
    worker, rec = make_worker(ScriptedBackend(steps=1, step_s=0.0))
    worker.open_image(ImageRef("b", 1), path)
    failed = rec.wait_for(lambda e: isinstance(e, ImageFailed))
    assert (failed.width, failed.height, failed.pixels, failed.limit) == (200, 100, 20_000, 5000)
    worker.open_image(ImageRef("b", 2), path, max_pixels=failed.pixels)
    loaded = rec.wait_for(lambda e: isinstance(e, ImageLoaded))
    assert loaded.ref.generation == 2 and loaded.image.rgb.shape == (100, 200, 3)
    # an image that fails for another reason carries no size
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    worker.open_image(ImageRef("x", 3), bad)
    other = rec.wait_for(lambda e: isinstance(e, ImageFailed) and e.ref.generation == 3)
    assert other.pixels is None and other.width is None


@pytest.fixture(autouse=True)
def _record_shapes(monkeypatch):
    """ScriptedBackend records encodes by mean value; these tests want the encoded shapes."""
    original = ScriptedBackend.compute_embedding

    def compute(self, image, **kw):
        if not hasattr(self, "encodes_shapes"):
            self.encodes_shapes = []
        self.encodes_shapes.append((image.shape[:2], kw.get("num_threads")))
        return original(self, image, **kw)

    monkeypatch.setattr(ScriptedBackend, "compute_embedding", compute)


def test_real_predictor_region_equals_the_crop(make_worker, tmp_path):
    from samdesk.engine.predictor import Predictor
    from samdesk.model.testing import save_random_checkpoint

    ckpt = save_random_checkpoint(tmp_path / "small.pth", arch="small", seed=0)
    predictor = Predictor.from_checkpoint(ckpt, device="cpu", precision="fp32")
    path = disc_image(tmp_path / "wide.png")
    worker, rec = make_worker(predictor, memory_cache=DictCache())
    ref = ImageRef("w", 1)
    worker.open_image(ref, path)
    loaded = rec.wait_for(lambda e: isinstance(e, ImageLoaded))
    region = Region(700, 0, 1100, 200)
    worker.submit_prompt(ref, 1, click(900, 100, region))
    result = rec.wait_for(lambda e: isinstance(e, PromptResult))
    assert result.masks.shape == (3, 200, 400)

    direct = Predictor.from_checkpoint(ckpt, device="cpu", precision="fp32")
    direct.set_image(loaded.image.rgb[0:200, 700:1100])
    masks, scores, logits = direct.predict(np.array([[200.0, 100.0]]), np.array([1]))
    assert np.array_equal(result.masks, masks)
    np.testing.assert_allclose(result.scores, scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.low_res_logits, logits, rtol=1e-4, atol=1e-4)


def _encoding_again(rec: Recorder, seen: int, timeout: float = 10.0) -> None:
    """Wait until an encode reports progress after the first ``seen`` events (events compare
    equal across encodes, so this looks at positions, not values)."""
    deadline = time.monotonic() + timeout
    with rec.cond:
        while not any(isinstance(e, EncodeProgress) for e in rec.events[seen:]):
            left = deadline - time.monotonic()
            assert left > 0, f"no encode started; got {rec.types()}"
            rec.cond.wait(left)


def test_a_region_encode_nobody_waits_for_is_cancelled(make_worker, tmp_path: Path) -> None:
    """Esc + a click in another region, or a withdrawn prompt: the old crop's encode stops at
    its next step instead of running to the end (review finding 4)."""
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((300, 3000, 3), np.uint8)).save(path)
    worker, rec = make_worker(ScriptedBackend(steps=20, step_s=0.05))  # a 1 s encode
    ref = ImageRef("a", 1)
    worker.open_image(ref, path)
    rec.wait_for(lambda e: isinstance(e, EmbeddingReady))
    a, b = Region(0, 0, 500, 300), Region(2000, 0, 2500, 300)
    seen = len(rec.events)
    worker.submit_prompt(ref, 1, click(100, 100, a))
    _encoding_again(rec, seen)  # region a is being encoded
    worker.submit_prompt(ref, 2, click(2100, 100, b))  # supersedes seq 1
    rec.wait_for(lambda e: isinstance(e, PromptResult) and e.seq == 2, timeout=30)
    regions = [e.region for e in rec.of(EmbeddingReady)]
    assert b in regions and a not in regions
    assert [e.seq for e in rec.of(PromptResult)] == [2]

    c = Region(1000, 0, 1500, 300)
    seen = len(rec.events)
    worker.submit_prompt(ref, 3, click(1100, 100, c))
    _encoding_again(rec, seen)
    worker.cancel_prompts(ref)  # the object was cleared
    worker.submit_prompt(ref, 4, click(2200, 100, b))  # b is cached: answered at once
    rec.wait_for(lambda e: isinstance(e, PromptResult) and e.seq == 4, timeout=30)
    assert c not in [e.region for e in rec.of(EmbeddingReady)]
    assert [e.seq for e in rec.of(PromptResult)] == [2, 4]
    assert rec.of(WorkerError) == []


def test_the_previous_images_pixels_are_released_when_another_opens(
    make_worker, tmp_path: Path
) -> None:
    """The pixels kept for region crops of a huge image are dropped as soon as another image
    is asked for, not after it has been decoded (review finding 5)."""
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((16, 5000, 3), np.uint8)).save(big)
    worker, rec = make_worker(ScriptedBackend(steps=1, step_s=0.0))
    worker.open_image(ImageRef("a", 1), big)
    rec.wait_for(lambda e: isinstance(e, EmbeddingReady))
    assert worker._current is not None and worker._current.image is not None  # kept: huge
    worker.open_image(ImageRef("b", 2), tmp_path / "missing.png")
    rec.wait_for(lambda e: isinstance(e, ImageFailed))
    assert worker._current is None or worker._current.image is None
