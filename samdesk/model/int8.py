"""int8 matrix products for the ViT image encoder's large linear layers on x86 CPUs (ADR 0016).

The four linears of every ViT block (qkv, proj, MLP lin1 and lin2: about 700 of the 950 GFLOP of
a ViT-B encode) run through oneDNN's u8 x s8 -> fp32 kernel (``torch.ops.onednn``), which uses
the VNNI dot-product instructions and is 2.5-3.5x faster than MKL's fp32 product on an AVX-512
CPU. Everything else -- attention scores, softmax, layer norms, the residual stream, the neck,
the prompt encoder and the mask decoder -- stays float32.

* Weights are quantised once, at load: symmetric int8 per output channel
  (``scale = max|w| / 127``).
* Activations are quantised dynamically per token (per row): ``s = max|x| / 127``,
  ``q = round(x / s) + 128`` as uint8, and the kernel is told the zero point is 128, so it
  computes ``(q - 128) . w``; the row scale ``s`` is applied afterwards together with the bias.
  (oneDNN only takes one activation scale per call; per-token scales are emulated this way.
  oneDNN's int8 x int8 variant falls back to a reference kernel that is 1000x slower, so the
  activations must be uint8.)
* Inputs of qkv and lin1 are layer-norm outputs. Channels whose layer-norm scale/shift make them
  much larger than the rest (the "outlier channels" of trained ViTs) would waste the 8 bits of
  every token; they are divided by a per-channel factor folded into the layer norm and the same
  factor is multiplied into the weight's input columns (SmoothQuant, computed from the weights
  alone, so no calibration data is needed). Exact in real arithmetic.

Shapes: activations are (M, K) float32 rows (tokens), weights (N, K), outputs (M, N) float32.
"""

from __future__ import annotations

import contextlib
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

#: Tokens quantised and multiplied per kernel call: the (ROWS, N) float32 result stays in the
#: L2 cache for the rescaling pass (measured fastest between 128 and 512 on a 2 MB L2).
ROWS = 256

#: A layer-norm channel is smoothed when its estimated magnitude exceeds the median channel's
#: by this factor; its factor is (ratio ** SMOOTH_ALPHA). Ordinary channels are left alone.
SMOOTH_THRESHOLD = 2.0
SMOOTH_ALPHA = 0.5

#: Layer-norm outputs are about unit-variance before the affine part; |z| <= 3 covers nearly
#: every token, so |beta| + 3 |gamma| estimates a channel's largest magnitude.
_Z_MAX = 3.0

_OFFSET = 128.0
_MAGIC = 1.5 * 2.0**23  # floats in [2**23, 2**24) are the integers, spaced 1 apart
_TINY = 1e-30


def cpu_capabilities() -> dict[str, Any]:
    """The CPU's instruction-set features as torch's cpuinfo sees them ({} when unknown)."""
    get = getattr(torch.cpu, "get_capabilities", None)
    if get is None:
        return {}
    with contextlib.suppress(Exception):  # a missing or broken cpuinfo means "unknown"
        return dict(get())
    return {}


def cpu_has_vnni() -> bool:
    """True when the CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX)."""
    caps = cpu_capabilities()
    return any(caps.get(flag, False) for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))


@cache
def cpu_has_amx_bf16() -> bool:
    """True when the CPU has AMX-BF16 tiles (torch's cpuinfo, else /proc/cpuinfo on Linux)."""
    caps = cpu_capabilities()
    if "amx_bf16" in caps:
        return bool(caps["amx_bf16"])
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return "amx_bf16" in line.split()
    return False


