"""The on-disk embedding cache: exact round trip, atomic writes, distrust of bad files, LRU cap,
and graceful degradation when the folder cannot be written."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from samdesk.engine import cache_disk
from samdesk.engine.cache import EmbeddingCache, MemoryCache
from samdesk.engine.cache_disk import MAGIC, DiskCache
from samdesk.engine.embedding import Embedding
from samdesk.engine.paths import cache_dir

HASH_A = "a" * 64
HASH_B = "b" * 64
KEY = "sam:" + "1" * 64 + ":fp32:sam-1"


def _embedding(seed: int = 0, key: str = KEY, shape: tuple[int, ...] = (256, 64, 64)) -> Embedding:
    rng = np.random.default_rng(seed)
    return Embedding(rng.standard_normal(shape).astype(np.float32), (480, 640), (768, 1024), key)


class _Backend:
    """Just what get_or_compute reads from a backend."""

    name = "fake"
    device = "cpu"

    def __init__(self, key: str | None) -> None:
        self.cache_key = key


def test_round_trip_is_exact(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path / "emb")
    emb = _embedding()
    assert disk.put(HASH_A, emb)
    back = disk.get(HASH_A, KEY)
    assert back is not None
    np.testing.assert_array_equal(back.features, emb.features)
    assert back.features.dtype == np.float32 and back.features.flags.writeable
    assert (back.original_size, back.input_size, back.model_key) == ((480, 640), (768, 1024), KEY)
    assert disk.get(HASH_A, KEY + "-other") is None
    assert disk.get(HASH_B, KEY) is None
    raw = disk.path_for(HASH_A, KEY).read_bytes()
    assert raw.startswith(MAGIC) and b"pickle" not in raw[:200]


def test_uint8_and_float16_round_trip(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path)
    for dtype in (np.uint8, np.float16):
        emb = Embedding(np.arange(60, dtype=dtype).reshape(3, 4, 5), (3, 4), (3, 4), f"k-{dtype}")
        disk.put(HASH_A, emb)
        back = disk.get(HASH_A, emb.model_key)
        assert back is not None and back.features.dtype == dtype
        np.testing.assert_array_equal(back.features, emb.features)


def _corrupt_cases() -> dict[str, object]:
    def wrong_magic(data: bytes) -> bytes:
        return b"NOTEMBED" + data[8:]

    def truncated(data: bytes) -> bytes:
        return data[: len(data) // 2]

    def flipped_byte(data: bytes) -> bytes:
        b = bytearray(data)
        b[-100] ^= 0xFF
        return bytes(b)

    def future_version(data: bytes) -> bytes:
        return data[:8] + (99).to_bytes(4, "little") + data[12:]

    def garbage_header(data: bytes) -> bytes:
        return data[:16] + b"{" * 20 + data[36:]

    def empty(data: bytes) -> bytes:
        return b""

    return {
        "wrong magic": wrong_magic,
        "truncated": truncated,
        "checksum mismatch": flipped_byte,
        "future version": future_version,
        "garbage header": garbage_header,
        "empty file": empty,
    }


@pytest.mark.parametrize("case", list(_corrupt_cases()))
def test_bad_file_is_discarded_and_recomputed(
    tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    disk = DiskCache(tmp_path)
    emb = _embedding()
    disk.put(HASH_A, emb)
    path = disk.path_for(HASH_A, KEY)
    path.write_bytes(_corrupt_cases()[case](path.read_bytes()))  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, logger=cache_disk.__name__):
        assert disk.get(HASH_A, KEY) is None
    assert not path.exists(), "an untrustworthy file must be deleted"
    assert any("discarding" in r.message for r in caplog.records)

    calls = []
    cache = EmbeddingCache(MemoryCache(), disk)

    def compute() -> Embedding:
        calls.append(1)
        return emb

    got, source = cache.get_or_compute(HASH_A, _Backend(KEY), compute)
    assert source == "computed" and calls == [1]
    np.testing.assert_array_equal(got.features, emb.features)
    assert disk.get(HASH_A, KEY) is not None  # rewritten, valid again


def test_foreign_file_is_not_trusted(tmp_path: Path) -> None:
    """A valid file for another image, renamed to this image's name, is refused."""
    disk = DiskCache(tmp_path)
    disk.put(HASH_B, _embedding(1))
    shutil.copy(disk.path_for(HASH_B, KEY), disk.path_for(HASH_A, KEY))
    assert disk.get(HASH_A, KEY) is None
    assert not disk.path_for(HASH_A, KEY).exists()
    assert disk.get(HASH_B, KEY) is not None


