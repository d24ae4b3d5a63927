"""Bad input to the Predictor gets a typed error that says what to do; nothing half-happens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samdesk.engine.backend import Backend
from samdesk.engine.embedding import Embedding
from samdesk.engine.predictor import Predictor
from samdesk.errors import DeviceError, InputError, PromptError, SamdeskError
from samdesk.model.testing import save_random_checkpoint

POINT = dict(point_coords=np.array([[10.0, 20.0]]), point_labels=np.array([1]))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_random_checkpoint(tmp_path_factory.mktemp("in") / "small.pth", "small", seed=0)


@pytest.fixture(scope="module")
def predictor(ckpt):
    p = Predictor.from_checkpoint(ckpt, device="cpu", precision="fp32", hash_cache_dir=ckpt.parent)
    p.set_image(np.zeros((40, 60, 3), np.uint8))
    return p


def test_is_a_backend(predictor):
    assert isinstance(predictor, Backend)
    assert predictor.name == "SAM (custom architecture)" and predictor.device == "cpu"
    assert predictor.arch == "custom" and predictor.precision == "fp32"


def test_predict_before_set_image(ckpt):
    fresh = Predictor.from_checkpoint(ckpt, device="cpu", hash_cache_dir=ckpt.parent)
    with pytest.raises(InputError, match="set_image"):
        fresh.predict(**POINT)
    with pytest.raises(InputError, match="set_image"):
        fresh.get_image_embedding()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "no prompt"),
        (dict(point_coords=np.array([[1.0, 2.0]])), "together"),
        (dict(point_coords=np.array([[1.0, 2.0]]), point_labels=np.array([1, 0])), "one label"),
        (dict(point_coords=np.array([1.0, 2.0]), point_labels=np.array([1])), r"\(N, 2\)"),
        (dict(point_coords=np.array([[1.0, 2.0]]), point_labels=np.array([2])), "1 .*or 0"),
        (dict(point_coords=np.array([[1.0, np.nan]]), point_labels=np.array([1])), "NaN"),
        (dict(point_coords=np.array([[70.0, 10.0]]), point_labels=np.array([1])), "outside"),
        (dict(point_coords=np.array([[10.0, -5.0]]), point_labels=np.array([1])), "outside"),
        (dict(box=np.array([30.0, 5.0, 10.0, 20.0])), "x1 < x0"),
        (dict(box=np.array([1.0, 2.0, 3.0])), "x0, y0, x1, y1"),
        (dict(box=np.array([0.0, 0.0, 500.0, 20.0])), "outside"),
        (dict(mask_input=np.zeros((256, 256), np.float32)), r"\(1, 256, 256\)"),
        (dict(mask_input=np.zeros((1, 64, 64), np.float32)), r"\(1, 256, 256\)"),
    ],
)
def test_bad_prompts(predictor, kwargs, match):
    with pytest.raises(PromptError, match=match):
        predictor.predict(**kwargs)


def test_points_slightly_outside_are_clipped_onto_the_edge(predictor):
    outside = predictor.predict(np.array([[61.5, -1.0]]), np.array([1]), return_logits=True)
    edge = predictor.predict(np.array([[60.0, 0.0]]), np.array([1]), return_logits=True)
    np.testing.assert_array_equal(outside[0], edge[0])


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((10, 10, 3), np.uint16), "8-bit"),
        (np.zeros((10, 10, 4), np.uint8), "alpha"),
        (np.zeros((10, 10, 3, 1), np.uint8), "shape"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_images_leave_the_current_image(predictor, image, match):
    before = predictor.get_image_embedding().clone()
    with pytest.raises(InputError, match=match):
        predictor.set_image(image)
    assert predictor.is_image_set and torch.equal(predictor.get_image_embedding(), before)


def test_bad_options(ckpt, predictor):
    with pytest.raises(InputError, match="image_format"):
        predictor.set_image(np.zeros((4, 4, 3), np.uint8), image_format="HSV")
    with pytest.raises(InputError, match="precision"):
        Predictor.from_checkpoint(ckpt, device="cpu", precision="fp8")
    with pytest.raises(InputError, match="preprocessing"):
        Predictor.from_checkpoint(ckpt, device="cpu", preprocessing="clahe")
    with pytest.raises(DeviceError):
        Predictor.from_checkpoint(ckpt, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CPU instead"):
            Predictor.from_checkpoint(ckpt, device="cuda")


def test_foreign_embedding_is_refused(predictor):
    foreign = Embedding(np.zeros((256, 64, 64), np.float32), (40, 60), (683, 1024), "other")
    with pytest.raises(InputError, match="different model"):
        predictor.set_embedding(foreign)
    wrong_shape = Embedding(
        np.zeros((3, 3), np.float32), (40, 60), (683, 1024), predictor.cache_key
    )
    with pytest.raises(InputError, match="shape"):
        predictor.set_embedding(wrong_shape)


def test_every_error_is_a_samdesk_error():
    assert issubclass(PromptError, SamdeskError) and issubclass(DeviceError, SamdeskError)


def test_out_of_memory_is_a_model_error(ckpt, predictor, monkeypatch):
    from samdesk.errors import ModelError
    from samdesk.model.image_encoder import ImageEncoderViT

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(ImageEncoderViT, "forward", no_memory)
    with pytest.raises(ModelError, match="not enough memory"):
        predictor.compute_embedding(np.zeros((8, 8), np.uint8))
    monkeypatch.setattr("samdesk.engine.predictor.load_sam", no_memory)
    with pytest.raises(ModelError, match="not enough memory"):
        Predictor.from_checkpoint(ckpt, device="cpu")


def test_gpu_out_of_memory_while_encoding_is_a_device_error(ckpt, monkeypatch):
    """Fault 21: an OOM inside the encoder becomes a DeviceError naming what to do, the freed
    CUDA cache is returned, and the predictor keeps its previous image and still answers."""
    predictor = Predictor.from_checkpoint(ckpt, device="cpu", precision="fp32")
    image = np.zeros((40, 60, 3), np.uint8)
    predictor.set_image(image)
    before = predictor.get_image_embedding().clone()
    released = []
    monkeypatch.setattr("samdesk.engine.predictor._release_cuda_memory", lambda: released.append(1))

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(predictor.model.image_encoder, "forward", out_of_memory)
    with pytest.raises(DeviceError, match="switch the device to CPU"):
        predictor.set_image(np.full((40, 60, 3), 200, np.uint8))
    assert released == [1]
    assert torch.equal(predictor.get_image_embedding(), before)
    masks, _, _ = predictor.predict(point_coords=np.array([[10, 10]]), point_labels=np.array([1]))
    assert masks.shape == (3, 40, 60)
