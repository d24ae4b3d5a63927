"""DICOM: rescale to HU, windowing, MONOCHROME1, multi-frame, colour, truncated and codec-less
files (fault 14 of faults-to-try.md). Every file is generated here with pydicom."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.pixels.decoders.base import Decoder
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless

from samdesk.errors import (
    CodecMissingError,
    ImageTooLargeError,
    NotAnImageError,
    TruncatedImageError,
)
from samdesk.imaging import dicom_reader, load_image, probe_image
from tests.support.images import truncate, write_dicom

CT = (np.arange(64 * 80, dtype=np.int32).reshape(64, 80) % 4096).astype(np.uint16)


def _linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 (LINEAR) onto 0..255, written out for the comparison."""
    low = values <= center - 0.5 - (width - 1) / 2
    high = values > center - 0.5 + (width - 1) / 2
    mid = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255
    return np.rint(np.where(low, 0, np.where(high, 255, mid))).astype(np.uint8)


def test_probe_reads_rows_columns_and_photometric(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "ct.dcm", CT, bits_stored=12)
    info = probe_image(path)
    assert (info.width, info.height, info.format, info.mode, info.frames) == (
        80,
        64,
        "DICOM",
        "DICOM MONOCHROME2",
        1,
    )


def test_rescale_gives_hounsfield_units_and_the_window_is_applied(tmp_path: Path) -> None:
    path = write_dicom(
        tmp_path / "ct.dcm", CT, slope=1.0, intercept=-1024.0, window=(40, 400), bits_stored=12
    )
    loaded = load_image(path)
    hu = CT.astype(np.float64) - 1024
    assert loaded.raw is not None
    np.testing.assert_allclose(loaded.raw, hu)
    np.testing.assert_array_equal(loaded.rgb[:, :, 0], _linear_window(hu, 40, 400))
    assert loaded.rgb[:, :, 0].min() == 0 and loaded.rgb[:, :, 0].max() == 255
    assert any("window: center 40, width 400" in note for note in loaded.notes)
    assert any("modality LUT" in note for note in loaded.notes)


def test_slope_is_applied(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "s.dcm", CT, slope=2.5, intercept=10.0, bits_stored=12)
    loaded = load_image(path)
    np.testing.assert_allclose(loaded.raw, CT * 2.5 + 10.0)


def test_without_a_window_the_finite_range_is_used(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "n.dcm", CT, bits_stored=12)
    loaded = load_image(path)
    gray = loaded.rgb[:, :, 0]
    assert gray[np.equal(CT, CT.min())].max() == 0
    assert gray[np.equal(CT, CT.max())].min() == 255
    assert any("display range 0..4095" in note for note in loaded.notes)


def test_monochrome1_is_inverted_for_display(tmp_path: Path) -> None:
    m2 = load_image(write_dicom(tmp_path / "m2.dcm", CT, window=(2048, 4096), bits_stored=12))
    m1 = load_image(
        write_dicom(
            tmp_path / "m1.dcm", CT, photometric="MONOCHROME1", window=(2048, 4096), bits_stored=12
        )
    )
    np.testing.assert_array_equal(m1.rgb, 255 - m2.rgb)
    np.testing.assert_array_equal(m1.raw, m2.raw)  # raw keeps the stored values
    assert m1.mode == "DICOM MONOCHROME1"
    assert any("MONOCHROME1" in note for note in m1.notes)


def test_signed_pixels_and_frames(tmp_path: Path) -> None:
    stack = np.stack([np.full((6, 7), value, np.int16) for value in (-500, 0, 700)])
    stack[:, 0, 0] = -1000
    path = write_dicom(tmp_path / "mf.dcm", stack)
    assert probe_image(path).frames == 3
    loaded = load_image(path, frame=2)
    assert loaded.raw[1, 1] == 700 and loaded.raw[0, 0] == -1000
    assert loaded.rgb[1, 1, 0] == 255 and loaded.rgb[0, 0, 0] == 0


def test_colour_dicom(tmp_path: Path) -> None:
    rgb = (np.arange(8 * 9 * 3) % 256).astype(np.uint8).reshape(8, 9, 3)
    loaded = load_image(write_dicom(tmp_path / "c.dcm", rgb, photometric="RGB"))
    np.testing.assert_array_equal(loaded.rgb, rgb)
    assert loaded.raw is None


