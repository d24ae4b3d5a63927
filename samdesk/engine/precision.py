"""Which numeric precision the image encoder runs in ("fp32", "bf16" or "auto").

``auto`` picks the fastest precision that keeps the official masks (ADR 0012):

* CPU without AMX (e.g. AVX-512 with avx512_bf16 but no AMX tiles): **fp32**. Measured on such a
  CPU, oneDNN's bf16 matmuls run at 0.65x the speed of MKL's fp32 ones (bf16 dot products have
  the same peak as fp32 FMAs there), so bf16 only loses accuracy.
* CPU with AMX-BF16: **bf16** (oneDNN runs bf16 matmuls on the AMX tiles, several times faster).
* CUDA with bf16 support (Ampere or newer): **bf16**; older CUDA devices: fp32.

The prompt encoder and mask decoder always run in fp32 (a click is cheap; masks stay exact).
"""

from __future__ import annotations

import contextlib
from functools import cache
from pathlib import Path

import torch

from samdesk.errors import InputError

PRECISIONS = ("auto", "fp32", "bf16")


@cache
def cpu_has_amx_bf16() -> bool:
    """True when /proc/cpuinfo lists amx_bf16 (Linux); False when it cannot tell."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return "amx_bf16" in line.split()
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"fp32"`` or ``"bf16"`` for ``precision`` on ``device``."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_amx_bf16() else "fp32"


def autocast_for(precision: str, device: torch.device) -> contextlib.AbstractContextManager[None]:
    """Context for running the image encoder in ``precision`` (a no-op for fp32)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
