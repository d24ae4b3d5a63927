"""Which numeric precision the image encoder runs in ("fp32", "bf16", "int8" or "auto").

``auto`` picks the fastest precision that keeps the official masks (ADRs 0012, 0016, 0071):

* CPU with int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX-INT8) and oneDNN's int8
  linear in this torch, SAM ViT encoders: **int8** -- the four linears of every block in int8,
  everything else fp32; where the CPU also has AMX-BF16, attention's two products get bf16
  inputs with float32 results (:mod:`samdesk.model.bf16_matmul`). Masks within IoU 0.98 of fp32
  on the test networks; ViT-B 1.65x faster than fp32 on a VNNI-only 2-core VM (ADR 0017), and
  another 10-15 % from the bf16 attention products on a Sapphire Rapids VM (ADR 0071).
* CPU with AMX-BF16 but no int8 path (MobileSAM's TinyViT, no oneDNN int8 linear): **bf16**.
* Other CPUs (no VNNI; e.g. AVX-512 with avx512_bf16 but no AMX, where oneDNN's bf16 matmuls run
  at 0.65x the speed of MKL's fp32), MobileSAM's TinyViT: **fp32**.
* CUDA with bf16 support (Ampere or newer): **bf16**; older CUDA devices: fp32.

``int8`` asked for explicitly runs wherever the int8 kernels work (x86 with AVX2); where they do
not (no oneDNN int8 linear, another CPU architecture, CUDA, a TinyViT encoder) it resolves to
fp32, and the predictor's ``precision`` says so. ``fp32`` always gives the official result.

What ``bf16`` runs: on CPUs with AMX-BF16, a SAM ViT encoder stays float32 and its matmuls take
bf16 inputs with float32 accumulation and results (oneDNN on the AMX tiles, ADR 0071: more
accurate than autocast and ~20 % faster there); elsewhere (CUDA, TinyViT, CPUs without AMX)
``torch.autocast`` to bf16.

The prompt encoder and mask decoder always run in fp32 (a click is cheap; masks stay exact).
"""

from __future__ import annotations

import contextlib

import torch

from samdesk.engine.options import PRECISIONS
from samdesk.errors import InputError
from samdesk.model.int8 import cpu_has_amx_bf16, cpu_has_vnni, int8_kernels_available

__all__ = ["PRECISIONS", "autocast_for", "check_precision", "resolve_precision"]


def check_precision(precision: object) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else InputError."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    return str(precision)


def resolve_precision(precision: str, device: torch.device, *, int8_capable: bool = True) -> str:
    """``"fp32"``, ``"bf16"`` or ``"int8"`` for ``precision`` on ``device``.

    ``int8_capable``: the encoder has an int8 path (SAM's ViT; not MobileSAM's TinyViT).
    """
    check_precision(precision)
    int8_ok = int8_capable and device.type == "cpu" and int8_kernels_available()
    if precision == "int8":
        return "int8" if int8_ok else "fp32"
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if int8_ok and cpu_has_vnni():
        return "int8"
    return "bf16" if cpu_has_amx_bf16() else "fp32"


def autocast_for(precision: str, device: torch.device) -> contextlib.AbstractContextManager[None]:
    """Context for running the image encoder in ``precision`` (a no-op for fp32 and int8, whose
    int8 products are explicit in the encoder)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
