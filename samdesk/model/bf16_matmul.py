"""bf16 products inside float32 matmuls on CPUs with AMX-BF16, without touching exact work.

oneDNN can run a float32 matmul with its inputs rounded to bf16 on the AMX tiles, accumulating
and returning float32 (``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``). For the
attention products of the ViT encoder (q.k^T and P.V, head dim 64) that is 2-2.5x faster than
MKL's float32 kernel on a 2-core Sapphire Rapids VM, with a relative error of about 2e-3 per
product -- the error of bf16 inputs, not of bf16 results: scores and outputs stay float32
(ADR 0071).

The switch is one process-wide setting, so this module hands it out in short sections and keeps
exact work exact:

* :func:`bf16_matmuls` -- a *fast* section: the setting is on while at least one fast section
  runs (reference counted, so concurrent encodes share it), and restored after the last one.
* :func:`exact_matmuls` -- an *exact* section (the fp32 predictor's encoder and decoder): it
  waits for running fast sections to end, and while it runs new fast sections run in plain
  float32 instead (they never wait, they are just slower). Fast sections last one attention
  head (tens of ms), so an exact section waits at most that long.

Matmuls outside either kind of section -- other code in the same process -- get whatever the
setting is at that moment; samdesk only turns it on inside fast sections. A user who set the
global setting themselves keeps it: sections restore the value they found.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

from samdesk.model.int8 import cpu_capabilities

_cond = threading.Condition()
_fast = 0  # fast sections running
_exact = 0  # exact sections running or waiting
_saved: str | None = None  # the setting found when the first fast section began
_available: bool | None = None  # bf16_matmuls_available(), once known


def _get() -> str:
    return str(torch.backends.mkldnn.matmul.fp32_precision)


def _set(value: str) -> None:
    torch.backends.mkldnn.matmul.fp32_precision = value


def bf16_matmuls_available() -> bool:
    """True when the CPU has AMX-BF16 and this torch's oneDNN honours the setting (checked once:
    with the setting on, a product must differ from the float32 one by bf16 rounding -- not 0,
    not more -- and the setting must read back)."""
    global _available
    with _cond:
        if _available is None:
            if _exact:  # the self-test would flip the setting under an exact section
                return False
            _available = _cpu_has_amx_bf16() and _self_test()
        return _available


def _cpu_has_amx_bf16() -> bool:
    return bool(cpu_capabilities().get("amx_bf16", False)) and torch.backends.mkldnn.is_available()


def _self_test() -> bool:
    """Called with the lock held and no section running."""
    try:
        gen = torch.Generator().manual_seed(0)
        a, b = torch.randn(64, 64, generator=gen), torch.randn(64, 64, generator=gen)
        want = a @ b
        saved = _get()
        try:
            _set("bf16")
            got = a @ b
            ok = _get() == "bf16"
        finally:
            _set(saved)
    except (AttributeError, RuntimeError, TypeError, ValueError):
        return False
    err = float((got - want).norm() / want.norm())
    return ok and 0.0 < err < 2e-2


@contextlib.contextmanager
def bf16_matmuls(enabled: bool = True) -> Iterator[bool]:
    """A fast section: float32 matmuls run with bf16 products inside it. Yields whether they do
    (False when ``enabled`` is False, unavailable, or an exact section is running or waiting).
    Keep sections short, and never pause or wait for another thread inside one."""
    global _fast, _saved
    with _cond:
        on = enabled and _exact == 0 and bf16_matmuls_available()
        if on:
            if _fast == 0:
                _saved = _get()
                _set("bf16")
            _fast += 1
    try:
        yield on
    finally:
        if on:
            with _cond:
                _fast -= 1
                if _fast == 0:
                    _set(_saved if _saved is not None else "none")
                    _cond.notify_all()


@contextlib.contextmanager
def exact_matmuls() -> Iterator[None]:
    """An exact section: float32 matmuls inside it are float32 products (unless the user set
    the global setting). Waits for running fast sections to end first."""
    global _exact
    with _cond:
        _exact += 1
        _cond.wait_for(lambda: _fast == 0)
    try:
        yield
    finally:
        with _cond:
            _exact -= 1
