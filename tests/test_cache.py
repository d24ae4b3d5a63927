"""The in-memory LRU and the memory+disk cache: byte bound, LRU order, threads, get_or_compute."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from samdesk.engine.cache import EmbeddingCache, MemoryCache
from samdesk.engine.cache_disk import DiskCache
from samdesk.engine.classic import ClassicBackend
from samdesk.engine.embedding import Embedding
from samdesk.errors import InputError

KEY = "sam:" + "2" * 64 + ":bf16:sam-1"


def _emb(n_floats: int, key: str = KEY, value: float = 0.0) -> Embedding:
    return Embedding(np.full((n_floats,), value, np.float32), (1, 1), (1, 1), key)


class _Backend:
    name = "fake"
    device = "cpu"

    def __init__(self, key: str | None) -> None:
        self.cache_key = key


def test_memory_cache_is_bounded_in_bytes_and_lru() -> None:
    cache = MemoryCache(max_bytes=3500)  # room for 3 embeddings of 1000 bytes
    for i in range(3):
        assert cache.put(f"h{i}", _emb(250))
    assert cache.get("h0", KEY) is not None  # h0 is now the most recent
    cache.put("h3", _emb(250))
    assert cache.get("h1", KEY) is None  # least recently used went first
    assert {h for h in ("h0", "h2", "h3") if cache.get(h, KEY) is not None} == {"h0", "h2", "h3"}
    assert cache.nbytes == 3000 and len(cache) == 3
    assert not cache.put("huge", _emb(2000))  # larger than the whole budget: not stored
    assert len(cache) == 3
    cache.put("h0", _emb(375))  # replacing an entry accounts for the old size
    assert cache.nbytes == 3500 and len(cache) == 3
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0
    with pytest.raises(InputError):
        MemoryCache(-1)


def test_memory_cache_keys_include_the_model() -> None:
    cache = MemoryCache()
    cache.put("h", _emb(4, key="model-a", value=1.0))
    cache.put("h", _emb(4, key="model-b", value=2.0))
    a, b = cache.get("h", "model-a"), cache.get("h", "model-b")
    assert a is not None and b is not None
    assert a.features[0] == 1.0 and b.features[0] == 2.0


def test_memory_cache_is_thread_safe() -> None:
    cache = MemoryCache(max_bytes=50 * 400)
    errors: list[BaseException] = []

    def hammer(worker: int) -> None:
        try:
            for i in range(400):
                cache.put(f"{worker}-{i}", _emb(100))
                cache.get(f"{worker}-{i // 2}", KEY)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert cache.nbytes <= cache.max_bytes
    assert (
        cache.nbytes
        == sum(1 for w in range(4) for i in range(400) if cache.get(f"{w}-{i}", KEY) is not None)
        * 400
    )


def test_get_or_compute_memory_then_disk_then_compute(tmp_path: Path) -> None:
    calls: list[int] = []

    def compute() -> Embedding:
        calls.append(1)
        return _emb(10, value=7.0)

    backend = _Backend(KEY)
    first = EmbeddingCache(MemoryCache(), DiskCache(tmp_path))
    emb, source = first.get_or_compute("ab" * 32, backend, compute)
    assert source == "computed" and calls == [1]
    _, source = first.get_or_compute("ab" * 32, backend, compute)
    assert source == "memory" and calls == [1]
    # a new session (fresh memory) finds it on disk and never reruns the encoder
    second = EmbeddingCache(MemoryCache(), DiskCache(tmp_path))
    emb2, source = second.get_or_compute("ab" * 32, backend, compute)
    assert source == "disk" and calls == [1]
    np.testing.assert_array_equal(emb2.features, emb.features)
    _, source = second.get_or_compute("ab" * 32, backend, compute)
    assert source == "memory"  # promoted from disk


def test_uncacheable_backend_is_never_stored(tmp_path: Path) -> None:
    cache = EmbeddingCache(MemoryCache(), DiskCache(tmp_path))
    classic = ClassicBackend()
    image = np.zeros((8, 8, 3), np.uint8)
    for _ in range(2):
        _, source = cache.get_or_compute(
            "cd" * 32, classic, lambda: classic.compute_embedding(image)
        )
        assert source == "computed"
    assert len(cache.memory or []) == 0 and not any(tmp_path.iterdir())


def test_embedding_from_another_model_is_refused(tmp_path: Path) -> None:
    cache = EmbeddingCache(MemoryCache(), None)
    with pytest.raises(InputError, match="model key"):
        cache.get_or_compute("ef" * 32, _Backend(KEY), lambda: _emb(3, key="other"))
    assert cache.get("ef" * 32, KEY) is None and cache.get("ef" * 32, "other") is None


def test_default_cache_uses_the_user_cache_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMDESK_CACHE_DIR", str(tmp_path))
    cache = EmbeddingCache.default()
    cache.put("12" * 32, _emb(3))
    assert cache.disk is not None and cache.disk.folder == tmp_path / "embeddings"
    assert len(list((tmp_path / "embeddings").iterdir())) == 1
