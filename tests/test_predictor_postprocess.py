"""The click-path shortcuts give the official numbers: OpenCV post-processing, the decoder's
matrix-product upscaling and the per-image decoder cache."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from samdesk.engine.predictor_images import postprocess, postprocess_numpy, resized_shape
from samdesk.model.config import DecoderConfig
from samdesk.model.mask_decoder import MaskDecoder
from samdesk.model.testing import SMALL_CONFIG, random_sam_state_dict
from samdesk.model.transformer import TwoWayTransformer
from tests.support.official import segment_anything


def _official_postprocess(low: torch.Tensor, input_size, original_size) -> torch.Tensor:
    fake_sam = SimpleNamespace(image_encoder=SimpleNamespace(img_size=1024))
    return segment_anything.modeling.Sam.postprocess_masks(fake_sam, low, input_size, original_size)


@pytest.mark.parametrize(
    "original", [(300, 500), (1536, 2048), (1024, 1024), (100, 2000), (2000, 99), (5, 7)]
)
def test_postprocessing_equals_official(original):
    gen = torch.Generator().manual_seed(sum(original))
    low = torch.randn(1, 3, 256, 256, generator=gen) * 4
    input_size = resized_shape(*original, 1024)
    ref = _official_postprocess(low, input_size, original)[0]
    torch.testing.assert_close(postprocess(low, input_size, original)[0], ref)
    logits = postprocess_numpy(low[0].numpy(), input_size, original, threshold=None)
    assert logits.shape == (3, *original) and logits.dtype == np.float32
    # OpenCV interpolates with float32 coefficients: differences are 1e-4 of the logit scale
    np.testing.assert_allclose(logits, ref.numpy(), atol=2e-3)
    masks = postprocess_numpy(low[0].numpy(), input_size, original)
    assert masks.dtype == bool
    differ = masks != (ref.numpy() > 0)
    assert np.all(np.abs(ref.numpy()[differ]) < 2e-3)  # only near-ties can flip
    assert differ.mean() < 1e-3


@pytest.fixture(scope="module")
def decoder() -> MaskDecoder:
    cfg = DecoderConfig()
    dec = MaskDecoder(
        transformer_dim=256,
        transformer=TwoWayTransformer(cfg.depth, 256, cfg.num_heads, cfg.mlp_dim),
    )
    sd = random_sam_state_dict(SMALL_CONFIG, seed=9)
    prefix = "mask_decoder."
    dec.load_state_dict({k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)})
    return dec.eval()


def test_upscaling_by_matrix_products_equals_transposed_convolutions(decoder):
    gen = torch.Generator().manual_seed(0)
    src = torch.randn(1, 64 * 64, 256, generator=gen)
    hyper_in = torch.randn(1, 3, 32, generator=gen)
    with torch.inference_mode():
        ours = decoder._upscale_and_project(src, hyper_in, 64, 64)
        up = decoder.output_upscaling(src.transpose(1, 2).reshape(1, 256, 64, 64))
        ref = (hyper_in @ up.view(1, 32, -1)).view(1, 3, 256, 256)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_decoder_image_cache_gives_the_same_masks(decoder):
    gen = torch.Generator().manual_seed(1)
    image = torch.randn(1, 256, 64, 64, generator=gen)
    pe = torch.randn(1, 256, 64, 64, generator=gen)
    dense = torch.randn(1, 256, 1, 1, generator=gen).expand(1, 256, 64, 64)
    cache: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for n_tokens in (2, 5, 2):
            sparse = torch.randn(1, n_tokens, 256, generator=gen)
            plain = decoder(image, pe, sparse, dense, multimask_output=True)
            cached = decoder(image, pe, sparse, dense, multimask_output=True, image_cache=cache)
            for a, b in zip(plain, cached, strict=True):
                torch.testing.assert_close(a, b)
    assert {"src", "t2i_k", "t2i_v", "i2t_q"} <= cache.keys()


def test_single_mask_output_is_the_first_token(decoder):
    gen = torch.Generator().manual_seed(2)
    args = [torch.randn(1, 256, 64, 64, generator=gen) for _ in range(2)]
    sparse = torch.randn(1, 3, 256, generator=gen)
    dense = torch.zeros(1, 256, 64, 64)
    with torch.inference_mode():
        multi_masks, multi_iou = decoder(*args, sparse, dense, multimask_output=True)
        one_mask, one_iou = decoder(*args, sparse, dense, multimask_output=False)
    assert multi_masks.shape == (1, 3, 256, 256) and one_mask.shape == (1, 1, 256, 256)
    assert multi_iou.shape == (1, 3) and one_iou.shape == (1, 1)
    assert not torch.allclose(one_mask[0, 0], multi_masks[0, 0])
