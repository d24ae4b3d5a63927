"""Image in, model input out; low-resolution logits in, image-size masks out.

Two preprocessing modes:

* ``"sam"`` (SAM, MobileSAM): resize so the longest side is 1024 with Pillow's bilinear filter
  (exactly what segment-anything's ``ResizeLongestSide.apply_image`` does through torchvision),
  normalise with SAM's pixel mean/std, pad bottom/right to 1024x1024 with zeros.
* ``"medsam"`` (MedSAM's own inference): resize to 1024x1024 ignoring the aspect ratio (bicubic,
  Pillow instead of scikit-image), min-max normalise to [0, 1], no mean/std, no padding.

Frames: a point (x, y) in original-image pixels maps to (x * w / W, y * h / H) in the model's
input, where (h, w) is the resized image's size and (H, W) the original's.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from samdesk.errors import InputError
from samdesk.model.sam import PIXEL_MEAN, PIXEL_STD

PREPROCESSING_MODES = ("sam", "medsam")
#: Bumped whenever a mode's pixels change, so cached embeddings of the old version are unused.
PREPROCESSING_VERSION = {"sam": "sam-1", "medsam": "medsam-1"}


def resized_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) after scaling the longest side to ``long_side`` (official rounding)."""
    scale = long_side * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def check_image(image: object, image_format: str = "RGB") -> np.ndarray:
    """Validate an image; return (H, W, 3) uint8 RGB, or (H, W) uint8 for gray (which
    :func:`preprocess` turns into 3 equal channels after resizing, to save memory on huge
    scans; the result is the same as for the gray image repeated to RGB).

    Raises InputError for anything else, saying how to fix it.
    """
    if image_format not in ("RGB", "BGR"):
        raise InputError(f"image_format must be 'RGB' or 'BGR', not {image_format!r}.")
    if not isinstance(image, np.ndarray):
        raise InputError(f"the image must be a numpy array, not {type(image).__name__}.")
    if image.dtype != np.uint8:
        raise InputError(
            f"the image has dtype {image.dtype}; the model needs 8-bit (uint8) pixels. Convert it "
            "first (samdesk's image reader does this for 16-bit and float images)."
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != 2 and (image.ndim != 3 or image.shape[2] != 3):
        raise InputError(
            f"the image has shape {image.shape}; expected (H, W, 3) RGB or (H, W) gray. Drop an "
            "alpha channel or convert multi-channel images first."
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"the image is empty (shape {image.shape}).")
    if image_format == "BGR" and image.ndim == 3:
        image = image[:, :, ::-1]
    return np.ascontiguousarray(image)


def preprocess(
    image: np.ndarray, mode: str, img_size: int = 1024
) -> tuple[torch.Tensor, tuple[int, int]]:
    """(H, W, 3) uint8 RGB or (H, W) gray -> model input (1, 3, img_size, img_size) float32 and
    the (h, w) the image occupies inside it."""
    small, size = _resize(image, mode, img_size)
    if small.ndim == 2:  # gray: resized as one channel, then repeated (identical to RGB gray)
        small = np.repeat(small[:, :, None], 3, axis=2)
    return _normalise(small, mode, img_size), size


def _resize(image: np.ndarray, mode: str, img_size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Pillow resize of a uint8 image (H, W[, 3]); returns it and its (h, w) in the input."""
    height, width = image.shape[:2]
    if mode == "sam":
        h, w = resized_shape(height, width, img_size)
        return np.array(Image.fromarray(image).resize((w, h), Image.BILINEAR)), (h, w)
    if mode == "medsam":
        size = (img_size, img_size)
        return np.array(Image.fromarray(image).resize(size, Image.BICUBIC)), size
    raise InputError(
        f"unknown preprocessing {mode!r}; choose one of {', '.join(PREPROCESSING_MODES)}."
    )


def _normalise(resized: np.ndarray, mode: str, img_size: int) -> torch.Tensor:
    """(h, w, 3) uint8 -> (1, 3, img_size, img_size) float32 as the mode prescribes."""
    x = torch.from_numpy(resized).permute(2, 0, 1).float()
    if mode == "medsam":
        lo, hi = x.min(), x.max()
        return ((x - lo) / torch.clamp(hi - lo, min=1e-8))[None]
    h, w = resized.shape[:2]
    mean = torch.tensor(PIXEL_MEAN).view(3, 1, 1)
    std = torch.tensor(PIXEL_STD).view(3, 1, 1)
    return F.pad((x - mean) / std, (0, img_size - w, 0, img_size - h))[None]


def _crop_rows(size_in: int, size_low: int, size_model: int) -> int:
    """Low-res rows needed to upsample exactly the first ``size_in`` of ``size_model`` rows."""
    factor = size_model // size_low
    return min(size_low, -(-size_in // factor) + 1)


def postprocess(
    low_res: torch.Tensor,
    input_size: tuple[int, int],
    original_size: tuple[int, int],
    img_size: int = 1024,
) -> torch.Tensor:
    """Low-res logits (1, C, 256, 256) -> logits (1, C, H, W) at the original image size.

    Equal to segment-anything's ``postprocess_masks`` (bilinear to img_size x img_size, crop to
    ``input_size``, bilinear to ``original_size``), but the first upsampling only covers the
    cropped region: with an integer factor (4) every kept output pixel samples exactly the same
    low-res pixels, so the result is unchanged while up to 4x less work is done.
    """
    low = low_res.shape[-1]
    if img_size % low == 0:
        rows = _crop_rows(input_size[0], low, img_size)
        cols = _crop_rows(input_size[1], low, img_size)
        factor = img_size // low
        up = F.interpolate(
            low_res[..., :rows, :cols],
            (rows * factor, cols * factor),
            mode="bilinear",
            align_corners=False,
        )
    else:
        up = F.interpolate(low_res, (img_size, img_size), mode="bilinear", align_corners=False)
    up = up[..., : input_size[0], : input_size[1]]
    if tuple(up.shape[-2:]) == tuple(original_size):
        return up
    return F.interpolate(up, original_size, mode="bilinear", align_corners=False)


def postprocess_numpy(
    low_res: np.ndarray,
    input_size: tuple[int, int],
    original_size: tuple[int, int],
    img_size: int = 1024,
    threshold: float | None = 0.0,
) -> np.ndarray:
    """Same as :func:`postprocess` on (C, 256, 256) float32 logits, with OpenCV's resize.

    OpenCV's INTER_LINEAR samples at the same half-pixel-centre coordinates as torch's bilinear
    (align_corners=False) and clamps at the border the same way; it is several times faster on
    large images. Returns (C, H, W) bool masks (``logits > threshold``), or float32 logits when
    ``threshold`` is None. Each mask is resized alone so every output is written once; the
    float results of both resizes go into scratch buffers reused for every mask (fresh
    multi-megabyte arrays are page-faulted in on every use: three 1024x1024 masks took 4.7 ms
    that way against 2.1 ms).
    """
    channels, low, _ = low_res.shape
    height, width = original_size
    out = np.empty((channels, height, width), dtype=np.float32 if threshold is None else bool)
    rows, cols, factor = low, low, 1
    if img_size % low == 0:
        factor = img_size // low
        rows = _crop_rows(input_size[0], low, img_size)
        cols = _crop_rows(input_size[1], low, img_size)
    size = (cols * factor, rows * factor) if factor > 1 else (img_size, img_size)
    resize_again = (min(input_size[0], size[1]), min(input_size[1], size[0])) != (height, width)
    first = np.empty((size[1], size[0]), dtype=np.float32)
    scratch = None
    if resize_again and threshold is not None:
        scratch = np.empty((height, width), dtype=np.float32)
    for i in range(channels):
        src = np.ascontiguousarray(low_res[i, :rows, :cols], dtype=np.float32)
        up = cv2.resize(src, size, dst=first, interpolation=cv2.INTER_LINEAR)
        up = up[: input_size[0], : input_size[1]]
        if resize_again:
            target = out[i] if threshold is None else scratch
            up = cv2.resize(up, (width, height), dst=target, interpolation=cv2.INTER_LINEAR)
            if threshold is None:
                continue
        if threshold is None:
            out[i] = up
        else:
            np.greater(up, threshold, out=out[i])
    return out
