"""The HTTP side of the fake Flatfile API: a keep-alive server on loopback, its router and the handler."""

from __future__ import annotations

import contextlib
import hmac
import json
import re
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from flatfile_jobs.testing import _parts as parts
from flatfile_jobs.testing._faults import Fault, RecordedRequest
from flatfile_jobs.testing._store import Store
from flatfile_jobs.testing._wire import INVALID_JSON, ApiError

if TYPE_CHECKING:
    from flatfile_jobs.testing._fake import FakeFlatfile

__all__ = ["FakeHTTPServer"]

_Route = Callable[[Store, re.Match[str], dict[str, str], object], object]

_ROUTES: list[tuple[str, re.Pattern[str], _Route]] = [
    ("GET", re.compile(r"/jobs"), lambda s, m, q, b: parts.list_jobs(s, q)),
    ("POST", re.compile(r"/jobs/([^/]+)/split"), lambda s, m, q, b: parts.split(s, m[1], b)),
    ("GET", re.compile(r"/jobs/([^/]+)"), lambda s, m, q, b: s.get_job(m[1])),
    ("PATCH", re.compile(r"/jobs/([^/]+)"), lambda s, m, q, b: s.patch_job(m[1], b)),
    ("POST", re.compile(r"/jobs/([^/]+)/ack"), lambda s, m, q, b: s.ack_job(m[1], b)),
    ("POST", re.compile(r"/jobs/([^/]+)/complete"), lambda s, m, q, b: s.finish_job(m[1], "complete", b)),
    ("POST", re.compile(r"/jobs/([^/]+)/fail"), lambda s, m, q, b: s.finish_job(m[1], "failed", b)),
    ("POST", re.compile(r"/jobs/([^/]+)/cancel"), lambda s, m, q, b: s.cancel_job_api(m[1], b)),
    ("GET", re.compile(r"/events"), lambda s, m, q, b: s.list_events(q)),
    ("GET", re.compile(r"/events/([^/]+)"), lambda s, m, q, b: s.get_event(m[1])),
    ("POST", re.compile(r"/events/([^/]+)/ack"), lambda s, m, q, b: s.ack_event(m[1])),
    ("GET", re.compile(r"/sheets/([^/]+)/records"), lambda s, m, q, b: s.sheet_records(m[1])),
]


def _errors(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message}]}


def route(store: Store, method: str, path: str, query: dict[str, str], body: object) -> tuple[int, object]:
    """Answer an authenticated API request: ``(status, JSON payload)``."""
    for route_method, pattern, action in _ROUTES:
        match = pattern.fullmatch(path)
        if match is not None and method == route_method:
            try:
                answer = action(store, match, query, body)
            except ApiError as exc:
                return exc.status, _errors(exc.message)
            return 200, answer.body() if isinstance(answer, parts.Page) else {"data": answer}
    return 404, _errors(f"Not found: {method} {path}")


class FakeHTTPServer(ThreadingHTTPServer):
    """A quiet threading HTTP server that knows its fake and closes its keep-alive connections on exit."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, fake: FakeFlatfile, host: str, port: int = 0) -> None:
        self.fake = fake
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
        fake = self.server.fake
        arrived = time.monotonic()
        raw = self._read_body()
        split = urlsplit(self.path)
        path = split.path[3:] if split.path == "/v1" or split.path.startswith("/v1/") else split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {name.lower(): value for name, value in self.headers.items()}
        body: object = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                body = INVALID_JSON
        slot = fake._reserve_slot()
        fault = fake._faults.pick(self.command, path)
        status, payload = 0, None
        if fault is not None and not fault.after:
            time.sleep(fault.delay)
        if fault is None or fault.after or not fault.replaces_response:
            status, payload = self._answer(fake, path, query, headers, body)
            # Events the request made the API emit reach subscribers before the answer does.
            fake._publish(fake._store.take_emitted())
        if fault is not None and fault.after:
            time.sleep(fault.delay)
        faulted = fault is not None and fault.replaces_response
        if fault is not None and faulted:
            status = 0 if fault.reset else (fault.status or 0)
        recorded = RecordedRequest(
            method=self.command,
            path=path,
            query=query,
            headers=headers,
            body=None if body is INVALID_JSON else body,
            raw=raw,
            status=status,
            fault=faulted,
            at=arrived,
            target=self.path,
        )
        fake._fill_slot(slot, recorded)  # before answering: a client that got its answer sees the record
        if fault is not None and faulted:
            self._send_fault(fault)
        else:
            self._send(status, payload)

    def _answer(
        self, fake: FakeFlatfile, path: str, query: dict[str, str], headers: dict[str, str], body: object
    ) -> tuple[int, object]:
        expected = f"Bearer {fake.token}".encode()
        if not hmac.compare_digest(headers.get("authorization", "").encode(), expected):
            return 401, _errors("Unauthorized")
        try:
            return route(fake._store, self.command, path, query, body)
        except Exception as exc:  # a bug in the fake: answer it rather than hang the client
            return 500, _errors(f"Fake Flatfile error: {exc!r}")

    def _send(
        self, status: int, payload: object, headers: dict[str, str] | None = None, *, raw: bytes | None = None
    ) -> None:
        data = json.dumps(payload).encode() if raw is None else raw
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_fault(self, fault: Fault) -> None:
        if fault.reset or fault.status is None:
            # SO_LINGER on with 0 s: closing sends a TCP reset, not a FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
        self._send(fault.status, _errors("Injected fault"), extra, raw=fault.body)
