"""Installed models: where they live, importing and downloading them, checking them.

Models live in :func:`samdesk.engine.paths.models_dir` (or the folder given to
:class:`ModelStore`). Registry models keep their official file names (``sam_vit_b_01ec64.pth``);
custom models (fine-tunes in SAM format) are stored as ``<name><suffix>``. A small JSON index,
``index.json``, records for each installed model its file, SHA-256, size, modification time at
the last check, architecture, preprocessing and whether a known checksum matched. The index is
written atomically; if it is unreadable it is moved aside (never silently overwritten) and the
registry files present in the folder are still found.

- :meth:`ModelStore.import_model` accepts a file: a known model (recognised by SHA-256 or the
  publisher's MD5, whatever its file name) is recorded under its registry name; any other file is
  accepted if :mod:`samdesk.model` can read a SAM-format architecture from it (CheckpointError
  otherwise) and recorded as a custom model. The user's file is hard-linked when it is on the
  same filesystem, else copied, through a temporary file and ``os.replace``; it is never moved.
- :meth:`ModelStore.download` fetches a registry model (resuming, verified) and records it.
- :meth:`ModelStore.list_models` reports every registry model (installed or not) and every custom
  one with a state, from the index without re-hashing: "verified", "unverified" (no known
  checksum), "not checked" (a file copied in by hand), "changed" (size or time differ from the
  last check), "damaged" (checksum mismatch), "missing" (recorded file gone), "not installed".
- :meth:`ModelStore.verify` re-hashes the files and updates those states.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from samdesk.engine import registry
from samdesk.engine.download import ProgressCallback, download, part_path
from samdesk.engine.jobs import CancelToken
from samdesk.engine.paths import models_dir
from samdesk.engine.registry import ModelInfo
from samdesk.errors import CheckpointError, ModelError

log = logging.getLogger(__name__)

INDEX_NAME = "index.json"
INDEX_FORMAT = 1
_NAME_RE = re.compile(r"[^a-z0-9_.-]+")

VERIFIED = "verified"
UNVERIFIED = "unverified"
NOT_CHECKED = "not checked"
CHANGED = "changed"
DAMAGED = "damaged"
MISSING = "missing"
NOT_INSTALLED = "not installed"


@dataclass(frozen=True)
class ModelRecord:
    """One installed model as recorded in the index.

    Attributes:
        name: registry name ("vit_b") or the custom name chosen at import.
        file: file name inside the models folder.
        sha256: hex SHA-256 at the last check.
        size, mtime_ns: the file's size and modification time at the last check.
        arch: architecture read from the weights ("vit_b", ..., "tiny_vit", "custom").
        preprocessing: "sam" or "medsam".
        kind: "registry" or "custom".
        state: VERIFIED, UNVERIFIED or DAMAGED as of the last check.
        source: where it came from (the imported path or the download URL), for information.
    """

    name: str
    file: str
    sha256: str
    size: int
    mtime_ns: int
    arch: str
    preprocessing: str
    kind: str
    state: str
    source: str


@dataclass(frozen=True)
class ModelStatus:
    """One row of :meth:`ModelStore.list_models`."""

    name: str
    display_name: str
    kind: str  # "registry" or "custom"
    state: str
    path: Path | None
    size: int | None
    arch: str
    preprocessing: str
    note: str

    @property
    def installed(self) -> bool:
        return self.state not in (NOT_INSTALLED, MISSING)


def hash_file(path: Path, *, md5: bool = False) -> tuple[str, str | None]:
    """(hex SHA-256, hex MD5 or None) of ``path``, read in 4 MiB blocks."""
    sha = hashlib.sha256()
    m = hashlib.md5(usedforsecurity=False) if md5 else None
    with open(path, "rb") as f:
        while block := f.read(4 * 1024 * 1024):
            sha.update(block)
            if m is not None:
                m.update(block)
    return sha.hexdigest(), (m.hexdigest() if m is not None else None)


def _matches(info: ModelInfo, sha256: str, md5: str | None) -> bool:
    return (info.sha256 is not None and sha256 == info.sha256) or (
        info.md5 is not None and md5 == info.md5
    )


class ModelStore:
    """The models folder and its index. Thread-safe for use within one process."""

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = models_dir(folder)
        self._lock = threading.RLock()

    @property
    def index_path(self) -> Path:
        return self.folder / INDEX_NAME

    # --- index ------------------------------------------------------------------------------

    def _read_index(self) -> dict[str, ModelRecord]:
        try:
            raw = self.index_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as err:
            raise ModelError(f"cannot read {self.index_path} ({err.strerror or err}).") from None
        try:
            data = json.loads(raw)
            if data.get("format") != INDEX_FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            return {name: ModelRecord(**rec) for name, rec in data["models"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            aside = self.index_path.with_name(f"{INDEX_NAME}.unreadable-{int(time.time())}")
            with contextlib.suppress(OSError):
                os.replace(self.index_path, aside)
            log.warning(
                "the model index %s was unreadable (%s) and was moved to %s; models are found "
                "again by their files, custom models need importing again",
                self.index_path,
                err,
                aside.name,
            )
            return {}

    def _write_index(self, records: dict[str, ModelRecord]) -> None:
        data = {"format": INDEX_FORMAT, "models": {n: asdict(r) for n, r in records.items()}}
        self._atomic_write(self.index_path, json.dumps(data, indent=2).encode("utf-8"))

    def _atomic_write(self, target: Path, payload: bytes) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".index-", suffix=".tmp")
        except OSError as err:
            raise ModelError(
                f"cannot write to the models folder {self.folder} ({err.strerror or err}); "
                "set SAMDESK_DATA_DIR to a writable folder."
            ) from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except OSError as err:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise ModelError(f"cannot write {target} ({err.strerror or err}).") from None

    def _record(self, record: ModelRecord) -> None:
        with self._lock:
            records = self._read_index()
            records[record.name] = record
            self._write_index(records)

    # --- adding models ----------------------------------------------------------------------

    def import_model(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        preprocessing: str | None = None,
    ) -> ModelRecord:
        """Install the checkpoint at ``path`` (copied or hard-linked; the original stays).

        Args:
            name: for a custom model, the name to record (default: from the file name).
            preprocessing: for a custom model, "sam" (default) or "medsam".

        Raises:
            CheckpointError: not a file samdesk can use as a SAM-format checkpoint.
            ModelError: the models folder cannot be written, or ``name`` is taken.
        """
        src = Path(path).expanduser()
        if os.path.isdir(src):  # os.path: False, not OSError, for a too-long name
            raise CheckpointError(
                f"{src}: this is a folder; give the checkpoint file in it (.pth / .pt)."
            )
        if not os.path.isfile(src):
            raise CheckpointError(f"{src}: no such file. Check the path.")
        try:
            sha256, md5 = hash_file(src, md5=True)
        except OSError as err:
            raise CheckpointError(f"{src}: cannot be read ({err.strerror or err}).") from None
        known = next((m for m in registry.MODELS.values() if _matches(m, sha256, md5)), None)
        if known is not None:
            target = self.folder / known.file_name
            return self._install(
                src,
                target,
                sha256,
                known.name,
                known.arch,
                known.preprocessing,
                "registry",
                VERIFIED,
            )

        if preprocessing not in (None, "sam", "medsam"):
            raise ModelError(f"preprocessing must be 'sam' or 'medsam', not {preprocessing!r}")
        arch = read_architecture(src)
        suffix = src.suffix if src.suffix in (".pth", ".pt", ".bin") else ".pth"
        chosen = self._custom_name(name or src.stem, sha256, suffix)
        target = self.folder / f"{chosen}{suffix}"
        return self._install(
            src, target, sha256, chosen, arch, preprocessing or "sam", "custom", UNVERIFIED
        )

    def _install(
        self,
        src: Path,
        target: Path,
        sha256: str,
        name: str,
        arch: str,
        preprocessing: str,
        kind: str,
        state: str,
    ) -> ModelRecord:
        """Place the file and record it; if recording fails, a file placed here is removed."""
        existed = target.exists()
        self._place(src, target, sha256)
        record = self._make_record(name, target, sha256, arch, preprocessing, kind, state, str(src))
        try:
            self._record(record)
        except ModelError:
            if not existed:
                with contextlib.suppress(OSError):
                    target.unlink()
            raise
        return record

    def download(
        self,
        name: str,
        *,
        url: str | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> ModelRecord:
        """Download registry model ``name`` (resuming a ``.part``), verify and record it.

        ``url`` overrides the source (else ``$SAMDESK_MODEL_BASE_URL``, else the official URL).
        """
        info = registry.get(name)
        target = self.folder / info.file_name
        source = info.download_url(url)
        result = download(
            source,
            target,
            sha256=info.sha256,
            md5=info.md5,
            size=info.size,
            progress=progress,
            cancel=cancel,
        )
        state = VERIFIED if result.verified else UNVERIFIED
        record = self._make_record(
            info.name,
            target,
            result.sha256,
            info.arch,
            info.preprocessing,
            "registry",
            state,
            source,
        )
        self._record(record)
        return record

    def partial_download(self, name: str) -> int:
        """Bytes of an unfinished download of ``name`` waiting to be resumed (0 if none)."""
        part = part_path(self.folder / registry.get(name).file_name)
        return part.stat().st_size if part.exists() else 0

    def _custom_name(self, wanted: str, sha256: str, suffix: str) -> str:
        """A free name from ``wanted``: lower-case, safe characters, not a registry name, not
        used by another model or file (the same file imported again keeps its name)."""
        base = _NAME_RE.sub("-", wanted.strip().lower()).strip("-.") or "custom"
        if base in registry.MODELS or base == "classic":
            base = f"{base}-custom"
        records = self._read_index()
        official = {m.file_name for m in registry.MODELS.values()}
        candidate, n = base, 2
        while True:
            rec = records.get(candidate)
            file_taken = rec is None and (
                (self.folder / f"{candidate}{suffix}").exists()
                or f"{candidate}{suffix}" in official
            )
            if (rec is None or rec.sha256 == sha256) and not file_taken:
                return candidate
            candidate, n = f"{base}-{n}", n + 1

    def _place(self, src: Path, target: Path, sha256: str) -> None:
        """Hard-link or copy ``src`` to ``target`` atomically (a temp name, then os.replace)."""
        if target.exists():
            with contextlib.suppress(OSError):
                if os.path.samefile(src, target) or hash_file(target)[0] == sha256:
                    return
        tmp = self.folder / f".import-{os.getpid()}-{threading.get_ident()}-{target.name}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            try:
                os.link(src, tmp)  # same filesystem: no copy, no extra disk space
            except OSError:
                _copy_synced(src, tmp)
            os.replace(tmp, target)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise ModelError(
                f"cannot copy {src.name} into the models folder {self.folder} "
                f"({err.strerror or err}); free some space or set SAMDESK_DATA_DIR to another "
                "folder."
            ) from None

    @staticmethod
    def _make_record(
        name: str,
        path: Path,
        sha256: str,
        arch: str,
        preprocessing: str,
        kind: str,
        state: str,
        source: str,
    ) -> ModelRecord:
        st = path.stat()
        return ModelRecord(
            name,
            path.name,
            sha256,
            st.st_size,
            st.st_mtime_ns,
            arch,
            preprocessing,
            kind,
            state,
            source,
        )

    # --- listing and checking ---------------------------------------------------------------

    def list_models(self) -> list[ModelStatus]:
        """Every registry model (installed or not), then every custom model."""
        records = self._read_index()
        rows = [
            self._registry_status(info, records.get(info.name)) for info in registry.MODELS.values()
        ]
        for rec in records.values():
            if rec.kind == "custom":
                rows.append(self._custom_status(rec))
        return rows

    def status(self, name: str) -> ModelStatus:
        """The row of ``name`` (a registry or custom name); ModelError if unknown."""
        for row in self.list_models():
            if row.name == name:
                return row
        raise ModelError(
            f"no model called {name!r}; 'samdesk models list' shows the known and installed ones"
        )

    def _registry_status(self, info: ModelInfo, rec: ModelRecord | None) -> ModelStatus:
        path = self.folder / info.file_name
        try:
            st = path.stat()
        except OSError:
            st = None
        if st is None:
            state, size = NOT_INSTALLED, info.size
        elif rec is None or rec.file != info.file_name:
            state, size = NOT_CHECKED, st.st_size
        elif (st.st_size, st.st_mtime_ns) != (rec.size, rec.mtime_ns):
            state, size = CHANGED, st.st_size
        else:
            state, size = rec.state, st.st_size
        return ModelStatus(
            info.name,
            info.display_name,
            "registry",
            state,
            path if st is not None else None,
            size,
            info.arch,
            info.preprocessing,
            info.note,
        )

    def _custom_status(self, rec: ModelRecord) -> ModelStatus:
        path = self.folder / rec.file
        try:
            st = path.stat()
            changed = (st.st_size, st.st_mtime_ns) != (rec.size, rec.mtime_ns)
            state = CHANGED if changed else rec.state
        except OSError:
            state = MISSING
        note = f"custom model imported from {rec.source}"
        return ModelStatus(
            rec.name,
            f"{rec.name} (custom)",
            "custom",
            state,
            path if state != MISSING else None,
            rec.size,
            rec.arch,
            rec.preprocessing,
            note,
        )

    def verify(self, name: str | None = None) -> list[ModelStatus]:
        """Re-hash ``name`` (or every installed model) and record the result.

        Registry models are "verified" when a known checksum matches, else "damaged"; custom
        models are "unverified" when unchanged since import, else "changed".
        """
        rows = [self.status(name)] if name is not None else self.list_models()
        checked = []
        for row in rows:
            if not row.installed or row.path is None:
                checked.append(row)
                continue
            try:
                sha256, md5 = hash_file(row.path, md5=True)
            except OSError as err:
                raise ModelError(
                    f"{row.path} cannot be read ({err.strerror or err}); check that your user "
                    "account may read it."
                ) from None
            with self._lock:
                records = self._read_index()
                if row.kind == "registry":
                    info = registry.get(row.name)
                    state = VERIFIED if _matches(info, sha256, md5) else DAMAGED
                    if not info.verifiable:
                        state = UNVERIFIED
                    source = records[row.name].source if row.name in records else str(row.path)
                    records[row.name] = self._make_record(
                        row.name,
                        row.path,
                        sha256,
                        info.arch,
                        info.preprocessing,
                        "registry",
                        state,
                        source,
                    )
                else:
                    old = records[row.name]
                    state = UNVERIFIED if sha256 == old.sha256 else CHANGED
                    if state == CHANGED:
                        records[row.name] = old  # keep the import-time hash as the reference
                    else:
                        records[row.name] = self._make_record(
                            row.name,
                            row.path,
                            sha256,
                            old.arch,
                            old.preprocessing,
                            "custom",
                            state,
                            old.source,
                        )
                self._write_index(records)
            checked.append(
                ModelStatus(
                    row.name,
                    row.display_name,
                    row.kind,
                    state,
                    row.path,
                    row.path.stat().st_size,
                    row.arch,
                    row.preprocessing,
                    row.note,
                )
            )
        return checked

    def resolve(self, name: str) -> tuple[Path, str, str]:
        """(path, arch, preprocessing) of the installed model ``name``.

        Raises ModelError saying how to install it when it is not installed, or how to fix it
        when its file is damaged. A registry model whose file is not checked yet (copied in by
        hand) or changed since its check is hashed again first, so a damaged or replaced file
        is never loaded as the official model; a changed custom model is used with a warning.
        """
        row = self.status(name)
        if row.kind == "registry" and row.state in (NOT_CHECKED, CHANGED):
            (row,) = self.verify(name)
        elif row.kind == "custom" and row.state == CHANGED:
            log.warning(
                "the file of the custom model %r (%s) changed since it was imported; using it "
                "as it is now",
                name,
                row.path,
            )
        if row.state == NOT_INSTALLED:
            raise ModelError(
                f"{row.display_name} is not installed: run 'samdesk models download {name}' "
                "(or, offline, 'samdesk models import FILE' with a copy of "
                f"{registry.get(name).file_name})."
            )
        if row.state == MISSING or row.path is None:
            raise ModelError(
                f"the file of the custom model {name!r} is gone from {self.folder}; import it "
                "again with 'samdesk models import FILE'."
            )
        if row.state == DAMAGED:
            raise ModelError(
                f"{row.display_name} ({row.path}) failed its checksum check: the file is "
                f"damaged. Delete it and run 'samdesk models download {name}' again."
            )
        return row.path, row.arch, row.preprocessing


def read_architecture(path: Path) -> str:
    """The architecture name samdesk.model reads from the checkpoint; CheckpointError if none."""
    from samdesk.model.checkpoint import infer_config, read_state_dict

    return infer_config(read_state_dict(path), str(path)).arch


def _copy_synced(src: Path, dst: Path) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, length=4 * 1024 * 1024)
        fout.flush()
        os.fsync(fout.fileno())
