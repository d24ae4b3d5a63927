"""Damaged project files under random mutation: every one either opens (and then saves, opens
again identically, exports and checks its images without an untyped exception) or is refused
with a ProjectError. Seeded, so a failing seed can be replayed.
"""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path

import numpy as np
import pytest

from samdesk.annotation import Document
from samdesk.errors import CorruptProjectError, ProjectError, SamdeskError
from tests.support import masks
from tests.test_formats_fuzz import damaged_bytes, mutate

CASES = 400


def base_project(folder: Path) -> dict:
    doc = Document()
    first = doc.add_image(folder / "x.png", size=(10, 8))
    doc.add_instance(first, masks.disk(4, 4, 2, 8, 10), "cell", score=0.5, prompts={"p": [1]})
    second = doc.add_image(folder / "y.png", size=(12, 6))
    ring = np.zeros((6, 12), dtype=bool)
    ring[1:4, 2:9] = True
    ring[2, 4] = False
    doc.add_instance(second, ring, "细胞")
    return json.loads(doc.save(folder / "p.samdesk.json").read_text(encoding="utf-8"))


def test_mutated_project_files_open_cleanly_or_are_refused(tmp_path: Path) -> None:
    base = base_project(tmp_path)
    outcomes = {"refused": 0, "opened": 0}
    for seed in range(CASES):
        rng = random.Random(seed)
        source = tmp_path / "mutated.samdesk.json"
        if rng.random() < 0.1:
            source.write_bytes(damaged_bytes(base, rng))
        else:
            source.write_text(json.dumps(mutate(base, rng)), encoding="utf-8")
        before = source.read_bytes()
        try:
            doc = Document.load(source)
        except ProjectError:
            outcomes["refused"] += 1
            assert source.read_bytes() == before, seed
            continue
        outcomes["opened"] += 1
        again = Document.load(doc.save(tmp_path / "again.samdesk.json"))
        assert [(i.id, i.label, i.rle, i.bbox) for i in again.instances] == [
            (i.id, i.label, i.rle, i.bbox) for i in doc.instances
        ], seed
        for fmt in ("coco", "yolo", "labelme", "masks"):
            # A typed refusal (e.g. two images that would share a file name) is fine.
            with contextlib.suppress(SamdeskError):
                doc.export(fmt, tmp_path / "out" / fmt)
        for image in doc.images:
            doc.image_changed(image.id)
    assert outcomes["refused"] > CASES // 2 and outcomes["opened"] > CASES // 20, outcomes


def test_an_empty_mask_string_last_in_the_file_is_refused(tmp_path: Path) -> None:
    """Found by this fuzzer: it raised IndexError (from numpy) instead of CorruptProjectError."""
    content = base_project(tmp_path)
    content["instances"][-1]["counts"] = ""
    source = tmp_path / "p.samdesk.json"
    source.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(CorruptProjectError, match=r"instances\[1\].counts: RLE covers 0 pixels"):
        Document.load(source)
