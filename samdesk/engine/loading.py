"""One entry point from a user's model choice to a ready :class:`~samdesk.engine.backend.Backend`.

``load_backend(name_or_path)`` accepts:

- ``"classic"``: the Classic GrabCut backend (no weights);
- a registry name (``"vit_b"``, ``"vit_l"``, ``"vit_h"``, ``"mobile_sam"``, ``"medsam"``) or the
  name of an imported custom model: the installed file (see :mod:`samdesk.engine.store`), with
  its architecture checked against the file and its preprocessing;
- a path to a checkpoint file: that file (preprocessing "sam", or the registry entry's when the
  file has an official name such as ``medsam_vit_b.pth``).

Unknown names, files that are not SAM checkpoints, models for another architecture, devices that
are not available: typed errors (ModelError, CheckpointError, DeviceError) with a message that
says what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from samdesk.engine import registry
from samdesk.engine.backend import Backend
from samdesk.engine.classic import ClassicBackend
from samdesk.engine.paths import cache_dir
from samdesk.engine.store import ModelStore
from samdesk.errors import CheckpointError, ModelError

CLASSIC = "classic"
_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")


def looks_like_path(name_or_path: str) -> bool:
    """Whether ``name_or_path`` names a file rather than a model (a separator, a checkpoint
    suffix, or an existing file)."""
    text = str(name_or_path)
    return (
        os.sep in text
        or "/" in text
        or text.lower().endswith(_CHECKPOINT_SUFFIXES)
        or os.path.isfile(Path(text).expanduser())  # os.path: no OSError for odd names
    )


def load_backend(
    name_or_path: str | os.PathLike[str],
    device: str | None = None,
    precision: str = "auto",
    *,
    preprocessing: str | None = None,
    store: ModelStore | None = None,
) -> Backend:
    """The backend for a user's model choice (see the module docstring).

    Args:
        device: "cpu", "cuda", "cuda:N" or None (CUDA when available, else CPU). Ignored by the
            Classic backend, which always runs on the CPU.
        precision: "auto", "fp32", "bf16" or "int8" (see samdesk.engine.precision).
        preprocessing: override "sam" / "medsam" (default: the model's own).
        store: where installed models are looked up (default: the user's models folder).
    """
    text = os.fspath(name_or_path).strip()
    if not text:
        raise ModelError(
            "no model given: name one (e.g. vit_b), give a checkpoint path, or 'classic'"
        )
    if text.lower() == CLASSIC:
        return ClassicBackend()

    from samdesk.engine.predictor import Predictor

    dev = None if device in (None, "auto") else device
    if looks_like_path(text) and not _is_model_name(text, store):
        path = Path(text).expanduser()
        if os.path.isdir(path):
            raise CheckpointError(
                f"{path}: this is a folder; give the checkpoint file in it (.pth / .pt), a model "
                "name, or 'classic'."
            )
        known = registry.by_file_name(path.name)
        mode = preprocessing or (known.preprocessing if known is not None else "sam")
        return Predictor.from_checkpoint(
            path, device=dev, precision=precision, preprocessing=mode, hash_cache_dir=cache_dir()
        )

    models = store or ModelStore()
    name = text.lower()
    if name not in registry.MODELS and not _is_custom(name, models):
        registry.get(name)  # raises ModelError listing the known names
    path, arch, default_mode = models.resolve(name)
    predictor = Predictor.from_checkpoint(
        path,
        device=dev,
        precision=precision,
        preprocessing=preprocessing or default_mode,
        expected_arch=None if arch == "custom" else arch,
        hash_cache_dir=cache_dir(),
    )
    info = registry.MODELS.get(name)
    predictor.name = info.display_name if info is not None else f"{name} (custom)"
    return predictor


def _is_custom(name: str, store: ModelStore) -> bool:
    return any(row.name == name and row.kind == "custom" for row in store.list_models())


def _is_model_name(text: str, store: ModelStore | None) -> bool:
    """A registry or custom name that happens to look like a file name (e.g. "my.v2")."""
    if text.lower() in registry.MODELS:
        return True
    if os.path.isfile(Path(text).expanduser()):
        return False
    return _is_custom(text.lower(), store or ModelStore())
