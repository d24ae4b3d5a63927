"""DICOM through pydicom (optional extra ``dicom``).

Display rules (ADR 0033): the Modality LUT (RescaleSlope/Intercept, e.g. to Hounsfield units) is
applied first and its result is ``raw``; the display then uses the first WindowCenter/WindowWidth
pair when present (pydicom's VOI windowing, LINEAR/LINEAR_EXACT/SIGMOID, onto 0..255), else the
finite min..max stretch of :mod:`samdesk.imaging.convert`; MONOCHROME1 (0 = white) is inverted
for display. Colour images come out of pydicom as RGB (YBR is converted). Compressed transfer
syntaxes whose decoder is not installed raise :class:`CodecMissingError` with the pip command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from samdesk.errors import CodecMissingError, NotAnImageError, TruncatedImageError
from samdesk.imaging.convert import to_rgb8
from samdesk.imaging.decoded import Decoded, Header
from samdesk.imaging.errors import DamagedImageError
from samdesk.imaging.limits import check_pixels
from samdesk.imaging.pillow_reader import check_frame

try:
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.errors import InvalidDicomError
    from pydicom.multival import MultiValue
    from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_windowing, get_decoder
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
except ImportError:  # the optional extra is not installed
    pydicom = None

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# pip commands for the decoders pydicom can use, by transfer syntax UID prefix
_CODEC_HINTS = {
    "1.2.840.10008.1.2.4.9": "pip install pylibjpeg pylibjpeg-openjpeg",  # JPEG 2000
    "1.2.840.10008.1.2.4.20": "pip install pylibjpeg pylibjpeg-openjpeg",  # HTJ2K
    "1.2.840.10008.1.2.4.8": "pip install pylibjpeg pylibjpeg-libjpeg",  # JPEG-LS
    "1.2.840.10008.1.2.4.": "pip install pylibjpeg pylibjpeg-libjpeg",  # JPEG
    "1.2.840.10008.1.2.5": "pip install pylibjpeg pylibjpeg-rle",  # RLE Lossless
}
_READ_ERRORS = (ValueError, KeyError, TypeError, AttributeError, EOFError, OSError, IndexError)


def read_header(fh: BinaryIO, path: Path, fmt: str) -> Header:
    """Rows, Columns, NumberOfFrames and PhotometricInterpretation; the pixel data is skipped."""
    ds = _read(fh, path, stop_before_pixels=True)
    return _header(ds, path)


def decode(
    fh: BinaryIO,
    path: Path,
    fmt: str,
    *,
    frame: int,
    limit: int,
    draft_size: tuple[int, int] | None = None,
) -> Decoded:
    """Decode ``frame`` (0-based) of the DICOM in ``fh``; see the module docstring."""
    header = read_header(fh, path, fmt)
    check_frame(path, frame, header.frames)
    check_pixels(path, header.width, header.height, limit)
    ds = _read(fh, path, stop_before_pixels=False)
    if "PixelData" not in ds:
        raise NotAnImageError(f"{path.name}: this DICOM file holds no pixel data (no image).")
    _check_decoder(ds, path)
    try:
        pixels = pydicom.pixels.pixel_array(ds, index=frame)
    except (*_READ_ERRORS, RuntimeError, NotImplementedError) as exc:
        raise _pixel_error(path, exc) from None
    return _display(ds, pixels, header)


def _read(fh: BinaryIO, path: Path, *, stop_before_pixels: bool) -> Dataset:
    if pydicom is None:
        raise CodecMissingError(
            f"{path.name} is a DICOM file; reading DICOM needs the optional package pydicom: "
            "pip install pydicom (or pip install 'samdesk[dicom]')."
        )
    fh.seek(0)
    fh.seek(128)
    bare = fh.read(4) != b"DICM"  # written without the preamble: only the suffix said DICOM
    fh.seek(0)
    try:
        ds = pydicom.dcmread(fh, stop_before_pixels=stop_before_pixels, force=bare)
        if bare:
            _declare_encoding(ds)
        return ds
    except InvalidDicomError as exc:
        raise NotAnImageError(f"{path.name}: this is not a readable DICOM file ({exc}).") from None
    except _READ_ERRORS as exc:
        raise _pixel_error(path, exc) from None


def _declare_encoding(ds: Dataset) -> None:
    """A dataset written without file meta information has no Transfer Syntax UID; declare the
    uncompressed one pydicom detected while parsing, so the pixel data can be decoded."""
    meta = ds.file_meta if getattr(ds, "file_meta", None) is not None else FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        implicit, little = ds.original_encoding
        if implicit:
            meta.TransferSyntaxUID = ImplicitVRLittleEndian
        else:
            meta.TransferSyntaxUID = ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        ds.file_meta = meta


def _header(ds: Dataset, path: Path) -> Header:
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        raise NotAnImageError(
            f"{path.name}: this DICOM file describes no image (no Rows/Columns); it may be a "
            "report or a presentation state."
        ) from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    return Header("DICOM", columns, rows, f"DICOM {photometric}", frames)


def _check_decoder(ds: Dataset, path: Path) -> None:
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax is None:
        return  # pydicom assumes implicit little endian
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise CodecMissingError(
            f"{path.name}: pixel data in transfer syntax {syntax} ({syntax.name}), which no "
            "DICOM decoder samdesk knows supports. Convert it to uncompressed DICOM, e.g. with "
            "dcmdjpeg or gdcmconv --raw."
        ) from None
    if not decoder.is_available:
        hint = next(
            (cmd for prefix, cmd in _CODEC_HINTS.items() if str(syntax).startswith(prefix)),
            "pip install pylibjpeg pylibjpeg-openjpeg pylibjpeg-libjpeg",
        )
        options = "; ".join(decoder.missing_dependencies)
        raise CodecMissingError(
            f"{path.name}: the pixel data is compressed as {syntax.name} and no decoder for it "
            f"is installed. Install one: {hint} (alternatives: {options})."
        )


def _display(ds: Dataset, pixels: np.ndarray, header: Header) -> Decoded:
    """Modality LUT -> raw; window (or stretch) -> display; MONOCHROME1 inverted."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    notes: list[str] = []
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(pixels, ds)
        if rgb.dtype != np.uint8:
            rgb = (rgb >> 8).astype(np.uint8)
        return Decoded(header, pixels, display=rgb, notes=("palette colour -> RGB",))
    if not photometric.startswith("MONOCHROME"):
        return Decoded(header, pixels, notes=(f"{photometric} -> RGB by pydicom",))
    values = apply_modality_lut(pixels, ds)
    if "RescaleSlope" in ds or "RescaleIntercept" in ds or "ModalityLUTSequence" in ds:
        notes.append(
            f"modality LUT applied (slope {ds.get('RescaleSlope', 1)}, "
            f"intercept {ds.get('RescaleIntercept', 0)}): raw holds rescaled values"
        )
    display = _window(ds, values, notes)
    if display is None:
        shown = to_rgb8(values)
        display = shown.rgb[:, :, 0]
        notes.extend(note for note in shown.notes)
    if photometric == "MONOCHROME1":
        display = 255 - display
        notes.append("MONOCHROME1: inverted for display")
    return Decoded(header, values, display=display, notes=tuple(notes))