@cache
def int8_kernels_available() -> bool:
    """True when oneDNN's int8 linear exists in this torch, runs on this CPU with a real kernel
    (x86 with at least AVX2; older CPUs would get oneDNN's very slow reference kernel) and
    reproduces a dequantised float product."""
    caps = cpu_capabilities()
    if caps.get("architecture") not in ("x86_64", "x86") or not caps.get("avx2", False):
        return False
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        weight = torch.randn(24, 64, generator=gen)
        x = torch.randn(8, 64, generator=gen)
        layer = QLinear(weight, torch.zeros(24))
        got = layer(x)
    except (AttributeError, RuntimeError, NotImplementedError):
        return False
    want = reference_product(x, weight, torch.zeros(24))
    return bool(torch.allclose(got, want, rtol=1e-4, atol=1e-4))


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, K) float -> int8 (N, K) in [-127, 127] and float32 scales (N,): w ~ q * scale."""
    w = weight.detach().float()
    scale = w.abs().amax(dim=1).clamp_min(_TINY) / 127.0
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


def rounding_offset(k: int) -> torch.Tensor:
    """(K,) float32 filled with 1.5 * 2**23 + 128: adding it to a value v in [-127.5, 127.5]
    gives a float whose int32 bit pattern ends in the byte round(v) + 128 (float addition at
    that magnitude rounds to the nearest integer, ties to even). See :func:`quantize_rows`."""
    return torch.full((k,), _MAGIC + _OFFSET)


def quantize_rows(
    x: torch.Tensor, offset: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row symmetric quantisation of (M, K) float32: uint8 codes with zero point 128 and
    (M, 1) float32 scales, ``x ~ (q - 128) * scale``. ``offset``: :func:`rounding_offset` (K,).
    ``x`` may also be (..., K), any strides (e.g. a window cut out of an image of tokens): the
    rows are its leading positions in order, and the codes come back contiguous, (M, K).

    A row of zeros gets codes 128; a row with NaN or infinity gets a NaN or infinite scale, so
    the product's row is not finite either. (Measured: max(amax, -amin) and a (K,) offset are
    several times faster than ``linalg.vector_norm(inf)`` and a 0-dim offset; rounding with the
    float's bit pattern and keeping its low byte (int32 -> uint8 wraps) takes 0.65-0.7x the time
    of ``+ 128.5`` and a float -> uint8 conversion, whose kernel is slow.)
    """
    k = x.shape[-1]
    if offset is None:
        offset = rounding_offset(k)
    amax = torch.maximum(x.amax(dim=-1, keepdim=True), x.amin(dim=-1, keepdim=True).neg_())
    inv = torch.reciprocal(amax.clamp_min(_TINY)).mul_(127.0)
    codes = torch.addcmul(offset, x, inv).view(torch.int32).to(torch.uint8)
    return codes.view(-1, k), amax.div_(127.0).view(-1, 1)


