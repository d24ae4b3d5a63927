"""Thread budgets and OS priority for running the encoder beside interactive clicks (ADR 0013).

What torch does (measured with torch 2.x, OpenMP/libgomp build):

* ``torch.set_num_threads(n)`` sets the **calling OS thread's** OpenMP and MKL thread counts
  (both are per-thread settings), so a background thread can encode with 1 thread while the
  foreground thread keeps 2 for clicks.
* It also stores ``n`` as a process-wide default, which any thread picks up the first time it
  runs a parallel torch op. A foreground thread that had not used torch yet would silently get the
  background budget. Hence :func:`thread_budget` restores the previous value when the encode
  ends, and :func:`ensure_threads` lets the click path reassert its own count (cheap check).
* OS priority on Linux is per thread: ``os.setpriority(os.PRIO_PROCESS, native_id, nice)``
  lowers only that thread. With a 1-thread budget all of the encode's work runs on that thread
  (no OpenMP workers), so all of it runs at the lowered priority. An unprivileged process cannot
  raise priority back, so lower it once in a dedicated worker thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import torch

from samdesk.errors import InputError


@contextlib.contextmanager
def thread_budget(num_threads: int | None) -> Iterator[None]:
    """Run the body with ``num_threads`` intra-op threads in this OS thread (None: unchanged)."""
    if num_threads is None:
        yield
        return
    if not isinstance(num_threads, int) or num_threads < 1:
        raise InputError(f"num_threads must be a positive integer or None, not {num_threads!r}.")
    previous = torch.get_num_threads()
    if previous == num_threads:
        yield
        return
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def ensure_threads(num_threads: int) -> None:
    """Make this OS thread use ``num_threads`` intra-op threads if it does not already."""
    if torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)


def lower_current_thread_priority(increment: int = 10) -> bool:
    """Make the calling OS thread nicer by ``increment`` (Linux/macOS). False if unsupported.

    Irreversible for unprivileged processes: call it at the start of a dedicated background
    thread, never on the GUI thread.
    """
    if not hasattr(os, "setpriority"):
        return False
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + increment))
    except OSError:
        return False
    return True
