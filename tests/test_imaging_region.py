"""Regions and thumbnails of large images: exact coordinates in the oriented frame, and only
what the format needs decoded (fault 10 of faults-to-try.md)."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from samdesk.errors import ImageTooLargeError, InputError, TruncatedImageError
from samdesk.imaging import load_image, probe_image, read_region, thumbnail
from tests.support.images import (
    exif_with_orientation,
    forged_png,
    gradient,
    shared_tile_tiff,
    write_dicom,
    write_pillow,
)

BOXES = [(0, 0, 5, 3), (7, 4, 31, 19), (30, 20, 40, 50)]
TILE = (np.add.outer(np.arange(256) * 3, np.arange(256) * 5) % 251).astype(np.uint8)


@pytest.fixture(scope="module")
def big_tiff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12,000 x 3,000 RGB, tiled 256 x 256, uncompressed (108 MB)."""
    path = tmp_path_factory.mktemp("big") / "wide.tif"
    row = (np.arange(12_000, dtype=np.uint32) * 7 % 251).astype(np.uint8)
    column = (np.arange(3_000, dtype=np.uint32) * 13 % 251).astype(np.uint8)
    pixels = np.empty((3_000, 12_000, 3), np.uint8)
    pixels[:, :, 0] = row[None, :]
    pixels[:, :, 1] = column[:, None]
    pixels[:, :, 2] = row[None, :] ^ column[:, None]
    tifffile.imwrite(path, pixels, photometric="rgb", tile=(256, 256))
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("kind", ["tiled", "striped", "png"])
def test_region_equals_the_crop_of_the_loaded_image(
    tmp_path: Path, orientation: int, kind: str
) -> None:
    stored = gradient(40, 50)
    if kind == "png":
        path = write_pillow(tmp_path / "o.png", stored, exif=exif_with_orientation(orientation))
    else:
        path = tmp_path / "o.tif"
        layout = {"tile": (16, 16)} if kind == "tiled" else {"rowsperstrip": 3}
        tifffile.imwrite(
            path, stored, photometric="rgb", extratags=[(274, 3, 1, orientation, True)], **layout
        )
    loaded = load_image(path)
    for x0, y0, x1, y1 in BOXES:
        x1, y1 = min(x1, loaded.width), min(y1, loaded.height)
        region = read_region(path, x0, y0, x1, y1)
        assert region.flags.c_contiguous and region.dtype == np.uint8
        np.testing.assert_array_equal(region, loaded.rgb[y0:y1, x0:x1])