def test_jpeg2000_dicom_decodes_when_a_decoder_is_installed(tmp_path: Path) -> None:
    pixels = (np.arange(16 * 16) % 200).astype(np.uint8).reshape(16, 16)
    stream = io.BytesIO()
    Image.fromarray(pixels).save(stream, "JPEG2000", irreversible=False, no_jp2=True)
    path = write_dicom(
        tmp_path / "j2k.dcm",
        pixels,
        transfer_syntax=JPEG2000Lossless,
        pixel_data=encapsulate([stream.getvalue()]),
    )
    np.testing.assert_array_equal(load_image(path).rgb[:, :, 0], pixels)


def test_jpeg2000_without_a_decoder_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_dicom(
        tmp_path / "j2k.dcm",
        np.zeros((8, 8), np.uint16),
        transfer_syntax=JPEG2000Lossless,
        pixel_data=encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 40]),
    )
    monkeypatch.setattr(Decoder, "is_available", property(lambda self: self.is_native))
    with pytest.raises(CodecMissingError) as caught:
        load_image(path)
    message = str(caught.value)
    assert "j2k.dcm" in message and "JPEG 2000" in message
    assert "pip install pylibjpeg pylibjpeg-openjpeg" in message
    assert probe_image(path).width == 8  # the header alone still reads


def test_jpeg_ls_without_a_decoder(tmp_path: Path) -> None:
    path = write_dicom(
        tmp_path / "jls.dcm",
        np.zeros((8, 8), np.uint16),
        transfer_syntax=JPEGLSLossless,
        pixel_data=encapsulate([b"\xff\xd8" + b"\x00" * 40]),
    )
    with pytest.raises(CodecMissingError, match="pylibjpeg-libjpeg"):
        load_image(path)


def test_truncated_dicom(tmp_path: Path) -> None:
    whole = write_dicom(tmp_path / "whole.dcm", CT, bits_stored=12)
    with pytest.raises(TruncatedImageError, match="truncated"):
        load_image(truncate(whole, tmp_path / "cut.dcm", keep=0.6))


def test_dicom_without_pixels_is_not_an_image(tmp_path: Path) -> None:
    from pydicom import dcmread

    path = write_dicom(tmp_path / "sr.dcm", CT, bits_stored=12)
    ds = dcmread(path)
    for keyword in ("PixelData", "Rows", "Columns"):
        delattr(ds, keyword)
    ds.save_as(path)
    with pytest.raises(NotAnImageError, match="no image"):
        probe_image(path)


def test_dicom_bomb_is_refused_from_the_header(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "big.dcm", np.zeros((4, 4), np.uint16))
    from pydicom import dcmread

    ds = dcmread(path)
    ds.Rows, ds.Columns = 60_000, 60_000
    ds.save_as(path)
    with pytest.raises(ImageTooLargeError, match="60,000 x 60,000"):
        load_image(path)


def test_without_pydicom_the_install_command_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_dicom(tmp_path / "ct.dcm", CT, bits_stored=12)
    monkeypatch.setattr(dicom_reader, "pydicom", None)
    with pytest.raises(CodecMissingError, match="pip install pydicom"):
        load_image(path)


def test_dicom_without_preamble_is_read_when_named_dcm(tmp_path: Path) -> None:
    from pydicom import dcmread, dcmwrite

    path = write_dicom(tmp_path / "ct.dcm", CT, bits_stored=12)
    ds = dcmread(path)
    bare = tmp_path / "bare.dcm"
    buffer = io.BytesIO()
    del ds.file_meta  # a bare dataset: no preamble, no "DICM", no file meta group
    ds.preamble = None
    dcmwrite(buffer, ds, enforce_file_format=False, implicit_vr=True, little_endian=True)
    bare.write_bytes(buffer.getvalue())
    assert bare.read_bytes()[128:132] != b"DICM"
    np.testing.assert_array_equal(load_image(bare).raw, CT)
    renamed = tmp_path / "bare.bin"
    renamed.write_bytes(bare.read_bytes())
    with pytest.raises(NotAnImageError):  # without the preamble only the name says DICOM
        load_image(renamed)
