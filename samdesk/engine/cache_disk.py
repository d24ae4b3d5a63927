"""On-disk embedding cache: reopening an image never reruns the encoder.

Files live in ``<cache_dir()>/embeddings/`` (see :mod:`samdesk.engine.paths`), one per (image
content hash, backend cache key), named ``<content_hash>.<sha256(model_key)[:32]>.emb``.

File format (version 1), no pickle anywhere::

    8 bytes   magic b"SDEMBED\\n"
    4 bytes   format version, uint32 little-endian
    4 bytes   header length N, uint32 little-endian
    N bytes   header, UTF-8 JSON: content_hash, model_key, dtype ("float32", "float16" or
              "uint8"), shape, original_size, input_size, payload_bytes, payload_sha256
    payload   the features array, C order, little-endian

A file is trusted only if the magic, version, both keys, dtype, shape, length and SHA-256 all
match; otherwise (corrupt, truncated, foreign, written by a future version) it is deleted and the
caller recomputes. Writes go to a temporary file in the same folder, are fsynced and then
renamed over the target (``os.replace``), so a crash never leaves a half-written cache file under
a real name.

The folder is capped in bytes (default 4 GiB); after each write the least recently used files
(by modification time, which a read refreshes) are deleted until it fits. A folder that cannot
be created or written (read-only, disk full, no permission) turns writing off for this cache
object with one logged warning (``warning`` holds the text for the app to show); nothing is
raised to the user.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import struct
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from samdesk.engine.embedding import Embedding
from samdesk.engine.paths import cache_dir
from samdesk.errors import CacheError, InputError

log = logging.getLogger(__name__)

MAGIC = b"SDEMBED\n"
FORMAT_VERSION = 1
SUFFIX = ".emb"
DEFAULT_MAX_BYTES = 4 * 1024**3
_PREFIX = struct.Struct("<8sII")
_DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2"), "uint8": np.dtype("u1")}
_HASH_RE = re.compile(r"^[0-9a-f]{16,128}$")
_MAX_HEADER = 64 * 1024
#: A temporary file older than this is from a crashed writer and is deleted by ``entries()``.
STALE_TMP_SECONDS = 3600


class CorruptCacheFile(Exception):
    """Internal: a cache file that must not be trusted (never leaves this module)."""


def _key_digest(model_key: str) -> str:
    return hashlib.sha256(model_key.encode("utf-8")).hexdigest()[:32]


def encode_embedding(content_hash: str, embedding: Embedding) -> tuple[bytes, bytes]:
    """The (prefix + header, payload) bytes of a cache file for ``embedding``."""
    features = np.ascontiguousarray(embedding.features)
    name = features.dtype.name
    if name not in _DTYPES:
        raise InputError(
            f"embeddings of dtype {features.dtype} cannot be cached; use float32, float16 or uint8"
        )
    payload = features.astype(_DTYPES[name], copy=False).tobytes(order="C")
    header = json.dumps(
        {
            "content_hash": content_hash,
            "model_key": embedding.model_key,
            "dtype": name,
            "shape": list(features.shape),
            "original_size": list(embedding.original_size),
            "input_size": list(embedding.input_size),
            "payload_bytes": len(payload),
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
        },
        separators=(",", ":"),
    ).encode("utf-8")
    return _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header)) + header, payload


def decode_embedding(data: bytes, content_hash: str, model_key: str) -> Embedding:
    """Parse a whole cache file; raises CorruptCacheFile unless every check passes."""
    if len(data) < _PREFIX.size:
        raise CorruptCacheFile("shorter than the file prefix")
    magic, version, header_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise CorruptCacheFile("not a samdesk embedding file (wrong magic)")
    if version != FORMAT_VERSION:
        raise CorruptCacheFile(f"format version {version}, this samdesk reads {FORMAT_VERSION}")
    if header_len > _MAX_HEADER or _PREFIX.size + header_len > len(data):
        raise CorruptCacheFile("header length out of range (truncated?)")
    try:
        header = json.loads(data[_PREFIX.size : _PREFIX.size + header_len].decode("utf-8"))
        dtype = _DTYPES[header["dtype"]]
        shape = tuple(int(n) for n in header["shape"])
        original = (int(header["original_size"][0]), int(header["original_size"][1]))
        input_size = (int(header["input_size"][0]), int(header["input_size"][1]))
        payload_bytes = int(header["payload_bytes"])
        payload_sha = str(header["payload_sha256"])
        keys = (header["content_hash"], header["model_key"])
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as err:
        raise CorruptCacheFile(f"unreadable header ({err})") from None
    if keys != (content_hash, model_key):
        raise CorruptCacheFile("written for another image or model (foreign file)")
    # math.prod: exact integers (np.prod wraps around in int64, so a forged shape such as
    # [2**62, 4] would "match" an empty payload and fail later in reshape)
    if any(n < 0 for n in shape) or math.prod(shape) * dtype.itemsize != payload_bytes:
        raise CorruptCacheFile("shape and payload length disagree")
    payload = data[_PREFIX.size + header_len :]
    if len(payload) != payload_bytes:
        raise CorruptCacheFile(f"truncated: {len(payload)} of {payload_bytes} payload bytes")
    if hashlib.sha256(payload).hexdigest() != payload_sha:
        raise CorruptCacheFile("checksum mismatch")
    features = np.frombuffer(payload, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    return Embedding(features, original, input_size, model_key)


class DiskCache:
    """Embeddings on disk, keyed by (image content hash, backend cache key). Thread-safe."""

    def __init__(
        self, folder: str | os.PathLike[str] | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        """
        Args:
            folder: where the files go; default ``cache_dir() / "embeddings"``.
            max_bytes: size cap of the folder; least recently used files are deleted beyond it.
        """
        self.folder = Path(folder) if folder is not None else cache_dir() / "embeddings"
        self.max_bytes = int(max_bytes)
        self.warning: str | None = None
        self._writable = True
        self._lock = threading.Lock()

    def path_for(self, content_hash: str, model_key: str) -> Path:
        if not _HASH_RE.match(content_hash):
            raise InputError(f"not a content hash (lower-case hex expected): {content_hash!r}")
        return self.folder / f"{content_hash}.{_key_digest(model_key)}{SUFFIX}"

    def get(self, content_hash: str, model_key: str) -> Embedding | None:
        """The cached embedding, or None (missing, or untrustworthy and therefore deleted)."""
        path = self.path_for(content_hash, model_key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            embedding = decode_embedding(data, content_hash, model_key)
        except CorruptCacheFile as err:
            log.warning("discarding embedding cache file %s: %s", path.name, err)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # most recently used: evicted last
        return embedding

    def put(self, content_hash: str, embedding: Embedding) -> bool:
        """Store ``embedding`` atomically; returns False if the cache folder is unusable (writing
        is then off for this object, see ``warning``) or the file could not be put in place."""
        path = self.path_for(content_hash, embedding.model_key)
        head, payload = encode_embedding(content_hash, embedding)
        if not self._writable:
            return False
        tmp: str | None = None
        try:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=SUFFIX)
                with os.fdopen(fd, "wb") as f:
                    f.write(head)
                    f.write(payload)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as err:  # the folder cannot take files: stop trying this session
                self._disable(err)
                return False
            try:
                os.replace(tmp, path)
                tmp = None
            except OSError as err:
                # The folder works (the file was written) but this one name is taken: on
                # Windows, replacing a file that another thread or process is reading fails.
                # The cache stays on; the embedding is stored the next time it is computed.
                log.info("embedding cache file %s not replaced: %s", path.name, err)
                return False
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self.evict()
        return True

    def check_writable(self) -> None:
        """Raise :class:`CacheError` unless a file can be created in the cache folder (which is
        created if needed). For callers whose only purpose is to fill the cache (``samdesk
        embed``), so they stop before spending hours on embeddings they could not keep."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=SUFFIX)
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            raise CacheError(
                f"the embedding cache folder {self.folder} cannot be written "
                f"({err.strerror or err}). Free some disk space, or set SAMDESK_CACHE_DIR to a "
                "writable folder."
            ) from None

    def _disable(self, err: OSError) -> None:
        with self._lock:
            if not self._writable:
                return
            self._writable = False
            self.warning = (
                f"The embedding cache folder {self.folder} cannot be written "
                f"({err.strerror or err}); embeddings are kept in memory only for now. Free "
                "some disk space or set SAMDESK_CACHE_DIR to a writable folder."
            )
        log.warning("%s", self.warning)

    def entries(self) -> list[tuple[Path, int, float]]:
        """(path, size in bytes, last use as mtime) of every cache file, oldest use first."""
        found = []
        try:
            candidates = list(self.folder.glob(f"*{SUFFIX}"))
        except OSError:
            return []
        now = time.time()
        for p in candidates:
            with contextlib.suppress(OSError):
                st = p.stat()
                if not p.name.startswith(".tmp-"):
                    found.append((p, st.st_size, st.st_mtime))
                elif now - st.st_mtime > STALE_TMP_SECONDS:
                    p.unlink()  # left by a process that crashed while writing
        return sorted(found, key=lambda e: e[2])

    def total_bytes(self) -> int:
        return sum(size for _, size, _ in self.entries())

    def evict(self) -> int:
        """Delete least recently used files until the folder fits ``max_bytes``; returns the
        number of files deleted."""
        with self._lock:
            entries = self.entries()
            total = sum(size for _, size, _ in entries)
            removed = 0
            for path, size, _ in entries:
                if total <= self.max_bytes:
                    break
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
                total -= size
            return removed

    def contains(self, content_hash: str, model_key: str) -> bool:
        """Whether a file for this key exists (not verified; ``get`` verifies)."""
        return self.path_for(content_hash, model_key).is_file()