def test_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = DiskCache(tmp_path)
    disk.put(HASH_A, _embedding(0))
    before = disk.path_for(HASH_A, KEY).read_bytes()

    def fail(*args: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(cache_disk.os, "replace", fail)
    assert not disk.put(HASH_A, _embedding(1))
    assert disk.path_for(HASH_A, KEY).read_bytes() == before  # old file untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == [disk.path_for(HASH_A, KEY).name]


def test_full_disk_degrades_to_memory_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_disk.os, "fsync", no_space)
    cache = EmbeddingCache(MemoryCache(), DiskCache(tmp_path))
    with caplog.at_level(logging.WARNING, logger=cache_disk.__name__):
        for i, h in enumerate((HASH_A, HASH_B)):
            _, source = cache.get_or_compute(h, _Backend(KEY), lambda i=i: _embedding(i))
            assert source == "computed"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "No space left" in warnings[0].getMessage()
    assert cache.warning is not None and "SAMDESK_CACHE_DIR" in cache.warning
    assert list(tmp_path.iterdir()) == []  # no temp files left behind
    _, source = cache.get_or_compute(HASH_A, _Backend(KEY), lambda: pytest.fail("recomputed"))
    assert source == "memory"


def test_unwritable_folder_degrades(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    cache = EmbeddingCache(MemoryCache(), DiskCache(blocker / "emb"))
    with caplog.at_level(logging.WARNING, logger=cache_disk.__name__):
        emb, source = cache.get_or_compute(HASH_A, _Backend(KEY), _embedding)
        cache.put(HASH_B, _embedding(2))
    assert source == "computed" and emb.features.shape == (256, 64, 64)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert cache.get(HASH_B, KEY) is not None  # still served from memory


def test_size_cap_evicts_least_recently_used(tmp_path: Path) -> None:
    small = (16, 16, 16)  # 16 KiB of float32 per file
    disk = DiskCache(tmp_path, max_bytes=10**9)
    hashes = ["c" * 64, "d" * 64, "e" * 64]
    for i, h in enumerate(hashes):
        disk.put(h, _embedding(i, shape=small))
        os.utime(disk.path_for(h, KEY), (1000 + i, 1000 + i))  # c oldest, e newest
    size = disk.path_for(hashes[0], KEY).stat().st_size
    assert disk.get(hashes[0], KEY) is not None  # reading c makes it the most recent
    disk.max_bytes = int(size * 3.5)
    disk.put("f" * 64, _embedding(9, shape=small))
    left = {p.name.split(".")[0][:1] for p, _, _ in disk.entries()}
    assert left == {"c", "e", "f"}  # d was least recently used
    assert disk.total_bytes() <= disk.max_bytes


def test_stale_temp_files_are_cleaned(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path)
    stale = tmp_path / ".tmp-crashed.emb"
    fresh = tmp_path / ".tmp-writing.emb"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    old = time.time() - 2 * cache_disk.STALE_TMP_SECONDS
    os.utime(stale, (old, old))
    assert disk.entries() == []
    assert not stale.exists() and fresh.exists()


def test_bad_content_hash_is_refused(tmp_path: Path) -> None:
    from samdesk.errors import InputError

    with pytest.raises(InputError):
        DiskCache(tmp_path).path_for("../../etc/passwd", KEY)


def test_default_folder_follows_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMDESK_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    assert DiskCache().folder == tmp_path / "c" / "embeddings"
    assert cache_dir(tmp_path / "arg") == tmp_path / "arg"
