"""The embedding caches under concurrent use (the worker's interactive and prefetch threads share
them; the app and ``samdesk embed`` may share one folder), and the edges of the atomic write."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from samdesk.engine import cache_disk
from samdesk.engine.cache import EmbeddingCache, MemoryCache
from samdesk.engine.cache_disk import FORMAT_VERSION, MAGIC, DiskCache
from samdesk.engine.embedding import Embedding
from samdesk.errors import CacheError

KEY = "sam:" + "2" * 64 + ":fp32:sam-1"
HASHES = [f"{i:x}" * 64 for i in range(6)]
SHAPE = (8, 16, 16)  # 8 KiB of float32: small files, so eviction happens often


def _embedding(index: int) -> Embedding:
    """The one embedding every thread writes for HASHES[index]."""
    features = np.random.default_rng(index).standard_normal(SHAPE).astype(np.float32)
    return Embedding(features, (40, 50), (819, 1024), KEY)


def _hammer(caches: list[EmbeddingCache], rounds: int) -> list[str]:
    """Threads putting, getting and evicting the same keys; returns what went wrong."""
    problems: list[str] = []
    start = threading.Barrier(len(caches) * 2)

    def work(cache: EmbeddingCache, seed: int) -> None:
        rng = np.random.default_rng(seed)
        start.wait()
        try:
            for _ in range(rounds):
                index = int(rng.integers(len(HASHES)))
                if rng.random() < 0.5:
                    cache.put(HASHES[index], _embedding(index))
                else:
                    got = cache.get(HASHES[index], KEY)
                    if got is not None and not np.array_equal(
                        got.features, _embedding(index).features
                    ):
                        problems.append(f"{HASHES[index][:4]}: another embedding came back")
                if rng.random() < 0.1 and cache.disk is not None:
                    cache.disk.evict()
        except Exception as exc:  # what this test looks for
            problems.append(f"{type(exc).__name__}: {exc}")

    threads = [
        threading.Thread(target=work, args=(cache, 2 * n + k))
        for n, cache in enumerate(caches)
        for k in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return problems


def test_threads_share_memory_and_disk_cache(tmp_path: Path) -> None:
    size = len(cache_disk.encode_embedding(HASHES[0], _embedding(0))[1])
    disk = DiskCache(tmp_path, max_bytes=3 * size)  # room for 3 of the 6: constant eviction
    cache = EmbeddingCache(MemoryCache(max_bytes=2 * size), disk)
    assert _hammer([cache], rounds=150) == []
    assert disk.warning is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    for path, _, _ in disk.entries():  # every file left is complete and verifies
        index = next(i for i, h in enumerate(HASHES) if path.name.startswith(h))
        got = disk.get(HASHES[index], KEY)
        assert got is not None and np.array_equal(got.features, _embedding(index).features)


def test_two_caches_on_one_folder(tmp_path: Path) -> None:
    """As the app and 'samdesk embed' running at the same time: two DiskCache objects."""
    caches = [EmbeddingCache(None, DiskCache(tmp_path)) for _ in range(2)]
    assert _hammer(caches, rounds=100) == []
    assert all(cache.warning is None for cache in caches)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_a_taken_name_does_not_switch_the_cache_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Windows os.replace fails while another thread or process reads the target. That one
    file is skipped; writing must not be switched off for the whole session."""
    disk = DiskCache(tmp_path)
    real_replace = os.replace
    calls = {"n": 0}

    def busy_once(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise PermissionError(errno.EACCES, "The process cannot access the file")
        real_replace(src, dst)

    monkeypatch.setattr(cache_disk.os, "replace", busy_once)
    assert not disk.put(HASHES[0], _embedding(0))
    assert disk.warning is None
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone
    assert disk.put(HASHES[0], _embedding(0))
    assert disk.get(HASHES[0], KEY) is not None


def test_forged_shape_that_overflows_is_discarded(tmp_path: Path) -> None:
    """A header whose shape product wraps around in int64 (2**62 * 4 * 4 bytes == 0) must not
    pass as an empty payload and then crash in reshape."""
    disk = DiskCache(tmp_path)
    header = json.dumps(
        {
            "content_hash": HASHES[1],
            "model_key": KEY,
            "dtype": "float32",
            "shape": [2**62, 4],
            "original_size": [1, 1],
            "input_size": [1, 1],
            "payload_bytes": 0,
            "payload_sha256": hashlib.sha256(b"").hexdigest(),
        }
    ).encode()
    path = disk.path_for(HASHES[1], KEY)
    path.write_bytes(cache_disk._PREFIX.pack(MAGIC, FORMAT_VERSION, len(header)) + header)
    assert disk.get(HASHES[1], KEY) is None
    assert not path.exists()


def test_check_writable(tmp_path: Path) -> None:
    DiskCache(tmp_path / "new" / "emb").check_writable()
    assert (tmp_path / "new" / "emb").is_dir() and list((tmp_path / "new" / "emb").iterdir()) == []
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(CacheError, match=r"cannot be written.*SAMDESK_CACHE_DIR"):
        DiskCache(blocker / "emb").check_writable()
