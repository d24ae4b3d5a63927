"""Image fixture builders for the imaging tests: every file is generated in the test's tmp_path.

Builders return the path they wrote. Arrays are (H, W) or (H, W, C) in the STORED frame.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def gradient(height: int, width: int, channels: int = 3, dtype: type = np.uint8) -> np.ndarray:
    """A deterministic, asymmetric test pattern (no two pixels of a row or column alike), so any
    flip, rotation or offset shows. (H, W) when ``channels`` is 1, else (H, W, C)."""
    y, x = np.mgrid[0:height, 0:width]
    planes = [(x * 7 + y * 13 + c * 50) % 251 for c in range(channels)]
    data = np.stack(planes, axis=-1) if channels > 1 else planes[0]
    return data.astype(dtype)


def write_pillow(path: Path, array: np.ndarray, mode: str | None = None, **save: object) -> Path:
    """Save ``array`` with Pillow (format from the suffix); ``save`` goes to ``Image.save``."""
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(path, **save)
    return path


def exif_with_orientation(orientation: int) -> bytes:
    """An Exif block (as Pillow writes it) holding only the Orientation tag."""
    exif = Image.Exif()
    exif[274] = orientation
    return exif.tobytes()


def truncate(source: Path, target: Path, keep: float = 0.5) -> Path:
    """Copy the first ``keep`` fraction of ``source``'s bytes to ``target``."""
    data = source.read_bytes()
    target.write_bytes(data[: max(1, int(len(data) * keep))])
    return target


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def forged_png(path: Path, width: int, height: int, colour_type: int = 2) -> Path:
    """A tiny PNG whose header CLAIMS ``width`` x ``height`` pixels (8-bit, RGB by default) but
    holds a few bytes of pixel data: a decompression-bomb stand-in that costs nothing to make."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    path.write_bytes(data)
    return path


def forged_jpeg(path: Path, width: int, height: int) -> Path:
    """A JPEG header (SOI, SOF0 for 3 components, EOI) claiming ``width`` x ``height``."""
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    data = b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"
    path.write_bytes(data)
    return path


def forged_tiff(path: Path, width: int, height: int) -> Path:
    """A little-endian TIFF whose only IFD claims ``width`` x ``height`` 8-bit gray pixels in one
    strip that is not in the file."""
    entries = [
        (256, 4, 1, width),  # ImageWidth, LONG
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: min-is-black
        (273, 4, 1, 8),  # StripOffsets
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, width * height & 0xFFFFFFFF),  # StripByteCounts
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack("<HI", value, 0)[:4] if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    data = b"II*\x00" + struct.pack("<I", 8 + 8) + b"\x00" * 8 + ifd
    path.write_bytes(data)
    return path


def set_tiff_short_tag(path: Path, tag: int, value: int) -> Path:
    """Overwrite the value of SHORT ``tag`` in the first IFD of a little-endian classic TIFF
    (e.g. to declare a compression no installed codec can decode)."""
    data = bytearray(path.read_bytes())
    if data[:4] != b"II*\x00":
        raise ValueError(f"{path} is not a little-endian classic TIFF")
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for index in range(count):
        entry = ifd + 2 + 12 * index
        entry_tag, kind = struct.unpack_from("<HH", data, entry)
        if entry_tag == tag:
            if kind != 3:
                raise ValueError(f"tag {tag} of {path} is not a SHORT")
            struct.pack_into("<H", data, entry + 8, value)
            path.write_bytes(bytes(data))
            return path
    raise ValueError(f"tag {tag} not found in {path}")


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    slope: float | None = None,
    intercept: float | None = None,
    window: tuple[float, float] | None = None,
    transfer_syntax: str | None = None,
    pixel_data: bytes | None = None,
    bits_stored: int | None = None,
) -> Path:
    """Write an uncompressed DICOM (Explicit VR Little Endian) with pydicom.

    ``pixels``: (H, W) or (frames, H, W) integers for MONOCHROME*, (H, W, 3) uint8 for RGB.
    ``slope``/``intercept`` set RescaleSlope/Intercept, ``window`` (center, width) sets
    WindowCenter/Width. ``transfer_syntax`` and ``pixel_data`` let a test declare e.g. JPEG 2000
    with encapsulated bytes of its choosing."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax or ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Test^Phantom"
    ds.Modality = "OT"
    colour = pixels.ndim == 3 and photometric not in ("MONOCHROME1", "MONOCHROME2")
    frames = pixels.shape[0] if pixels.ndim == 3 and not colour else 1
    ds.Rows, ds.Columns = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if np.issubdtype(pixels.dtype, np.signedinteger) else 0
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if pixel_data is None:
        ds.PixelData = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<")).tobytes()
    else:
        ds.PixelData = pixel_data
        ds["PixelData"].is_undefined_length = True
        ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def shared_tile_tiff(path: Path, width: int, height: int, tile: np.ndarray) -> Path:
    """A tiled 8-bit gray TIFF of ``width`` x ``height`` whose tiles all point at ONE
    deflate-compressed copy of ``tile`` ((th, tw) uint8, th and tw multiples of 16), so a
    400 MP image costs a few kilobytes on disk. Pixel (x, y) is ``tile[y % th, x % tw]``."""
    tile_h, tile_w = tile.shape
    across, down = -(-width // tile_w), -(-height // tile_h)
    count = across * down
    body = zlib.compress(np.ascontiguousarray(tile, np.uint8).tobytes(), 9)
    entries_count = 11
    ifd_offset = 8
    ifd_size = 2 + 12 * entries_count + 4
    offsets_at = ifd_offset + ifd_size
    counts_at = offsets_at + 4 * count
    tile_at = counts_at + 4 * count
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 8),  # Adobe deflate
        (262, 3, 1, 1),  # min-is-black
        (277, 3, 1, 1),
        (284, 3, 1, 1),  # planar config: contiguous
        (322, 3, 1, tile_w),
        (323, 3, 1, tile_h),
        (324, 4, count, offsets_at if count > 1 else tile_at),
        (325, 4, count, counts_at if count > 1 else len(body)),
    ]
    ifd = struct.pack("<H", entries_count)
    for tag, kind, number, value in entries:
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, number) + packed
    ifd += struct.pack("<I", 0)
    data = b"II*\x00" + struct.pack("<I", ifd_offset) + ifd
    if count > 1:
        data += struct.pack(f"<{count}I", *([tile_at] * count))
        data += struct.pack(f"<{count}I", *([len(body)] * count))
    path.write_bytes(data + body)
    return path
