"""The models folder: import (known by checksum, custom by architecture), listing states,
verification, the index, and downloads recorded through the store."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from samdesk.engine import registry, store
from samdesk.engine.registry import ModelInfo
from samdesk.engine.store import ModelStore
from samdesk.errors import CheckpointError, DownloadError, ModelError
from samdesk.model.testing import save_random_checkpoint
from tests.support.http_server import FileServer


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two different small SAM-format networks, both files named finetune.pth."""
    folder = tmp_path_factory.mktemp("ckpt")
    (folder / "other").mkdir()
    return {
        "a": save_random_checkpoint(folder / "finetune.pth", "small", seed=1),
        "b": save_random_checkpoint(folder / "other" / "finetune.pth", "small", seed=2),
    }


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fake_entry(path: Path, name: str = "tiny", md5_only: bool = False) -> ModelInfo:
    data = path.read_bytes()
    return ModelInfo(
        name=name,
        display_name="Tiny test model",
        file_name=f"{name}_official.pth",
        url=f"https://example.invalid/{name}_official.pth",
        size=len(data),
        sha256=None if md5_only else hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
        arch="custom",
        preprocessing="medsam",
        license="test",
        note="a small random network",
    )


@pytest.fixture
def known(checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelInfo]:
    """Registry = the real entries plus one whose checksum is checkpoint "a"."""
    entry = _fake_entry(checkpoints["a"])
    monkeypatch.setattr(registry, "MODELS", {**registry.MODELS, entry.name: entry})
    yield entry


def test_known_file_is_recognised_by_checksum_not_name(
    tmp_path: Path, checkpoints: dict[str, Path], known: ModelInfo
) -> None:
    models = ModelStore(tmp_path / "models")
    rec = models.import_model(checkpoints["a"])  # its name is finetune.pth, not the official one
    assert rec.name == "tiny" and rec.kind == "registry" and rec.state == store.VERIFIED
    installed = tmp_path / "models" / known.file_name
    assert installed.read_bytes() == checkpoints["a"].read_bytes()
    assert checkpoints["a"].exists()  # never moved
    assert installed.stat().st_ino == checkpoints["a"].stat().st_ino  # hard link, same disk
    row = models.status("tiny")
    assert row.state == store.VERIFIED and row.path == installed and row.installed
    assert models.resolve("tiny") == (installed, "custom", "medsam")


