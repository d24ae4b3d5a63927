"""The downloader against a real HTTP server on 127.0.0.1: resume, restart, verify, cancel, and
failures explained in words."""

from __future__ import annotations

import errno
import hashlib
import itertools
import socket
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from samdesk.engine import download as dl
from samdesk.engine.download import download, part_path
from samdesk.engine.jobs import CancelToken
from samdesk.errors import CancelledError, DownloadError
from tests.support.http_server import FileServer

pytestmark = pytest.mark.network

SIZE = 1_000_000
DATA = bytes((i * 7 + i // 251) % 256 for i in range(SIZE))
SHA = hashlib.sha256(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer({"/m.pth": DATA}) as s:
        yield s


class _Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))

    def monotone(self) -> bool:
        done = [d for d, _ in self.calls]
        return all(a <= b for a, b in itertools.pairwise(done))


def test_plain_download_is_verified_and_atomic(server: FileServer, tmp_path: Path) -> None:
    progress = _Progress()
    dest = tmp_path / "models" / "m.pth"
    result = download(
        server.url("/m.pth"), dest, sha256=SHA, size=SIZE, progress=progress, chunk_size=65536
    )
    assert dest.read_bytes() == DATA and not part_path(dest).exists()
    assert result.verified and result.sha256 == SHA and result.resumed_from == 0
    assert progress.monotone() and progress.calls[-1] == (SIZE, SIZE)
    assert len(progress.calls) > 10
    assert server.range_headers() == []


def test_interrupted_download_resumes_with_range(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "m.pth"
    server.cut_after, server.cut_requests = 300_000, 1
    with pytest.raises(DownloadError, match=r"incomplete \(300000 of 1000000 bytes\)"):
        download(server.url("/m.pth"), dest, sha256=SHA, size=SIZE)
    assert part_path(dest).stat().st_size == 300_000 and not dest.exists()

    progress = _Progress()
    result = download(server.url("/m.pth"), dest, sha256=SHA, size=SIZE, progress=progress)
    assert server.range_headers() == ["bytes=300000-"]
    assert result.resumed_from == 300_000 and result.verified
    assert dest.read_bytes() == DATA  # the new bytes were appended to the kept ones
    assert progress.calls[0] == (300_000, SIZE) and progress.monotone()
    assert progress.calls[-1] == (SIZE, SIZE)


def test_incomplete_without_known_size_is_reported(server: FileServer, tmp_path: Path) -> None:
    server.cut_after = 123_456
    with pytest.raises(DownloadError, match=r"incomplete \(123456 of 1000000 bytes\)"):
        download(server.url("/m.pth"), tmp_path / "m.pth")  # total from Content-Length


def test_server_ignoring_range_restarts(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "m.pth"
    part_path(dest).write_bytes(b"\x00" * 300_000)  # would be wrong if appended to
    server.ignore_range = True
    result = download(server.url("/m.pth"), dest, sha256=SHA, size=SIZE)
    assert server.range_headers() == ["bytes=300000-"]
    assert result.resumed_from == 0 and dest.read_bytes() == DATA


def test_corrupted_download_is_rejected_and_removed(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "m.pth"
    server.corrupt = True
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(server.url("/m.pth"), dest, sha256=SHA, size=SIZE)
    assert not dest.exists() and not part_path(dest).exists()
    server.corrupt = False
    assert download(server.url("/m.pth"), dest, sha256=SHA).verified


def test_corrupt_part_from_before_is_caught(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "m.pth"
    part_path(dest).write_bytes(b"\xff" * 1000)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(server.url("/m.pth"), dest, sha256=SHA, size=SIZE)
    assert server.range_headers() == ["bytes=1000-"] and not part_path(dest).exists()


def test_md5_alone_verifies_and_no_checksum_is_unverified(
    server: FileServer, tmp_path: Path
) -> None:
    assert download(server.url("/m.pth"), tmp_path / "a.pth", md5=MD5).verified
    result = download(server.url("/m.pth"), tmp_path / "b.pth")
    assert not result.verified and result.sha256 == SHA


def test_cancel_leaves_a_resumable_part(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "m.pth"
    token = CancelToken()

    def cancel_after_two_chunks(done: int, total: int | None) -> None:
        if done >= 2 * 65536:
            token.cancel()

    with pytest.raises(CancelledError, match="resume"):
        download(
            server.url("/m.pth"),
            dest,
            sha256=SHA,
            progress=cancel_after_two_chunks,
            cancel=token,
            chunk_size=65536,
        )
    kept = part_path(dest).stat().st_size
    assert 2 * 65536 <= kept < SIZE and not dest.exists()
    result = download(server.url("/m.pth"), dest, sha256=SHA, size=SIZE)
    assert result.resumed_from == kept and dest.read_bytes() == DATA
    assert server.range_headers() == [f"bytes={kept}-"]


@pytest.mark.parametrize(("code", "words"), [(404, "HTTP 404"), (403, "HTTP 403")])
def test_http_errors_are_explained(
    server: FileServer, tmp_path: Path, code: int, words: str
) -> None:
    server.status["/m.pth"] = code
    with pytest.raises(DownloadError, match=words):
        download(server.url("/m.pth"), tmp_path / "m.pth")
    assert not (tmp_path / "m.pth").exists()


def test_wrong_file_size_on_server(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="holds a different file"):
        download(server.url("/m.pth"), tmp_path / "m.pth", size=SIZE + 1)


def test_refused_connection(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here once closed
    with pytest.raises(DownloadError, match="refused"):
        download(f"http://127.0.0.1:{port}/m.pth", tmp_path / "m.pth")


def test_proxy_failure_names_https_proxy(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_proxy = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("http_proxy", dead_proxy)
    with pytest.raises(DownloadError, match="HTTPS_PROXY") as info:
        download(server.url("/m.pth"), tmp_path / "m.pth")
    assert "proxy" in str(info.value)


def test_dns_failure_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class NoDns:
        def open(self, *args: object, **kwargs: object) -> None:
            error = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            raise urllib.error.URLError(error)

    monkeypatch.setattr(dl, "build_opener", NoDns)
    with pytest.raises(DownloadError, match="no network connection, or a DNS failure"):
        download("https://models.example.org/m.pth", tmp_path / "m.pth")


def test_disk_full_while_writing(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = open

    class FullDisk:
        def __init__(self, path: Path, mode: str) -> None:
            self._f = real_open(path, mode)
            self._written = 0

        def write(self, data: bytes) -> int:
            if self._written + len(data) > 200_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            self._written += len(data)
            return self._f.write(data)

        def close(self) -> None:
            self._f.close()

    monkeypatch.setattr(dl, "open", FullDisk, raising=False)
    dest = tmp_path / "m.pth"
    with pytest.raises(DownloadError, match="disk is full"):
        download(server.url("/m.pth"), dest, sha256=SHA, chunk_size=65536)
    assert not dest.exists()
    monkeypatch.undo()
    result = download(server.url("/m.pth"), dest, sha256=SHA, size=SIZE)  # resumes afterwards
    assert result.resumed_from > 0 and dest.read_bytes() == DATA


def test_not_enough_space_is_refused_up_front(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000})())
    with pytest.raises(DownloadError, match="not enough free disk space"):
        download(server.url("/m.pth"), tmp_path / "m.pth", size=SIZE)
    assert server.requests == []


@pytest.mark.parametrize("url", ["notaurl", "http://[::1", "https://", "C:\\models\\vit_b.pth"])
def test_malformed_address_is_a_download_error(tmp_path: Path, url: str) -> None:
    """--url or SAMDESK_MODEL_BASE_URL mistyped: urllib raised ValueError (a traceback)."""
    with pytest.raises(DownloadError, match="not a download address"):
        download(url, tmp_path / "m.pth")
    assert list(tmp_path.iterdir()) == []


def test_mirror_on_a_shared_drive(tmp_path: Path) -> None:
    """file:// URLs (an intranet share on an air-gapped machine) download and verify."""
    source = tmp_path / "share" / "m.pth"
    source.parent.mkdir()
    source.write_bytes(DATA)
    result = download(source.as_uri(), tmp_path / "models" / "m.pth", sha256=SHA, size=SIZE)
    assert result.verified and (tmp_path / "models" / "m.pth").read_bytes() == DATA
