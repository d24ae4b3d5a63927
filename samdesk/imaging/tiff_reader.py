"""TIFF through tifffile (optional extra ``tiff``), with Pillow as the fallback.

tifffile reads 8/16/32-bit integer, float, multi-channel, planar, tiled and multi-page TIFFs
exactly. Without the optional ``imagecodecs`` package it decodes only uncompressed, deflate and
LZMA data; LZW, PackBits and JPEG-in-TIFF are then decoded by Pillow (built with libtiff).
When neither can decode a compression, :class:`CodecMissingError` names the package to install.

Before decoding, every strip/tile the page needs is checked to lie inside the file, so a
truncated TIFF is refused as such instead of being read short.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from PIL import Image

from samdesk.errors import CodecMissingError, TruncatedImageError
from samdesk.imaging import pillow_reader
from samdesk.imaging.decoded import Decoded, Header
from samdesk.imaging.errors import DamagedImageError
from samdesk.imaging.limits import check_pixels, check_size
from samdesk.imaging.orientation import VALID

try:
    import tifffile
except ImportError:  # the optional extra is not installed: Pillow reads TIFFs alone
    tifffile = None

# tifffile logs a warning for every oddity of a damaged file and, unlike pydicom, installs no
# handler, so Python's last-resort handler would print them on stderr around samdesk's own one-line
# error. A NullHandler (what the logging docs ask libraries to add) silences that fallback only:
# an application that configures logging still receives the records.
logging.getLogger("tifffile").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from tifffile import TiffFile, TiffPage

TIFF_ERRORS = (ValueError, KeyError, IndexError, TypeError, OSError, EOFError, RuntimeError)
_INSTALL_HINT = (
    "Install the optional TIFF codecs with: pip install tifffile imagecodecs "
    "(or convert the file to an uncompressed or deflate-compressed TIFF)."
)


def available() -> bool:
    """Whether tifffile is installed (else every TIFF goes to Pillow)."""
    return tifffile is not None


def read_header(fh: BinaryIO, path: Path, fmt: str) -> Header:
    """Header of the first page (size, mode, page count, orientation); no pixel decoding."""
    if tifffile is None:
        return pillow_reader.open_header(fh, path, fmt)[1]
    with _open(fh, path) as tif:
        return _header(tif, tif.pages.first, path)


def decode(
    fh: BinaryIO,
    path: Path,
    fmt: str,
    *,
    frame: int,
    limit: int,
    draft_size: tuple[int, int] | None = None,
) -> Decoded:
    """Decode page ``frame`` (stored frame); Pillow takes over for codecs tifffile lacks."""
    if tifffile is None:
        return _pillow(fh, path, frame=frame, limit=limit)
    with _open(fh, path) as tif:
        first = tif.pages.first
        header = _header(tif, first, path)
        pillow_reader.check_frame(path, frame, header.frames)
        page = tif.pages[frame] if frame else first
        if frame:
            header = _header(tif, page, path, frames=header.frames)
        check_pixels(path, page.imagewidth, page.imagelength, limit, planes=page.imagedepth)
        check_complete(page, fh, path)
        try:
            data = page.asarray()
        except TIFF_ERRORS as exc:
            if needs_codec(exc):
                return _pillow(fh, path, frame=frame, limit=limit, reason=str(exc))
            raise decode_error(path, exc) from None
        return _samples(page, data, header)


def page_header(tif: TiffFile, page: TiffPage, path: Path) -> Header:
    """Header of ``page`` (used by region reads)."""
    return _header(tif, page, path)


def open_tiff(fh: BinaryIO, path: Path) -> TiffFile:
    """A ``tifffile.TiffFile`` on ``fh`` with parse errors mapped to typed errors."""
    return _open(fh, path)


def check_complete(page: TiffPage, fh: BinaryIO, path: Path) -> None:
    """Raise :class:`TruncatedImageError` when a strip or tile of ``page`` lies past the end of
    the file (the file was cut short)."""
    size = os.fstat(fh.fileno()).st_size
    ends = [
        offset + count
        for offset, count in zip(page.dataoffsets, page.databytecounts, strict=False)
        if count
    ]
    if ends and max(ends) > size:
        raise TruncatedImageError(
            f"{path.name}: the TIFF file is truncated: its pixel data should reach byte "
            f"{max(ends):,} but the file has {size:,} bytes. Copy it again from its source; "
            "samdesk never fills in missing pixels."
        )


def mode_of(page: TiffPage) -> str:
    """A Pillow-like mode string for ``page``: "L", "RGB", "RGBA", "I;16", "F", "1", "P",
    "CMYK", ...; other layouts read e.g. "uint16 x5"."""
    photometric = int(page.photometric)
    samples = page.samplesperpixel
    dtype = np.dtype(page.dtype) if page.dtype is not None else np.dtype(np.uint8)
    if page.bitspersample == 1:
        return "1"
    if photometric == 3:
        return "P"
    if photometric == 5 and samples == 4:
        return "CMYK"
    if samples == 1:
        names = {"uint8": "L", "uint16": "I;16", "int32": "I", "float32": "F"}
        return names.get(dtype.name, dtype.name)
    if photometric == 2 and samples in (3, 4) and dtype == np.uint8:
        return "RGB" if samples == 3 else "RGBA"
    return f"{dtype.name} x{samples}"


def _open(fh: BinaryIO, path: Path) -> TiffFile:
    fh.seek(0)
    try:
        tif = tifffile.TiffFile(fh)
    except TIFF_ERRORS as exc:
        raise decode_error(path, exc) from None
    if len(tif.pages) == 0:
        tif.close()
        raise DamagedImageError(
            f"{path.name}: the TIFF file holds no image (its first image directory is missing "
            "or damaged). Copy it again from its source or re-export it."
        )
    return tif


def _header(tif: TiffFile, page: TiffPage, path: Path, frames: int | None = None) -> Header:
    notes: list[str] = []
    orientation = page.tags.valueof(274, 1)
    if orientation not in VALID:
        notes.append(f"TIFF orientation {orientation!r} is not 1..8: ignored")
        orientation = 1
    if frames is None:
        frames = len(tif.pages)
    check_size(path, page.imagewidth, page.imagelength)
    return Header(
        "TIFF",
        page.imagewidth,
        page.imagelength,
        mode_of(page),
        frames,
        int(orientation),
        tuple(notes),
    )


def _samples(page: TiffPage, data: np.ndarray, header: Header) -> Decoded:
    """tifffile's array -> (H, W) or (H, W, C) samples with photometric rules applied."""
    notes: list[str] = []
    axes = page.axes
    if "S" in axes and axes.index("S") < axes.index("Y"):
        data = np.moveaxis(data, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    while data.ndim > (3 if axes.endswith("S") else 2):
        notes.append(f"{data.shape[0]} planes along {axes[0]}: plane 0 shown")
        data = data[0]
        axes = axes[1:]
    return photometric_rules(page, data, header, notes)


def photometric_rules(
    page: TiffPage, data: np.ndarray, header: Header, notes: list[str] | None = None
) -> Decoded:
    """Samples of ``page`` laid out (H, W) or (H, W, S) -> :class:`Decoded`: palette and CMYK
    become RGB, unassociated alpha is flagged, min-is-white is flagged for inversion."""
    notes = list(notes or [])
    photometric = int(page.photometric)
    alpha = False
    invert = False
    if photometric == 3 and page.colormap is not None:  # palette
        colormap = np.asarray(page.colormap)
        shift = 8 if colormap.max() > 255 else 0  # 16-bit entries (v * 257 or v << 8) -> v
        lut = (colormap >> shift).astype(np.uint8).T  # (entries, 3)
        data = lut[np.clip(data, 0, len(lut) - 1)]
        notes.append("palette -> RGB")
    elif photometric == 5 and data.ndim == 3 and data.shape[2] == 4 and data.dtype == np.uint8:
        cmyk = Image.frombytes("CMYK", (data.shape[1], data.shape[0]), data.tobytes())
        data = np.asarray(cmyk.convert("RGB"))
        notes.append("CMYK converted to RGB by Pillow (no colour management)")
    elif photometric == 2 and data.ndim == 3 and data.shape[2] == 4:
        extra = tuple(int(kind) for kind in page.extrasamples)
        alpha = extra[:1] == (2,)  # unassociated alpha; associated alpha is premultiplied
    elif photometric == 0:
        invert = True
        notes.append("min-is-white: shown inverted")
    return Decoded(header, data, alpha=alpha, invert=invert, notes=header.notes + tuple(notes))


def _pillow(
    fh: BinaryIO, path: Path, *, frame: int, limit: int, reason: str | None = None
) -> Decoded:
    """Decode with Pillow; a compression Pillow lacks too becomes :class:`CodecMissingError`."""
    try:
        decoded = pillow_reader.decode(fh, path, "TIFF", frame=frame, limit=limit)
    except (CodecMissingError, DamagedImageError) as exc:
        if reason is None and not isinstance(exc, CodecMissingError):
            raise
        why = reason or str(exc)
        raise CodecMissingError(
            f"{path.name}: this TIFF uses a compression samdesk cannot decode here ({why}). "
            + _INSTALL_HINT
        ) from None
    note = "decoded by Pillow" + (" (tifffile lacks this codec)" if reason else "")
    return Decoded(
        decoded.header,
        decoded.samples,
        alpha=decoded.alpha,
        display=decoded.display,
        notes=(*decoded.notes, note),
    )


def needs_codec(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "imagecodecs" in text or "compression" in text or "codec" in text


def decode_error(path: Path, exc: BaseException) -> Exception:
    text = str(exc)
    if "failed to read" in text or isinstance(exc, EOFError):
        return TruncatedImageError(
            f"{path.name}: the TIFF file is truncated ({text}). Copy it again from its source; "
            "samdesk never fills in missing pixels."
        )
    if needs_codec(exc):
        return CodecMissingError(
            f"{path.name}: this TIFF needs a codec that is not installed ({text}). " + _INSTALL_HINT
        )
    return DamagedImageError(
        f"{path.name}: the TIFF structure is damaged ({text or type(exc).__name__}). "
        "Copy it again from its source or re-export it."
    )
