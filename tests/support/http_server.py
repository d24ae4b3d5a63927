"""A small HTTP file server on 127.0.0.1 for download tests, with switchable misbehaviour.

    with FileServer({"/m.pth": data}) as server:
        server.cut_after = 1000          # close the connection after 1000 body bytes ...
        server.cut_requests = 1          # ... for the first request only
        download(server.url("/m.pth"), dest)
        server.requests                  # [(path, {header: value})] of every GET

Switches (attributes, change them at any time): ``cut_after`` / ``cut_requests``, ``corrupt``
(serve the bytes with one byte flipped), ``ignore_range`` (answer 200 with the whole file even
when asked for a range), ``status`` (path -> HTTP status to answer instead, e.g. 404),
``chunk_delay`` (seconds to sleep between 16 KiB chunks, to make a download slow).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
CHUNK = 16 * 1024


class FileServer:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.cut_after: int | None = None
        self.cut_requests: int | None = None  # None: every request is cut
        self.corrupt = False
        self.ignore_range = False
        self.status: dict[str, int] = {}
        self.chunk_delay = 0.0
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._cuts_done = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def range_headers(self) -> list[str]:
        return [h["Range"] for _, h in self.requests if "Range" in h]

    def _should_cut(self) -> int | None:
        with self._lock:
            if self.cut_after is None:
                return None
            if self.cut_requests is not None and self._cuts_done >= self.cut_requests:
                return None
            self._cuts_done += 1
            return self.cut_after

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            with server._lock:
                server.requests.append((self.path, dict(self.headers.items())))
            code = server.status.get(self.path)
            if code is not None:
                self.send_error(code)
                return
            data = server.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            if server.corrupt:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            start = 0
            match = _RANGE.match(self.headers.get("Range", ""))
            if match and not server.ignore_range:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            self._send_body(body, server._should_cut())

        def _send_body(self, body: bytes, cut: int | None) -> None:
            sent = 0
            try:
                while sent < len(body):
                    end = min(len(body), sent + CHUNK)
                    if cut is not None and end > cut:
                        end = cut
                    self.wfile.write(body[sent:end])
                    self.wfile.flush()
                    sent = end
                    if cut is not None and sent >= cut:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if server.chunk_delay:
                        time.sleep(server.chunk_delay)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler
