"""The int8 linears compute what their dequantised float form computes; smoothing is exact in
float; the encoder's int8 path stays close to fp32; precision resolution falls back to fp32."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from samdesk.engine import precision as precision_mod
from samdesk.engine.precision import resolve_precision
from samdesk.model import int8
from samdesk.model.int8 import (
    Int8Block,
    QLinear,
    int8_kernels_available,
    quantize_rows,
    quantize_vit_blocks,
    quantize_weight,
    reference_product,
    smoothing_factors,
)
from samdesk.model.sam import build_sam
from samdesk.model.testing import SMALL_CONFIG, random_sam_state_dict

CPU = torch.device("cpu")
needs_kernels = pytest.mark.skipif(
    not int8_kernels_available(),
    reason="this CPU/torch has no oneDNN int8 linear (x86 with AVX2 needed)",
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_quantize_rows_round_trips_within_half_a_step():
    x = torch.randn(37, 96, generator=_gen(0)) * torch.logspace(-3, 2, 37)[:, None]
    x[5] = 0.0
    codes, scale = quantize_rows(x)
    assert codes.dtype == torch.uint8 and scale.shape == (37, 1)
    back = (codes.float() - 128) * scale
    assert torch.all((back - x).abs() <= scale * 0.5001)
    assert torch.all(codes[5] == 128) and float(scale[5]) == 0.0
    assert int(codes.min()) >= 1 and int(codes.max()) <= 255  # symmetric: -127..127 around 128
    bad = x.clone()
    bad[3, 7] = float("nan")
    bad[4, 0] = float("inf")
    _, bad_scale = quantize_rows(bad)
    assert not torch.isfinite(bad_scale[3:5]).any()  # such rows cannot come out finite


def test_quantize_rows_rounds_to_nearest_like_torch_round():
    # the codes come from a float's bit pattern: check them against the plain computation,
    # including both ends of the range, exact ties and a strided (window) input
    x = torch.randn(64, 64, 48, generator=_gen(3))[:14, 3:17]
    rows = x.reshape(-1, 48).clone()
    rows[0] = 0.0
    rows[0, :3] = torch.tensor([2.0, -2.0, 1.0])  # amax 2: codes 255, 1 and a tie at 63.5
    x[0, 0] = rows[0]
    codes, scale = quantize_rows(x)
    amax = rows.abs().amax(dim=1, keepdim=True)
    want = torch.round(rows * (127.0 / amax)) + 128  # round half to even, like the float add
    assert codes.shape == (196, 48) and torch.equal(codes.long(), want.long())
    assert codes[0, :3].tolist() == [255, 1, 192]  # 63.5 -> 64 (even)
    torch.testing.assert_close(scale, amax / 127.0)


def test_quantize_weight_per_output_channel():
    w = torch.randn(20, 64, generator=_gen(1)) * torch.linspace(0.01, 5, 20)[:, None]
    q, scale = quantize_weight(w)
    assert q.dtype == torch.int8 and int(q.abs().max()) == 127
    assert torch.all(q.abs().amax(1) == 127)  # every channel uses its full range
    assert torch.all(((q.float() * scale[:, None]) - w).abs() <= scale[:, None] * 0.5001)


@needs_kernels
@pytest.mark.parametrize("rows", [1, 5, int8.ROWS, int8.ROWS * 2 + 3])
def test_qlinear_equals_its_dequantised_reference(rows):
    gen = _gen(rows)
    w = torch.randn(48, 80, generator=gen) / 9
    b = torch.randn(48, generator=gen)
    x = torch.randn(rows, 80, generator=gen) * 3 + 0.5
    layer = QLinear(w, b)
    want = reference_product(x, w, b)
    torch.testing.assert_close(layer(x), want, rtol=1e-5, atol=1e-5)
    residual = torch.randn(rows, 48, generator=gen)
    expected = residual + want
    layer.add_to_(residual, x)
    torch.testing.assert_close(residual, expected, rtol=1e-5, atol=1e-5)
    # and the quantised product is close to the float one (8-bit accuracy)
    exact = F.linear(x, w, b)
    assert float((layer(x) - exact).norm() / exact.norm()) < 0.02


@needs_kernels
def test_qlinear_without_bias_and_with_folded_input_scale():
    gen = _gen(7)
    w = torch.randn(16, 32, generator=gen)
    x = torch.randn(10, 32, generator=gen)
    s = torch.rand(32, generator=gen) * 4 + 0.5
    layer = QLinear(w, None, in_scale=s)
    torch.testing.assert_close(layer(x / s), reference_product(x / s, w * s, None))
    exact = F.linear(x, w)
    assert float((layer(x / s) - exact).norm() / exact.norm()) < 0.02


def test_smoothing_only_for_outlier_channels_and_exact_in_float():
    gen = _gen(3)
    weight = 1 + 0.1 * torch.randn(64, generator=gen)
    bias = 0.02 * torch.randn(64, generator=gen)
    assert smoothing_factors(weight, bias) is None  # ordinary layer norm: left alone
    weight[[3, 40]] = torch.tensor([25.0, -12.0])
    bias[9] = 8.0
    s = smoothing_factors(weight, bias)
    assert s is not None
    assert set(torch.nonzero(s > 1).flatten().tolist()) == {3, 9, 40}
    median = float(torch.median(bias.abs() + 3 * weight.abs()))
    assert float(s[3]) == pytest.approx((75.0 / median) ** 0.5, rel=1e-4)
    # folded into the norm and the next weight, the float result is unchanged
    x = torch.randn(30, 64, generator=gen)
    lin = torch.randn(12, 64, generator=gen)
    plain = F.linear(F.layer_norm(x, (64,), weight, bias), lin)
    folded = F.linear(F.layer_norm(x, (64,), weight / s, bias / s), lin * s)
    torch.testing.assert_close(folded, plain, rtol=1e-4, atol=1e-4)


def _small_encoder(seed: int = 0):
    model = build_sam(SMALL_CONFIG)
    model.load_state_dict(random_sam_state_dict(SMALL_CONFIG, seed))
    return model.prepare_for_inference().image_encoder


@needs_kernels
def test_int8_block_smooths_outlier_channels(monkeypatch):
    encoder = _small_encoder(1)
    block = encoder.blocks[0]
    with torch.no_grad():
        block.norm1.weight[[2, 17, 40]] *= 40.0
    smoothed = Int8Block(block)
    assert not torch.equal(smoothed.norm1[0], block.norm1.weight)  # smoothing folded in
    assert torch.equal(smoothed.norm2[0], block.norm2.weight)  # nothing to smooth there
    monkeypatch.setattr(int8, "SMOOTH_THRESHOLD", float("inf"))
    plain = Int8Block(block)
    x = torch.randn(1, 64, 64, 64, generator=_gen(2))
    with torch.inference_mode():
        want = block(x.clone()) - x  # what the block adds to the residual stream
        err_smoothed = float((block(x.clone(), int8=smoothed) - x - want).norm() / want.norm())
        err_plain = float((block(x.clone(), int8=plain) - x - want).norm() / want.norm())
    # measured 0.036 vs 0.11 (and 0.016 for the block without outlier channels)
    assert err_smoothed < 0.05, err_smoothed
    assert err_smoothed < 0.5 * err_plain, (err_smoothed, err_plain)


@needs_kernels
def test_int8_encoder_close_to_fp32_and_reports_the_same_steps():
    encoder = _small_encoder()
    blocks = quantize_vit_blocks(encoder.blocks)
    x = torch.randn(1, 3, 1024, 1024, generator=_gen(5))
    steps_fp32: list[int] = []
    steps_int8: list[int] = []
    with torch.inference_mode():
        ref = encoder(x, lambda: steps_fp32.append(1))
        got = encoder(x, lambda: steps_int8.append(1), int8=blocks)
    assert got.shape == ref.shape == (1, 256, 64, 64)
    rel = float((got - ref).norm() / ref.norm())
    assert 1e-4 < rel < 0.04, rel  # really quantised, and close
    assert len(steps_int8) == len(steps_fp32) == encoder.num_steps
    with pytest.raises(ValueError, match="different network"):
        encoder(x, int8=blocks[:1])


def test_precision_resolution_and_fallbacks(monkeypatch):
    monkeypatch.setattr(precision_mod, "cpu_has_amx_bf16", lambda: False)
    monkeypatch.setattr(precision_mod, "int8_kernels_available", lambda: True)
    monkeypatch.setattr(precision_mod, "cpu_has_vnni", lambda: True)
    assert resolve_precision("auto", CPU) == "int8"
    assert resolve_precision("int8", CPU) == "int8"
    assert resolve_precision("fp32", CPU) == "fp32"  # the exact official result stays available
    assert resolve_precision("auto", CPU, int8_capable=False) == "fp32"  # TinyViT
    assert resolve_precision("int8", CPU, int8_capable=False) == "fp32"
    assert resolve_precision("int8", torch.device("cuda")) == "fp32"
    monkeypatch.setattr(precision_mod, "cpu_has_vnni", lambda: False)
    assert resolve_precision("auto", CPU) == "fp32"  # no VNNI: not worth it
    assert resolve_precision("int8", CPU) == "int8"  # but still possible when asked for
    monkeypatch.setattr(precision_mod, "cpu_has_vnni", lambda: True)
    monkeypatch.setattr(precision_mod, "int8_kernels_available", lambda: False)
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision("int8", CPU) == "fp32"
    monkeypatch.setattr(precision_mod, "cpu_has_amx_bf16", lambda: True)
    assert resolve_precision("auto", CPU) == "bf16"  # AMX without the int8 path
    monkeypatch.setattr(precision_mod, "int8_kernels_available", lambda: True)
    assert resolve_precision("auto", CPU) == "int8"  # AMX with it: int8 is faster (ADR 0071)
    assert resolve_precision("auto", CPU, int8_capable=False) == "bf16"  # TinyViT on AMX


def test_kernel_check_fails_closed_without_avx2_or_without_the_op(monkeypatch):
    int8.int8_kernels_available.cache_clear()
    try:
        monkeypatch.setattr(int8, "cpu_capabilities", lambda: {"architecture": "x86_64"})
        assert not int8.int8_kernels_available()
        int8.int8_kernels_available.cache_clear()
        monkeypatch.setattr(
            int8, "cpu_capabilities", lambda: {"architecture": "aarch64", "avx2": False}
        )
        assert not int8.int8_kernels_available()
        int8.int8_kernels_available.cache_clear()
        monkeypatch.setattr(
            int8, "cpu_capabilities", lambda: {"architecture": "x86_64", "avx2": True}
        )

        def missing(*args, **kwargs):
            raise RuntimeError("onednn::qlinear_prepack is not available in this build")

        monkeypatch.setattr(int8.QLinear, "__init__", missing)
        assert not int8.int8_kernels_available()
    finally:
        monkeypatch.undo()
        int8.int8_kernels_available.cache_clear()
