"""The local HTTP front: real HTTP on loopback, each request handed to the receiver as an HTTP API v2 event.

Plays API Gateway's part: the request becomes a payload v2 event (headers lower-cased, the body base64
when it is not UTF-8), the function's ``{"statusCode", "headers", "body"}`` answer becomes the response.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flatfile_jobs_testing import http_api_event

__all__ = ["MAX_REQUEST_BYTES", "HttpFront", "RequestLog"]

# API Gateway's own payload limit; the receiver refuses much less (256 KiB) with a clear 413.
MAX_REQUEST_BYTES = 10 * 1024 * 1024

Invoke = Callable[[dict[str, Any]], dict[str, Any]]
RequestLog = Callable[[str, str, int, float, str], None]


class _Server(ThreadingHTTPServer):
    # Request threads are joined on close (their connections are shut down first), so none outlive it.
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], invoke: Invoke, on_request: RequestLog | None) -> None:
        super().__init__(address, _Handler)
        self.invoke = invoke
        self.on_request = on_request
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def track(self, conn: socket.socket, *, open_: bool) -> None:
        with self._lock:
            (self._open.add if open_ else self._open.discard)(conn)

    def close_connections(self) -> None:
        """End idle keep-alive connections so their threads finish."""
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms per answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: requests are reported through ``on_request``."""

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self._forward()

    def do_PATCH(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def do_OPTIONS(self) -> None:
        self._forward()

    def _content_length(self) -> int | None:
        """The request's Content-Length (0 when absent), or ``None`` when it is not one non-negative integer."""
        values = {value.strip() for value in self.headers.get_all("content-length") or []}
        if not values:
            return 0
        if len(values) > 1:
            return None
        (value,) = values
        return int(value) if value.isascii() and value.isdigit() else None

    def _forward(self) -> None:
        started = time.perf_counter()
        # Each refusal below leaves body bytes unread: the connection is closed so they are never
        # taken for the next request.
        if self.headers.get("transfer-encoding") is not None:
            self.close_connection = True
            self._reply(411, {}, b'{"message":"Length Required"}', started)
            return
        length = self._content_length()
        if length is None:
            self.close_connection = True
            message = b'{"message":"Bad Request: Content-Length must be one non-negative integer"}'
            self._reply(400, {}, message, started)
            return
        if length > MAX_REQUEST_BYTES:
            self.close_connection = True
            self._reply(413, {}, b'{"message":"Request Entity Too Large"}', started)
            return
        body = self.rfile.read(length) if length else b""
        headers = {key: value for key, value in self.headers.items()}
        event = http_api_event(self.command, self.path, headers, body, source_ip=self.client_address[0])
        try:
            answer = self.server.invoke(event)
        except Exception:  # the function crashed: API Gateway answers 500
            self._reply(500, {}, b'{"message":"Internal Server Error"}', started)
            return
        payload = str(answer.get("body") or "")
        raw = base64.b64decode(payload) if answer.get("isBase64Encoded") else payload.encode()
        out_headers = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}
        self._reply(int(answer.get("statusCode", 200)), out_headers, raw, started, answer.get("cookies"))

    def _reply(
        self,
        status: int,
        headers: dict[str, str],
        body: bytes,
        started: float,
        cookies: object = None,
    ) -> None:
        self.send_response(status)
        headers.setdefault("content-type", "application/json")
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        for cookie in cookies if isinstance(cookies, list) else []:
            self.send_header("set-cookie", str(cookie))
        self.send_header("content-length", str(len(body)))
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        if self.server.on_request is not None:
            elapsed = (time.perf_counter() - started) * 1000
            self.server.on_request(self.command, self.path, status, elapsed, body.decode(errors="replace"))


class HttpFront:
    """Serve ``invoke`` on ``http://host:port`` in a background thread until :meth:`close`.

    Args:
        invoke: Takes an HTTP API v2 event, returns the function's answer.
        host: Address to listen on (loopback by default).
        port: Port; ``0`` picks a free one (see :attr:`port`).
        on_request: Called after each answer with method, path, status, milliseconds and body.
    """

    def __init__(
        self, invoke: Invoke, *, host: str = "127.0.0.1", port: int = 0, on_request: RequestLog | None = None
    ) -> None:
        self._server = _Server((host, port), invoke, on_request)
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="http-front", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8787``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        """Stop accepting, end open connections and wait for the server's threads."""
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join()
