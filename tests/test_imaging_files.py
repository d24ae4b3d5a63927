"""Paths with any characters, hashing, folder listings, and no file handle left open
(fault 15 of faults-to-try.md)."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from samdesk.errors import ImageError
from samdesk.imaging import (
    SUPPORTED_SUFFIXES,
    file_sha256,
    list_images,
    load_image,
    probe_image,
)
from tests.support.images import gradient, write_pillow

NAMES = [
    "Straße_снимок_写真.png",  # non-ASCII
    unicodedata.normalize("NFD", "café_résumé.png"),  # decomposed, as macOS stores names
    "🐱 cat 🎉.jpg",  # emoji and spaces
]


@pytest.mark.parametrize("name", NAMES)
def test_unusual_paths_open(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "dossier été 📁"
    folder.mkdir()
    path = write_pillow(folder / name, gradient(12, 16))
    assert probe_image(path).width == 16
    loaded = load_image(path)
    assert loaded.rgb.shape == (12, 16, 3)
    assert loaded.path == path
    assert loaded.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert path in list_images(folder)


def test_file_sha256_matches_hashlib_across_chunks(tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(0, 256, 3 * (1 << 20) + 17, dtype=np.uint8).tobytes()
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert file_sha256(path) == expected
    assert file_sha256(path, chunk=4096) == expected


def test_file_sha256_of_a_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="does not exist"):
        file_sha256(tmp_path / "nope.png")


def test_content_hash_changes_with_the_bytes(tmp_path: Path) -> None:
    first = load_image(write_pillow(tmp_path / "a.png", gradient(8, 8)))
    pixels = gradient(8, 8)
    pixels[0, 0] = 0
    second = load_image(write_pillow(tmp_path / "a.png", pixels))
    assert first.content_hash != second.content_hash


def test_list_images_sorts_naturally_and_skips_the_rest(tmp_path: Path) -> None:
    for name in [
        "img10.png",
        "img2.PNG",
        "IMG1.jpg",
        "img2b.tif",
        "scan.dcm",
        "notes.txt",
        ".hidden.png",
        "._img3.png",
        "thumbs.db",
    ]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "img0.png").write_bytes(b"x")
    names = [path.name for path in list_images(tmp_path)]
    assert names == ["IMG1.jpg", "img2.PNG", "img2b.tif", "img10.png", "scan.dcm"]


def test_list_images_order_is_deterministic_for_names_equal_but_for_case(tmp_path: Path) -> None:
    for name in ["b.png", "B.png", "a1.png"]:
        (tmp_path / name).write_bytes(b"x")
    names = [path.name for path in list_images(tmp_path)]
    assert names == ["a1.png", "B.png", "b.png"]


def test_list_images_of_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="does not exist"):
        list_images(tmp_path / "nope")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(ImageError, match="not a folder"):
        list_images(tmp_path / "file.png")


def test_supported_suffixes_are_lower_case_with_a_dot() -> None:
    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".dcm"} <= SUPPORTED_SUFFIXES
    assert all(s.startswith(".") and s == s.lower() for s in SUPPORTED_SUFFIXES)


def _handles_on(path: Path) -> list[str]:
    fd_dir = Path("/proc/self/fd")
    found = []
    for fd in fd_dir.iterdir():
        try:
            if os.path.realpath(fd_dir / fd.name) == os.path.realpath(path):
                found.append(fd.name)
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to list open files")
@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".gif"])
def test_no_file_handle_stays_open(tmp_path: Path, suffix: str) -> None:
    path = write_pillow(tmp_path / f"a{suffix}", gradient(20, 20))
    info = probe_image(path)
    loaded = load_image(path)
    assert info.width == loaded.width == 20
    assert _handles_on(path) == []
    truncated = tmp_path / f"cut{suffix}"
    truncated.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ImageError):
        load_image(truncated)
    assert _handles_on(truncated) == []
