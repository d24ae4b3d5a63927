"""Damaged files never reach the caller as a decoder library's own exception (ADR 0060).

Pillow, tifffile, pydicom and zlib raise IndexError, ZeroDivisionError, zlib.error, TypeError,
pydicom's BytesLengthException, Pillow's DecompressionBombError... on malformed input; each of
these used to escape ``load_image`` and friends as a traceback. Every test here builds its files
in tmp_path.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from samdesk.errors import ImageError, ImageTooLargeError, InputError
from samdesk.imaging import DamagedImageError, load_image, probe_image, read_region, thumbnail
from tests.support.images import exif_with_orientation, forged_tiff, gradient, write_dicom

ROOT = Path(__file__).resolve().parents[1]

CALLS: dict[str, Callable[[Path], object]] = {
    "probe_image": lambda p: probe_image(p, max_pixels=10**8),
    "load_image": lambda p: load_image(p, max_pixels=10**8),
    "read_region": lambda p: read_region(p, 0, 0, 4, 4, max_pixels=10**8),
    "thumbnail": lambda p: thumbnail(p, 8, max_pixels=10**8),
}


def _seeds(folder: Path) -> list[Path]:
    """Small valid files of every reader path: Pillow formats, tifffile strips/tiles/planes,
    Pillow's libtiff (LZW), DICOM with a window and a rescale, colour DICOM."""
    folder.mkdir()
    rgb = gradient(24, 32)
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(rgb).save(folder / "a.png")
    Image.fromarray(rgb).save(folder / "a.jpg", exif=exif_with_orientation(6))
    Image.fromarray(rgb).save(folder / "a.webp")
    Image.fromarray(rgb).save(folder / "lzw.tif", compression="tiff_lzw")
    tifffile.imwrite(folder / "tiled.tif", gradient(64, 64), tile=(16, 16), compression="zlib")
    tifffile.imwrite(folder / "u16.tif", gradient(24, 32, 1, np.uint16) * 50)
    tifffile.imwrite(
        folder / "planar.tif", gradient(24, 32).transpose(2, 0, 1), planarconfig="separate"
    )
    pixels = gradient(24, 32, 1, np.uint16)
    write_dicom(folder / "ct.dcm", pixels, window=(100, 200), slope=2, intercept=-1000)
    write_dicom(folder / "rgb.dcm", rgb, photometric="RGB")
    return sorted(folder.iterdir())


def _corrupt(data: bytes, rng: np.random.Generator) -> bytes:
    """Cut the file short, overwrite a few bytes, or flip a few bits."""
    damaged = bytearray(data)
    kind = int(rng.integers(3))
    if kind == 0:
        return bytes(damaged[: int(rng.integers(1, len(damaged)))])
    for _ in range(int(rng.integers(1, 6))):
        at = int(rng.integers(len(damaged)))
        damaged[at] = (
            int(rng.integers(256)) if kind == 1 else damaged[at] ^ (1 << int(rng.integers(8)))
        )
    return bytes(damaged)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_corrupted_files_only_raise_typed_errors(tmp_path: Path) -> None:
    """Seeded corruptions of every kind of file: each call either works or raises an
    ImageError (InputError only for a region outside what the damaged header now declares)."""
    escaped: dict[tuple[str, str, str], str] = {}
    rng = np.random.default_rng(20240607)
    for seed in _seeds(tmp_path / "seeds"):
        data = seed.read_bytes()
        for trial in range(30):
            path = tmp_path / f"{seed.stem}-{trial}{seed.suffix}"
            path.write_bytes(_corrupt(data, rng))
            for name, call in CALLS.items():
                try:
                    call(path)
                except (ImageError, InputError):
                    pass
                except Exception as exc:  # what this test looks for
                    escaped.setdefault((seed.name, name, type(exc).__name__), str(exc)[:80])
    assert not escaped, "\n".join(f"{k}: {v}" for k, v in escaped.items())


