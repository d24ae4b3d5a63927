"""Embedding caches: an in-memory LRU bounded in bytes, and memory + disk together.

Keys are (image content hash, backend ``cache_key``). The cache key names the weights (checkpoint
SHA-256), the precision and the preprocessing version, so an embedding is only ever reused with
the model that made it. Backends whose ``cache_key`` is None (the Classic backend) are never
cached.

- :class:`MemoryCache`: thread-safe LRU; the worker's interactive and prefetch threads share one.
- :class:`~samdesk.engine.cache_disk.DiskCache`: files under the user cache folder (see there).
- :class:`EmbeddingCache`: memory first, then disk (a disk hit is promoted to memory), and
  :meth:`EmbeddingCache.get_or_compute` for callers that just want the embedding.

Both caches provide ``get(content_hash, model_key)`` and ``put(content_hash, embedding)``, the
interface :class:`samdesk.engine.worker.InferenceWorker` takes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from samdesk.engine.backend import Backend
from samdesk.engine.cache_disk import DiskCache
from samdesk.engine.embedding import Embedding
from samdesk.errors import InputError

#: Default memory budget: 32 SAM embeddings (4 MiB each) plus room for Classic-size images.
DEFAULT_MEMORY_BYTES = 256 * 1024**2

__all__ = ["DEFAULT_MEMORY_BYTES", "DiskCache", "EmbeddingCache", "MemoryCache"]


class MemoryCache:
    """Least-recently-used embeddings, at most ``max_bytes`` of features in total. Thread-safe.

    An embedding larger than ``max_bytes`` on its own is not stored (it would evict everything
    and then itself).
    """

    def __init__(self, max_bytes: int = DEFAULT_MEMORY_BYTES) -> None:
        if max_bytes < 0:
            raise InputError("the memory cache size must be >= 0 bytes")
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[tuple[str, str], Embedding] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, content_hash: str, model_key: str) -> Embedding | None:
        key = (content_hash, model_key)
        with self._lock:
            embedding = self._items.get(key)
            if embedding is not None:
                self._items.move_to_end(key)
            return embedding

    def put(self, content_hash: str, embedding: Embedding) -> bool:
        """Store ``embedding``; returns False if it is larger than the whole budget."""
        key = (content_hash, embedding.model_key)
        size = embedding.nbytes
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            if size > self.max_bytes:
                return False
            self._items[key] = embedding
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


class EmbeddingCache:
    """Memory in front of disk. Either may be None (e.g. ``disk=None`` for memory only)."""

    def __init__(self, memory: MemoryCache | None = None, disk: DiskCache | None = None) -> None:
        self.memory = memory
        self.disk = disk

    @classmethod
    def default(cls) -> EmbeddingCache:
        """A memory cache of the default size in front of the user's disk cache folder."""
        return cls(MemoryCache(), DiskCache())

    @property
    def warning(self) -> str | None:
        """Why the disk cache is not being written, if it is not (show it once to the user)."""
        return self.disk.warning if self.disk is not None else None

    def get(self, content_hash: str, model_key: str) -> Embedding | None:
        return self.lookup(content_hash, model_key)[0]

    def lookup(self, content_hash: str, model_key: str) -> tuple[Embedding | None, str]:
        """(embedding, "memory" | "disk") on a hit, (None, "") on a miss."""
        if self.memory is not None:
            hit = self.memory.get(content_hash, model_key)
            if hit is not None:
                return hit, "memory"
        if self.disk is not None:
            hit = self.disk.get(content_hash, model_key)
            if hit is not None:
                if self.memory is not None:
                    self.memory.put(content_hash, hit)
                return hit, "disk"
        return None, ""

    def put(self, content_hash: str, embedding: Embedding) -> None:
        if self.memory is not None:
            self.memory.put(content_hash, embedding)
        if self.disk is not None:
            self.disk.put(content_hash, embedding)

    def get_or_compute(
        self, content_hash: str, backend: Backend, compute: Callable[[], Embedding]
    ) -> tuple[Embedding, str]:
        """The embedding of the image with ``content_hash`` for ``backend``.

        Looks in memory, then on disk; otherwise calls ``compute()`` (typically
        ``lambda: backend.compute_embedding(image)``) and stores the result. Backends with
        ``cache_key`` None are computed every time and never stored.

        Returns:
            (embedding, source) with source "memory", "disk" or "computed".
        """
        key = backend.cache_key
        if key is None:
            return compute(), "computed"
        hit, source = self.lookup(content_hash, key)
        if hit is not None:
            return hit, source
        embedding = compute()
        if embedding.model_key != key:
            raise InputError(
                f"the computed embedding belongs to model key {embedding.model_key!r}, not the "
                f"backend's {key!r}; compute it with the same backend"
            )
        self.put(content_hash, embedding)
        return embedding, "computed"
