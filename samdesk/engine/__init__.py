"""Inference engine: predictor, classic backend, caches, model registry, downloads, jobs (no Qt).

The names scripts use are available here, imported on first use so that ``samdesk.engine``
itself stays cheap (the CLI's argument parser reads :mod:`samdesk.engine.options` without
importing torch)::

    from samdesk.engine import Predictor
    predictor = Predictor.from_checkpoint("sam_vit_b_01ec64.pth")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from samdesk.engine.classic import ClassicBackend
    from samdesk.engine.embedding import Embedding
    from samdesk.engine.jobs import CancelToken
    from samdesk.engine.loading import load_backend
    from samdesk.engine.predictor import Predictor

_LAZY = {
    "Predictor": "samdesk.engine.predictor",
    "ClassicBackend": "samdesk.engine.classic",
    "Embedding": "samdesk.engine.embedding",
    "CancelToken": "samdesk.engine.jobs",
    "load_backend": "samdesk.engine.loading",
}

__all__ = ["CancelToken", "ClassicBackend", "Embedding", "Predictor", "load_backend"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
