"""A scripted stand-in for samdesk.engine.worker.InferenceWorker (same API and events).

Nothing happens on its own: the test decides when an image is "decoded", when the embedding is
"ready" and what a prompt returns — which is what makes stale and superseded results testable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from samdesk.engine.worker import (
    BackendFailed,
    BackendReady,
    EmbeddingReady,
    EncodeProgress,
    ImageFailed,
    ImageLoaded,
    ImageRef,
    PrefetchUpdate,
    Prompt,
    PromptResult,
)
from samdesk.imaging import load_image
from samdesk.ui.masks import mask_to_low_res_logits


class FakeWorker:
    def __init__(self, on_event: Callable[[object], None]) -> None:
        self.on_event = on_event
        self.started = False
        self.closed = False
        self.opened: list[tuple[ImageRef, Path]] = []
        self.prompts: list[tuple[ImageRef, int, Prompt]] = []
        self.withdrawn: list[ImageRef] = []  # cancel_prompts calls
        self.prefetches: list[list[tuple[str, Path]]] = []
        self.loaders: list[Callable] = []

    # --- the worker API ---------------------------------------------------------------------

    def start(self) -> None:
        self.started = True

    def open_image(self, ref: ImageRef, path: Path, *, max_pixels: int | None = None) -> None:
        self.opened.append((ref, Path(path)))

    def submit_prompt(self, ref: ImageRef, seq: int, prompt: Prompt) -> None:
        self.prompts.append((ref, seq, prompt))

    def cancel_prompts(self, ref: ImageRef) -> None:
        self.withdrawn.append(ref)

    def prefetch(self, items) -> None:
        self.prefetches.append([(i, Path(p)) for i, p in items])

    def set_backend(self, load: Callable) -> None:
        self.loaders.append(load)

    def close(self, timeout: float = 2.0) -> bool:
        self.closed = True
        return True

    # --- scripting --------------------------------------------------------------------------

    @property
    def last_ref(self) -> ImageRef:
        return self.opened[-1][0]

    def deliver_image(self, index: int = -1, *, ready: bool = True) -> ImageRef:
        ref, path = self.opened[index]
        self.on_event(ImageLoaded(ref, load_image(path)))
        self.on_event(EncodeProgress(ref, 1, 2))
        if ready:
            self.on_event(EmbeddingReady(ref, 0.25, "computed"))
        return ref

    def fail_image(self, message: str, index: int = -1) -> None:
        self.on_event(ImageFailed(self.opened[index][0], message))

    def answer(
        self,
        masks: np.ndarray,
        scores: list[float] | None = None,
        *,
        ref: ImageRef | None = None,
        seq: int | None = None,
    ) -> None:
        """Deliver masks (C, H, W) bool for the last prompt (or the given ref / seq)."""
        last_ref, last_seq, _ = self.prompts[-1]
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim == 2:
            masks = masks[None]
        logits = np.concatenate([mask_to_low_res_logits(m) for m in masks])
        values = np.asarray(scores if scores is not None else [0.9] * len(masks), np.float32)
        self.on_event(
            PromptResult(
                ref or last_ref, last_seq if seq is None else seq, masks, values, logits, 0.005
            )
        )

    def backend_ready(self, name: str = "SAM test", device: str = "cpu") -> None:
        self.on_event(BackendReady(name, device, "fp32"))

    def backend_failed(self, message: str) -> None:
        self.on_event(BackendFailed(message))

    def prefetched(self, image_id: str, state: str = "done") -> None:
        self.on_event(PrefetchUpdate(image_id, state, 0.5))
