"""Deterministic conversion of decoded samples to the (H, W, 3) uint8 RGB samdesk shows and
segments (ADR 0032). Every rule here is tested; change none without updating the ADR.

- Gray (H, W) -> the value replicated into R, G and B.
- Alpha (RGBA, gray+alpha) -> composited on BLACK: ``out = round(value * alpha / max)``, so fully
  transparent pixels are black whatever colour they store; the original samples stay in ``raw``.
- More than 3 channels without alpha -> the first 3 channels as R, G, B; 2 channels -> the first
  as gray. ``raw`` keeps every channel.
- uint8 samples are used as they are. Any other dtype (uint16, int32, float32, bool, ...) is
  stretched linearly from the finite minimum to the finite maximum of the shown channels
  (one range shared by all channels, preserving colour balance) onto 0..255, rounding to
  nearest. NaN, +Inf and -Inf are left out of the range; NaN is shown as 0, +Inf as 255 and
  -Inf as 0. A constant image (min == max) is shown as mid-gray 128; an image with no finite
  value at all as black. One hot or infinite pixel therefore never turns the image black.
- Palette, CMYK, YCbCr and 1-bit images are converted by the reader (Pillow) before they get
  here; no colour management (ICC profiles are not applied).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samdesk.errors import InputError

CONSTANT_GRAY = 128
_ROWS_PER_CHUNK = 512  # bounds the float temporaries when stretching very large images


@dataclass(frozen=True)
class Display:
    """Result of :func:`to_rgb8`: ``rgb`` (H, W, 3) uint8 C-contiguous, ``raw`` the samples when
    they differ from ``rgb`` (else None), and ``notes`` describing what was done."""

    rgb: np.ndarray
    raw: np.ndarray | None
    notes: tuple[str, ...]
    value_range: tuple[float, float] | None = None


def to_rgb8(
    samples: np.ndarray,
    *,
    alpha: bool = False,
    value_range: tuple[float, float] | None = None,
) -> Display:
    """Convert ``samples`` ((H, W) or (H, W, C), any numeric dtype) to display RGB.

    ``alpha`` says that the LAST channel is opacity (RGBA, or gray+alpha for C == 2).
    ``value_range`` = (lo, hi) replaces the finite min..max of non-uint8 samples (so tiles of one
    image share one stretch); the range used is returned in ``Display.value_range``."""
    if samples.ndim == 3 and samples.shape[2] == 1:
        samples = samples[:, :, 0]
    if samples.ndim not in (2, 3):
        raise InputError(f"samples must be (H, W) or (H, W, C), got shape {samples.shape}")
    notes: list[str] = []
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    colour, opacity = _split_alpha(samples, alpha and channels in (2, 4))
    if colour.ndim == 3 and colour.shape[2] == 1:
        colour = colour[:, :, 0]
    if colour.ndim == 3 and colour.shape[2] > 3:
        notes.append(f"{colour.shape[2]} channels: channels 0-2 shown as R, G, B")
        colour = colour[:, :, :3]
    elif colour.ndim == 3 and colour.shape[2] == 2:
        notes.append("2 channels: channel 0 shown as gray")
        colour = colour[:, :, 0]
    shown, used = _stretch(colour, notes, value_range)
    if opacity is not None:
        shown = _composite_on_black(shown, opacity)
        notes.append("transparency composited on black")
    rgb = np.repeat(shown[:, :, None], 3, axis=2) if shown.ndim == 2 else shown
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    same = samples.dtype == np.uint8 and (samples.ndim == 2 or samples.shape[2] == 3)
    return Display(rgb=rgb, raw=None if same else samples, notes=tuple(notes), value_range=used)


def _split_alpha(samples: np.ndarray, alpha: bool) -> tuple[np.ndarray, np.ndarray | None]:
    if not alpha:
        return samples, None
    return samples[:, :, :-1], samples[:, :, -1]


def _composite_on_black(shown: np.ndarray, opacity: np.ndarray) -> np.ndarray:
    """``shown`` uint8 (H, W) or (H, W, 3) times opacity/max, rounded to nearest."""
    if opacity.dtype == np.uint8:
        scale = 255.0
    elif np.issubdtype(opacity.dtype, np.integer):
        scale = float(np.iinfo(opacity.dtype).max)
    else:
        scale = 1.0  # float alpha is 0..1 by convention
    weight = np.clip(opacity.astype(np.float32) / np.float32(scale), 0.0, 1.0)
    weight = np.nan_to_num(weight, nan=0.0)
    if shown.ndim == 3:
        weight = weight[:, :, None]
    return np.rint(shown.astype(np.float32) * weight).astype(np.uint8)


def _stretch(
    colour: np.ndarray, notes: list[str], value_range: tuple[float, float] | None
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """uint8 as is; anything else stretched over its finite range (module docstring).
    Returns the uint8 image and the (lo, hi) range used (None when nothing was stretched)."""
    if colour.dtype == np.uint8:
        return colour, None
    if colour.dtype == np.bool_:
        notes.append("1-bit: False shown as 0, True as 255")
        return colour.astype(np.uint8) * np.uint8(255), None
    kind = _describe_dtype(colour.dtype)
    if value_range is not None:
        lo, hi = (float(v) for v in value_range)
        non_finite = 0
        source = "given"
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
            raise InputError(f"value_range must be two finite numbers lo <= hi, not {value_range}")
    else:
        lo, hi, non_finite = finite_range(colour)
        source = "finite values"
    if lo is None or hi is None:
        notes.append(f"{kind}: no finite value, shown black")
        return np.zeros(colour.shape, np.uint8), None
    if non_finite:
        notes.append(f"{kind}: {non_finite:,} NaN/Inf values left out of the display range")
    if lo == hi:
        notes.append(f"{kind}: constant image (every value {_fmt(lo)}), shown as mid-gray")
        out = np.full(colour.shape, CONSTANT_GRAY, np.uint8)
        if np.issubdtype(colour.dtype, np.floating):
            out[np.isnan(colour) | np.isneginf(colour)] = 0
            out[np.isposinf(colour)] = 255
        return out, (lo, hi)
    notes.append(f"{kind}: display range {_fmt(lo)}..{_fmt(hi)} ({source})")
    out = np.empty(colour.shape, np.uint8)
    scale = 255.0 / (hi - lo)
    for start in range(0, colour.shape[0], _ROWS_PER_CHUNK):
        rows = colour[start : start + _ROWS_PER_CHUNK].astype(np.float64)
        rows = (rows - lo) * scale
        np.nan_to_num(rows, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
        np.clip(rows, 0.0, 255.0, out=rows)
        out[start : start + _ROWS_PER_CHUNK] = np.rint(rows)
    return out, (lo, hi)


def finite_range(values: np.ndarray) -> tuple[float | None, float | None, int]:
    """(finite min, finite max, count of non-finite values) of ``values``; (None, None, n) when
    no value is finite. Works in row chunks so no full-size temporary is made."""
    if not np.issubdtype(values.dtype, np.floating):
        if values.size == 0:
            return None, None, 0
        return float(values.min()), float(values.max()), 0
    lo: float | None = None
    hi: float | None = None
    non_finite = 0
    for start in range(0, values.shape[0], _ROWS_PER_CHUNK):
        rows = values[start : start + _ROWS_PER_CHUNK]
        finite = np.isfinite(rows)
        count = int(finite.sum())
        non_finite += finite.size - count
        if count == 0:
            continue
        chunk = rows[finite] if count < finite.size else rows
        chunk_lo, chunk_hi = float(chunk.min()), float(chunk.max())
        lo = chunk_lo if lo is None else min(lo, chunk_lo)
        hi = chunk_hi if hi is None else max(hi, chunk_hi)
    return lo, hi, non_finite


def _describe_dtype(dtype: np.dtype) -> str:
    if np.issubdtype(dtype, np.floating):
        return f"{dtype.itemsize * 8}-bit float"
    if np.issubdtype(dtype, np.signedinteger):
        return f"{dtype.itemsize * 8}-bit signed"
    return f"{dtype.itemsize * 8}-bit"


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"
