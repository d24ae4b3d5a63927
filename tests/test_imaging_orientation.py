"""EXIF orientation: display, model input and coordinates share one oriented frame (fault 13)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from samdesk.imaging import load_image, probe_image
from samdesk.imaging.orientation import orient, oriented_size, stored_box
from tests.support.images import exif_with_orientation, gradient, write_pillow


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_eight_orientations_match_pillow_exif_transpose(
    tmp_path: Path, orientation: int
) -> None:
    stored = gradient(30, 50)
    path = write_pillow(tmp_path / "o.png", stored, exif=exif_with_orientation(orientation))
    with Image.open(path) as image:
        expected = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    loaded = load_image(path)
    np.testing.assert_array_equal(loaded.rgb, expected)
    info = probe_image(path)
    assert (info.width, info.height) == (loaded.width, loaded.height)
    assert (info.width, info.height) == (expected.shape[1], expected.shape[0])
    assert info.orientation == orientation
    assert ("EXIF orientation" in " ".join(loaded.notes)) == (orientation != 1)


@pytest.mark.parametrize("orientation", [6, 8])
def test_jpeg_orientation_6_and_8(tmp_path: Path, orientation: int) -> None:
    stored = np.zeros((40, 64, 3), np.uint8)
    stored[:8, :8] = 255  # a white square in the stored top-left corner
    path = write_pillow(
        tmp_path / "photo.jpg", stored, quality=100, exif=exif_with_orientation(orientation)
    )
    info = probe_image(path)
    assert (info.width, info.height) == (40, 64)
    loaded = load_image(path)
    assert loaded.rgb.shape == (64, 40, 3)
    # orientation 6 (rotate 90 clockwise) brings the stored top-left to the top-right;
    # orientation 8 (rotate 90 counter-clockwise) brings it to the bottom-left
    corner = loaded.rgb[:8, -8:] if orientation == 6 else loaded.rgb[-8:, :8]
    assert corner.mean() > 240
    assert loaded.rgb[:8, :8].mean() < 15 if orientation == 6 else loaded.rgb[:8, -8:].mean() < 15


@pytest.mark.parametrize("orientation", range(1, 9))
def test_stored_box_is_the_inverse_of_orient(orientation: int) -> None:
    stored = gradient(7, 11)
    oriented = orient(stored, orientation)
    width, height = oriented_size(11, 7, orientation)
    assert oriented.shape[:2] == (height, width)
    for box in [(0, 0, width, height), (1, 2, 4, 5), (width - 3, height - 2, width, height)]:
        x0, y0, x1, y1 = box
        sx0, sy0, sx1, sy1 = stored_box(box, 11, 7, orientation)
        np.testing.assert_array_equal(
            orient(stored[sy0:sy1, sx0:sx1], orientation), oriented[y0:y1, x0:x1]
        )


@pytest.mark.parametrize("value", [0, 9, 300])
def test_invalid_orientation_is_ignored_with_a_note(tmp_path: Path, value: int) -> None:
    stored = gradient(10, 20)
    path = write_pillow(tmp_path / "o.jpg", stored, quality=100, exif=exif_with_orientation(value))
    loaded = load_image(path)
    assert loaded.rgb.shape == (10, 20, 3)
    assert any("not 1..8" in note for note in loaded.notes)


def test_raw_is_oriented_like_rgb(tmp_path: Path) -> None:
    values = (np.arange(6 * 9, dtype=np.uint16).reshape(6, 9) * 1000).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path, exif=exif_with_orientation(6))
    loaded = load_image(path)
    assert loaded.raw is not None and loaded.raw.shape == (9, 6)
    np.testing.assert_array_equal(loaded.raw, orient(values, 6))
    assert loaded.raw.argmax() == np.ravel_multi_index(
        np.unravel_index(loaded.rgb[:, :, 0].argmax(), loaded.rgb.shape[:2]), loaded.raw.shape
    )