def test_region_of_a_large_tiled_tiff_decodes_only_its_tiles(big_tiff: Path) -> None:
    with pytest.raises(ImageTooLargeError):
        load_image(big_tiff, max_pixels=1_000_000)
    tracemalloc.start()
    try:
        region = read_region(big_tiff, 11_000, 2_500, 11_300, 2_700, max_pixels=1_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000, f"reading a 300 x 200 region used {peak / 1e6:.1f} MB"
    x = np.arange(11_000, 11_300)
    y = np.arange(2_500, 2_700)
    np.testing.assert_array_equal(region[0, :, 0], (x * 7 % 251).astype(np.uint8))
    np.testing.assert_array_equal(region[:, 0, 1], (y * 13 % 251).astype(np.uint8))


def test_region_refuses_when_its_tiles_exceed_the_cap(big_tiff: Path) -> None:
    with pytest.raises(ImageTooLargeError, match="the region"):
        read_region(big_tiff, 0, 0, 2_000, 2_000, max_pixels=1_000_000)


def test_thumbnail_of_a_large_tiff_streams(big_tiff: Path) -> None:
    tracemalloc.start()
    try:
        started = time.perf_counter()
        small = thumbnail(big_tiff, 400)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert small.shape == (100, 400, 3)
    assert peak < 20_000_000, f"a thumbnail of a 108 MB TIFF used {peak / 1e6:.1f} MB"
    assert elapsed < 5


def test_400_megapixel_image_is_opt_in(tmp_path: Path) -> None:
    path = shared_tile_tiff(tmp_path / "scan.tif", 20_000, 20_000, TILE)
    assert path.stat().st_size < 100_000
    with pytest.raises(ImageTooLargeError, match="20,000 x 20,000"):
        probe_image(path)
    with pytest.raises(ImageTooLargeError, match="SAMDESK_MAX_IMAGE_PIXELS"):
        load_image(path)
    info = probe_image(path, max_pixels=400_000_000)
    assert (info.width, info.height) == (20_000, 20_000)
    # a region in view needs only its tiles; the coordinates are exact anywhere in the image
    region = read_region(path, 19_000, 5_000, 19_500, 5_300)
    y, x = np.mgrid[5_000:5_300, 19_000:19_500]
    np.testing.assert_array_equal(region[:, :, 0], TILE[y % 256, x % 256])
    with pytest.raises(ImageTooLargeError):
        thumbnail(path, 512)
    overview = thumbnail(path, 512, max_pixels=400_000_000)
    assert overview.shape == (512, 512, 3)


def test_40k_wide_panorama_is_opt_in(tmp_path: Path) -> None:
    path = shared_tile_tiff(tmp_path / "pano.tif", 40_000, 5_120, TILE)
    with pytest.raises(ImageTooLargeError, match="40,000 x 5,120"):
        load_image(path)
    assert probe_image(path, max_pixels=250_000_000).width == 40_000
    strip = read_region(path, 32_700, 100, 32_900, 110)  # beyond Qt's 32,767-pixel limit
    np.testing.assert_array_equal(strip[0, :, 0], TILE[100, np.arange(32_700, 32_900) % 256])
    assert thumbnail(path, 1000, max_pixels=250_000_000).shape == (128, 1000, 3)


def test_bomb_png_regions_and_thumbnails_are_refused(tmp_path: Path) -> None:
    bomb = forged_png(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(ImageTooLargeError):
        read_region(bomb, 0, 0, 10, 10)
    with pytest.raises(ImageTooLargeError):
        thumbnail(bomb, 256)


def test_sixteen_bit_regions_share_the_image_stretch(tmp_path: Path) -> None:
    values = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 11 % 60_000).astype(np.uint16)
    path = tmp_path / "deep.tif"
    tifffile.imwrite(path, values, tile=(16, 16))
    loaded = load_image(path)
    assert loaded.value_range == (float(values.min()), float(values.max()))
    region = read_region(path, 3, 5, 20, 30, value_range=loaded.value_range)
    np.testing.assert_array_equal(region, loaded.rgb[5:30, 3:20])
    own = read_region(path, 3, 5, 20, 30)  # without a range: the region's own min..max
    assert own[:, :, 0].min() == 0 and own[:, :, 0].max() == 255


def test_region_of_a_pillow_only_tiff_and_of_a_jpeg(tmp_path: Path) -> None:
    lzw = tmp_path / "lzw.tif"
    Image.fromarray(gradient(30, 40)).save(lzw, compression="tiff_lzw", tile=None)
    np.testing.assert_array_equal(read_region(lzw, 4, 5, 30, 25), gradient(30, 40)[5:25, 4:30])
    jpeg = write_pillow(tmp_path / "a.jpg", gradient(30, 40), exif=exif_with_orientation(6))
    np.testing.assert_array_equal(read_region(jpeg, 2, 3, 20, 33), load_image(jpeg).rgb[3:33, 2:20])


def test_region_of_a_dicom_uses_its_window(tmp_path: Path) -> None:
    values = (np.arange(32 * 32).reshape(32, 32) * 4).astype(np.uint16)
    path = write_dicom(tmp_path / "ct.dcm", values, window=(2000, 2000))
    np.testing.assert_array_equal(read_region(path, 1, 2, 9, 30), load_image(path).rgb[2:30, 1:9])


@pytest.mark.parametrize(
    "box", [(-1, 0, 5, 5), (0, 0, 41, 5), (5, 5, 5, 9), (9, 0, 3, 4), (0, 0, 2.5, 3)]
)
def test_bad_boxes_are_refused(tmp_path: Path, box: tuple[float, ...]) -> None:
    path = write_pillow(tmp_path / "a.png", gradient(30, 40))
    with pytest.raises(InputError):
        read_region(path, *box)  # type: ignore[arg-type]


def test_region_inside_the_intact_part_of_a_truncated_tiff(tmp_path: Path) -> None:
    pixels = gradient(64, 64, channels=1)
    whole = tmp_path / "whole.tif"
    tifffile.imwrite(whole, pixels, rowsperstrip=8)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[: 8 + 64 * 32])  # keeps about the first half of the rows
    np.testing.assert_array_equal(read_region(cut, 0, 0, 64, 8)[:, :, 0], pixels[:8])
    with pytest.raises(TruncatedImageError, match="truncated"):
        read_region(cut, 0, 50, 64, 64)


@pytest.mark.parametrize(("size", "expected"), [((400, 300), (256, 192)), ((300, 400), (192, 256))])
def test_thumbnail_size_keeps_the_aspect_ratio(
    tmp_path: Path, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    width, height = size
    path = write_pillow(tmp_path / "a.png", gradient(height, width))
    small = thumbnail(path, 256)
    assert (small.shape[1], small.shape[0]) == expected


def test_thumbnail_never_enlarges_and_is_oriented(tmp_path: Path) -> None:
    path = write_pillow(tmp_path / "a.png", gradient(30, 40), exif=exif_with_orientation(6))
    small = thumbnail(path, 1000)
    np.testing.assert_array_equal(small, load_image(path).rgb)


def test_jpeg_thumbnail_decodes_at_reduced_scale(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    photo = np.asarray(
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).resize((4000, 3000))
    )
    path = write_pillow(tmp_path / "photo.jpg", photo, quality=90)
    with pytest.raises(ImageTooLargeError):
        load_image(path, max_pixels=1_000_000)
    small = thumbnail(path, 256, max_pixels=1_000_000)  # draft mode decodes 500 x 375
    assert small.shape == (192, 256, 3)
    reference = np.asarray(Image.fromarray(photo).resize((256, 192), Image.Resampling.LANCZOS))
    assert np.abs(small.astype(int) - reference).mean() < 8


def test_tiff_thumbnail_resembles_a_full_resize(tmp_path: Path) -> None:
    y, x = np.mgrid[0:600, 0:800]
    smooth = np.stack([x * 255 // 799, y * 255 // 599, (x + y) * 255 // 1398], -1).astype(np.uint8)
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, smooth, photometric="rgb", tile=(64, 64))
    small = thumbnail(path, 200)
    reference = np.asarray(Image.fromarray(smooth).resize((200, 150), Image.Resampling.LANCZOS))
    assert small.shape == (150, 200, 3)
    assert np.abs(small.astype(int) - reference).max() <= 6


@pytest.mark.parametrize("max_side", [0, -3, 2.5])
def test_bad_thumbnail_size(tmp_path: Path, max_side: object) -> None:
    path = write_pillow(tmp_path / "a.png", gradient(3, 4))
    with pytest.raises(InputError, match="max_side"):
        thumbnail(path, max_side)  # type: ignore[arg-type]
