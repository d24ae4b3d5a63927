"""``samdesk segment`` and ``samdesk embed``: outputs, the embedding cache, and bad input reported
as one line with exit status 1 (in-process through samdesk.cli.main, and once as a subprocess)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from samdesk.cli import main
from samdesk.cli.commands.embed import ProgressLine
from samdesk.engine import registry
from samdesk.engine.registry import ModelInfo
from samdesk.engine.store import ModelStore
from samdesk.model.testing import save_random_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "net.pth", "small", seed=4)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMDESK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMDESK_DATA_DIR", str(tmp_path / "data"))


def _disc_image(path: Path, h: int = 240, w: int = 320) -> np.ndarray:
    """A textured disc (centre 160, 120, radius 50) on a plain background; returns the truth."""
    rng = np.random.default_rng(0)
    image = np.full((h, w, 3), (40, 90, 160), np.float32)
    truth = np.zeros((h, w), np.uint8)
    cv2.circle(truth, (160, 120), 50, 1, -1)
    image[truth.astype(bool)] = (220, 180, 60)
    image = (image + rng.normal(0, 8, image.shape)).clip(0, 255).astype(np.uint8)
    cv2.imwrite(str(path), image[..., ::-1])
    return truth.astype(bool)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_classic_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _disc_image(tmp_path / "disc.png")
    out = tmp_path / "mask.png"
    rc = main(["segment", str(tmp_path / "disc.png"), "--model", "classic",
               "--point", "160,120", "--point", "5,5,0", "--out", str(out)])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "score 1.000" in printed and "decoder" in printed and str(out) in printed
    mask = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and mask.shape == truth.shape
    assert set(np.unique(mask)) == {0, 255}
    assert _iou(mask == 255, truth) >= 0.9


def test_coco_json_round_trips_through_pycocotools(tmp_path: Path) -> None:
    truth = _disc_image(tmp_path / "disc.png")
    png, js = tmp_path / "m.png", tmp_path / "m.json"
    base = ["segment", str(tmp_path / "disc.png"), "--model", "classic", "--box", "105,65,215,175"]
    assert main([*base, "--out", str(png)]) == 0
    assert main([*base, "--label", "cell", "--out", str(js)]) == 0
    coco = COCO(str(js))
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) == 1 and coco.loadCats(anns[0]["category_id"])[0]["name"] == "cell"
    assert coco.loadImgs(anns[0]["image_id"])[0]["file_name"] == "disc.png"
    from_json = coco.annToMask(anns[0]).astype(bool)
    from_png = cv2.imread(str(png), cv2.IMREAD_UNCHANGED) == 255
    assert _iou(from_json, from_png) >= 0.99 and _iou(from_json, truth) >= 0.9
    assert json.loads(js.read_text())["annotations"][0]["score"] == 1.0


def test_sam_model_uses_the_disk_cache(
    tmp_path: Path, small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _disc_image(tmp_path / "disc.png")
    args = ["segment", str(tmp_path / "disc.png"), "--model", str(small), "--device", "cpu",
            "--point", "160,120", "--multimask", "--out", str(tmp_path / "m.png")]  # fmt: skip
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "embedding computed" in first and "of 3" in first
    assert list((tmp_path / "cache" / "embeddings").glob("*.emb"))
    assert main(args) == 0
    assert "embedding from the disk cache" in capsys.readouterr().out
    mask = cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (240, 320)


def _bad(tmp_path: Path, case: str) -> list[str]:
    image = str(tmp_path / "disc.png")
    out = str(tmp_path / "out.png")
    return {
        "unreadable image": ["segment", str(tmp_path / "notes.png"), "--model", "classic",
                             "--point", "1,1", "--out", out],
        "missing image": ["segment", str(tmp_path / "gone.png"), "--model", "classic",
                          "--point", "1,1", "--out", out],
        "point outside": ["segment", image, "--model", "classic", "--point", "400,10",
                          "--out", out],
        "no prompt": ["segment", image, "--model", "classic", "--out", out],
        "box reversed": ["segment", image, "--model", "classic", "--box", "200,10,100,50",
                         "--out", out],
        "bad point": ["segment", image, "--model", "classic", "--point", "10;20", "--out", out],
        "bad label": ["segment", image, "--model", "classic", "--point", "10,20,7",
                      "--out", out],
        "bad output": ["segment", image, "--model", "classic", "--point", "10,20",
                       "--out", str(tmp_path / "out.jpg")],
        "unknown model": ["segment", image, "--model", "vit_x", "--point", "10,20", "--out", out],
        "not installed": ["segment", image, "--model", "vit_h", "--point", "10,20", "--out", out],
        "not a checkpoint": ["segment", image, "--model", str(tmp_path / "notes.png"),
                             "--point", "10,20", "--out", out],
        "negative point": ["segment", image, "--model", "classic", "--point", "-5,20",
                           "--out", out],
        "negative box": ["segment", image, "--model", "classic", "--box", "-5,-2,50,60",
                         "--out", out],
        "output is a folder": ["segment", image, "--model", "classic", "--point", "10,20",
                               "--out", str(tmp_path / "folder.png")],
        "model is a folder": ["segment", image, "--model", str(tmp_path / "folder.png"),
                              "--point", "10,20", "--out", out],
        "model name too long": ["segment", image, "--model", "m" * 300, "--point", "10,20",
                                "--out", out],
        "checkpoint name too long": ["segment", image, "--model", "m" * 300 + ".pth",
                                     "--point", "10,20", "--out", out],
    }[case]  # fmt: skip


BAD_CASES = {
    "unreadable image": "not an image",
    "missing image": "does not exist",
    "point outside": "outside the image",
    "no prompt": "give at least one --point",
    "box reversed": "x1 < x0",
    "bad point": "not understood",
    "bad label": "label must be 1",
    "bad output": ".png",
    "unknown model": "known models are",
    "not installed": "models download vit_h",
    "not a checkpoint": "not a PyTorch checkpoint",
    "negative point": "outside the image",  # argparse took "-5,20" for an option (exit 2)
    "negative box": "reaches outside the image",
    "output is a folder": "this is a folder",
    "model is a folder": "this is a folder",
    "model name too long": "unknown model",  # Path.is_file() raised ENAMETOOLONG
    "checkpoint name too long": "File name too long",
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_is_one_line_and_status_1(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _disc_image(tmp_path / "disc.png")
    (tmp_path / "notes.png").write_text("just text\n")
    (tmp_path / "folder.png").mkdir()
    assert main(_bad(tmp_path, case)) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("samdesk: error: ") and len(err.splitlines()) == 1, err
    assert BAD_CASES[case] in err
    assert not (tmp_path / "out.png").exists()


def test_model_for_another_architecture(
    tmp_path: Path, small: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Weights installed under a ViT-B entry that are something else: refused, saying what."""
    data = small.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    url = "https://example.invalid/b.pth"
    entry = ModelInfo("labelled_b", "B", "b.pth", url, len(data), sha, None, "vit_b", "sam", "", "")
    monkeypatch.setattr(registry, "MODELS", {entry.name: entry})
    ModelStore().import_model(small)
    _disc_image(tmp_path / "disc.png")
    rc = main(["segment", str(tmp_path / "disc.png"), "--model", "labelled_b",
               "--point", "10,10", "--out", str(tmp_path / "out.png")])  # fmt: skip
    assert rc == 1
    err = capsys.readouterr().err
    assert "looks like SAM (custom architecture)" in err and "expected SAM ViT-B" in err
    assert not (tmp_path / "out.png").exists()


