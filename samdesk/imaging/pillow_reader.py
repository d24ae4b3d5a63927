"""PNG, JPEG, BMP, WebP, GIF, PNM (and TIFF when tifffile cannot) through Pillow.

Files are opened with the Pillow plugin that matches the signature samdesk sniffed, which reads
the header only; samdesk's own pixel cap is then checked before any pixel is decoded, instead of
Pillow's global ``MAX_IMAGE_PIXELS`` (ADR 0031). ``LOAD_TRUNCATED_IMAGES`` is never set: a file
that ends early raises :class:`TruncatedImageError`, never an image with made-up pixels.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import (
    BmpImagePlugin,  # noqa: F401 - importing a plugin registers it with Image.OPEN
    GifImagePlugin,  # noqa: F401
    Image,
    ImageFile,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    PpmImagePlugin,  # noqa: F401
    TiffImagePlugin,
)

from samdesk.errors import CodecMissingError, InputError, NotAnImageError, TruncatedImageError
from samdesk.imaging.decoded import Decoded, Header
from samdesk.imaging.errors import DamagedImageError
from samdesk.imaging.limits import check_pixels
from samdesk.imaging.orientation import VALID

with contextlib.suppress(ImportError):  # WebP support is optional in Pillow builds
    from PIL import WebPImagePlugin  # noqa: F401

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError)
_MODES_AS_IS = {"L", "RGB", "I", "F"}
_MODES_WITH_ALPHA = {"RGBA", "LA"}
_MODES_16 = {"I;16", "I;16L", "I;16B", "I;16N"}
_DEEP_PNG_MODES = {"RGB;16", "RGBA;16"}
_WEAK_SIGNATURES = {"BMP", "PPM"}


def open_header(fh: BinaryIO, path: Path, fmt: str) -> tuple[ImageFile.ImageFile, Header]:
    """Open ``fh`` with the Pillow plugin for ``fmt`` and read its header (no pixel decoding).

    The returned image reads from ``fh``; it must not outlive the ``with`` block owning ``fh``."""
    if fmt not in Image.OPEN:
        raise CodecMissingError(
            f"{path.name}: this Pillow build cannot read {fmt} files. Reinstall Pillow "
            f"(pip install --force-reinstall pillow) to get its {fmt} support."
        )
    factory, _accept = Image.OPEN[fmt]
    if fmt == "WEBP":
        _check_riff_size(fh, path)
    fh.seek(0)
    try:
        im = factory(fh, os.fspath(path))
    except _DECODE_ERRORS as exc:
        if fmt in _WEAK_SIGNATURES:  # two bytes like "BM" also start many text files
            raise NotAnImageError(
                f"{path.name}: this is not an image samdesk can read (it starts like a {fmt} "
                f"file, but its header is not valid: {exc})."
            ) from None
        raise _decode_error(path, fmt, exc) from None
    notes: list[str] = []
    orientation = _orientation(im, notes)
    frames = int(getattr(im, "n_frames", 1) or 1)
    width, height = im.size
    mode = f"{im.mode};16" if _is_deep_colour_png(fh, fmt) else im.mode
    return im, Header(fmt, width, height, mode, frames, orientation, tuple(notes))


def read_header(fh: BinaryIO, path: Path, fmt: str) -> Header:
    """The header of the file in ``fh`` (stored size, mode, frames, orientation)."""
    return open_header(fh, path, fmt)[1]


def decode(
    fh: BinaryIO,
    path: Path,
    fmt: str,
    *,
    frame: int,
    limit: int,
    draft_size: tuple[int, int] | None = None,
) -> Decoded:
    """Decode ``frame`` of the file in ``fh``. ``draft_size`` (stored frame) lets JPEG decode at
    a reduced scale (1/2, 1/4 or 1/8) that is still at least that size, for thumbnails."""
    im, header = open_header(fh, path, fmt)
    check_frame(path, frame, header.frames)
    if draft_size is not None and fmt == "JPEG":
        im.draft(None, draft_size)  # header-only: picks the DCT scale, decodes nothing yet
    check_pixels(path, *im.size, limit)
    if header.mode in _DEEP_PNG_MODES and header.frames == 1:
        return _decode_deep_png(fh, path, header, im)
    try:
        if frame:
            im.seek(frame)
        im.load()
        samples, alpha, notes = _samples(im)
    except _DECODE_ERRORS as exc:
        raise _decode_error(path, fmt, exc) from None
    return Decoded(header, samples, alpha=alpha, notes=header.notes + notes)


def _check_riff_size(fh: BinaryIO, path: Path) -> None:
    """A WebP (RIFF) file states its own length in bytes 4..7; a shorter file was cut short."""
    fh.seek(4)
    (stated,) = struct.unpack("<I", fh.read(4))
    actual = os.fstat(fh.fileno()).st_size
    if actual < stated + 8:
        raise TruncatedImageError(
            f"{path.name}: the WEBP file is truncated ({actual:,} of {stated + 8:,} bytes). "
            "Copy it again from its source; samdesk never fills in missing pixels."
        )


def _is_deep_colour_png(fh: BinaryIO, fmt: str) -> bool:
    """Whether the PNG's IHDR declares 16 bits per sample in colour (type 2 RGB, 6 RGBA),
    which Pillow reads as 8-bit, dropping the low byte."""
    if fmt != "PNG":
        return False
    position = fh.tell()
    fh.seek(24)  # signature (8) + chunk length (4) + "IHDR" (4) + width (4) + height (4)
    depth_and_type = fh.read(2)
    fh.seek(position)
    return len(depth_and_type) == 2 and depth_and_type[0] == 16 and depth_and_type[1] in (2, 6)


def _decode_deep_png(fh: BinaryIO, path: Path, header: Header, im: ImageFile.ImageFile) -> Decoded:
    """16-bit RGB/RGBA PNG with all 16 bits, through OpenCV's libpng from the file's bytes
    (never from a path, which fails on non-ASCII paths on Windows)."""
    fh.seek(0)
    data = np.frombuffer(fh.read(), np.uint8)
    try:
        pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:  # e.g. beyond OpenCV's own pixel limit (CV_IO_MAX_IMAGE_PIXELS)
        pixels = None
    if pixels is None or pixels.dtype != np.uint16 or pixels.shape[:2] != im.size[::-1]:
        try:  # let Pillow say what is wrong (truncated or damaged)
            im.load()
        except _DECODE_ERRORS as exc:
            raise _decode_error(path, "PNG", exc) from None
        raise DamagedImageError(
            f"{path.name}: the 16-bit PNG data cannot be decoded. Copy it again from its source "
            "or re-export it."
        )
    order = [2, 1, 0, 3][: pixels.shape[2]]  # OpenCV's BGR(A) -> RGB(A)
    samples = np.ascontiguousarray(pixels[:, :, order])
    return Decoded(header, samples, alpha=samples.shape[2] == 4, notes=header.notes)


def check_frame(path: Path, frame: int, frames: int) -> None:
    """Raise :class:`InputError` unless ``0 <= frame < frames``."""
    if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame < frames:
        raise InputError(
            f"{path.name} has {frames} frame(s), numbered 0 to {frames - 1}; "
            f"frame {frame!r} does not exist."
        )


def _samples(im: Image.Image) -> tuple[np.ndarray, bool, tuple[str, ...]]:
    """Pillow image -> numpy samples, whether the last channel is alpha, notes."""
    mode = im.mode
    if mode in _MODES_AS_IS:
        return np.asarray(im), False, ()
    if mode in _MODES_WITH_ALPHA:
        return np.asarray(im), True, ()
    if mode in _MODES_16:
        return np.asarray(im).astype(np.uint16), False, ()
    if mode == "1":
        return np.asarray(im.convert("L")), False, ("1-bit: black 0, white 255",)
    if mode in ("P", "PA"):
        if mode == "PA" or "transparency" in im.info:
            return np.asarray(im.convert("RGBA")), True, ("palette with transparency -> RGBA",)
        return np.asarray(im.convert("RGB")), False, ("palette -> RGB",)
    if mode in ("RGBa", "La"):
        rgba = im.convert("RGBA" if mode == "RGBa" else "LA")
        return np.asarray(rgba), True, ()
    note = f"{mode} converted to RGB by Pillow (no colour management)"
    return np.asarray(im.convert("RGB")), False, (note,)


def _orientation(im: Image.Image, notes: list[str]) -> int:
    """EXIF orientation from the header (TIFF tag 274, or the Exif block of JPEG/PNG/WebP)."""
    try:
        if isinstance(im, TiffImagePlugin.TiffImageFile):
            value = im.tag_v2.get(274, 1)
        else:
            raw = im.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
            value = exif.get(274, 1)
    except Exception:  # a damaged Exif block must not make the pixels unreadable
        notes.append("EXIF block unreadable: orientation ignored")
        return 1
    if isinstance(value, (tuple, list)):
        value = value[0] if value else 1
    if value not in VALID:
        notes.append(f"EXIF orientation {value!r} is not 1..8: ignored")
        return 1
    return int(value)


def _decode_error(path: Path, fmt: str, exc: BaseException) -> Exception:
    text = str(exc)
    lowered = text.lower()
    if "decoder" in lowered and "not available" in lowered:
        return CodecMissingError(
            f"{path.name}: this {fmt} file uses a compression Pillow was built without "
            f"({text}). Install the optional TIFF support (pip install tifffile imagecodecs) "
            "or convert the file to PNG/TIFF (uncompressed or deflate)."
        )
    if isinstance(exc, (EOFError, struct.error)) or "truncat" in lowered or "end of" in lowered:
        return TruncatedImageError(
            f"{path.name}: the {fmt} file is truncated (it ends before all pixels are stored). "
            "Copy it again from its source; samdesk never fills in missing pixels."
        )
    return DamagedImageError(
        f"{path.name}: the {fmt} data is damaged and cannot be decoded "
        f"({text or type(exc).__name__}). Copy it again from its source or re-export it."
    )
