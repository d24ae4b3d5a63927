"""load_backend: "classic", registry and custom names, paths, and the errors on the way."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from samdesk.engine import registry
from samdesk.engine.backend import Backend
from samdesk.engine.classic import ClassicBackend
from samdesk.engine.loading import load_backend, looks_like_path
from samdesk.engine.registry import ModelInfo
from samdesk.engine.store import ModelStore
from samdesk.errors import CheckpointError, ModelError
from samdesk.model.testing import save_random_checkpoint


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "net.pth", "small", seed=3)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMDESK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMDESK_DATA_DIR", str(tmp_path / "data"))


def _entry(path: Path, name: str, arch: str, preprocessing: str = "sam") -> ModelInfo:
    data = path.read_bytes()
    return ModelInfo(
        name, f"Test {name}", f"{name}.pth", f"https://example.invalid/{name}.pth", len(data),
        hashlib.sha256(data).hexdigest(), None, arch, preprocessing, "test", "test",
    )  # fmt: skip


def test_classic() -> None:
    backend = load_backend("Classic", device="cpu")
    assert isinstance(backend, ClassicBackend) and isinstance(backend, Backend)


def test_path_loads_a_predictor(small: Path, tmp_path: Path) -> None:
    backend = load_backend(str(small), device="cpu", precision="fp32")
    assert isinstance(backend, Backend) and backend.device == "cpu"
    backend.set_image(np.zeros((60, 80, 3), np.uint8))
    masks, scores, _ = backend.predict(np.array([[10.0, 20.0]]), np.array([1]))
    assert masks.shape == (3, 60, 80) and scores.shape == (3,)
    assert backend.cache_key is not None and backend.cache_key.startswith("sam:")
    assert list((tmp_path / "cache").glob("*.json"))  # checkpoint hash remembered there


def test_official_file_name_selects_its_preprocessing(small: Path, tmp_path: Path) -> None:
    medsam_named = tmp_path / "medsam_vit_b.pth"
    medsam_named.write_bytes(small.read_bytes())
    backend = load_backend(medsam_named, device="cpu")
    assert backend.preprocessing == "medsam"  # type: ignore[attr-defined]
    plain = load_backend(medsam_named, device="cpu", preprocessing="sam")
    assert plain.preprocessing == "sam"  # type: ignore[attr-defined]


def test_registry_name_loads_the_installed_file(
    small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = _entry(small, "tiny", "custom", "medsam")
    monkeypatch.setattr(registry, "MODELS", {**registry.MODELS, "tiny": entry})
    with pytest.raises(ModelError, match="samdesk models download tiny"):
        load_backend("tiny")
    ModelStore().import_model(small)
    backend = load_backend("tiny", device="cpu")
    assert backend.name == "Test tiny" and backend.preprocessing == "medsam"  # type: ignore[attr-defined]


def test_model_of_another_architecture_is_refused(
    small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file registered as ViT-B that holds other weights: the weights decide, with a message."""
    entry = _entry(small, "fake_vit_b", "vit_b")
    monkeypatch.setattr(registry, "MODELS", {"fake_vit_b": entry})
    ModelStore().import_model(small)
    with pytest.raises(CheckpointError, match="expected SAM ViT-B"):
        load_backend("fake_vit_b", device="cpu")


def test_custom_name(small: Path) -> None:
    ModelStore().import_model(small, name="liver.v2")
    backend = load_backend("liver.v2", device="cpu")
    assert backend.name == "liver.v2 (custom)"


def test_unknown_name_and_missing_file() -> None:
    with pytest.raises(ModelError, match="known models are vit_b"):
        load_backend("sam_huge")
    with pytest.raises(CheckpointError, match="no such file"):
        load_backend("/nowhere/model.pth")
    with pytest.raises(ModelError, match="no model given"):
        load_backend("  ")


def test_looks_like_path(small: Path) -> None:
    assert looks_like_path(str(small)) and looks_like_path("x.pth") and looks_like_path("a/b")
    assert not looks_like_path("vit_b")