def test_md5_alone_recognises_a_known_file(
    tmp_path: Path, checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = _fake_entry(checkpoints["a"], name="zenodo", md5_only=True)
    monkeypatch.setattr(registry, "MODELS", {entry.name: entry})
    rec = ModelStore(tmp_path).import_model(checkpoints["a"])
    assert rec.name == "zenodo" and rec.state == store.VERIFIED


def test_custom_model_is_accepted_by_architecture(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    models = ModelStore(tmp_path)
    rec = models.import_model(checkpoints["a"])
    assert (rec.name, rec.kind, rec.arch, rec.state) == (
        "finetune",
        "custom",
        "custom",
        "unverified",
    )
    assert models.import_model(checkpoints["a"]).name == "finetune"  # same file, same name
    other = models.import_model(checkpoints["b"])  # same stem, other weights
    assert other.name == "finetune-2" and other.sha256 == _sha(checkpoints["b"])
    named = models.import_model(checkpoints["b"], name="My Liver Model", preprocessing="medsam")
    assert named.name == "my-liver-model" and named.preprocessing == "medsam"
    customs = [r for r in models.list_models() if r.kind == "custom"]
    assert {r.name for r in customs} == {"finetune", "finetune-2", "my-liver-model"}
    assert all(r.state == store.UNVERIFIED for r in customs)
    assert models.resolve("finetune")[0] == tmp_path / "finetune.pth"


def test_custom_name_never_shadows_a_registry_name(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    rec = ModelStore(tmp_path).import_model(checkpoints["a"], name="vit_b")
    assert rec.name == "vit_b-custom"


def test_copy_when_hard_link_is_impossible(
    tmp_path: Path, checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(store.os, "link", cross_device)
    rec = ModelStore(tmp_path).import_model(checkpoints["a"])
    copy = tmp_path / rec.file
    assert copy.read_bytes() == checkpoints["a"].read_bytes()
    assert copy.stat().st_ino != checkpoints["a"].stat().st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["finetune.pth", "index.json"]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"this is a text file, not weights\n" * 10, "not a PyTorch checkpoint"),
    ],
)
def test_unusable_file_is_refused_and_nothing_is_left(
    tmp_path: Path, content: bytes, words: str
) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(content)
    models = ModelStore(tmp_path / "models")
    with pytest.raises(CheckpointError, match=words):
        models.import_model(bad)
    assert not (tmp_path / "models").exists() or list((tmp_path / "models").iterdir()) == []
    with pytest.raises(CheckpointError, match="no such file"):
        models.import_model(tmp_path / "missing.pth")


def test_states_changed_damaged_and_verified(
    tmp_path: Path, checkpoints: dict[str, Path], known: ModelInfo
) -> None:
    models = ModelStore(tmp_path)
    assert models.status("tiny").state == store.NOT_INSTALLED
    with pytest.raises(ModelError, match="samdesk models download tiny"):
        models.resolve("tiny")
    # copied in by hand: found, not yet checked
    installed = tmp_path / known.file_name
    installed.write_bytes(checkpoints["a"].read_bytes())
    assert models.status("tiny").state == store.NOT_CHECKED
    assert [r.state for r in models.verify("tiny")] == [store.VERIFIED]
    assert models.status("tiny").state == store.VERIFIED
    # the file changes afterwards: listed as changed without re-hashing, damaged after verify
    with open(installed, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    os.utime(installed, ns=(1, 1))
    assert models.status("tiny").state == store.CHANGED
    assert [r.state for r in models.verify()][-1] == store.DAMAGED
    with pytest.raises(ModelError, match="damaged"):
        models.resolve("tiny")


def test_resolve_checks_a_registry_file_that_is_unchecked_or_changed(
    tmp_path: Path, checkpoints: dict[str, Path], known: ModelInfo
) -> None:
    """A file copied in by hand, or replaced after its check, is hashed before it is used."""
    models = ModelStore(tmp_path)
    installed = tmp_path / known.file_name
    installed.write_bytes(checkpoints["a"].read_bytes())
    assert models.status("tiny").state == store.NOT_CHECKED
    assert models.resolve("tiny")[0] == installed  # hashed on first use ...
    assert models.status("tiny").state == store.VERIFIED  # ... and recorded
    installed.write_bytes(checkpoints["b"].read_bytes())  # replaced by another network
    os.utime(installed, ns=(1, 1))
    with pytest.raises(ModelError, match="damaged"):
        models.resolve("tiny")
    assert models.status("tiny").state == store.DAMAGED


def test_resolving_a_changed_custom_model_warns(
    tmp_path: Path, checkpoints: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    models = ModelStore(tmp_path)
    rec = models.import_model(checkpoints["a"], name="mine")
    os.unlink(tmp_path / rec.file)
    (tmp_path / rec.file).write_bytes(checkpoints["b"].read_bytes())
    os.utime(tmp_path / rec.file, ns=(1, 1))
    with caplog.at_level(logging.WARNING, logger="samdesk"):
        path, _, _ = models.resolve("mine")
    assert path == tmp_path / rec.file
    assert "changed since it was imported" in caplog.text


def test_custom_file_changed_or_missing(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    models = ModelStore(tmp_path)
    rec = models.import_model(checkpoints["a"], name="mine")
    os.unlink(tmp_path / rec.file)  # break the hard link before changing the copy
    (tmp_path / rec.file).write_bytes(checkpoints["b"].read_bytes())
    assert [r.state for r in models.verify("mine")] == [store.CHANGED]
    assert models.status("mine").state == store.CHANGED  # the import-time hash stays the reference
    (tmp_path / rec.file).unlink()
    assert models.status("mine").state == store.MISSING
    with pytest.raises(ModelError, match="import it"):
        models.resolve("mine")


def test_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="models list"):
        ModelStore(tmp_path).status("nothing")


def test_unreadable_index_is_moved_aside(
    tmp_path: Path, checkpoints: dict[str, Path], known: ModelInfo, caplog: pytest.LogCaptureFixture
) -> None:
    models = ModelStore(tmp_path)
    models.import_model(checkpoints["a"])
    models.index_path.write_text("{ not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger=store.__name__):
        row = models.status("tiny")
    assert row.state == store.NOT_CHECKED  # the file is still found by its official name
    assert "moved" in caplog.text
    assert [p.name for p in tmp_path.glob("index.json.unreadable-*")]
    models.verify("tiny")
    assert json.loads(models.index_path.read_text())["models"]["tiny"]["state"] == "verified"


def test_failed_index_write_keeps_the_old_index(
    tmp_path: Path, checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    models = ModelStore(tmp_path)
    models.import_model(checkpoints["a"], name="first")
    before = models.index_path.read_bytes()

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", no_space)
    with pytest.raises(ModelError, match="No space left"):
        models.import_model(checkpoints["b"], name="second")
    assert models.index_path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.pth", "index.json"]


@pytest.mark.network
def test_download_through_a_mirror_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(300_000)
    entry = ModelInfo(
        "blob", "Blob", "blob.pth", "https://example.invalid/blob.pth", len(data),
        hashlib.sha256(data).hexdigest(), None, "vit_b", "sam", "test", "bytes",
    )  # fmt: skip
    monkeypatch.setattr(registry, "MODELS", {entry.name: entry})
    for var in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    with FileServer({"/mirror/blob.pth": data}) as server:
        monkeypatch.setenv(registry.BASE_URL_ENV, server.url("/mirror"))
        server.cut_after, server.cut_requests = 100_000, 1
        models = ModelStore(tmp_path)
        with pytest.raises(DownloadError, match="incomplete"):
            models.download("blob")
        assert models.partial_download("blob") == 100_000
        rec = models.download("blob")
        assert server.range_headers() == ["bytes=100000-"]
    assert rec.state == store.VERIFIED and rec.source.endswith("/mirror/blob.pth")
    assert (tmp_path / "blob.pth").read_bytes() == data
    assert models.status("blob").state == store.VERIFIED


def test_importing_a_pickle_that_runs_code_never_runs_it(tmp_path: Path) -> None:
    """Fault 17 through the store: 'samdesk models import evil.pth' refuses the file, the code
    in it never runs, and nothing is left in the models folder."""
    import pickle

    import torch

    marker = tmp_path / "pwned.txt"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (open, (str(marker), "w"))

    zipped = tmp_path / "evil.pth"
    torch.save({"image_encoder.x": Evil()}, zipped)
    raw = tmp_path / "evil_raw.pth"
    raw.write_bytes(pickle.dumps(Evil(), protocol=2))
    models = ModelStore(tmp_path / "models")
    for path in (zipped, raw):
        with pytest.raises(CheckpointError):
            models.import_model(path)
    assert not marker.exists()
    assert not (tmp_path / "models").exists() or list((tmp_path / "models").iterdir()) == []


def test_a_folder_is_not_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    with pytest.raises(CheckpointError, match="this is a folder"):
        ModelStore(tmp_path / "models").import_model(tmp_path / "weights")
    with pytest.raises(CheckpointError, match="no such file"):  # not an OSError (ENAMETOOLONG)
        ModelStore(tmp_path / "models").import_model(tmp_path / ("w" * 300 + ".pth"))


def test_unreadable_file_while_verifying_is_a_model_error(
    tmp_path: Path, checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    models = ModelStore(tmp_path / "models")
    models.import_model(checkpoints["a"])

    def denied(path: Path, *, md5: bool = False) -> tuple[str, str | None]:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(store, "hash_file", denied)
    with pytest.raises(ModelError, match="cannot be read \\(Permission denied\\)"):
        models.verify()
