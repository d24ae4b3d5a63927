"""``samdesk models list | download | import | verify`` in-process, with downloads from a server on
127.0.0.1 reached through SAMDESK_MODEL_BASE_URL / --url."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from samdesk.cli import main
from samdesk.cli.commands import embed as embed_cmd
from samdesk.engine import registry
from samdesk.engine.registry import ModelInfo
from samdesk.model.testing import save_random_checkpoint
from tests.support.http_server import FileServer

DATA = os.urandom(2_000_000)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tuned.pth", "small", seed=5)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMDESK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SAMDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(registry.BASE_URL_ENV, raising=False)
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def blob(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelInfo]:
    """A registry with one extra downloadable entry whose bytes the test server holds."""
    entry = ModelInfo(
        "blob", "Blob model", "blob.pth", "https://example.invalid/blob.pth", len(DATA),
        hashlib.sha256(DATA).hexdigest(), None, "vit_b", "sam", "test", "test bytes",
    )  # fmt: skip
    monkeypatch.setattr(registry, "MODELS", {**registry.MODELS, "blob": entry})
    yield entry


def test_list_shows_every_known_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "data" / "models") in out
    for name in registry.names():
        assert name in out
    assert out.count("not installed") == len(registry.names())
    assert main(["models"]) == 0  # list is the default action
    assert capsys.readouterr().out == out


def test_import_custom_then_list_and_verify(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "import", str(small), "--preprocessing", "medsam"]) == 0
    out = capsys.readouterr().out
    assert "imported tuned (custom model" in out and "preprocessing medsam" in out
    assert small.exists()  # the user's file stays
    assert main(["models", "list"]) == 0
    assert "tuned (custom)" in capsys.readouterr().out
    assert main(["models", "verify", "tuned"]) == 0
    assert "unverified" in capsys.readouterr().out
    installed = tmp_path / "data" / "models" / "tuned.pth"
    os.unlink(installed)
    installed.write_bytes(b"x" * 100)
    assert main(["models", "verify"]) == 1
    captured = capsys.readouterr()
    assert "changed" in captured.out and "damaged or changed: tuned" in captured.err


def test_import_refuses_a_non_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_text("not weights")
    assert main(["models", "import", str(junk)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("samdesk: error: ") and "not a PyTorch checkpoint" in err
    assert not list((tmp_path / "data" / "models").glob("*.pth"))


@pytest.mark.network
def test_download_from_mirror_with_progress(
    blob: ModelInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with FileServer({"/mirror/blob.pth": DATA}) as server:
        monkeypatch.setenv(registry.BASE_URL_ENV, server.url("/mirror/"))
        assert main(["models", "download", "blob"]) == 0
    captured = capsys.readouterr()
    assert "installed Blob model (checksum verified)" in captured.out
    assert "100%" in captured.err and server.url("/mirror/blob.pth") in captured.err
    assert (tmp_path / "data" / "models" / "blob.pth").read_bytes() == DATA
    assert main(["models", "verify", "blob"]) == 0
    assert "verified" in capsys.readouterr().out


@pytest.mark.network
def test_ctrl_c_keeps_a_part_that_the_next_run_resumes(
    blob: ModelInfo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    calls = {"n": 0}
    real_update = embed_cmd.ProgressLine.update

    def interrupt_on_second_update(self: embed_cmd.ProgressLine, text: str) -> None:
        calls["n"] += 1  # the first update is at 0 bytes, the second after one 1 MiB chunk
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real_update(self, text)

    with FileServer({"/x/blob.pth": DATA}) as server:
        url = server.url("/x/blob.pth")
        monkeypatch.setattr(embed_cmd.ProgressLine, "update", interrupt_on_second_update)
        assert main(["models", "download", "blob", "--url", url]) == 130
        err = capsys.readouterr().err
        assert "interrupted" in err and "again to resume" in err
        part = tmp_path / "data" / "models" / "blob.pth.part"
        kept = part.stat().st_size
        assert 0 < kept < len(DATA)
        assert main(["models", "list"]) == 0
        assert "partial download" in capsys.readouterr().out

        monkeypatch.setattr(embed_cmd.ProgressLine, "update", real_update)
        assert main(["models", "download", "blob", "--url", url]) == 0
        assert server.range_headers() == [f"bytes={kept}-"]
    assert (tmp_path / "data" / "models" / "blob.pth").read_bytes() == DATA
    assert not part.exists()


@pytest.mark.network
def test_download_failures_are_one_line(
    blob: ModelInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FileServer({"/blob.pth": DATA[:-1] + b"?"}) as server:
        assert main(["models", "download", "blob", "--url", server.url("/missing.pth")]) == 1
        assert "HTTP 404" in capsys.readouterr().err
        assert main(["models", "download", "blob", "--url", server.url("/blob.pth")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert [ln for ln in err if "error" in ln] == err[-1:] and "Traceback" not in err
        assert err[-1].startswith("samdesk: error: ") and "checksum mismatch" in err[-1]
    assert not (tmp_path / "data" / "models" / "blob.pth.part").exists()
    assert main(["models", "download", "nope"]) == 1
    assert "known models are" in capsys.readouterr().err


def test_a_library_warning_reaches_the_user_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged model index is moved aside; the command says so in one line on stderr."""
    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    (models / "index.json").write_text("{ not json", encoding="utf-8")
    assert main(["models", "list"]) == 0
    err = capsys.readouterr().err
    assert err.count("samdesk: warning: the model index") == 1
    assert "moved to index.json.unreadable-" in err
    assert list(models.glob("index.json.unreadable-*"))
    assert main(["models", "list"]) == 0  # a second command in the same process: no repeat
    assert "warning" not in capsys.readouterr().err