def test_damaged_deflate_tile_is_a_damaged_image(tmp_path: Path) -> None:
    path = tmp_path / "tiles.tif"
    tifffile.imwrite(path, gradient(64, 64), tile=(32, 32), compression="zlib")
    with tifffile.TiffFile(path) as tif:
        offset, count = tif.pages.first.dataoffsets[0], tif.pages.first.databytecounts[0]
    data = bytearray(path.read_bytes())
    for at in range(offset + count // 2, offset + count // 2 + 8):
        data[at] ^= 0x55
    path.write_bytes(bytes(data))
    for name in ("load_image", "read_region", "thumbnail"):
        with pytest.raises(DamagedImageError, match=r"tiles\.tif: the image data is damaged"):
            CALLS[name](path)
    assert probe_image(path).width == 64  # the header itself is intact


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, 0), (0, 0)])
def test_header_declaring_no_pixels_is_damaged(tmp_path: Path, width: int, height: int) -> None:
    path = forged_tiff(tmp_path / "empty.tif", width, height)
    for call in CALLS.values():  # thumbnail used to divide by zero, probe to report it as fine
        with pytest.raises(DamagedImageError, match=rf"{width} x {height} pixels"):
            call(path)


def test_tiff_without_an_image_directory(tmp_path: Path) -> None:
    path = tmp_path / "nothing.tif"
    path.write_bytes(b"II*\x00" + struct.pack("<I", 9999) + bytes(16))
    for call in CALLS.values():
        with pytest.raises(DamagedImageError, match="holds no image"):
            call(path)


def test_gif_frame_beyond_pillows_own_limit_is_too_large(tmp_path: Path) -> None:
    """Pillow's GIF reader applies its global guard itself (2 x MAX_IMAGE_PIXELS), which
    samdesk's per-call cap cannot lift: a typed ImageTooLargeError, not DecompressionBombError."""
    screen = struct.pack("<HHBBB", 10, 10, 0, 0, 0)
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0)
    path = tmp_path / "huge.gif"
    path.write_bytes(b"GIF89a" + screen + frame + b"\x02\x02\x44\x01\x00\x3b")
    for call in CALLS.values():
        with pytest.raises(ImageTooLargeError, match=r"huge\.gif: Pillow refuses"):
            call(path)


def test_unreadable_dicom_window_is_ignored_not_fatal(tmp_path: Path) -> None:
    pixels = (np.arange(40 * 50).reshape(40, 50) % 251).astype(np.uint16)
    path = write_dicom(tmp_path / "w.dcm", pixels, window=(100, 200))
    data = bytearray(path.read_bytes())
    at = data.index(b"(\x00P\x10DS")  # (0028,1050) WindowCenter, explicit VR "DS"
    (length,) = struct.unpack_from("<H", data, at + 6)
    data[at + 8 : at + 8 + length] = b"x" * length
    path.write_bytes(bytes(data))
    image = load_image(path)
    assert any("window ignored" in note for note in image.notes)
    # without a usable window the display is the finite min..max stretch (ADR 0032)
    assert image.rgb[..., 0].min() == 0 and image.rgb[..., 0].max() == 255
    np.testing.assert_array_equal(image.raw, pixels)


def test_tifffile_warnings_do_not_reach_stderr(tmp_path: Path) -> None:
    """tifffile logs oddities of damaged files; without a handler Python printed them on stderr
    next to samdesk's one-line error (a command-line user saw several lines)."""
    path = forged_tiff(tmp_path / "odd.tif", 64, 64)
    data = bytearray(path.read_bytes())
    at = data.index(struct.pack("<HHI", 278, 4, 1)) + 8  # the value of RowsPerStrip
    data[at : at + 4] = struct.pack("<I", 16)
    path.write_bytes(bytes(data))  # RowsPerStrip 16: 4 strips expected, 1 recorded
    script = (
        "import sys\n"
        "from samdesk.errors import ImageError\n"
        "from samdesk.imaging import load_image\n"
        "try:\n"
        "    load_image(sys.argv[1])\n"
        "except ImageError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0
    assert "odd.tif" in done.stdout
    assert done.stderr == ""
