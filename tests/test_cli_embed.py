"""``samdesk embed`` stops when the cache folder cannot keep what it computes (before this fix it
encoded every image, for minutes each with a large model, and then listed them all as failed)."""

from __future__ import annotations

import errno
from pathlib import Path

import cv2
import numpy as np
import pytest

from samdesk.cli import main
from samdesk.engine import cache_disk
from samdesk.engine.predictor import Predictor
from samdesk.model.testing import save_random_checkpoint


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "net.pth", "small", seed=5)


@pytest.fixture
def images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SAMDESK_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "images"
    folder.mkdir()
    for n in range(3):
        cv2.imwrite(str(folder / f"im{n}.png"), np.full((30, 40, 3), 40 * n, np.uint8))
    return folder


@pytest.fixture
def encodings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of the encoder."""
    calls: list[int] = []
    real = Predictor.compute_embedding

    def counted(self, image, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(self, image, **kwargs)

    monkeypatch.setattr(Predictor, "compute_embedding", counted)
    return calls


def test_unwritable_cache_folder_stops_before_any_encoding(
    tmp_path: Path,
    images: Path,
    small: Path,
    encodings: list[int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("SAMDESK_CACHE_DIR", str(blocker))
    assert main(["embed", str(images), "--model", str(small), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("samdesk: error: the embedding cache folder") and "SAMDESK_CACHE_DIR" in err
    )
    assert len(err.splitlines()) == 1, err
    assert encodings == []


def test_cache_folder_filling_up_stops_the_run(
    tmp_path: Path,
    images: Path,
    small: Path,
    encodings: list[int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SAMDESK_CACHE_DIR", str(tmp_path / "cache"))
    real_fsync = cache_disk.os.fsync

    def full_after_probe(fd: int) -> None:
        if encodings:  # the up-front check passed; the disk fills with the first embedding
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(cache_disk.os, "fsync", full_after_probe)
    assert main(["embed", str(images), "--model", str(small), "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    assert "stopped after 0 image(s)" in captured.err and "run the command again" in captured.err
    assert encodings == [1]  # the other two images were not encoded for nothing
    assert not list((tmp_path / "cache" / "embeddings").iterdir())


def test_a_name_too_long_for_the_file_system_is_listed_not_a_traceback(
    tmp_path: Path, small: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SAMDESK_CACHE_DIR", str(tmp_path / "cache"))
    too_long = str(tmp_path / ("i" * 300 + ".png"))
    assert main(["embed", too_long, "--model", str(small), "--device", "cpu"]) == 1
    assert "File name too long" in capsys.readouterr().err
