"""bf16 products inside float32 matmuls on CPUs with AMX-BF16, without touching exact work.

oneDNN can run a float32 matmul with its inputs rounded to bf16 on the AMX tiles, accumulating
and returning float32 (``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``). For the
attention products of the ViT encoder (q.k^T and P.V, head dim 64) that is 2-2.5x faster than
MKL's float32 kernel on a 2-core Sapphire Rapids VM, with a relative error of about 2e-3 per
product -- the error of bf16 inputs, not of bf16 results: scores and outputs stay float32
(ADR 0071).

The switch is one process-wide setting, so this module hands it out in short sections that
exclude each other, and every result is the same whatever else runs:

* :func:`bf16_matmuls` -- a *fast* section (one block of attention scores or one linear layer,
  a few ms to about 20 ms): the setting is on inside it. Fast sections share the setting with
  each other (reference counted; the value found before the first is restored after the last).
* :func:`exact_matmuls` -- an *exact* section (every predictor's mask decoder, and the encoder at
  fp32 and at bf16 by autocast): float32 matmuls inside it are float32 products. Exact sections
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
from collections.abc import Callable, Iterator

import torch

from samdesk.model.int8 import cpu_has_amx_bf16

_cond = threading.Condition()
_fast = 0  # fast sections running
_exact = 0  # exact sections running
_exact_waiting = 0  # exact sections waiting for fast ones to end
_probe_waiting = 0  # first availability checks waiting for every section to end
_saved: str | None = None  # the setting found when the first fast section began
_available: bool | None = None  # bf16_matmuls_available(), once known
_local = threading.local()  # .kind: "fast" / "exact" while this thread is in a section


def _get() -> str:
    return str(torch.backends.mkldnn.matmul.fp32_precision)


def _set(value: str) -> None:
    torch.backends.mkldnn.matmul.fp32_precision = value


def _kind() -> str | None:
    return getattr(_local, "kind", None)


def bf16_matmuls_available() -> bool:
    """True when the CPU has AMX-BF16 and this torch's oneDNN honours the setting (checked once:
    with the setting on, a product must differ from the float32 one by bf16 rounding -- not 0,
    not more -- and the setting must read back). The first call waits for running sections to
    end (the check flips the setting); new exact sections wait for it meanwhile."""
    with _cond:
        if _available is None:
            _probe()
        return bool(_available)


def _probe() -> None:
    """With the lock held: wait until no section runs, then decide :data:`_available`."""
    global _available, _probe_waiting
    if _kind() is not None:
        raise RuntimeError("bf16_matmuls_available() first called inside a matmul section")
    _probe_waiting += 1
    try:
        _cond.wait_for(lambda: _fast == 0 and _exact == 0)
        if _available is None:
            _available = _cpu_has_amx_bf16() and _self_test()
    finally:
        _probe_waiting -= 1
        _cond.notify_all()


def _cpu_has_amx_bf16() -> bool:
    return cpu_has_amx_bf16() and torch.backends.mkldnn.is_available()


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
    if _kind() == kind:
        other = "an exact" if kind == "exact" else "a fast"
        raise RuntimeError(f"a matmul section was opened inside {other} one in the same thread")


def _locked(update: Callable[[], None]) -> None:
    """Run ``update`` under the lock even if a KeyboardInterrupt arrives while waiting for it
    (the bookkeeping must not be lost: a leaked count would block every later section); the
    interrupt is raised again afterwards. Only the wait is retried, never ``update``."""
    interrupted: BaseException | None = None
    acquired = False
    while not acquired:
        try:
            acquired = _cond.acquire()
        except KeyboardInterrupt as err:
            interrupted = err
    try:
        update()
    finally:
        _cond.release()
    if interrupted is not None:
        raise interrupted


def _enter_fast() -> bool:
    """Open a fast section (lock not held); False when bf16 products are unavailable."""
    global _fast, _saved
    _check_not_in("exact")
    with _cond:
        if _available is None:
            _probe()
        if not _available:
            return False
        if _kind() != "fast":  # nested in one thread: it already holds a section
            _cond.wait_for(lambda: _exact == 0 and _exact_waiting == 0)
        if _fast == 0:
            _saved = _get()
            _set("bf16")
        _fast += 1
        return True


def _exit_fast() -> None:
    def update() -> None:
        global _fast
        _fast -= 1
        if _fast == 0:
            try:
                _set(_saved if _saved is not None else "none")
            finally:
                _cond.notify_all()

    _locked(update)


def _enter_exact() -> None:
    global _exact, _exact_waiting
    _check_not_in("fast")
    with _cond:
        if _kind() != "exact":  # nested in one thread: fast sections are already kept out
            _exact_waiting += 1
            try:
                _cond.wait_for(lambda: _fast == 0 and _probe_waiting == 0)
            finally:
                _exact_waiting -= 1
                if _exact_waiting == 0:
                    _cond.notify_all()
        _exact += 1


def _exit_exact() -> None:
    def update() -> None:
        global _exact
        _exact -= 1
        if _exact == 0:
            _cond.notify_all()

    _locked(update)


@contextlib.contextmanager
def bf16_matmuls(enabled: bool = True) -> Iterator[bool]:
    """A fast section: float32 matmuls run with bf16 products inside it. Yields whether they do
    (False when ``enabled`` is False or the CPU cannot; then nothing is waited for). Waits while
    exact sections run or wait. Keep it short; never pause or wait for another thread inside."""
    on = enabled and _enter_fast()
    outer = _kind()
    try:
        if on:
            _local.kind = "fast"
        yield on
    finally:
        _local.kind = outer
        if on:
            _exit_fast()


class ExactSection:
    """What :func:`exact_matmuls` yields: :meth:`released` steps out of the section for a
    while (around a step hook that may pause, so a paused encode blocks no fast section)."""

    def __init__(self) -> None:
        self.held = False

    def enter(self) -> None:
        _enter_exact()
        self.held = True
        self._outer = _kind()
        _local.kind = "exact"

    def exit(self) -> None:
        if self.held:
            _local.kind = self._outer
            self.held = False
            _exit_exact()

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        self.exit()
        try:
            yield
        finally:
            self.enter()


@contextlib.contextmanager
def exact_matmuls() -> Iterator[ExactSection]:
    """An exact section: float32 matmuls inside it are float32 products (unless the user set
    the global setting). Waits for running fast sections to end first (a few ms)."""
    section = ExactSection()
    section.enter()
    try:
        yield section
    finally:
        section.exit()
