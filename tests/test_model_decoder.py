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
