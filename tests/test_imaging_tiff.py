"""TIFF: 16-bit, float with NaN/Inf, constant, multi-channel, multi-page, planar, compressed,
truncated and codec-less files (faults 7, 8, 11 and 12 of faults-to-try.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from samdesk.errors import CodecMissingError, ImageTooLargeError, TruncatedImageError
from samdesk.imaging import load_image, probe_image, tiff_reader
from samdesk.imaging.orientation import orient
from tests.support.images import forged_tiff, gradient, set_tiff_short_tag, truncate


def test_uint16_is_stretched_over_its_range_and_raw_is_exact(tmp_path: Path) -> None:
    values = np.linspace(112, 4012, 40 * 60).reshape(40, 60).astype(np.uint16)
    path = tmp_path / "d.tif"
    tifffile.imwrite(path, values)
    loaded = load_image(path)
    assert (loaded.format, loaded.mode) == ("TIFF", "I;16")
    assert loaded.raw is not None and loaded.raw.dtype == np.uint16
    np.testing.assert_array_equal(loaded.raw, values)
    expected = np.rint((values.astype(np.float64) - 112) * 255 / (4012 - 112)).astype(np.uint8)
    np.testing.assert_array_equal(loaded.rgb[:, :, 0], expected)
    np.testing.assert_array_equal(loaded.rgb[:, :, 2], expected)
    assert "16-bit: display range 112..4012 (finite values)" in loaded.notes


def test_one_inf_pixel_does_not_turn_the_image_black(tmp_path: Path) -> None:
    values = np.linspace(0.0, 1.0, 30 * 40, dtype=np.float32).reshape(30, 40)
    values[5, 5] = np.inf
    values[6, 6] = -np.inf
    values[7, 7] = np.nan
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, values)
    loaded = load_image(path)
    assert loaded.mode == "F"
    gray = loaded.rgb[:, :, 0]
    assert gray[-1, -1] == 255 and gray[0, 0] == 0
    assert gray[15, 20] == np.rint(values[15, 20] * 255)
    assert (gray[5, 5], gray[6, 6], gray[7, 7]) == (255, 0, 0)
    assert gray.mean() > 100
    assert "32-bit float: 3 NaN/Inf values left out of the display range" in loaded.notes
    assert np.isinf(loaded.raw[5, 5])


@pytest.mark.parametrize("dtype", [np.float32, np.uint16, np.int16])
def test_constant_image_is_mid_gray_without_dividing_by_zero(tmp_path: Path, dtype: type) -> None:
    path = tmp_path / "c.tif"
    tifffile.imwrite(path, np.full((10, 12), 7, dtype))
    with np.errstate(all="raise"):
        loaded = load_image(path)
    assert (loaded.rgb == 128).all()
    assert any("constant image" in note for note in loaded.notes)


def test_image_without_finite_values_is_black(tmp_path: Path) -> None:
    path = tmp_path / "nan.tif"
    tifffile.imwrite(path, np.full((4, 5), np.nan, np.float32))
    loaded = load_image(path)
    assert (loaded.rgb == 0).all()
    assert any("no finite value" in note for note in loaded.notes)


def test_signed_values_are_stretched(tmp_path: Path) -> None:
    values = np.array([[-1000, 0], [500, 1000]], np.int16)
    path = tmp_path / "hu.tif"
    tifffile.imwrite(path, values)
    loaded = load_image(path)
    assert loaded.rgb[:, :, 0].tolist() == [[0, 128], [191, 255]]


def test_more_than_three_channels_show_the_first_three(tmp_path: Path) -> None:
    planes = np.stack([np.full((6, 8), value, np.uint16) for value in (0, 100, 200, 300, 400)])
    path = tmp_path / "multi.tif"
    tifffile.imwrite(path, planes, photometric="minisblack", planarconfig="separate")
    info = probe_image(path)
    assert (info.width, info.height, info.frames) == (8, 6, 1)
    loaded = load_image(path)
    assert loaded.rgb.shape == (6, 8, 3)
    shown = loaded.rgb[0, 0].tolist()  # one range (0..200) shared by the shown channels
    assert shown[0] == 0 and shown[2] == 255 and abs(shown[1] - 127.5) <= 0.5
    assert loaded.raw is not None and loaded.raw.shape == (6, 8, 5)
    np.testing.assert_array_equal(loaded.raw[:, :, 4], 400)
    assert any("channels 0-2" in note for note in loaded.notes)


def test_planar_rgb_is_interleaved(tmp_path: Path) -> None:
    pixels = gradient(10, 14)
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, np.moveaxis(pixels, -1, 0), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(load_image(path).rgb, pixels)


def test_rgba_with_unassociated_alpha_is_composited(tmp_path: Path) -> None:
    rgba = gradient(6, 6, channels=4)
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0
    path = tmp_path / "rgba.tif"
    tifffile.imwrite(path, rgba, photometric="rgb", extrasamples=["unassalpha"])
    loaded = load_image(path)
    assert loaded.mode == "RGBA"
    assert loaded.rgb[0, 0].tolist() == [0, 0, 0]
    np.testing.assert_array_equal(loaded.rgb[1:], rgba[1:, :, :3])


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("gray", lambda p: tifffile.imwrite(p, gradient(9, 11, channels=1))),
        ("rgb", lambda p: tifffile.imwrite(p, gradient(9, 11), photometric="rgb")),
        (
            "palette",
            lambda p: tifffile.imwrite(
                p,
                (gradient(9, 11, channels=1) % 4).astype(np.uint8),
                photometric="palette",
                colormap=((np.arange(3 * 256).reshape(3, 256) * 85) % 65536).astype(np.uint16),
            ),
        ),
        (
            "cmyk",
            lambda p: tifffile.imwrite(p, gradient(9, 11, channels=4), photometric="separated"),
        ),
        ("bilevel", lambda p: tifffile.imwrite(p, gradient(9, 11, channels=1) > 100)),
        (
            "miniswhite",
            lambda p: tifffile.imwrite(p, gradient(9, 11, channels=1), photometric="miniswhite"),
        ),
    ],
)
def test_eight_bit_tiffs_match_pillow(tmp_path: Path, name: str, write: object) -> None:
    path = tmp_path / f"{name}.tif"
    write(path)  # type: ignore[operator]
    with Image.open(path) as reference:
        expected = np.asarray(reference.convert("RGB"))
    np.testing.assert_array_equal(load_image(path).rgb, expected)


def test_pages_are_frames(tmp_path: Path) -> None:
    stack = np.stack([np.full((5, 7), value, np.float32) for value in (1.0, 2.0, 3.0)])
    stack[:, 0, 0] = 0.0
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, photometric="minisblack")
    assert probe_image(path).frames == 3
    loaded = load_image(path, frame=2)
    assert (loaded.frame, loaded.frames) == (2, 3)
    np.testing.assert_array_equal(loaded.raw, stack[2])


def test_tiff_orientation_tag_is_applied(tmp_path: Path) -> None:
    values = gradient(10, 16, channels=1).astype(np.uint16) * 100
    path = tmp_path / "o.tif"
    tifffile.imwrite(path, values, extratags=[(274, 3, 1, 6, True)])
    info = probe_image(path)
    assert (info.width, info.height, info.orientation) == (10, 16, 6)
    loaded = load_image(path)
    np.testing.assert_array_equal(loaded.raw, orient(values, 6))


def test_lzw_tiff_falls_back_to_pillow(tmp_path: Path) -> None:
    values = (np.arange(30 * 20, dtype=np.uint16) * 50).reshape(30, 20)
    path = tmp_path / "lzw.tif"
    Image.fromarray(values).save(path, compression="tiff_lzw")
    loaded = load_image(path)
    np.testing.assert_array_equal(loaded.raw, values)
    rgb_path = tmp_path / "lzw_rgb.tif"
    Image.fromarray(gradient(12, 9)).save(rgb_path, compression="tiff_lzw")
    np.testing.assert_array_equal(load_image(rgb_path).rgb, gradient(12, 9))


@pytest.mark.parametrize("compression", [34712, 50001, 65000])  # JPEG 2000, WebP, unknown
def test_unsupported_compression_asks_for_a_codec(tmp_path: Path, compression: int) -> None:
    path = tmp_path / "codec.tif"
    tifffile.imwrite(path, gradient(16, 16))
    set_tiff_short_tag(path, 259, compression)
    with pytest.raises(CodecMissingError) as caught:
        load_image(path)
    message = str(caught.value)
    assert "codec.tif" in message and "pip install" in message and "imagecodecs" in message
    assert probe_image(path).width == 16  # the header is still readable


def test_truncated_tiff_is_refused(tmp_path: Path) -> None:
    whole = tmp_path / "whole.tif"
    tifffile.imwrite(whole, gradient(100, 100, channels=1).astype(np.uint16))
    with pytest.raises(TruncatedImageError, match="truncated"):
        load_image(truncate(whole, tmp_path / "cut.tif", keep=0.6))


def test_tiff_bomb_is_refused_from_the_header(tmp_path: Path) -> None:
    bomb = forged_tiff(tmp_path / "bomb.tif", 60_000, 60_000)
    with pytest.raises(ImageTooLargeError, match="60,000 x 60,000"):
        load_image(bomb)
    assert probe_image(bomb, max_pixels=4 * 10**9).width == 60_000
    with pytest.raises(TruncatedImageError):
        load_image(bomb, max_pixels=4 * 10**9)  # admitted by the cap, but its data is missing


def test_without_tifffile_pillow_reads_tiffs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = (np.arange(12 * 10, dtype=np.uint16) * 300).reshape(12, 10)
    path = tmp_path / "d.tif"
    tifffile.imwrite(path, values)
    with_tifffile = load_image(path)
    monkeypatch.setattr(tiff_reader, "tifffile", None)
    assert not tiff_reader.available()
    without = load_image(path)
    np.testing.assert_array_equal(without.raw, values)
    np.testing.assert_array_equal(without.rgb, with_tifffile.rgb)
    assert probe_image(path).mode == "I;16"