def reference_product(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """What :class:`QLinear` computes, in plain float arithmetic on dequantised values (tests)."""
    codes, row_scale = quantize_rows(x)
    q, scale = quantize_weight(weight)
    return F.linear((codes.float() - _OFFSET) * row_scale, q.float() * scale[:, None], bias)


class QLinear:
    """``y = x @ weight.T + bias`` with int8 weights and per-token int8 activations.

    ``in_scale`` (K,), if given, means the caller feeds ``x / in_scale`` (smoothing folded into
    the preceding layer norm); the weight's input columns are multiplied by it here.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        in_scale: torch.Tensor | None = None,
    ) -> None:
        w = weight.detach().float()
        if in_scale is not None:
            w = w * in_scale[None, :]
        q, self.weight_scale = quantize_weight(w)
        self.out_features, self.in_features = q.shape
        self.packed = torch.ops.onednn.qlinear_prepack(q, None)
        self.bias = None if bias is None else bias.detach().float().clone()
        self._zero_points = torch.zeros(self.out_features, dtype=torch.int64)
        self._offset = rounding_offset(self.in_features)

    def product(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unscaled product of a few rows: (M, K) (or (..., K), see :func:`quantize_rows`)
        float32 -> ((M, N) float32, (M, 1) scales); ``y = product * scales + bias``. Keep M
        around :data:`ROWS` so the result stays in the cache."""
        codes, row_scale = quantize_rows(x, self._offset)
        acc = torch.ops.onednn.qlinear_pointwise(
            codes, 1.0, int(_OFFSET), self.packed, self.weight_scale, self._zero_points,
            None, 1.0, 0, torch.float32, "none", [], "",
        )  # fmt: skip
        return acc, row_scale

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(M, K) float32 -> (M, N) float32."""
        out = x.new_empty(x.shape[0], self.out_features)
        for s in range(0, x.shape[0], ROWS):
            acc, row_scale = self.product(x[s : s + ROWS])
            if self.bias is None:
                torch.mul(acc, row_scale, out=out[s : s + ROWS])
            else:
                torch.addcmul(self.bias, acc, row_scale, out=out[s : s + ROWS])
        return out

    def add_to_(self, residual: torch.Tensor, x: torch.Tensor) -> None:
        """``residual += x @ weight.T + bias`` in place; residual (M, N), x (M, K)."""
        for s in range(0, x.shape[0], ROWS):
            self.add_rows_(residual[s : s + ROWS], x[s : s + ROWS])

    def add_rows_(self, residual: torch.Tensor, x: torch.Tensor) -> None:
        """The same for one block of rows: residual (M, N), x (M, K) or (..., K) with M rows."""
        acc, row_scale = self.product(x)
        residual.addcmul_(acc, row_scale)
        if self.bias is not None:
            residual.add_(self.bias)


def smoothing_factors(norm_weight: torch.Tensor, norm_bias: torch.Tensor) -> torch.Tensor | None:
    """Per-channel divisors (K,) for a layer norm's output, or None when no channel stands out.

    Estimated from the layer norm's parameters alone (no calibration data): a channel's largest
    magnitude is about ``|beta| + 3 |gamma|``. Channels above :data:`SMOOTH_THRESHOLD` times the
    median get ``ratio ** SMOOTH_ALPHA`` (SmoothQuant's balance between activation and weight
    ranges); the others 1.
    """
    size = norm_bias.detach().float().abs() + _Z_MAX * norm_weight.detach().float().abs()
    ratio = size / size.median().clamp_min(_TINY)
    if not bool((ratio > SMOOTH_THRESHOLD).any()):
        return None
    return torch.where(ratio > SMOOTH_THRESHOLD, ratio.pow(SMOOTH_ALPHA), torch.ones_like(ratio))


class Int8Block:
    """The int8 form of one ViT block's linears, plus its (smoothed) layer-norm parameters.

    ``block`` is a :class:`samdesk.model.image_encoder.Block` (norm1, attn.qkv, attn.proj,
    norm2, mlp.lin1, mlp.lin2); its float weights are read, never changed.
    """

    def __init__(self, block: torch.nn.Module) -> None:
        norm1, norm2 = block.norm1, block.norm2
        attn, mlp = block.attn, block.mlp
        smooth1 = smoothing_factors(norm1.weight, norm1.bias)
        smooth2 = smoothing_factors(norm2.weight, norm2.bias)
        self.norm1 = _smoothed_norm(norm1, smooth1)
        self.norm2 = _smoothed_norm(norm2, smooth2)
        self.eps1, self.eps2 = float(norm1.eps), float(norm2.eps)
        self.qkv = QLinear(attn.qkv.weight, attn.qkv.bias, smooth1)
        self.proj = QLinear(attn.proj.weight, attn.proj.bias)
        self.lin1 = QLinear(mlp.lin1.weight, mlp.lin1.bias, smooth2)
        self.lin2 = QLinear(mlp.lin2.weight, mlp.lin2.bias)


def _smoothed_norm(
    norm: torch.nn.Module, smooth: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    weight = norm.weight.detach().float().clone()
    bias = norm.bias.detach().float().clone()
    if smooth is not None:
        weight /= smooth
        bias /= smooth
    return weight, bias


def quantize_vit_blocks(blocks: torch.nn.ModuleList) -> list[Int8Block]:
    """The int8 form of every block of a ViT encoder (about 0.5 s for ViT-B; 1 byte per
    weight of extra memory: 85 MB for ViT-B)."""
    with torch.inference_mode():
        return [Int8Block(block) for block in blocks]
