"""Imports under random damage: every mutated COCO or labelme file either imports (and the
project then saves and loads again) or is refused with FormatError listing its problems, and a
refused file changes nothing. Never another exception, never a crash inside pycocotools.

The mutator is seeded, so a failure names a case that can be replayed: ``case(seed)``.
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from samdesk.annotation import Document
from samdesk.annotation import rle as rle_module
from samdesk.errors import FormatError
from tests.support import masks

# pycocotools' own decoder warns under numpy 2.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CASES = 800  # per format: about a second each

ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    1,
    7,
    2**31,
    2**64,
    -(2**63),
    0.5,
    1e308,
    -1e308,
    math.nan,
    math.inf,
    "",
    " ",
    "x",
    "细胞 🧫",
    "\ud800",
    "a" * 3000,
    "../../x.png",
    [],
    [1],
    [[1, 2]],
    {},
    {"size": [8, 10], "counts": "0"},
    {"size": [8, 10], "counts": [80]},
    {"size": [8, 10], "counts": masks.wrapped_rle(8, 10)},
]


def valid_coco() -> dict[str, Any]:
    ring = np.zeros((8, 10), dtype=bool)
    ring[1:7, 2:9] = True
    ring[3:5, 4:7] = False  # a hole
    ring[0, 0] = True  # and a second part
    return {
        "info": {"description": "fuzz"},
        "images": [
            {"id": 1, "file_name": "x.png", "width": 10, "height": 8},
            {"id": 2, "file_name": "sub/y.png", "width": 12, "height": 6},
        ],
        "categories": [{"id": 1, "name": "cell", "color": "#123456"}, {"id": 2, "name": "细胞"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": [[1, 1, 6, 1, 6, 5], [7, 2, 9, 2, 9, 7]],
                "bbox": [1, 1, 8, 6],
                "area": 30.0,
                "iscrowd": 0,
                "score": 0.9,
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 2,
                "segmentation": {"size": [8, 10], "counts": rle_module.encode(ring)},
                "iscrowd": 0,
            },
            {
                "id": 3,
                "image_id": 2,
                "category_id": 1,
                "segmentation": {"size": [6, 12], "counts": [10, 20, 42]},
                "iscrowd": 1,
            },
        ],
    }


def valid_labelme() -> dict[str, Any]:
    patch = np.zeros((3, 4), dtype=bool)
    patch[1, 1:3] = True
    from tests.test_formats_labelme import _png

    return {
        "version": "5.5.0",
        "flags": {},
        "shapes": [
            {"label": "a", "points": [[1, 1], [5, 1], [5, 5]], "shape_type": "polygon"},
            {"label": "a", "points": [[8, 8], [12, 8], [12, 12]], "group_id": 3},
            {"label": "a", "points": [[14, 8], [16, 8], [16, 12]], "group_id": 3},
            {"label": "box", "points": [[2, 3], [6, 5]], "shape_type": "rectangle"},
            {"label": "disc", "points": [[15, 10], [15, 14]], "shape_type": "circle"},
            {"label": "spot", "points": [[4, 4]], "shape_type": "point"},
            {
                "label": "m",
                "points": [[20, 12], [23, 14]],
                "shape_type": "mask",
                "mask": _png(patch),
            },
        ],
        "imagePath": "frame.png",
        "imageData": None,
        "imageHeight": 20,
        "imageWidth": 30,
    }


def _containers(node: Any, found: list[tuple[Any, Any]]) -> None:
    """Every (container, key) pair under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((node, key))
            _containers(value, found)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.append((node, index))
            _containers(value, found)


