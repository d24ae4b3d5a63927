"""precision="int8": masks still match the official fp32 output (IoU >= 0.98), the precision is
part of the cache key, and int8 falls back to fp32 where it cannot run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samdesk.engine import precision as precision_mod
from samdesk.engine.predictor import Predictor
from samdesk.model import hashing
from samdesk.model.bf16_matmul import bf16_matmuls_available
from samdesk.model.int8 import int8_kernels_available
from samdesk.model.testing import save_random_checkpoint
from tests.support.official import official_predictor
from tests.test_predictor_official import PROMPTS, _image, _iou

needs_kernels = pytest.mark.skipif(
    not int8_kernels_available(),
    reason="this CPU/torch has no oneDNN int8 linear (x86 with AVX2 needed)",
)


def _compare_with_official(ours: Predictor, theirs, image: np.ndarray) -> tuple[float, float]:
    """(embedding relative error, mean mask IoU over every prompt and mask) vs official fp32;
    also checks that the logits keep their structure."""
    ours.set_image(image)
    theirs.set_image(image)
    emb, ref = ours.get_image_embedding(), theirs.features
    rel = float((emb - ref).norm() / ref.norm())
    ious = []
    for prompt in PROMPTS.values():
        for multimask in (True, False):
            masks, scores, low = ours.predict(**prompt, multimask_output=multimask)
            o_masks, o_scores, o_low = theirs.predict(**prompt, multimask_output=multimask)
            assert masks.shape == o_masks.shape and masks.dtype == bool
            assert 0.001 < o_masks.mean() < 0.999  # IoU only means something on mixed masks
            assert np.corrcoef(low.ravel(), o_low.ravel())[0, 1] > 0.99
            np.testing.assert_allclose(scores, o_scores, atol=0.05)
            ious += [_iou(m, o) for m, o in zip(masks, o_masks, strict=True)]
    return rel, float(np.mean(ious))


@needs_kernels
def test_int8_small_network_keeps_the_official_masks(tmp_path):
    path = save_random_checkpoint(tmp_path / "small.pth", "small", seed=3)
    ours = Predictor.from_checkpoint(path, device="cpu", precision="int8", hash_cache_dir=tmp_path)
    fp32 = Predictor.from_checkpoint(path, device="cpu", precision="fp32", hash_cache_dir=tmp_path)
    assert ours.precision == "int8" and fp32.precision == "fp32"
    # on a CPU with AMX-BF16 the attention products run in bf16 too, a different embedding
    variant = "int8-bf16attn" if bf16_matmuls_available() else "int8"
    assert ours.cache_key.split(":")[2] == variant and ours.cache_key != fp32.cache_key
    rel, iou = _compare_with_official(ours, official_predictor(path), _image((480, 640, 3), 4))
    # measured: relative error 0.015, IoU 0.99 (bf16 on the same network: 0.006, 0.996)
    assert 1e-4 < rel < 0.04, rel
    assert iou >= 0.98, iou


@needs_kernels
@pytest.mark.slow
def test_int8_vit_b_keeps_the_official_masks(tmp_path):
    path = save_random_checkpoint(tmp_path / "sam_vit_b.pth", "vit_b", seed=5)
    ours = Predictor.from_checkpoint(path, device="cpu", precision="int8", hash_cache_dir=tmp_path)
    assert ours.arch == "vit_b" and ours.precision == "int8"
    rel, iou = _compare_with_official(ours, official_predictor(path), _image((600, 800, 3), 6))
    assert 1e-4 < rel < 0.04, rel
    assert iou >= 0.98, iou


def test_int8_falls_back_to_fp32_without_kernels(tmp_path, monkeypatch):
    path = save_random_checkpoint(tmp_path / "small.pth", "small", seed=1)
    monkeypatch.setattr(precision_mod, "int8_kernels_available", lambda: False)
    auto = Predictor.from_checkpoint(path, device="cpu", precision="auto")
    # an AMX-BF16 CPU picks bf16 when int8 cannot run; others fp32
    assert auto.precision == ("bf16" if precision_mod.cpu_has_amx_bf16() else "fp32")
    pred = Predictor.from_checkpoint(path, device="cpu", precision="int8")
    assert pred.precision == "fp32" and pred.cache_key.split(":")[2] == "fp32"
    exact = Predictor.from_checkpoint(path, device="cpu", precision="fp32")
    pred.set_image(_image((100, 120, 3)))
    exact.set_image(_image((100, 120, 3)))
    torch.testing.assert_close(pred.get_image_embedding(), exact.get_image_embedding())


def test_mobile_sam_int8_request_runs_fp32(tmp_path):
    path = save_random_checkpoint(tmp_path / "mobile_sam.pt", "tiny_vit", seed=0)
    pred = Predictor.from_checkpoint(path, device="cpu", precision="int8", hash_cache_dir=tmp_path)
    assert pred.arch == "tiny_vit" and pred.precision == "fp32"


def test_default_hash_folder_honours_samdesk_cache_dir(tmp_path, monkeypatch):
    path = save_random_checkpoint(tmp_path / "small.pth", "small", seed=2)
    cache = tmp_path / "redirected cache"
    monkeypatch.setenv("SAMDESK_CACHE_DIR", str(cache))
    pred = Predictor.from_checkpoint(path, device="cpu", precision="fp32")
    assert len(pred.cache_key.split(":")[1]) == 64
    assert (cache / hashing.SIDECAR_NAME).exists()
