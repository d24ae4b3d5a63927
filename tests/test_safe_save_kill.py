"""Fault injection: a process killed (SIGKILL) at random moments while it saves never leaves a
project that fails to load or lacks an object whose save had returned."""

from __future__ import annotations

import os
import random
import select
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from samdesk.annotation import Document
from tests.support import masks

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)"),
]

KILLS = 40


def _saving_child(project: Path, report_fd: int) -> None:
    """Runs in the forked child: add an object, save, report the count; forever."""
    try:
        doc = Document.load(project)
        image_id = doc.images.ids()[0]
        rng = np.random.default_rng(os.getpid())
        while True:
            x, y = (int(v) for v in rng.integers(10, 80, 2))
            doc.add_instance(image_id, masks.disk(x, y, 6, 96, 96), "cell")
            doc.save()
            os.write(report_fd, f"{len(doc.instances)}\n".encode())
    finally:
        os._exit(0)


def _read_counts(fd: int) -> list[int]:
    data = b""
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    complete = data.rsplit(b"\n", 1)[0] if b"\n" in data else b""
    return [int(line) for line in complete.split(b"\n") if line]


def test_sigkill_during_save_never_loses_a_saved_object(tmp_path: Path) -> None:
    project = tmp_path / "killed.samdesk.json"
    doc = Document()
    image_id = doc.add_image(tmp_path / "a.png", size=(96, 96))
    for n in range(300):  # big enough that a save takes a while
        doc.add_instance(image_id, masks.disk(10 + n % 70, 10 + n % 60, 5, 96, 96), "cell")
    doc.save(project)
    confirmed = len(doc.instances)
    rng = random.Random(1234)
    mid_write = 0
    for _ in range(KILLS):
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _saving_child(project, write_fd)
        os.close(write_fd)
        time.sleep(rng.uniform(0.005, 0.25))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        counts = _read_counts(read_fd)
        os.close(read_fd)
        if counts:
            confirmed = counts[-1]
        loaded = Document.load(project)  # must never raise
        held = len(loaded.instances)
        assert confirmed <= held <= confirmed + 1, (confirmed, held)
        confirmed = held
        mid_write += any(p.name.endswith(".samdesk-tmp") for p in tmp_path.iterdir())
        for leftover in tmp_path.glob("*.samdesk-tmp"):
            leftover.unlink()
    print(f"\n[kill] {KILLS} kills, {mid_write} during a write; {confirmed} objects on disk")
    assert confirmed > 300
