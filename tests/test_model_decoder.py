"""The decoder's rearranged attentions between few prompt tokens and many image tokens compute
what the plain attention computes (ADR 0017)."""

from __future__ import annotations

import pytest
import torch

from samdesk.model.transformer import Attention


@pytest.fixture
def attention() -> Attention:
    torch.manual_seed(0)
    attn = Attention(embedding_dim=64, num_heads=4, downsample_rate=2).eval()
    with torch.no_grad():
        for linear in (attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj):
            linear.bias.normal_(0, 0.5)  # non-zero biases: every folded bias term is exercised
    return attn


@pytest.mark.parametrize("batch", [1, 2])
def test_tokens_to_image_equals_plain_attention(attention, batch):
    gen = torch.Generator().manual_seed(batch)
    tokens = torch.randn(batch, 7, 64, generator=gen)
    image_k = torch.randn(batch, 300, 64, generator=gen) * 2
    image_v = torch.randn(batch, 300, 64, generator=gen)
    with torch.inference_mode():
        want = attention(tokens, image_k, image_v)
        got = attention.tokens_to_image(tokens, image_k, image_v)
    assert got.shape == want.shape == (batch, 7, 64)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 2])
def test_image_to_tokens_equals_plain_attention_plus_residual(attention, batch):
    gen = torch.Generator().manual_seed(10 + batch)
    image_q = torch.randn(batch, 300, 64, generator=gen) * 2
    tokens_k = torch.randn(batch, 6, 64, generator=gen)
    tokens_v = torch.randn(batch, 6, 64, generator=gen)
    residual = torch.randn(batch, 300, 64, generator=gen)
    before = residual.clone()
    with torch.inference_mode():
        want = residual + attention(image_q, tokens_k, tokens_v)
        got = attention.image_to_tokens(residual, image_q, tokens_k, tokens_v)
        projected = attention.q_proj(image_q)
        got_projected = attention.image_to_tokens(
            residual, projected, tokens_k, tokens_v, projected=True
        )
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_projected, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(residual, before, rtol=0, atol=0)  # left alone


def test_positional_encoding_as_a_second_product_and_in_place_update(attention):
    gen = torch.Generator().manual_seed(20)
    tokens = torch.randn(1, 5, 64, generator=gen)
    image = torch.randn(1, 300, 64, generator=gen)
    pe = torch.randn(1, 300, 64, generator=gen)
    with torch.inference_mode():
        want_t2i = attention(tokens, image + pe, image)
        got_t2i = attention.tokens_to_image(tokens, image, image, pe)
        want_i2t = image + attention(image + pe, tokens, tokens)
        residual = image.clone()
        got_i2t = attention.image_to_tokens(
            residual, image, tokens, tokens, image_q_pe=pe, in_place=True
        )
    torch.testing.assert_close(got_t2i, want_t2i, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_i2t, want_i2t, rtol=1e-5, atol=1e-5)
    assert got_i2t.data_ptr() == residual.data_ptr()  # no new image-sized tensor


def test_mask_prompt_as_features_equals_dense_embedding_with_and_without_cache():
    from samdesk.model.sam import build_sam
    from samdesk.model.testing import SMALL_CONFIG, random_sam_state_dict

    model = build_sam(SMALL_CONFIG)
    model.load_state_dict(random_sam_state_dict(SMALL_CONFIG, seed=4))
    model = model.prepare_for_inference()
    pe, dec = model.prompt_encoder, model.mask_decoder
    gen = torch.Generator().manual_seed(5)
    image = torch.randn(1, 256, 64, 64, generator=gen)
    points = (torch.rand(1, 2, 2, generator=gen) * 1000, torch.tensor([[1, 0]]))
    cache: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for call in range(3):  # mask, plain, mask again: the cache serves both kinds
            mask = torch.randn(1, 1, 256, 256, generator=gen) * 3
            sparse, dense = pe(points, None, mask if call != 1 else None)
            want = dec(image, pe.get_dense_pe(), sparse, dense, multimask_output=True)
            if call == 1:
                got = dec(image, pe.get_dense_pe(), sparse, dense, True, image_cache=cache)
            else:
                feats = pe.mask_features(mask)
                assert feats[0].shape == (1, 64 * 64, 16)
                got = dec(image, pe.get_dense_pe(), sparse, None, True, cache, False, feats)
            for a, b in zip(got, want, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert {"base_t2i_k", "base_t2i_v", "base_i2t_q", "src", "t2i_k"} <= cache.keys()
