"""``samdesk segment`` on the images users bring: EXIF-rotated JPEG, 16-bit TIFF, DICOM, a
damaged file, non-ASCII paths (faults 11, 13, 14, 15 of faults-to-try.md, through the CLI)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from samdesk.cli import main
from tests.support.images import exif_with_orientation, write_dicom


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMDESK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMDESK_DATA_DIR", str(tmp_path / "data"))


def _disc(h: int, w: int, centre: tuple[int, int], radius: int) -> np.ndarray:
    """(H, W) bool disc."""
    truth = np.zeros((h, w), np.uint8)
    cv2.circle(truth, centre, radius, 1, -1)
    return truth.astype(bool)


def _scene(truth: np.ndarray, low: int, high: int, dtype: type = np.uint8) -> np.ndarray:
    """``truth`` as a noisy image: ``high`` inside, ``low`` outside (seeded noise)."""
    noise = np.random.default_rng(1).normal(0, (high - low) / 12, truth.shape)
    return (np.where(truth, high, low) + noise).clip(0, np.iinfo(dtype).max).astype(dtype)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _segment(image: Path, out: Path, *prompts: str) -> np.ndarray:
    assert main(["segment", str(image), "--model", "classic", *prompts, "--out", str(out)]) == 0
    return cv2.imdecode(np.fromfile(out, np.uint8), cv2.IMREAD_UNCHANGED) == 255


def test_exif_rotated_jpeg_is_segmented_in_the_displayed_frame(tmp_path: Path) -> None:
    """Stored 160 wide and 120 high with orientation 6 (rotate 90 clockwise to display): the
    click and the mask are in the displayed frame, 120 wide and 160 high."""
    stored_truth = _disc(120, 160, (50, 40), 28)
    stored = np.repeat(_scene(stored_truth, 60, 200)[:, :, None], 3, axis=2)
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(path, quality=95, exif=exif_with_orientation(6))
    shown_truth = np.rot90(stored_truth, k=-1)  # what a viewer shows
    ys, xs = np.nonzero(shown_truth)
    mask = _segment(path, tmp_path / "m.png", "--point", f"{xs.mean():.0f},{ys.mean():.0f}")
    assert mask.shape == (160, 120)
    assert _iou(mask, shown_truth) >= 0.85


def test_sixteen_bit_tiff_and_dicom(tmp_path: Path) -> None:
    truth = _disc(96, 128, (70, 50), 25)
    tifffile.imwrite(tmp_path / "deep.tif", _scene(truth, 1000, 3000, np.uint16))
    write_dicom(tmp_path / "ct.dcm", _scene(truth, 100, 900, np.uint16), window=(500, 1000))
    for name in ("deep.tif", "ct.dcm"):
        mask = _segment(tmp_path / name, tmp_path / f"{name}.png", "--box", "40,20,100,80")
        assert mask.shape == truth.shape
        assert _iou(mask, truth) >= 0.85, name


def test_non_ascii_paths(tmp_path: Path) -> None:
    folder = tmp_path / "données 📁"
    folder.mkdir()
    truth = _disc(80, 100, (50, 40), 20)
    image = folder / unicodedata.normalize("NFD", "café 🐱.png")
    Image.fromarray(_scene(truth, 30, 220)).save(image)
    mask = _segment(image, folder / "masque été.png", "--point", "50,40")
    assert _iou(mask, truth) >= 0.85


def test_damaged_image_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tiles.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint8), tile=(32, 32), compression="zlib")
    with tifffile.TiffFile(path) as tif:
        offset, count = tif.pages.first.dataoffsets[0], tif.pages.first.databytecounts[0]
    data = bytearray(path.read_bytes())
    data[offset + 2 : offset + count] = bytes(range(256))[: count - 2]
    path.write_bytes(bytes(data))
    rc = main(["segment", str(path), "--model", "classic", "--point", "5,5",
               "--out", str(tmp_path / "m.png")])  # fmt: skip
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("samdesk: error: tiles.tif:") and len(err.splitlines()) == 1, err
    assert not (tmp_path / "m.png").exists()
