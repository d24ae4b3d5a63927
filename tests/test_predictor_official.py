"""With precision="fp32" samdesk's Predictor gives segment-anything's / MobileSAM's results.

Both run on the same seeded random weights saved in the official layout. Random networks give
noisy masks, so besides mask IoU and scores the logits themselves are compared (correlation and
max abs difference relative to their scale).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import numpy as np
import pytest

from samdesk.engine.predictor import Predictor
from samdesk.model.testing import save_random_checkpoint
from tests.support.official import official_predictor, stand_ins

PROMPTS = {
    "point": dict(point_coords=np.array([[120.0, 90.0]]), point_labels=np.array([1])),
    "points": dict(
        point_coords=np.array([[120.0, 90.0], [40.0, 200.0], [280.0, 30.0]]),
        point_labels=np.array([1, 0, 1]),
    ),
    "box": dict(box=np.array([30.0, 20.0, 260.0, 210.0])),
    "points+box": dict(
        point_coords=np.array([[120.0, 90.0]]),
        point_labels=np.array([0]),
        box=np.array([30.0, 20.0, 260.0, 210.0]),
    ),
}


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A smooth synthetic picture (gradients + a disc) plus noise, uint8."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    disc = ((yy - h * 0.4) ** 2 + (xx - w * 0.5) ** 2) < (min(h, w) * 0.25) ** 2
    base = np.stack([xx * 255 / w, yy * 255 / h, disc * 200.0], axis=-1)
    img = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    return img if len(shape) == 3 else img[..., 0]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def assert_same(ours: tuple, theirs: tuple, *, min_iou: float = 0.995, score_tol: float = 2e-3):
    masks, scores, low = ours
    o_masks, o_scores, o_low = theirs
    assert masks.shape == o_masks.shape and masks.dtype == o_masks.dtype
    assert scores.shape == o_scores.shape and scores.dtype == np.float32
    assert low.shape == o_low.shape and low.dtype == np.float32
    np.testing.assert_allclose(scores, o_scores, atol=score_tol)
    scale = float(np.abs(o_low).max())
    assert np.abs(low - o_low).max() <= 1e-3 * scale
    assert np.corrcoef(low.ravel(), o_low.ravel())[0, 1] > 0.9999
    if masks.dtype == bool:
        ious = [_iou(m, o) for m, o in zip(masks, o_masks, strict=True)]
        assert np.mean(ious) >= min_iou, ious
        # the random network must give masks that are neither empty nor full, or IoU says little
        assert 0.001 < o_masks.mean() < 0.999
    else:
        assert np.abs(masks - o_masks).max() <= 1e-3 * float(np.abs(o_masks).max())


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory):
    path = save_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "small.pth", "small", seed=3)
    ours = Predictor.from_checkpoint(
        path, device="cpu", precision="fp32", hash_cache_dir=path.parent
    )
    return ours, official_predictor(path)


@pytest.mark.parametrize("shape", [(300, 500, 3), (1536, 2048, 3)])
def test_small_network_matches_official(small_pair, shape):
    ours, theirs = small_pair
    img = _image(shape)
    ours.set_image(img)
    theirs.set_image(img)
    emb, o_emb = ours.get_image_embedding().numpy(), theirs.features.numpy()
    assert emb.shape == o_emb.shape == (1, 256, 64, 64)
    assert np.abs(emb - o_emb).max() <= 1e-4 * np.abs(o_emb).max()
    assert ours.original_size == tuple(theirs.original_size)
    assert ours.input_size == tuple(theirs.input_size)
    for name, prompt in PROMPTS.items():
        for multimask in (True, False):
            ours_out = ours.predict(**prompt, multimask_output=multimask)
            theirs_out = theirs.predict(**prompt, multimask_output=multimask)
            assert ours_out[0].shape[0] == (3 if multimask else 1), name
            assert_same(ours_out, theirs_out)


def test_small_network_mask_input_and_logits_match_official(small_pair):
    ours, theirs = small_pair
    img = _image((300, 500, 3), seed=1)
    ours.set_image(img)
    theirs.set_image(img)
    first = theirs.predict(**PROMPTS["point"], multimask_output=True)
    mask_input = first[2][np.argmax(first[1])][None]
    for kwargs in (
        dict(**PROMPTS["points"], mask_input=mask_input, multimask_output=False),
        dict(mask_input=mask_input, multimask_output=True),
    ):
        assert_same(ours.predict(**kwargs), theirs.predict(**kwargs))
    ours_logits = ours.predict(**PROMPTS["box"], return_logits=True)
    theirs_logits = theirs.predict(**PROMPTS["box"], return_logits=True)
    assert ours_logits[0].dtype == np.float32
    assert_same(ours_logits, theirs_logits)


def test_gray_and_bgr_images_match_official_on_rgb(small_pair):
    ours, theirs = small_pair
    gray = _image((240, 320))
    ours.set_image(gray)
    theirs.set_image(np.repeat(gray[:, :, None], 3, axis=2))
    assert_same(ours.predict(**PROMPTS["point"]), theirs.predict(**PROMPTS["point"]))
    rgb = _image((240, 320, 3), seed=5)
    ours.set_image(np.ascontiguousarray(rgb[:, :, ::-1]), image_format="BGR")
    theirs.set_image(rgb)
    assert_same(ours.predict(**PROMPTS["box"]), theirs.predict(**PROMPTS["box"]))


def test_mobile_sam_tiny_vit_matches_official(tmp_path):
    path = save_random_checkpoint(tmp_path / "mobile_sam.pt", "tiny_vit", seed=4)
    ours = Predictor.from_checkpoint(path, device="cpu", precision="fp32", hash_cache_dir=tmp_path)
    theirs = official_predictor(path)
    assert ours.arch == "tiny_vit"
    img = _image((300, 500, 3), seed=2)
    ours.set_image(img)
    theirs.set_image(img)
    emb, o_emb = ours.get_image_embedding().numpy(), theirs.features.numpy()
    assert np.abs(emb - o_emb).max() <= 1e-4 * np.abs(o_emb).max()
    for name in ("point", "points+box"):
        for multimask in (True, False):
            kwargs = dict(**PROMPTS[name], multimask_output=multimask)
            assert_same(ours.predict(**kwargs), theirs.predict(**kwargs))


@pytest.mark.slow
def test_full_vit_b_network_matches_official(tmp_path):
    path = save_random_checkpoint(tmp_path / "sam_vit_b.pth", "vit_b", seed=5)
    ours = Predictor.from_checkpoint(path, device="cpu", precision="fp32", hash_cache_dir=tmp_path)
    theirs = official_predictor(path)
    assert ours.arch == "vit_b"
    img = _image((600, 800, 3), seed=6)
    ours.set_image(img)
    theirs.set_image(img)
    emb, o_emb = ours.get_image_embedding().numpy(), theirs.features.numpy()
    assert np.abs(emb - o_emb).max() <= 1e-4 * np.abs(o_emb).max()
    for name in ("point", "box", "points+box"):
        assert_same(ours.predict(**PROMPTS[name]), theirs.predict(**PROMPTS[name]))


@pytest.mark.gpu
def test_cuda_matches_official_on_the_cpu(tmp_path, monkeypatch):
    import torch

    # compare like with like: no TF32 shortcuts in the GPU's convolutions
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    path = save_random_checkpoint(tmp_path / "small.pth", "small", seed=7)
    ours = Predictor.from_checkpoint(path, device="cuda", precision="fp32", hash_cache_dir=tmp_path)
    assert ours.device.startswith("cuda")
    theirs = official_predictor(path)
    img = _image((300, 500, 3), seed=8)
    ours.set_image(img)
    theirs.set_image(img)
    for name in ("point", "points+box"):
        assert_same(ours.predict(**PROMPTS[name]), theirs.predict(**PROMPTS[name]))


@pytest.mark.parametrize("name", ["torchvision", "timm"])
def test_stand_ins_for_the_official_packages_do_not_leak(name):
    if name not in sys.modules and importlib.util.find_spec(name) is not None:
        pytest.skip(f"the real {name} is installed; no stand-in is used")
    assert name not in sys.modules  # other code in this process sees no fake package
    with pytest.raises(ImportError):
        importlib.import_module(name)
    with stand_ins():
        assert importlib.import_module(name) is sys.modules[name]
    assert name not in sys.modules
