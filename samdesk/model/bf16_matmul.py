"""bf16 products inside float32 matmuls on CPUs with AMX-BF16, without touching exact work.

oneDNN can run a float32 matmul with its inputs rounded to bf16 on the AMX tiles, accumulating
and returning float32 (``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``). For the
attention products of the ViT encoder (q.k^T and P.V, head dim 64) that is 2-2.5x faster than
MKL's float32 kernel on a 2-core Sapphire Rapids VM, with a relative error of about 2e-3 per
product -- the error of bf16 inputs, not of bf16 results: scores and outputs stay float32
(ADR 0071).

The switch is one process-wide setting, so this module hands it out in short sections that
exclude each other, and every result is the same whatever else runs:

* :func:`bf16_matmuls` -- a *fast* section (one block of attention scores, a few ms): the
  setting is on inside it. Fast sections share the setting with each other (reference counted;
  the value found before the first is restored after the last).
* :func:`exact_matmuls` -- an *exact* section (every predictor's mask decoder, and the encoder
  of every precision but int8): float32 matmuls inside it are float32 products. Exact sections
  share with each other.

A fast and an exact section never overlap: an exact section waits for running fast sections
(a few ms), and while one runs or waits, new fast sections wait for it. So a fast section's
products are always bf16 and an exact section's always float32 -- an embedding does not depend
on whether a click happened during its encode. A thread must not open one kind of section inside
the other (RuntimeError: it would wait for itself), and must not pause inside a fast section.

Matmuls outside any section -- other code in the same process -- get whatever the setting is at
that moment; samdesk only turns it on inside fast sections. A user who set the global setting
themselves keeps it: sections restore the value they found, and exact sections do not override
it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

from samdesk.model.int8 import cpu_capabilities

_cond = threading.Condition()
_fast = 0  # fast sections running
_exact = 0  # exact sections running
_exact_waiting = 0  # exact sections waiting for fast ones to end
_saved: str | None = None  # the setting found when the first fast section began
_available: bool | None = None  # bf16_matmuls_available(), once known
_local = threading.local()  # .kind: "fast" / "exact" while this thread is in a section


def _get() -> str:
    return str(torch.backends.mkldnn.matmul.fp32_precision)


def _set(value: str) -> None:
    torch.backends.mkldnn.matmul.fp32_precision = value


def bf16_matmuls_available() -> bool:
    """True when the CPU has AMX-BF16 and this torch's oneDNN honours the setting (checked once:
    with the setting on, a product must differ from the float32 one by bf16 rounding -- not 0,
    not more -- and the setting must read back). Waits for running exact sections the first
    time, since the check flips the setting."""
    with _cond:
        if _available is None:
            _enter_alone()
        return bool(_available)


def _enter_alone() -> None:
    """With the lock held: wait until no section runs, then decide :data:`_available`."""
    global _available
    if getattr(_local, "kind", None) is not None:
        raise RuntimeError("bf16_matmuls_available() first called inside a matmul section")
    _cond.wait_for(lambda: _fast == 0 and _exact == 0)
    if _available is None:
        _available = _cpu_has_amx_bf16() and _self_test()


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


def _check_not_in(kind: str) -> None:
    if getattr(_local, "kind", None) == kind:
        other = "an exact" if kind == "exact" else "a fast"
        raise RuntimeError(f"a matmul section was opened inside {other} one in the same thread")


@contextlib.contextmanager
def bf16_matmuls(enabled: bool = True) -> Iterator[bool]:
    """A fast section: float32 matmuls run with bf16 products inside it. Yields whether they do
    (False when ``enabled`` is False or the CPU cannot; then nothing is waited for). Waits while
    exact sections run or wait. Keep it short; never pause or wait for another thread inside."""
    global _fast, _saved
    if not enabled:
        yield False
        return
    _check_not_in("exact")
    with _cond:
        if _available is None:
            _enter_alone()
        if not _available:
            on = False
        else:
            if getattr(_local, "kind", None) != "fast":  # nested: this thread already holds one
                _cond.wait_for(lambda: _exact == 0 and _exact_waiting == 0)
            if _fast == 0:
                _saved = _get()
                _set("bf16")
            _fast += 1
            on = True
    outer = getattr(_local, "kind", None)
    _local.kind = "fast" if on else outer
    try:
        yield on
    finally:
        _local.kind = outer
        if on:
            with _cond:
                _fast -= 1
                if _fast == 0:
                    _set(_saved if _saved is not None else "none")
                    _cond.notify_all()


@contextlib.contextmanager
def exact_matmuls() -> Iterator[None]:
    """An exact section: float32 matmuls inside it are float32 products (unless the user set
    the global setting). Waits for running fast sections to end first (a few ms)."""
    global _exact, _exact_waiting
    _check_not_in("fast")
    with _cond:
        _exact_waiting += 1
        try:
            _cond.wait_for(lambda: _fast == 0)
        finally:
            _exact_waiting -= 1
        _exact += 1
    outer = getattr(_local, "kind", None)
    _local.kind = "exact"
    try:
        yield
    finally:
        _local.kind = outer
        with _cond:
            _exact -= 1
            if _exact == 0:
                _cond.notify_all()
