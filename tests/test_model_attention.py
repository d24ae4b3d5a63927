"""The fast attention paths compute exactly what the official attention computes."""

from __future__ import annotations

import pytest
import torch

from samdesk.model import attention
from samdesk.model.attention import blocked_attention, fused_attention, reference_attention
from samdesk.model.image_encoder import ImageEncoderViT, window_partition, window_unpartition
from samdesk.model.testing import SMALL_CONFIG, random_sam_state_dict


def _qkv(batch: int, tokens: int, dim: int, seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, tokens, dim, generator=gen) for _ in range(3))


@pytest.mark.parametrize(
    ("batch", "size", "rel_len"),
    [(24, (14, 14), 27), (2, (64, 64), 127), (3, (14, 14), 19)],  # window, global, resized
)
def test_blocked_and_fused_equal_reference(batch, size, rel_len):
    q, k, v = _qkv(batch, size[0] * size[1], 32, seed=batch)
    gen = torch.Generator().manual_seed(7)
    rel = (torch.randn(rel_len, 32, generator=gen) * 0.3, torch.randn(rel_len, 32, generator=gen))
    ref = reference_attention(q, k, v, 32**-0.5, rel, size)
    calls = []
    blocked = blocked_attention(q, k, v, 32**-0.5, rel, size, lambda: calls.append(1))
    fused = fused_attention(q, k, v, 32**-0.5, rel, size)
    torch.testing.assert_close(blocked, ref, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(fused, ref, atol=2e-5, rtol=1e-4)
    if size == (64, 64):  # a global block reports progress once per head
        assert len(calls) == batch


def test_blocked_attention_without_relative_positions(monkeypatch):
    monkeypatch.setattr(attention, "SCORE_BUDGET", 64 * 196 * 4)  # force several query chunks
    q, k, v = _qkv(4, 196, 16, seed=3)
    ref = reference_attention(q, k, v, 0.25, None, (14, 14))
    torch.testing.assert_close(blocked_attention(q, k, v, 0.25, None, (14, 14)), ref)
    torch.testing.assert_close(fused_attention(q, k, v, 0.25, None, (14, 14)), ref)


def test_window_partition_round_trip_with_padding():
    x = torch.randn(1, 64, 64, 8)
    windows, pad_hw = window_partition(x, 14)
    assert windows.shape == (25, 14, 14, 8) and pad_hw == (70, 70)
    torch.testing.assert_close(window_unpartition(windows, 14, pad_hw, (64, 64)), x)


def test_encoder_implementations_agree_and_count_steps():
    encoder = ImageEncoderViT(SMALL_CONFIG.encoder)
    sd = random_sam_state_dict(SMALL_CONFIG, seed=2)
    prefix = "image_encoder."
    encoder.load_state_dict({k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)})
    x = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(0))
    steps = []
    with torch.inference_mode():
        fast = encoder(x, lambda: steps.append(1))
        encoder.set_attention_impl("reference")
        ref = encoder(x)
    # two per block, one per head of the 2 global blocks, one for the neck
    assert len(steps) == encoder.num_steps == 2 * 4 + 2 * 2 + 1
    assert fast.shape == (1, 256, 64, 64)
    torch.testing.assert_close(fast, ref, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="unknown attention"):
        encoder.set_attention_impl("magic")
