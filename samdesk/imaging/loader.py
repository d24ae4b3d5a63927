"""The public entry points: :func:`probe_image` (header only) and :func:`load_image`.

Each call opens the file once, recognises the format from its first bytes, checks the pixel cap
against the header, and only then decodes. The content hash is computed from the same open file
handle the pixels are decoded from, so hash and pixels always describe the same bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

from samdesk.imaging import dicom_reader, pillow_reader, tiff_reader
from samdesk.imaging.convert import to_rgb8
from samdesk.imaging.decoded import Decoded, Header
from samdesk.imaging.errors import decoder_errors
from samdesk.imaging.files import open_image_file, sha256_of, sniff_format
from samdesk.imaging.info import ImageInfo, LoadedImage
from samdesk.imaging.limits import check_pixels, check_size, resolve_max_pixels
from samdesk.imaging.orientation import orient, oriented_size


def probe_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> ImageInfo:
    """Read an image's header: size in the oriented frame, format, mode, frame count.

    Decodes no pixels. Raises :class:`~samdesk.errors.ImageTooLargeError` (subclass
    :class:`~samdesk.imaging.errors.TooManyPixelsError`, which carries the size) when one frame
    has more pixels than the cap (``max_pixels``, else ``$SAMDESK_MAX_IMAGE_PIXELS``, else
    :data:`~samdesk.imaging.limits.DEFAULT_MAX_PIXELS`); NotAnImageError, TruncatedImageError,
    CodecMissingError or ImageError for files that cannot be read."""
    path = Path(path)
    limit = resolve_max_pixels(max_pixels)
    with open_image_file(path) as fh, decoder_errors(path):
        header = read_header(fh, path)
        check_pixels(path, header.width, header.height, limit)
    width, height = oriented_size(header.width, header.height, header.orientation)
    return ImageInfo(
        path, width, height, header.format, header.mode, header.frames, header.orientation
    )


def load_image(
    path: str | os.PathLike[str], *, max_pixels: int | None = None, frame: int = 0
) -> LoadedImage:
    """Decode one frame of an image to display RGB, in the oriented frame.

    See :class:`~samdesk.imaging.info.LoadedImage` for the result and
    :mod:`samdesk.imaging.convert` for how samples become RGB. ``frame`` selects a page of a
    multi-page TIFF, a frame of an animation or of a multi-frame DICOM (0-based). Errors as for
    :func:`probe_image`, plus InputError for a frame that does not exist."""
    path = Path(path)
    limit = resolve_max_pixels(max_pixels)
    with open_image_file(path) as fh, decoder_errors(path):
        content_hash = sha256_of(fh)
        decoded = decode(fh, path, frame=frame, limit=limit)
    return finish(path, decoded, content_hash, frame)


def read_header(fh: BinaryIO, path: Path) -> Header:
    """The header of the file open in ``fh``, by the reader its signature selects. Raises
    :class:`DamagedImageError` for a header declaring no pixels (a width or height below 1)."""
    fmt = sniff_format(fh, path)
    header = _reader(fmt).read_header(fh, path, fmt)
    check_size(path, header.width, header.height)
    return header


def decode(
    fh: BinaryIO,
    path: Path,
    *,
    frame: int,
    limit: int,
    draft_size: tuple[int, int] | None = None,
) -> Decoded:
    """Decode ``frame`` of the file in ``fh`` (stored frame), refusing more than ``limit``
    pixels before decoding them. Callers wrap this in :func:`decoder_errors`."""
    fmt = sniff_format(fh, path)
    return _reader(fmt).decode(fh, path, fmt, frame=frame, limit=limit, draft_size=draft_size)


@dataclass(frozen=True)
class Rendered:
    """Display RGB (H, W, 3) uint8 and raw samples, both in the ORIENTED frame."""

    rgb: np.ndarray
    raw: np.ndarray | None
    notes: tuple[str, ...]
    value_range: tuple[float, float] | None


def render(decoded: Decoded, value_range: tuple[float, float] | None = None) -> Rendered:
    """Convert decoded samples (stored frame) to display RGB and orient both."""
    header = decoded.header
    notes = list(decoded.notes)
    used: tuple[float, float] | None = None
    if decoded.display is not None:
        rgb = decoded.display
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[:, :, None], 3, axis=2)
        raw: np.ndarray | None = decoded.samples
    else:
        shown = to_rgb8(decoded.samples, alpha=decoded.alpha, value_range=value_range)
        rgb, raw, used = shown.rgb, shown.raw, shown.value_range
        notes.extend(shown.notes)
        if decoded.invert:
            rgb = 255 - rgb
    if header.orientation != 1:
        notes.append(f"EXIF orientation {header.orientation} applied")
    rgb = _own(orient(rgb, header.orientation))
    if raw is not None:
        raw = _own(orient(raw, header.orientation))
    return Rendered(rgb, raw, tuple(notes), used)


def _own(array: np.ndarray) -> np.ndarray:
    """A C-contiguous, writable array owning its memory (copied only when needed): never a
    view into a decoder's read-only buffer."""
    return np.require(array, requirements=("C", "W", "O"))


def finish(path: Path, decoded: Decoded, content_hash: str, frame: int) -> LoadedImage:
    """Orient and convert decoded samples into a :class:`LoadedImage`."""
    shown = render(decoded)
    height, width = shown.rgb.shape[:2]
    return LoadedImage(
        path=path,
        rgb=shown.rgb,
        raw=shown.raw,
        width=width,
        height=height,
        format=decoded.header.format,
        mode=decoded.header.mode,
        content_hash=content_hash,
        notes=shown.notes,
        frame=frame,
        frames=decoded.header.frames,
        value_range=shown.value_range,
    )


class _Reader(Protocol):
    """What every format reader module provides."""

    def read_header(self, fh: BinaryIO, path: Path, fmt: str) -> Header: ...

    def decode(
        self,
        fh: BinaryIO,
        path: Path,
        fmt: str,
        *,
        frame: int,
        limit: int,
        draft_size: tuple[int, int] | None,
    ) -> Decoded: ...


def _reader(fmt: str) -> _Reader:
    if fmt == "TIFF":
        return tiff_reader
    if fmt == "DICOM":
        return dicom_reader
    return pillow_reader
