"""The emulator as a real HTTP/1.1 server (keep-alive, one thread per connection).

Each answer is written with a single ``sendall`` on a ``TCP_NODELAY`` socket, which avoids the
Nagle/delayed-ACK stalls that make naive ``http.server`` handlers crawl at ~25 requests/s.
A second thread settles due productions so callbacks fire without any request arriving.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from reconciler.adapters.emulator.service import Emulator
from reconciler.errors import EmulatorError

REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        split = urlsplit(self.path)
        query = parse_qsl(split.query, keep_blank_values=True)
        body = self._body()
        answer = self.server.emulator.handle(
            self.command, split.path, query, list(self.headers.items()), body
        )
        if answer.drop:  # processed, but the client never hears back
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        head = [f"HTTP/1.1 {answer.status} {REASONS.get(answer.status, 'Error')}"]
        head += [f"{k}: {v}" for k, v in answer.headers]
        head += [f"Content-Length: {len(answer.body)}", "Server: reconciler-vod-emulator"]
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + answer.body)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return  # the call log is the record; no per-request stderr noise


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client went away (killed, timed out): nothing worth a traceback
        super().handle_error(request, client_address)


class EmulatorServer:
    """``EmulatorServer(emu).start()`` serves in background threads until ``.stop()``."""

    def __init__(
        self,
        emulator: Emulator,
        host: str = "127.0.0.1",
        port: int = 0,
        settle_interval: float = 0.05,
    ) -> None:
        self.emulator = emulator
        self.host = host
        self._port = port
        self._settle_interval = settle_interval
        self._httpd: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise EmulatorError("the emulator server is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> EmulatorServer:
        try:
            self._httpd = _HTTPServer((self.host, self._port), self.emulator)
        except OSError as exc:
            raise EmulatorError(
                f"cannot listen on {self.host}:{self._port}: {exc.strerror or exc}"
            ) from exc
        self._stop.clear()
        self._threads = [
            threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="emulator-http",
                daemon=True,
            ),
            threading.Thread(target=self._settle_loop, name="emulator-settle", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def _settle_loop(self) -> None:
        while not self._stop.wait(self._settle_interval):
            try:
                self.emulator.settle()
            except Exception:  # a closed store at shutdown; never kill the loop noisily
                if self._stop.is_set():
                    return

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        self._stop.set()
        if httpd is None:
            return
        httpd.shutdown()
        with httpd.sockets_lock:
            for sock in list(httpd.open_sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        for thread in self._threads:
            thread.join(5.0)

    def __enter__(self) -> EmulatorServer:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
