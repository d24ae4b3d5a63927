"""The interface every segmentation backend (SAM predictor, Classic GrabCut) provides.

It mirrors segment-anything's ``SamPredictor`` (``set_image`` / ``predict``) and splits
``set_image`` into ``compute_embedding`` + ``set_embedding`` so that embeddings can be cached,
prefetched in the background and restored without rerunning the encoder.

Coordinate frame everywhere: x, y in original-image pixels (x to the right, y down).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from samdesk.engine.embedding import Embedding
from samdesk.engine.jobs import CancelToken

#: Called between encoder steps with (steps_done, steps_total). It may block (to yield the CPU
#: to interactive work) or raise ``CancelledError``.
StepHook = Callable[[int, int], None]


@runtime_checkable
class Backend(Protocol):
    #: Human-readable name shown in the app, e.g. "SAM ViT-B" or "Classic (GrabCut, no model)".
    name: str
    #: Key of the weights + precision + preprocessing, for embedding caches; None = do not cache.
    cache_key: str | None
    #: Device the backend runs on: "cpu" or "cuda[:N]".
    device: str

    def compute_embedding(
        self,
        image: np.ndarray,
        *,
        cancel: CancelToken | None = None,
        num_threads: int | None = None,
        step_hook: StepHook | None = None,
    ) -> Embedding:
        """Encode ``image`` (H, W, 3) uint8 RGB or (H, W) uint8 gray; does not change state."""
        ...

    def set_embedding(self, embedding: Embedding) -> None:
        """Make ``embedding`` the current image for ``predict``."""
        ...

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        """``set_embedding(compute_embedding(image))``, as in ``SamPredictor``."""
        ...

    def reset_image(self) -> None: ...

    @property
    def is_image_set(self) -> bool: ...

    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for the current image, exactly as ``SamPredictor.predict``.

        Args:
            point_coords: (N, 2) float, x, y in original-image pixels.
            point_labels: (N,) int, 1 = foreground, 0 = background.
            box: (4,) float, x0, y0, x1, y1 in original-image pixels.
            mask_input: (1, 256, 256) float32 low-resolution logits from a previous call.
            multimask_output: 3 candidates when True, else 1.
            return_logits: return float logits at image size instead of bool masks.

        Returns:
            masks (C, H, W) bool (float32 with ``return_logits``), scores (C,) float32 predicted
            IoU, low_res_logits (C, 256, 256) float32 — C is 3 or 1.
        """
        ...
