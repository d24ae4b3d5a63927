"""SHA-256 of checkpoint files, remembered in a small sidecar so each file is hashed once.

Hashing ViT-H (2.5 GB) takes seconds; the result is stored in ``<cache_dir>/checkpoint-sha256
.json`` keyed by the file's absolute path, size and modification time, and reused while those are
unchanged. A cache folder that cannot be written only costs the re-hash next time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path

SIDECAR_NAME = "checkpoint-sha256.json"
_lock = threading.Lock()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoint_sha256(
    path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None
) -> str:
    """Hex SHA-256 of ``path``; looked up in / added to the sidecar in ``cache_dir`` if given."""
    p = Path(path).resolve()
    st = p.stat()
    key = str(p)
    stamp = [st.st_size, st.st_mtime_ns]
    sidecar = Path(cache_dir) / SIDECAR_NAME if cache_dir is not None else None
    with _lock:
        known: dict[str, dict[str, object]] = {}
        if sidecar is not None:
            with contextlib.suppress(OSError, ValueError):
                loaded = json.loads(sidecar.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    known = loaded
        entry = known.get(key)
        if isinstance(entry, dict) and entry.get("stamp") == stamp:
            sha = entry.get("sha256")
            if isinstance(sha, str) and len(sha) == 64:
                return sha
        sha = _file_sha256(p)
        if sidecar is not None:
            known[key] = {"stamp": stamp, "sha256": sha}
            with contextlib.suppress(OSError):
                sidecar.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=sidecar.parent, prefix=".sha256-", suffix=".part")
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as f:
                        json.dump(known, f)
                    os.replace(tmp, sidecar)
                finally:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
        return sha
