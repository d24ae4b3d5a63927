"""Writing files so that a crash, a full disk or a pulled plug never leaves half a file.

Every project save and every export file goes through :func:`atomic_write`: the bytes go to a
temporary file in the same folder, are flushed and fsynced, the temporary file replaces the
target with ``os.replace`` (atomic on POSIX and Windows), and the folder is fsynced so the rename
itself is durable. If anything fails before the replace, the previous file is untouched, the
temporary file is removed and :class:`~samdesk.errors.SaveError` says what happened.

A damaged project is never overwritten; :func:`move_aside` renames it out of the way so the user
can start again and keep the damaged file for recovery.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from datetime import datetime
from pathlib import Path

from samdesk.errors import SaveError

_REASONS = {
    getattr(errno, "EDQUOT", errno.ENOSPC): "the disk quota is exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the folder is on a read-only file system",
    errno.ENOENT: "the folder does not exist",
    errno.EIO: "the disk reported an input/output error",
    errno.ENOSPC: "the disk is full",
}

_TEMP_SUFFIX = ".samdesk-tmp"


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Replace ``path`` with ``data`` all at once or not at all.

    ``str`` is written as UTF-8; a lone surrogate in it (a file name that is not valid UTF-8,
    decoded by Python as ``\\udcXX``) is written as the escape ``\\udcXX``, which in a JSON
    string reads back as the same character, so such paths survive a save and load.

    Raises :class:`SaveError` (the previous file, if any, is byte-identical and no temporary file
    is left behind) when the folder cannot be written, the disk is full, or flushing, closing or
    replacing fails.
    """
    target = Path(os.path.abspath(path))
    if os.path.islink(target):  # write the file the link points to; keep the link a link
        target = Path(os.path.realpath(target))
    payload = data.encode("utf-8", "backslashreplace") if isinstance(data, str) else bytes(data)
    temp = target.with_name(_temp_name(target.name))
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as err:
        raise _save_error(target, err) from err
    except ValueError as err:  # a NUL or an unencodable character in the name
        raise SaveError(
            f"Could not save {str(target)!r}: the file name cannot be used on this system ({err}). "
            "Choose another name."
        ) from err
    try:
        try:
            _keep_mode(target, temp)
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException as err:
        _remove_quietly(temp)
        if isinstance(err, OSError):
            raise _save_error(target, err) from err
        raise
    _fsync_folder(target.parent)


def _temp_name(name: str) -> str:
    """``.<name>.<random>.samdesk-tmp`` with at most 40 characters of ``name`` (160 bytes even
    in UTF-8): file names may have 255 bytes, and a target name near that limit (80 Chinese
    characters are 240 bytes) must still be saveable."""
    return f".{name[:40]}.{secrets.token_hex(4)}{_TEMP_SUFFIX}"


def _keep_mode(target: Path, temp: Path) -> None:
    """Give the new file the permissions of the one it replaces (new files get the umask's)."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return
    os.chmod(temp, mode)


def _remove_quietly(temp: Path) -> None:
    try:
        os.unlink(temp)
    except FileNotFoundError:
        pass
    except OSError:
        # Nothing more can be done; the name marks it as samdesk's leftover.
        pass


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable. Best effort: by now the new file is complete and in place, so a
    folder that cannot be fsynced (Windows, some network file systems) loses nothing."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _save_error(target: Path, err: OSError) -> SaveError:
    reason = _REASONS.get(err.errno or 0) or (err.strerror or str(err))
    return SaveError(
        f"Could not save {target}: {reason}. The file on disk was not changed; "
        "free some space or choose another folder, then save again."
    )


def move_aside(path: str | os.PathLike[str]) -> Path:
    """Rename a damaged file to ``<name>.corrupt-<YYYYmmdd-HHMMSS>`` and return the new path.

    Never overwrites: if that name exists, ``-2``, ``-3``, ... is appended.
    """
    source = Path(path)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = source.with_name(f"{source.name}.corrupt-{stamp}")
    counter = 2
    while candidate.exists():
        candidate = source.with_name(f"{source.name}.corrupt-{stamp}-{counter}")
        counter += 1
    try:
        os.rename(source, candidate)
    except OSError as err:
        raise SaveError(
            f"Could not rename {source} to {candidate.name}: {err.strerror or err}. "
            "Move or rename the file yourself."
        ) from err
    return candidate
