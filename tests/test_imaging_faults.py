"""Bad files get a typed error that names the file and tells the kinds of problem apart
(faults 7, 8 and 9 of faults-to-try.md)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samdesk.errors import (
    CodecMissingError,
    ImageError,
    ImageTooLargeError,
    InputError,
    NotAnImageError,
    TruncatedImageError,
)
from samdesk.imaging import DEFAULT_MAX_PIXELS, TooManyPixelsError, load_image, probe_image
from tests.support.images import forged_jpeg, forged_png, gradient, truncate, write_pillow


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp", ".gif"])
def test_truncated_file_is_refused_and_the_next_one_opens(tmp_path: Path, suffix: str) -> None:
    good = write_pillow(tmp_path / f"good{suffix}", gradient(120, 160))
    cut = truncate(good, tmp_path / f"cut{suffix}", keep=0.6)
    with pytest.raises(TruncatedImageError) as caught:
        load_image(cut)
    assert cut.name in str(caught.value) and "truncated" in str(caught.value)
    assert load_image(good).rgb.shape == (120, 160, 3)


def test_truncated_jpeg_says_truncated(tmp_path: Path) -> None:
    good = write_pillow(tmp_path / "good.jpg", gradient(200, 200), quality=90)
    cut = truncate(good, tmp_path / "cut.jpg", keep=0.5)
    with pytest.raises(TruncatedImageError, match="truncated"):
        load_image(cut)


def test_pillow_truncated_images_flag_is_never_set(tmp_path: Path) -> None:
    from PIL import ImageFile

    good = write_pillow(tmp_path / "good.png", gradient(100, 100))
    with pytest.raises(TruncatedImageError):
        load_image(truncate(good, tmp_path / "cut.png", keep=0.7))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_zero_byte_file_is_not_an_image(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    for call in (load_image, probe_image):
        with pytest.raises(NotAnImageError, match=r"empty\.png.*empty \(0 bytes\)"):
            call(empty)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"hello, this is a text file\n", "text file"),
        (b'{"images": []}', "JSON"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "SVG"),
        (bytes(range(256)) * 4, "no known image format"),
        (b"BMW service report, 2024\n", "starts like a BMP"),
        (b"P3 is the third paragraph\n", "starts like a PPM"),
    ],
)
def test_other_files_named_png_are_not_images(tmp_path: Path, content: bytes, says: str) -> None:
    fake = tmp_path / "fake.png"
    fake.write_bytes(content)
    with pytest.raises(NotAnImageError) as caught:
        load_image(fake)
    message = str(caught.value)
    assert "fake.png" in message and says in message and "not an image" in message
    assert not isinstance(caught.value, (TruncatedImageError, ImageTooLargeError))


def test_bomb_png_is_refused_from_the_header_fast(tmp_path: Path) -> None:
    bomb = forged_png(tmp_path / "bomb.png", 100_000, 100_000)
    assert bomb.stat().st_size < 200
    for call in (probe_image, load_image):
        started = time.perf_counter()
        with pytest.raises(TooManyPixelsError) as caught:
            call(bomb)
        assert time.perf_counter() - started < 0.5
        error = caught.value
        assert isinstance(error, ImageTooLargeError)
        assert (error.width, error.height, error.limit) == (100_000, 100_000, DEFAULT_MAX_PIXELS)
        message = str(error)
        assert "bomb.png" in message and "100,000 x 100,000" in message
        assert f"{DEFAULT_MAX_PIXELS:,}" in message and "SAMDESK_MAX_IMAGE_PIXELS" in message


def test_bomb_jpeg_is_refused_from_the_header(tmp_path: Path) -> None:
    bomb = forged_jpeg(tmp_path / "bomb.jpg", 65_000, 65_000)
    with pytest.raises(ImageTooLargeError, match="65,000 x 65,000"):
        load_image(bomb)


def test_pillow_global_guard_is_left_alone(tmp_path: Path) -> None:
    before = Image.MAX_IMAGE_PIXELS
    probe_image(forged_png(tmp_path / "big.png", 30_000, 30_000), max_pixels=10**9)
    assert before == Image.MAX_IMAGE_PIXELS


def test_cap_can_be_raised_per_call_beyond_pillows_limit(tmp_path: Path) -> None:
    # 900 MP is beyond Pillow's hard limit (2 x 179 MP); the header is all that is read
    info = probe_image(forged_png(tmp_path / "big.png", 30_000, 30_000), max_pixels=10**9)
    assert (info.width, info.height) == (30_000, 30_000)


def test_cap_can_be_lowered_and_raised_per_call(tmp_path: Path) -> None:
    path = write_pillow(tmp_path / "a.png", gradient(30, 40))
    with pytest.raises(ImageTooLargeError, match="1,000 pixels"):
        load_image(path, max_pixels=1000)
    assert load_image(path, max_pixels=1200).width == 40


def test_cap_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_pillow(tmp_path / "a.png", gradient(30, 40))
    monkeypatch.setenv("SAMDESK_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(ImageTooLargeError):
        probe_image(path)
    assert probe_image(path, max_pixels=5000).width == 40  # the call wins over the environment
    monkeypatch.setenv("SAMDESK_MAX_IMAGE_PIXELS", "2_000")
    assert load_image(path).width == 40


@pytest.mark.parametrize("value", ["lots", "-5", "0"])
def test_bad_cap_in_the_environment_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    path = write_pillow(tmp_path / "a.png", gradient(3, 4))
    monkeypatch.setenv("SAMDESK_MAX_IMAGE_PIXELS", value)
    with pytest.raises(InputError, match="SAMDESK_MAX_IMAGE_PIXELS"):
        load_image(path)


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_bad_cap_argument(tmp_path: Path, value: object) -> None:
    path = write_pillow(tmp_path / "a.png", gradient(3, 4))
    with pytest.raises(InputError, match="max_pixels"):
        load_image(path, max_pixels=value)  # type: ignore[arg-type]


def test_missing_file_and_folder_are_named(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "gone.png")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def test_frame_out_of_range(tmp_path: Path) -> None:
    path = write_pillow(tmp_path / "a.png", gradient(3, 4))
    with pytest.raises(InputError, match="1 frame"):
        load_image(path, frame=1)


def test_three_kinds_of_problem_read_differently(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not pixels")
    bomb = forged_png(tmp_path / "bomb.png", 50_000, 50_000)
    messages = {}
    for path, kind in ((text, NotAnImageError), (bomb, ImageTooLargeError)):
        with pytest.raises(kind) as caught:
            load_image(path)
        messages[kind] = str(caught.value)
    assert "not an image" in messages[NotAnImageError]
    assert "limit" in messages[ImageTooLargeError]
    assert "not an image" not in messages[ImageTooLargeError]
    assert issubclass(CodecMissingError, ImageError)  # the third kind: see the TIFF/DICOM tests


def test_damaged_png_data_is_refused(tmp_path: Path) -> None:
    good = write_pillow(tmp_path / "good.png", np.zeros((64, 64, 3), np.uint8))
    data = bytearray(good.read_bytes())
    start = data.index(b"IDAT") + 4
    data[start : start + 20] = b"\xff" * 20
    broken = tmp_path / "broken.png"
    broken.write_bytes(bytes(data))
    with pytest.raises(TruncatedImageError, match=r"broken\.png"):
        load_image(broken)
