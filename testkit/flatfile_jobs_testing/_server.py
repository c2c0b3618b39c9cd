"""The HTTP side of the fake Flatfile API: a keep-alive server on loopback that hands each request to a responder.

It knows nothing of Flatfile: ``FakeFlatfile.respond`` answers every ``HttpRequest`` with an ``HttpReply``.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeHTTPServer", "HttpReply", "HttpRequest", "Responder"]


@dataclass(frozen=True)
class HttpRequest:
    """One request as it arrived: method, target (path and query, as sent), lower-cased headers, body bytes."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    arrived: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class HttpReply:
    """What to send back: a JSON answer (``status``, ``body``, extra ``headers``), or a TCP reset."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False


Responder = Callable[[HttpRequest], HttpReply]


class FakeHTTPServer(ThreadingHTTPServer):
    """A quiet threading HTTP server that hands requests to ``respond`` and closes its keep-alive connections on exit."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, respond: Responder, host: str, port: int = 0) -> None:
        self.respond = respond
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        """Bind without the reverse DNS look-up ``HTTPServer`` does."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ANN401 - typeshed's signature
        """Stay silent: a client that hangs up is not an error worth a traceback here."""

    def track(self, conn: socket.socket, *, open_: bool) -> None:
        """Remember (or forget) a live connection so ``close_connections`` can end it."""
        with self._open_lock:
            if open_:
                self._open.add(conn)
            else:
                self._open.discard(conn)

    def close_connections(self) -> None:
        """Shut every live keep-alive connection, so no handler thread outlives the server."""
        with self._open_lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)

    def log_message(self, format: str, *args: object) -> None:
        """Never log requests."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        arrived = time.monotonic()
        body = self._read_body()
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.respond(HttpRequest(self.command, self.path, headers, body, arrived))
        if reply.reset:
            # SO_LINGER on with 0 s: closing sends a TCP reset, not a FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)
