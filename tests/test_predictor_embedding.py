"""compute_embedding / set_embedding, progress, cancellation, thread budget, cache keys,
MedSAM preprocessing and bf16 precision."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import torch

from samdesk.engine.jobs import CancelToken
from samdesk.engine.predictor import Predictor
from samdesk.engine.predictor_images import preprocess
from samdesk.errors import CancelledError
from samdesk.model import hashing
from samdesk.model.bf16_matmul import bf16_matmuls_available
from samdesk.model.testing import save_random_checkpoint
from tests.test_predictor_official import PROMPTS, _image, _iou


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_random_checkpoint(tmp_path_factory.mktemp("emb") / "small.pth", "small", seed=2)


@pytest.fixture(scope="module")
def predictor(ckpt):
    return Predictor.from_checkpoint(
        ckpt, device="cpu", precision="fp32", hash_cache_dir=ckpt.parent
    )


def test_compute_embedding_leaves_state_and_set_embedding_equals_set_image(predictor):
    predictor.reset_image()
    img = _image((200, 300, 3))
    emb = predictor.compute_embedding(img)
    assert not predictor.is_image_set
    assert emb.features.shape == (256, 64, 64) and emb.features.dtype == np.float32
    assert emb.original_size == (200, 300) and emb.input_size == (683, 1024)
    assert emb.model_key == predictor.cache_key
    predictor.set_embedding(emb)
    via_embedding = predictor.predict(**PROMPTS["point"], return_logits=True)
    predictor.set_image(img)
    direct = predictor.predict(**PROMPTS["point"], return_logits=True)
    for a, b in zip(via_embedding, direct, strict=True):
        np.testing.assert_array_equal(a, b)
    assert predictor.original_size == (200, 300) and predictor.input_size == (683, 1024)
    predictor.reset_image()
    assert not predictor.is_image_set


def test_step_hook_reports_progress(predictor):
    seen: list[tuple[int, int]] = []
    predictor.compute_embedding(_image((64, 64, 3)), step_hook=lambda d, t: seen.append((d, t)))
    total = predictor.model.image_encoder.num_steps
    assert len(seen) == total and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_cancel_stops_between_steps(predictor):
    token = CancelToken()
    seen: list[int] = []

    def hook(done: int, total: int) -> None:
        seen.append(done)
        if done == 2:
            token.cancel("user switched image")

    with pytest.raises(CancelledError, match="switched"):
        predictor.compute_embedding(_image((64, 64, 3)), cancel=token, step_hook=hook)
    assert seen == [1, 2]
    early = CancelToken()
    early.cancel()
    with pytest.raises(CancelledError):
        predictor.compute_embedding(_image((64, 64, 3)), cancel=early)


def test_thread_budget_applies_to_the_encoding_thread_only(predictor):
    torch.set_num_threads(2)
    inside: list[int] = []
    foreground: list[int] = []

    def hook(done: int, total: int) -> None:
        inside.append(torch.get_num_threads())

    def background() -> None:
        predictor.compute_embedding(_image((64, 64, 3)), num_threads=1, step_hook=hook)
        inside.append(-torch.get_num_threads())  # restored after the call

    worker = threading.Thread(target=background)
    worker.start()
    while worker.is_alive():
        foreground.append(torch.get_num_threads())
        predictor.set_image(_image((200, 300, 3)))
        predictor.predict(**PROMPTS["point"])
    worker.join()
    assert set(inside[:-1]) == {1}
    assert inside[-1] == -2
    assert foreground and set(foreground) == {2}
    with pytest.raises(ValueError, match="num_threads"):
        predictor.compute_embedding(_image((8, 8, 3)), num_threads=0)


def test_cache_key_uses_a_remembered_sha256(ckpt, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = Predictor.from_checkpoint(ckpt, device="cpu", precision="fp32", hash_cache_dir=cache)
    key = first.cache_key
    kind, digest, precision, version = key.split(":")
    assert (kind, precision, version) == ("sam", "fp32", "sam-1") and len(digest) == 64
    assert (cache / hashing.SIDECAR_NAME).exists()

    def no_hashing(path):
        raise AssertionError("the sidecar should have been used")

    monkeypatch.setattr(hashing, "_file_sha256", no_hashing)
    second = Predictor.from_checkpoint(ckpt, device="cpu", precision="fp32", hash_cache_dir=cache)
    assert second.cache_key == key
    monkeypatch.undo()
    copy = tmp_path / "copy.pth"
    copy.write_bytes(ckpt.read_bytes())
    assert hashing.checkpoint_sha256(copy, cache) == digest
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content, new mtime
    copy.write_bytes(bytes(data))
    os.utime(copy, ns=(1, 1))
    assert hashing.checkpoint_sha256(copy, cache) != digest


def test_medsam_preprocessing(ckpt):
    img = _image((300, 500, 3))
    x, input_size = preprocess(img, "medsam")
    assert input_size == (1024, 1024) and x.shape == (1, 3, 1024, 1024)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    medsam = Predictor.from_checkpoint(ckpt, device="cpu", preprocessing="medsam")
    sam = Predictor.from_checkpoint(ckpt, device="cpu", preprocessing="sam")
    assert medsam.cache_key.endswith("medsam-1") and medsam.cache_key != sam.cache_key
    assert "MedSAM" in medsam.name
    medsam.set_image(img)
    masks, _, _ = medsam.predict(box=np.array([50.0, 40.0, 300.0, 250.0]))
    assert masks.shape == (3, 300, 500) and medsam.input_size == (1024, 1024)


@pytest.mark.parametrize("path", ["this CPU's", "autocast"])
def test_bf16_keeps_the_masks(ckpt, path):
    fp32 = Predictor.from_checkpoint(ckpt, device="cpu", precision="fp32")
    bf16 = Predictor.from_checkpoint(ckpt, device="cpu", precision="bf16")
    assert bf16.cache_key != fp32.cache_key
    # AMX-BF16 CPUs run bf16 as float32 with bf16 products (ADR 0071), others autocast
    assert bf16.cache_key.split(":")[2] == ("bf16-products" if bf16_matmuls_available() else "bf16")
    if path == "autocast":
        bf16._bf16_products = False  # the other path, on any CPU
    img = _image((480, 640, 3), seed=4)
    fp32.set_image(img)
    bf16.set_image(img)
    e32 = fp32.get_image_embedding()
    e16 = bf16.get_image_embedding()
    assert e16.dtype == torch.float32
    rel = float((e16 - e32).norm() / e32.norm())
    assert 1e-5 < rel < 0.05, rel  # really lower precision, and close
    for name in ("point", "box", "points+box"):
        m32 = fp32.predict(**PROMPTS[name])[0]
        m16 = bf16.predict(**PROMPTS[name])[0]
        assert np.mean([_iou(a, b) for a, b in zip(m16, m32, strict=True)]) >= 0.98