def _window(ds: Dataset, values: np.ndarray, notes: list[str]) -> np.ndarray | None:
    """The first window of the VOI LUT module mapped onto 0..255 (uint8), or None."""
    if "WindowCenter" not in ds or "WindowWidth" not in ds:
        return None
    try:
        center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
    except (*_READ_ERRORS, RuntimeError) as exc:  # an empty or unparsable DS value
        notes.append(f"window ignored (WindowCenter/WindowWidth unreadable: {exc})")
        return None
    if not (np.isfinite(center) and np.isfinite(width)):
        notes.append(f"window ignored (center {center}, width {width} are not finite)")
        return None
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR")
    voi = pydicom.Dataset()
    voi.PhotometricInterpretation = "MONOCHROME2"
    voi.BitsStored = 8  # pydicom maps the window onto 0 .. 2**BitsStored - 1 = 0..255
    voi.PixelRepresentation = 0
    voi.WindowCenter, voi.WindowWidth, voi.VOILUTFunction = center, width, function
    try:
        windowed = apply_windowing(np.nan_to_num(values.astype(np.float64)), voi)
    except ValueError as exc:
        notes.append(f"window ignored ({exc})")
        return None
    notes.append(f"DICOM window: center {center:g}, width {width:g} ({function})")
    return np.clip(np.rint(windowed), 0, 255).astype(np.uint8)


def _first(value: object) -> float:
    """The first of a multi-valued DS element (several windows), or the single value."""
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0]
    return float(value)  # type: ignore[arg-type]


def _pixel_error(path: Path, exc: BaseException) -> Exception:
    text = str(exc)
    if "less than expected" in text or "truncat" in text.lower() or isinstance(exc, EOFError):
        return TruncatedImageError(
            f"{path.name}: the DICOM pixel data is truncated ({text}). Copy the file again "
            "from its source; samdesk never fills in missing pixels."
        )
    reason = text.splitlines()[0] if text else type(exc).__name__
    return DamagedImageError(
        f"{path.name}: the DICOM data cannot be decoded ({reason}). Copy it again from its "
        "source or re-export it."
    )
