"""An image replaced on disk is detected, never silently misaligned (fault 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from samdesk.errors import ImageChangedError, ImageError
from samdesk.imaging import ImageMismatchError, check_unchanged, load_image
from tests.support.images import exif_with_orientation, gradient, write_pillow


def test_unchanged_image_passes(tmp_path: Path) -> None:
    path = write_pillow(tmp_path / "a.png", gradient(30, 40))
    loaded = load_image(path)
    check_unchanged(path, width=40, height=30, content_hash=loaded.content_hash)
    check_unchanged(path, width=40, height=30, content_hash=loaded.content_hash.upper())


def test_replaced_by_another_size(tmp_path: Path) -> None:
    path = write_pillow(tmp_path / "a.png", gradient(30, 40))
    write_pillow(path, gradient(30, 41))
    with pytest.raises(ImageChangedError) as caught:
        check_unchanged(path, width=40, height=30)
    error = caught.value
    assert isinstance(error, ImageMismatchError) and error.size_changed
    assert (error.expected, error.actual) == ((40, 30), (41, 30))
    assert "a.png" in str(error) and "misaligned" in str(error)


def test_rotated_by_rewriting_the_exif_orientation(tmp_path: Path) -> None:
    path = write_pillow(tmp_path / "p.jpg", gradient(30, 40), quality=95)
    write_pillow(path, gradient(30, 40), quality=95, exif=exif_with_orientation(6))
    with pytest.raises(
        ImageMismatchError, match="40 x 30 pixels when annotated and is now 30 x 40"
    ):
        check_unchanged(path, width=40, height=30)


def test_same_size_other_content(tmp_path: Path) -> None:
    path = write_pillow(tmp_path / "a.png", gradient(30, 40))
    original = load_image(path).content_hash
    pixels = gradient(30, 40)
    pixels[0, 0] = 255 - pixels[0, 0]
    write_pillow(path, pixels)
    check_unchanged(path, width=40, height=30)  # the size alone still matches
    with pytest.raises(ImageMismatchError) as caught:
        check_unchanged(path, width=40, height=30, content_hash=original)
    assert not caught.value.size_changed
    assert "content differs" in str(caught.value)


def test_missing_image_is_an_image_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="does not exist"):
        check_unchanged(tmp_path / "gone.png", width=1, height=1)
