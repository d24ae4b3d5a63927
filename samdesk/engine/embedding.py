"""The image embedding: what a backend computes once per image and every click reuses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Embedding:
    """The result of encoding one image with one model.

    Attributes:
        features: backend-specific array. For SAM-family models the image embedding,
            shape (256, 64, 64), dtype float32. For the Classic backend the image itself,
            (H, W, 3) uint8 RGB.
        original_size: (H, W) of the image the user sees, in pixels.
        input_size: (h, w) of the resized image inside the model's 1024x1024 input (the longest
            side is 1024); equals ``original_size`` for backends that do not resize.
        model_key: identifies model weights, precision and preprocessing version; an embedding
            is only ever used with a backend whose ``cache_key`` equals it.
    """

    features: np.ndarray
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    model_key: str

    @property
    def nbytes(self) -> int:
        return int(self.features.nbytes)
