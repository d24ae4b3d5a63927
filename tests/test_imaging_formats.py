"""Common formats decode exactly and convert to RGB by the documented rules (ADR 0032)."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from samdesk.errors import TruncatedImageError
from samdesk.imaging import ImageInfo, LoadedImage, load_image, probe_image
from tests.support.images import gradient, write_pillow


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp", ".ppm"])
def test_lossless_rgb_round_trips_exactly(tmp_path: Path, suffix: str) -> None:
    pixels = gradient(30, 40)
    save = {"lossless": True} if suffix == ".webp" else {}
    path = write_pillow(tmp_path / f"img{suffix}", pixels, **save)
    loaded = load_image(path)
    assert isinstance(loaded, LoadedImage)
    np.testing.assert_array_equal(loaded.rgb, pixels)
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.flags.c_contiguous
    assert loaded.rgb.flags.writeable and loaded.rgb.flags.owndata
    assert (loaded.width, loaded.height) == (40, 30)
    assert loaded.raw is None
    assert loaded.mode == "RGB"


def test_probe_reads_the_header_only(tmp_path: Path) -> None:
    path = write_pillow(tmp_path / "a.png", gradient(30, 40))
    info = probe_image(path)
    assert info == ImageInfo(path, 40, 30, "PNG", "RGB", 1)


def test_jpeg_decodes_like_the_reference_decoder(tmp_path: Path) -> None:
    path = write_pillow(tmp_path / "a.jpg", gradient(64, 80), quality=95)
    loaded = load_image(path)
    assert loaded.format == "JPEG" and loaded.rgb.shape == (64, 80, 3)
    with Image.open(path) as reference:
        np.testing.assert_array_equal(loaded.rgb, np.asarray(reference.convert("RGB")))


def test_gray_is_replicated_into_three_channels(tmp_path: Path) -> None:
    gray = gradient(20, 30, channels=1)
    loaded = load_image(write_pillow(tmp_path / "g.png", gray))
    assert loaded.mode == "L"
    for channel in range(3):
        np.testing.assert_array_equal(loaded.rgb[:, :, channel], gray)
    assert loaded.raw is None


def test_rgba_is_composited_on_black_and_raw_keeps_alpha(tmp_path: Path) -> None:
    rgba = gradient(10, 12, channels=4)
    rgba[:, :, 3] = 255
    rgba[0, 0] = (200, 100, 50, 0)  # fully transparent: black whatever colour it stores
    rgba[0, 1] = (200, 100, 50, 128)  # half: value * 128 / 255, rounded
    loaded = load_image(write_pillow(tmp_path / "a.png", rgba))
    assert loaded.rgb[0, 0].tolist() == [0, 0, 0]
    assert loaded.rgb[0, 1].tolist() == [100, 50, 25]
    np.testing.assert_array_equal(loaded.rgb[1:], rgba[1:, :, :3])
    assert loaded.raw is not None
    np.testing.assert_array_equal(loaded.raw, rgba)
    assert any("composited on black" in note for note in loaded.notes)


def test_gray_alpha_is_composited_too(tmp_path: Path) -> None:
    la = np.zeros((4, 5, 2), np.uint8)
    la[..., 0] = 200
    la[..., 1] = 255
    la[0, 0, 1] = 0
    loaded = load_image(write_pillow(tmp_path / "la.png", la))
    assert loaded.rgb[0, 0].tolist() == [0, 0, 0]
    assert loaded.rgb[1, 1].tolist() == [200, 200, 200]
    assert loaded.raw is not None and loaded.raw.shape == (4, 5, 2)


def test_palette_becomes_its_colours(tmp_path: Path) -> None:
    source = Image.fromarray(gradient(16, 16)).quantize(colors=8)
    source.save(tmp_path / "p.png")
    loaded = load_image(tmp_path / "p.png")
    assert loaded.mode == "P"
    np.testing.assert_array_equal(loaded.rgb, np.asarray(source.convert("RGB")))


def test_palette_transparency_is_composited(tmp_path: Path) -> None:
    indices = np.zeros((4, 4), np.uint8)
    indices[0, 0] = 1
    image = Image.fromarray(indices, mode="P")
    image.putpalette([10, 20, 30, 250, 240, 230] + [0] * 762)
    image.save(tmp_path / "t.png", transparency=1)
    loaded = load_image(tmp_path / "t.png")
    assert loaded.rgb[0, 0].tolist() == [0, 0, 0]
    assert loaded.rgb[1, 1].tolist() == [10, 20, 30]


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    rgb = np.full((8, 8, 3), (255, 0, 0), np.uint8)
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(path, quality=100)
    loaded = load_image(path)
    assert loaded.mode == "CMYK" and loaded.rgb.shape == (8, 8, 3)
    assert loaded.rgb[4, 4, 0] > 240 and loaded.rgb[4, 4, 1:].max() < 15


def test_one_bit_image_is_black_and_white(tmp_path: Path) -> None:
    bits = gradient(8, 8, channels=1) > 120
    path = tmp_path / "b.png"
    Image.fromarray(bits).save(path)
    loaded = load_image(path)
    assert loaded.mode == "1"
    np.testing.assert_array_equal(loaded.rgb[:, :, 0], np.where(bits, 255, 0))


def test_sixteen_bit_png_is_stretched_over_its_range(tmp_path: Path) -> None:
    values = np.linspace(112, 4012, 20 * 30).reshape(20, 30).astype(np.uint16)
    path = tmp_path / "d.png"
    Image.fromarray(values).save(path)
    loaded = load_image(path)
    assert loaded.rgb[0, 0, 0] == 0 and loaded.rgb[-1, -1, 0] == 255
    assert loaded.raw is not None and loaded.raw.dtype == np.uint16
    np.testing.assert_array_equal(loaded.raw, values)
    assert "16-bit: display range 112..4012 (finite values)" in loaded.notes


def test_animated_gif_frames(tmp_path: Path) -> None:
    frames = [Image.fromarray(np.full((6, 7, 3), value, np.uint8)) for value in (0, 255)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert probe_image(path).frames == 2
    assert load_image(path, frame=1).rgb.min() == 255
    assert load_image(path).rgb.max() == 0


def test_large_jpeg_loads_well_under_a_second(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    photo = np.asarray(Image.fromarray(small).resize((4000, 3000), Image.Resampling.BICUBIC))
    path = write_pillow(tmp_path / "photo.jpg", photo, quality=90)
    started = time.perf_counter()
    loaded = load_image(path)
    elapsed = time.perf_counter() - started
    assert loaded.rgb.shape == (3000, 4000, 3)
    assert elapsed < 1.0, f"loading a 4000x3000 JPEG took {elapsed:.2f} s"


def _write_png16(path: Path, rgb: np.ndarray) -> Path:
    """A 16-bit RGB or RGBA PNG (Pillow cannot write those; OpenCV can, from bytes)."""
    order = [2, 1, 0, 3][: rgb.shape[2]]
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, order]))
    assert ok
    path.write_bytes(encoded.tobytes())
    return path


def test_sixteen_bit_colour_png_keeps_all_sixteen_bits(tmp_path: Path) -> None:
    rgb = (np.arange(20 * 30 * 3).reshape(20, 30, 3) * 3 + 150).astype(np.uint16)
    path = _write_png16(tmp_path / "colour16 ü.png", rgb)
    info = probe_image(path)
    assert info.mode == "RGB;16"
    loaded = load_image(path)
    assert loaded.raw is not None and loaded.raw.dtype == np.uint16
    np.testing.assert_array_equal(loaded.raw, rgb)
    assert loaded.value_range == (150.0, float(rgb.max()))
    assert loaded.rgb[0, 0, 0] == 0 and loaded.rgb.max() == 255


def test_sixteen_bit_rgba_png_is_composited(tmp_path: Path) -> None:
    rgba = np.full((4, 5, 4), 65535, np.uint16)
    rgba[..., :3] = np.arange(3, dtype=np.uint16) * 1000
    rgba[0, 0, 3] = 0
    loaded = load_image(_write_png16(tmp_path / "a16.png", rgba))
    assert loaded.rgb[0, 0].tolist() == [0, 0, 0]
    assert loaded.rgb[1, 1].tolist() == [0, 128, 255]
    assert loaded.raw is not None and loaded.raw.shape == (4, 5, 4)


def test_truncated_sixteen_bit_png_is_refused(tmp_path: Path) -> None:
    rgb = (np.arange(200 * 300 * 3).reshape(200, 300, 3) * 7 % 65535).astype(np.uint16)
    whole = _write_png16(tmp_path / "whole.png", rgb)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(TruncatedImageError, match=r"cut\.png"):
        load_image(cut)
