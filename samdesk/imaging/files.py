"""Files on disk: hashing, opening with readable errors, format sniffing and folder listings.

Everything here works on paths with any characters (non-ASCII, NFD as macOS writes them, emoji):
files are opened with Python's ``open`` and decoders read from the file object, never from a path
handed to a C library (``cv2.imread`` fails on such paths on Windows).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from samdesk.errors import ImageError, NotAnImageError

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".tif",
        ".tiff",
        ".bmp",
        ".webp",
        ".gif",
        ".pbm",
        ".pgm",
        ".ppm",
        ".pnm",
        ".dcm",
        ".dicom",
    }
)
"""Lower-case suffixes :func:`list_images` lists. Decoding does not depend on the suffix: the
format is recognised from the file's first bytes (see :func:`sniff_format`)."""

_HEAD_BYTES = 132  # enough for every signature below, including DICOM's "DICM" at offset 128


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of the file's bytes, read in ``chunk``-byte pieces (1 MiB by default)."""
    with open_image_file(path) as fh:
        return sha256_of(fh, chunk)


def sha256_of(fh: BinaryIO, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of everything in ``fh`` from the start; leaves ``fh`` at its end."""
    fh.seek(0)
    digest = hashlib.sha256()
    while block := fh.read(chunk):
        digest.update(block)
    return digest.hexdigest()


@contextmanager
def open_image_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open ``path`` for binary reading; OS problems become :class:`ImageError` naming the file.

    The handle is closed when the ``with`` block ends, whatever happens inside it."""
    path = Path(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    except FileNotFoundError:
        raise ImageError(f"{path}: the file does not exist (moved, renamed or deleted?).") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: this is a folder, not an image file.") from None
    except PermissionError:
        raise ImageError(
            f"{path}: permission denied. Check that your user account may read this file."
        ) from None
    except OSError as exc:
        raise ImageError(f"{path}: the file cannot be read ({exc.strerror or exc}).") from None
    try:
        if stat.S_ISDIR(os.fstat(fh.fileno()).st_mode):
            raise ImageError(f"{path}: this is a folder, not an image file.")
        yield fh
    finally:
        fh.close()


def sniff_format(fh: BinaryIO, path: Path) -> str:
    """The format of the file open in ``fh``, from its first bytes (not its name).

    Returns one of "PNG", "JPEG", "TIFF", "BMP", "WEBP", "GIF", "PPM", "DICOM". Raises
    :class:`NotAnImageError` for an empty file or one in no format samdesk reads."""
    fh.seek(0)
    head = fh.read(_HEAD_BYTES)
    fh.seek(0)
    if not head:
        raise NotAnImageError(f"{path.name}: the file is empty (0 bytes), so it is not an image.")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[128:132] == b"DICM":
        return "DICOM"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if re.match(rb"P[1-6]\s", head):
        return "PPM"
    if path.suffix.lower() in {".dcm", ".dicom"} and _looks_like_bare_dicom(head):
        return "DICOM"
    raise NotAnImageError(
        f"{path.name}: this is not an image samdesk can read ({_describe(head)}). "
        f"Supported: PNG, JPEG, TIFF, BMP, WebP, GIF, PNM and DICOM."
    )


def _looks_like_bare_dicom(head: bytes) -> bool:
    """A DICOM file written without the 128-byte preamble starts with a group 0x0008 or 0x0002
    tag (little endian)."""
    return head[:2] in (b"\x08\x00", b"\x02\x00") and len(head) >= 8


def _describe(head: bytes) -> str:
    """A short, user-facing description of what the first bytes look like."""
    text = head.lstrip()
    if text[:1] in (b"{", b"["):
        return "it looks like JSON text"
    if text[:5].lower() in (b"<?xml", b"<html", b"<!doc", b"<svg "):
        return "it looks like XML/HTML/SVG text, not pixels"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "its first bytes match no known image format"
    return "it looks like a text file"


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files directly in ``folder`` (not in sub-folders), by :data:`SUPPORTED_SUFFIXES`.

    Hidden files (a leading dot, which includes macOS's "._name" resource forks, or the Windows
    hidden attribute) are skipped. Sorted naturally and case-insensitively: "img2" before
    "img10". Raises :class:`ImageError` when ``folder`` is missing or not a folder."""
    folder = Path(folder)
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        raise ImageError(f"{folder}: the folder does not exist.") from None
    except NotADirectoryError:
        raise ImageError(f"{folder}: this is a file, not a folder.") from None
    except PermissionError:
        raise ImageError(f"{folder}: permission denied while listing the folder.") from None
    except OSError as exc:
        reason = exc.strerror or exc
        raise ImageError(f"{folder}: the folder cannot be listed ({reason}).") from None
    found = [
        Path(entry.path)
        for entry in entries
        if os.path.splitext(entry.name)[1].lower() in SUPPORTED_SUFFIXES
        and not _is_hidden(entry)
        and _is_file(entry)
    ]
    return sorted(found, key=natural_key)


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _is_hidden(entry: os.DirEntry[str]) -> bool:
    if entry.name.startswith("."):
        return True
    try:
        attributes = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
    except OSError:
        return False
    return bool(attributes & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


_DIGITS = re.compile(r"([0-9]+)")


def natural_key(path: Path) -> tuple[tuple[tuple[int, int | str], ...], str]:
    """Sort key comparing runs of ASCII digits as numbers and text case-insensitively; names
    equal under that rule are ordered by their exact spelling, so the order is deterministic."""
    parts = _DIGITS.split(unicodedata.normalize("NFC", path.name).casefold())
    key = tuple((0, int(part)) if _DIGITS.fullmatch(part) else (1, part) for part in parts if part)
    return key, path.name