def test_subprocess_success_and_failure(tmp_path: Path) -> None:
    _disc_image(tmp_path / "disc.png")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ok = subprocess.run(
        [sys.executable, "-m", "samdesk", "segment", str(tmp_path / "disc.png"), "--model",
         "classic", "--box", "105,65,215,175", "--out", str(tmp_path / "m.png")],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "score" in ok.stdout and (tmp_path / "m.png").stat().st_size > 0
    bad = subprocess.run(
        [sys.executable, "-m", "samdesk", "segment", str(tmp_path / "disc.png"), "--model",
         "classic", "--point", "9999,1", "--out", str(tmp_path / "n.png")],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr.startswith("samdesk: error: ") and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


# --- embed --------------------------------------------------------------------------------------


def test_embed_folder_skips_cached_and_lists_failures(
    tmp_path: Path, small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    _disc_image(folder / "a.png")
    cv2.imwrite(str(folder / "b.png"), np.full((40, 50, 3), 128, np.uint8))
    (folder / "c.png").write_bytes(b"")  # zero bytes: not an image
    args = ["embed", str(folder), "--model", str(small), "--device", "cpu"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "2 encoded, 0 already cached, 1 failed" in captured.out
    assert "could not be embedded" in captured.err and "c.png" in captured.err
    lines = [ln for ln in captured.err.splitlines() if "/3 " in ln]
    assert len(lines) == 3 and "\r" not in captured.err  # not a terminal: one line per image
    assert len(list((tmp_path / "cache" / "embeddings").glob("*.emb"))) == 2

    (folder / "c.png").unlink()
    assert main(args) == 0
    assert "0 encoded, 2 already cached, 0 failed" in capsys.readouterr().out


def test_embed_then_segment_reads_the_cache(
    tmp_path: Path, small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _disc_image(tmp_path / "disc.png")
    assert main(["embed", str(tmp_path / "disc.png"), "--model", str(small)]) == 0
    capsys.readouterr()
    assert main(["segment", str(tmp_path / "disc.png"), "--model", str(small),
                 "--point", "160,120", "--out", str(tmp_path / "m.png")]) == 0  # fmt: skip
    assert "from the disk cache" in capsys.readouterr().out


def test_embed_refuses_classic_and_empty_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _disc_image(tmp_path / "disc.png")
    assert main(["embed", str(tmp_path / "disc.png"), "--model", "classic"]) == 1
    assert "choose a SAM model" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["embed", str(tmp_path / "empty"), "--model", "classic"]) == 1
    assert "no images found" in capsys.readouterr().err


def test_progress_line_rewrites_in_place_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, plain = Tty(), io.StringIO()
    for stream in (tty, plain):
        line = ProgressLine(stream)
        line.update("working on a long name")
        line.done("ok")
    assert tty.getvalue() == "\rworking on a long name\rok                    \n"
    assert plain.getvalue() == "ok\n"
