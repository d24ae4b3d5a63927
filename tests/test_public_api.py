"""The names the README's Python API section uses exist where it says, and work as shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

import samdesk.engine
from samdesk.annotation import Document
from samdesk.engine import Predictor
from samdesk.model.testing import save_random_checkpoint


def test_engine_exports_the_predictor_lazily() -> None:
    code = (
        "import sys, samdesk.engine, samdesk.engine.options; "
        "assert 'torch' not in sys.modules, 'samdesk.engine imported torch'; "
        "from samdesk.engine import Predictor; assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert set(samdesk.engine.__all__) <= set(dir(samdesk.engine))
    for name in samdesk.engine.__all__:
        assert getattr(samdesk.engine, name) is not None


def test_readme_example_runs(tmp_path: Path) -> None:
    checkpoint = save_random_checkpoint(tmp_path / "sam_vit_b_01ec64.pth", "small", seed=1)
    image = np.zeros((300, 400, 3), np.uint8)
    image[100:200, 150:250] = (200, 100, 50)
    predictor = Predictor.from_checkpoint(checkpoint, precision="fp32")
    predictor.set_image(image)
    masks, scores, low_res = predictor.predict(
        point_coords=np.array([[210, 150]]), point_labels=np.array([1]), multimask_output=True
    )
    assert masks.shape == (3, 300, 400) and masks.dtype == bool
    assert scores.shape == (3,) and low_res.shape == (3, 256, 256)

    (tmp_path / "images").mkdir()
    import cv2

    cv2.imwrite(str(tmp_path / "images" / "a.png"), image)
    doc = Document()
    image_id = doc.add_image(tmp_path / "images" / "a.png")
    mask = np.zeros((300, 400), bool)
    mask[100:200, 150:250] = True
    mask[140:160, 190:210] = False  # a hole
    doc.add_instance(image_id, mask, "cup")
    doc.save(tmp_path / "images" / "samdesk-project.json")
    report = doc.export("coco", tmp_path / "annotations.json")
    assert report.objects == 1
    assert "RLE" in report.summary()
