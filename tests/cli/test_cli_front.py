"""The local HTTP front (``flatfile-jobs serve``'s API Gateway) over a real socket: framing it must refuse.

A request whose body length cannot be known is answered once with a JSON error and the connection is
closed, so no body byte is ever read as the next request and no handler thread waits for bytes that never come.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from flatfile_jobs_cli._front import HttpFront


class Recorder:
    """The function behind the front: records each event and answers 202 JSON."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 202, "headers": {"content-type": "application/json"}, "body": '{"ok":true}'}


@pytest.fixture
def front() -> Iterator[tuple[HttpFront, Recorder]]:
    """An HttpFront on a free loopback port, closed (threads joined) after the test."""
    recorder = Recorder()
    server = HttpFront(recorder)
    yield server, recorder
    server.close()


def exchange(front: HttpFront, request: bytes, *, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send raw bytes; read until the server closes. Returns what came back and whether it closed in time."""
    with socket.create_connection((front.host, front.port), timeout=timeout) as conn:
        conn.sendall(request)
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except TimeoutError:
            return received, False
        return received, True


def responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split raw HTTP/1.1 responses (each with a Content-Length) into (status, headers, body)."""
    parsed = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {
            name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)
        }
        length = int(headers["content-length"])
        parsed.append((int(status_line.split()[1]), headers, rest[:length]))
        raw = rest[length:]
    return parsed


def post(headers: str, body: bytes = b"") -> bytes:
    return f"POST /webhook HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n".encode() + body


@pytest.mark.parametrize("value", ["abc", "-1", "+5", "5 5", "0x10", "١٢"])
def test_content_length_that_is_not_a_non_negative_integer_is_400_and_closes(
    front: tuple[HttpFront, Recorder], value: str
) -> None:
    """A malformed Content-Length (``abc``, ``-1``…) answers one 400 JSON and closes; nothing is invoked."""
    server, recorder = front
    raw, closed = exchange(
        server, post(f"Content-Type: application/json\r\nContent-Length: {value}\r\n", b"{}")
    )
    assert closed, raw
    [(status, headers, body)] = responses(raw)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert "Content-Length" in json.loads(body)["message"]
    assert recorder.events == []


def test_two_different_content_lengths_are_400(front: tuple[HttpFront, Recorder]) -> None:
    """Conflicting Content-Length headers (a request-smuggling shape) answer 400 and close."""
    server, recorder = front
    raw, closed = exchange(server, post("Content-Length: 2\r\nContent-Length: 5\r\n", b"{}abc"))
    assert closed
    assert [status for status, _, _ in responses(raw)] == [400]
    assert recorder.events == []


def test_chunked_request_is_411_and_the_chunk_is_never_read_as_a_request(
    front: tuple[HttpFront, Recorder],
) -> None:
    """Transfer-Encoding: chunked answers one 411 and closes: the chunk bytes never become a second request."""
    server, recorder = front
    chunk = b"GET /webhook HTTP/1.1\r\nHost: x\r\n\r\n"
    body = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n"
    raw, closed = exchange(
        server, post("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", body)
    )
    assert closed, raw
    [(status, headers, body_out)] = responses(raw)
    assert status == 411
    assert headers["connection"] == "close"
    assert json.loads(body_out) == {"message": "Length Required"}
    assert recorder.events == []


def test_valid_requests_still_share_one_keep_alive_connection(front: tuple[HttpFront, Recorder]) -> None:
    """Two well-framed requests on one connection both reach the function (the fix closes only bad ones)."""
    server, recorder = front
    first = post("Content-Type: application/json\r\nContent-Length: 2\r\n", b"{}")
    last = post("Content-Type: application/json\r\nContent-Length: 7\r\nConnection: close\r\n", b'{"a":1}')
    raw, closed = exchange(server, first + last)
    assert closed
    assert [status for status, _, _ in responses(raw)] == [202, 202]
    assert [event["body"] for event in recorder.events] == ["{}", '{"a":1}']
