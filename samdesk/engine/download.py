"""Resumable, verified downloads of model files, with the standard library only (urllib).

:func:`download` writes to ``<dest>.part``, resumes an existing ``.part`` with an HTTP Range
request (and starts over when the server ignores Range), reports progress, can be cancelled
between chunks (the ``.part`` stays for the next attempt), checks the size and the checksum and
only then renames the file into place atomically. A checksum mismatch deletes the ``.part``.

Every failure is a :class:`samdesk.errors.DownloadError` whose message says what happened in
words a user can act on: no network / DNS failure, connection refused or timed out, a proxy
problem (naming HTTPS_PROXY), HTTP 404/403, a server offering a different file, an incomplete
download ("incomplete (x of y bytes)"), a checksum mismatch, a full disk.

Proxies are taken from the environment (HTTPS_PROXY / HTTP_PROXY / NO_PROXY), as urllib does.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import os
import re
import shutil
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from samdesk.engine.jobs import CancelToken
from samdesk.errors import CancelledError, DownloadError

#: Called after every chunk with (bytes done, total bytes or None when unknown).
ProgressCallback = Callable[[int, int | None], None]

CHUNK = 1 << 20
USER_AGENT = "samdesk-model-download"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class DownloadResult:
    """What :func:`download` produced.

    Attributes:
        path: the final file.
        sha256: its hex SHA-256.
        verified: True if a known SHA-256 or MD5 matched; False if none was given.
        resumed_from: bytes that were already in ``.part`` and were kept (0 = fresh download).
    """

    path: Path
    sha256: str
    verified: bool
    resumed_from: int


def part_path(dest: str | os.PathLike[str]) -> Path:
    """Where the unfinished download of ``dest`` lives."""
    d = Path(dest)
    return d.with_name(d.name + ".part")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


class _Digests:
    """SHA-256 always, MD5 only when an expected MD5 was given."""

    def __init__(self, want_md5: bool) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False) if want_md5 else None

    def update(self, data: bytes) -> None:
        self.sha256.update(data)
        if self.md5 is not None:
            self.md5.update(data)


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    timeout: float = 30.0,
    chunk_size: int = CHUNK,
) -> DownloadResult:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify it, rename it into place.

    Args:
        sha256, md5: expected checksums (hex); the file is accepted if either given one matches.
            With neither, the file is accepted unverified (``verified=False``).
        size: expected size in bytes; also used to check free disk space up front.
        progress: called with (bytes done, total) after each chunk, done never decreasing
            within one call except when a server that ignores Range forces a restart from 0.
        cancel: checked between chunks; CancelledError leaves the ``.part`` for resuming.
        timeout: seconds without data before the connection counts as dead.

    Raises:
        DownloadError: with a message that says what went wrong and what to do.
        CancelledError: when ``cancel`` was set.
    """
    _check_url(url)
    dest = Path(dest)
    part = part_path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(
            f"cannot create the folder {dest.parent} ({err.strerror or err}); choose another "
            "models folder (SAMDESK_DATA_DIR)."
        ) from None
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    _check_free_space(dest.parent, (size - offset) if size is not None else None)

    resumed_from = offset
    if size is None or offset < size:
        offset, resumed_from = _fetch(
            url, part, offset, size, progress, cancel, timeout, chunk_size
        )
    if size is not None and offset != size:
        raise DownloadError(
            f"the download of {dest.name} is incomplete ({offset} of {size} bytes); run the "
            "download again to resume it."
        )
    digest, verified = _verify(part, dest.name, sha256, md5)
    try:
        with open(part, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(part, dest)
    except OSError as err:
        raise DownloadError(
            f"the download finished but could not be moved to {dest} ({err.strerror or err})."
        ) from None
    return DownloadResult(dest, digest, verified, resumed_from)


def _check_url(url: str) -> None:
    """DownloadError unless ``url`` is an address urllib can fetch (http, https, ftp, or file
    for a mirror on a shared drive)."""
    try:
        parts = urlsplit(url)
        valid = parts.scheme.lower() in ("http", "https", "ftp", "file") and (
            parts.scheme.lower() == "file" or bool(parts.hostname)
        )
    except ValueError:  # e.g. an unclosed "[" in an IPv6 address
        valid = False
    if not valid:
        raise DownloadError(
            f"{url!r} is not a download address; give a full URL such as "
            "https://example.org/models/sam_vit_b_01ec64.pth (check --url or "
            "SAMDESK_MODEL_BASE_URL)."
        )


def _check_free_space(folder: Path, needed: int | None) -> None:
    if needed is None or needed <= 0:
        return
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(folder).free
        if free < needed:
            raise DownloadError(
                f"not enough free disk space in {folder}: the download needs {_mb(needed)}, "
                f"{_mb(free)} are free. Free some space or choose another models folder "
                "(SAMDESK_DATA_DIR)."
            )


def _fetch(
    url: str,
    part: Path,
    offset: int,
    size: int | None,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    timeout: float,
    chunk_size: int,
) -> tuple[int, int]:
    """Stream the rest of ``url`` into ``part``; returns (bytes in part, bytes kept from before)."""
    if cancel is not None:
        cancel.check()
    response = _open(url, offset, timeout)
    with response:
        status = response.status
        if offset and status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range", ""))
            if start != offset:
                offset = 0  # the server answered another range: start over
                response.close()
                return _fetch(url, part, 0, size, progress, cancel, timeout, chunk_size)
        else:
            offset = 0  # 200: the server ignored Range (or there was nothing to resume)
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if size is not None and total is not None and total != size:
            raise DownloadError(
                f"the server offers a file of {total} bytes at {url}, but the model is {size} "
                "bytes: this URL (or mirror) holds a different file. Check --url or "
                "SAMDESK_MODEL_BASE_URL."
            )
        total = total if total is not None else size
        kept = offset
        mode = "ab" if offset else "wb"
        try:
            out = open(part, mode)  # noqa: SIM115 - closed in _stream's finally
        except OSError as err:
            raise _write_error(err, part) from None
        done = _stream(response, out, part, offset, total, progress, cancel, chunk_size)
    if total is not None and done < total:
        raise DownloadError(
            f"the download of {part.name[: -len('.part')]} is incomplete ({done} of {total} "
            "bytes): the connection ended early. Run the download again to resume it."
        )
    return done, kept


def _stream(
    response: http.client.HTTPResponse,
    out: BinaryIO,
    part: Path,
    done: int,
    total: int | None,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    chunk_size: int,
) -> int:
    """Copy the response body into ``out`` chunk by chunk; returns bytes now in ``part``."""
    try:
        if progress is not None:
            progress(done, total)
        while True:
            if cancel is not None and cancel.cancelled:
                raise CancelledError(
                    f"download cancelled after {done} bytes; run it again to resume."
                )
            try:
                chunk = response.read(chunk_size)
            except (http.client.IncompleteRead, ConnectionError, TimeoutError, OSError) as err:
                shown = f"{done} of {total}" if total is not None else f"{done}"
                raise DownloadError(
                    f"the download of {part.name[: -len('.part')]} is incomplete ({shown} "
                    f"bytes): the connection failed ({_reason(err)}). Run the download again to "
                    "resume it."
                ) from None
            if not chunk:
                return done
            try:
                out.write(chunk)
            except OSError as err:
                raise _write_error(err, part) from None
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    finally:
        with contextlib.suppress(OSError):
            out.close()


def _write_error(err: OSError, part: Path) -> DownloadError:
    if err.errno == errno.ENOSPC:
        return DownloadError(
            f"the disk is full while writing {part}; free some space and run the download "
            "again (it resumes where it stopped), or choose another models folder "
            "(SAMDESK_DATA_DIR)."
        )
    return DownloadError(f"cannot write {part} ({err.strerror or err}).")


def _verify(part: Path, name: str, sha256: str | None, md5: str | None) -> tuple[str, bool]:
    digests = _Digests(want_md5=md5 is not None)
    with open(part, "rb") as f:
        while block := f.read(CHUNK):
            digests.update(block)
    got_sha = digests.sha256.hexdigest()
    got_md5 = digests.md5.hexdigest() if digests.md5 is not None else None
    if sha256 is None and md5 is None:
        return got_sha, False
    if (sha256 is not None and got_sha == sha256.lower()) or (
        md5 is not None and got_md5 == md5.lower()
    ):
        return got_sha, True
    with contextlib.suppress(OSError):
        part.unlink()
    expected = f"SHA-256 {sha256}" if sha256 is not None else f"MD5 {md5}"
    raise DownloadError(
        f"the downloaded {name} is damaged or is not the expected file (checksum mismatch: "
        f"expected {expected}, got SHA-256 {got_sha}); it was deleted. Run the download again; "
        "if this repeats, the mirror holds a different file."
    )


def _parse_content_range(value: str) -> tuple[int, int | None]:
    match = _CONTENT_RANGE.match(value.strip())
    if not match:
        return -1, None
    total = match.group(3)
    return int(match.group(1)), (int(total) if total != "*" else None)


def build_opener() -> urllib.request.OpenerDirector:
    """A fresh opener per request, so proxy variables set after start-up are honoured
    (``urllib.request.urlopen`` reads them once per process)."""
    return urllib.request.build_opener()


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return build_opener().open(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            err.close()
            return _open(url, 0, timeout)  # nothing left to resume from: start over
        raise _http_error(url, err.code, err.reason) from None
    except urllib.error.URLError as err:
        raise _connection_error(url, err.reason) from None
    except (TimeoutError, OSError, http.client.HTTPException) as err:
        raise _connection_error(url, err) from None


def _http_error(url: str, code: int, reason: str) -> DownloadError:
    if code == 404:
        return DownloadError(
            f"the file was not found on the server (HTTP 404) at {url}. The mirror may not "
            "have it: check --url or SAMDESK_MODEL_BASE_URL."
        )
    if code == 403:
        return DownloadError(
            f"the server refused access (HTTP 403) to {url}. A firewall or proxy may block "
            "it; download the file in a browser and use 'samdesk models import FILE'."
        )
    if code == 407:
        return DownloadError(
            f"the proxy wants a login (HTTP 407) for {url}; put the user name and password "
            "in HTTPS_PROXY (https://user:password@proxy:port)."
        )
    return DownloadError(f"the server answered HTTP {code} ({reason}) for {url}; try later.")


def _proxy_for(url: str) -> str | None:
    scheme = urlsplit(url).scheme
    host = urlsplit(url).hostname or ""
    if urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(scheme)


def _reason(err: object) -> str:
    text = str(getattr(err, "strerror", None) or err).strip()
    return text or type(err).__name__


def _connection_error(url: str, reason: object) -> DownloadError:
    host = urlsplit(url).hostname or url
    proxy = _proxy_for(url)
    text = _reason(reason)
    if proxy is not None or "tunnel connection failed" in text.lower():
        return DownloadError(
            f"the connection through the proxy {proxy or ''} failed ({text}) while fetching "
            f"{url}. Check HTTPS_PROXY / HTTP_PROXY (and NO_PROXY), or download the file "
            "elsewhere and use 'samdesk models import FILE'."
        )
    if isinstance(reason, socket.gaierror):
        return DownloadError(
            f"cannot find the server {host}: no network connection, or a DNS failure. Check "
            "the connection (an offline machine can import a file copied from elsewhere with "
            "'samdesk models import FILE')."
        )
    if isinstance(reason, ConnectionRefusedError):
        return DownloadError(f"the server {host} refused the connection; try later.")
    if isinstance(reason, TimeoutError | socket.timeout):
        return DownloadError(f"the server {host} did not answer in time; try later.")
    if isinstance(reason, ssl.SSLError):
        return DownloadError(
            f"the secure connection to {host} failed ({text}). A proxy that inspects HTTPS "
            "traffic may need its certificate installed; or download the file in a browser and "
            "use 'samdesk models import FILE'."
        )
    return DownloadError(f"cannot connect to {host} ({text}); check the network connection.")