def mutate(content: Any, rng: random.Random) -> Any:
    """One to three random changes to a parsed file: replace, delete, duplicate, nudge."""
    content = copy.deepcopy(content)
    for _ in range(rng.randint(1, 3)):
        spots: list[tuple[Any, Any]] = []
        _containers(content, spots)
        if not spots:
            return rng.choice(ODD_VALUES)
        container, key = rng.choice(spots)
        action = rng.random()
        value = container[key]
        if action < 0.45:
            container[key] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif action < 0.6:
            del container[key]
        elif action < 0.7 and isinstance(container, list):
            container.insert(key, copy.deepcopy(value))  # a duplicate
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            container[key] = value + rng.choice([-1000, -2, -1, 1, 2, 1e6, 0.5])
        elif isinstance(value, str) and value:
            cut = rng.randrange(len(value))
            container[key] = value[:cut] + rng.choice(["", "P", "~", "\\", "é"]) + value[cut + 1 :]
        else:
            container[key] = copy.deepcopy(rng.choice(ODD_VALUES))
    return content


def damaged_bytes(content: Any, rng: random.Random) -> bytes:
    data = bytearray(json.dumps(content, ensure_ascii=False).encode("utf-8"))
    if rng.random() < 0.5:
        return bytes(data[: rng.randrange(len(data))])  # cut off
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


@pytest.fixture
def project(tmp_path: Path) -> tuple[Document, Path]:
    doc = Document()
    image_id = doc.add_image(tmp_path / "x.png", size=(10, 8))
    doc.add_instance(image_id, masks.disk(4, 4, 2, 8, 10), "cell")
    path = doc.save(tmp_path / "p.samdesk.json")
    return doc, path


def _check_all_or_nothing(
    doc: Document, path: Path, source: Path, fmt: str, tmp_path: Path, seed: int
) -> str:
    before = (doc.revision, len(doc.images), len(doc.instances), len(doc.categories))
    saved = path.read_bytes()
    try:
        doc.import_file(fmt, source)
    except FormatError as err:
        assert str(err).strip(), seed
        assert (doc.revision, len(doc.images), len(doc.instances), len(doc.categories)) == before
        assert path.read_bytes() == saved
        return "refused"
    # Whatever was accepted can be saved and opened again, unchanged.
    again = Document.load(doc.save(tmp_path / f"after-{seed}.samdesk.json"))
    assert [(i.label, i.rle) for i in again.instances] == [(i.label, i.rle) for i in doc.instances]
    doc.export("coco", tmp_path / f"after-{seed}.json")
    return "imported"


def _run(
    fmt: str,
    valid: Callable[[], Any],
    project: tuple[Document, Path],
    tmp_path: Path,
) -> dict[str, int]:
    outcomes = {"refused": 0, "imported": 0}
    base = valid()
    for seed in range(CASES):
        rng = random.Random(seed)
        doc = project[0].copy()
        source = tmp_path / f"{fmt}-{seed}.json"
        if rng.random() < 0.15:
            source.write_bytes(damaged_bytes(base, rng))
        else:
            # ASCII JSON: lone surrogates among the odd values become \\udXXX escapes.
            source.write_text(json.dumps(mutate(base, rng)), encoding="utf-8")
        outcomes[_check_all_or_nothing(doc, project[1], source, fmt, tmp_path, seed)] += 1
    return outcomes


def test_mutated_coco_files_import_or_are_refused_cleanly(
    project: tuple[Document, Path], tmp_path: Path
) -> None:
    outcomes = _run("coco", valid_coco, project, tmp_path)
    # Both outcomes occur, so the mutations neither always break nor never touch the file.
    assert outcomes["refused"] > CASES // 4 and outcomes["imported"] > CASES // 20, outcomes


def test_mutated_labelme_files_import_or_are_refused_cleanly(
    project: tuple[Document, Path], tmp_path: Path
) -> None:
    outcomes = _run("labelme", valid_labelme, project, tmp_path)
    assert outcomes["refused"] > CASES // 4 and outcomes["imported"] > CASES // 20, outcomes


def test_the_unmutated_files_import(project: tuple[Document, Path], tmp_path: Path) -> None:
    for fmt, valid in (("coco", valid_coco), ("labelme", valid_labelme)):
        source = tmp_path / f"{fmt}.json"
        source.write_text(json.dumps(valid(), ensure_ascii=False), encoding="utf-8")
        doc = project[0].copy()
        report = doc.import_file(fmt, source)
        assert report.objects == {"coco": 3, "labelme": 5}[fmt]
