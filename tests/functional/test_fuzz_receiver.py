"""Fuzzing the receiver's ``lambda_handler`` (hypothesis): whatever arrives, the answer is a 2xx/4xx JSON document.

Random bodies (events with random damage, any JSON, random bytes and text), encodings (the base64 flag on
and off, invalid base64, invalid UTF-8), sizes around the 256 KiB limit, header sets (content types, header
name case, missing and extra headers) and signature headers (valid, rotated, wrong secret, tampered, stale,
future, garbage). ``FLATFILE_JOBS_FUZZ_EXAMPLES`` sets the number of examples (200 in ``make test``).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flatfile_jobs import webhook
from flatfile_jobs.testing import job_ready_event
from jobs import listener as sample_listener

from ._pipeline import (
    ACCESS_TOKEN,
    OTHER_SECRET,
    SECRET,
    ReceiverUnderTest,
    http_event,
    isolated_stack,
    receiver_under_test,
)

EXAMPLES = int(os.environ.get("FLATFILE_JOBS_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
LIMIT = webhook.MAX_BODY_BYTES
WRONG_SECRET = "whsec_" + base64.b64encode(b"not-the-receivers-secret-at-all!").decode()
SIGNED_OK = ("valid", "valid-among-several", "valid-header-case")
JOB_NAMES = [
    "space:configure",
    "workbook:submit",
    "file:process",
    "data:validate",
    "sheet:unknown",
    "nojob",
    "",
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON",
    "application/cloudevents+json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
    None,  # no content-type header at all
]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@dataclass(repr=False)
class Case:
    """One fuzzed request and what the test knows about it (its repr stays short: bodies reach 260 KB)."""

    request: dict[str, Any]
    size: int
    signed_ok: bool
    content_type_ok: bool
    base64_ok: bool
    description: str

    def __repr__(self) -> str:
        return f"Case({self.description}; body {str(self.request['body'])[:300]!r}…)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis's pretty-printer
        printer.text(repr(self))


@pytest.fixture
def receiver() -> Iterator[ReceiverUnderTest]:
    with isolated_stack():
        yield receiver_under_test(sample_listener)


@st.composite
def damaged_events(draw: st.DrawFn) -> dict[str, Any]:
    """A job:ready event, sometimes with a part removed or replaced, sometimes in the forwarder's shape."""
    event = job_ready_event("space:configure", workbook_id="us_wb_fuzz")
    event["payload"]["job"] = draw(st.sampled_from(JOB_NAMES))
    for _ in range(draw(st.integers(0, 2))):
        where = draw(st.sampled_from(["id", "topic", "context", "context.jobId", "payload", "payload.job"]))
        *parents, key = where.split(".")
        target: Any = event
        for parent in parents:
            target = target.get(parent) if isinstance(target, dict) else None
        if isinstance(target, dict):
            if draw(st.booleans()):
                target.pop(key, None)
            else:
                target[key] = draw(JSON)
    if draw(st.booleans()):
        event = {"src": copy.deepcopy(event), **event, "_accessToken": ACCESS_TOKEN}
    return event


def _raw_body(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["event", "event", "event", "json", "bytes", "text"]))
    if kind == "event":
        event = draw(damaged_events())
        pad = draw(st.sampled_from([0, 0, 0, 0, LIMIT - 2000, LIMIT + 1, LIMIT + 5000]))
        if pad and isinstance(event.get("payload"), dict) and isinstance(event["payload"].get("input"), dict):
            event["payload"]["input"]["pad"] = "x" * pad
        return json.dumps(event).encode()
    if kind == "json":
        return json.dumps(draw(JSON)).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=2048))
    return draw(st.text(max_size=2048)).encode()


def _signature_headers(draw: st.DrawFn, body: bytes) -> tuple[dict[str, str], str]:
    mode = draw(
        st.sampled_from(
            [
                *SIGNED_OK,
                "wrong-secret",
                "tampered-body",
                "tampered-id",
                "stale",
                "future",
                "garbage",
                "partial",
                "none",
            ]
        )
    )
    now = int(time.time())
    if mode in ("none", "garbage", "partial"):
        headers = {
            "webhook-id": draw(st.text(max_size=40)),
            "webhook-timestamp": draw(st.sampled_from([str(now), "", "abc", "-5", "1" * 30, "１２３"])),
            "webhook-signature": draw(
                st.sampled_from(["", "v1,", "v1,!!!", "v2,abc", "v1,AAAA v1,BBBB"]) | st.text()
            ),
        }
        if mode == "none":
            return {}, mode
        if mode == "partial":
            del headers[draw(st.sampled_from(sorted(headers)))]
        return headers, mode
    secret = WRONG_SECRET if mode == "wrong-secret" else SECRET
    stamp = {"stale": now - 301, "future": now + 301}.get(mode, now)
    signed = body + b" " if mode == "tampered-body" else body
    headers = webhook.sign(secret, signed, msg_id="msg_fuzz", timestamp=stamp)
    if mode == "tampered-id":
        headers["webhook-id"] = "msg_other"
    if mode == "valid-among-several":
        other = webhook.sign(OTHER_SECRET, body, msg_id="msg_fuzz", timestamp=stamp)["webhook-signature"]
        headers["webhook-signature"] = f"v1,bm90LWEtc2ln {other} {headers['webhook-signature']}"
    if mode == "valid-header-case":
        headers = {name.upper(): value for name, value in headers.items()}
    return headers, mode


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A random request through API Gateway (HTTP API, payload v2)."""
    body = _raw_body(draw)
    headers, mode = _signature_headers(draw, body)
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type is not None:
        headers[draw(st.sampled_from(["content-type", "Content-Type"]))] = content_type
    for name, value in draw(
        st.dictionaries(st.sampled_from(["x-extra", "user-agent", "x-forwarded-for"]), st.text(max_size=20))
    ).items():
        headers[name] = value
    media = (content_type or "").split(";")[0].strip().lower()
    content_type_ok = media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
    base64_flag = draw(st.booleans())
    base64_ok = True
    if base64_flag:
        text: str = base64.b64encode(body).decode()
        if draw(st.integers(0, 9)) == 0:
            text, base64_ok = text + "!*", False
    else:
        text = body.decode(
            "utf-8", errors="surrogateescape"
        )  # invalid UTF-8 kept as escapes, bytes round-trip
    request = http_event(text, headers, is_base64=base64_flag)
    description = (
        f"{mode}, content-type {content_type!r}, base64 {base64_flag} (valid {base64_ok}), {len(body)} bytes"
    )
    return Case(request, len(body), mode in SIGNED_OK, content_type_ok, base64_ok, description)


@FUZZ
@given(case=cases())
def test_receiver_answers_every_request_with_2xx_or_4xx_json(receiver: ReceiverUnderTest, case: Case) -> None:
    """Random bodies, encodings, sizes, headers, signatures: a 2xx/4xx JSON answer, an enqueue only on 202."""
    status, answer = receiver.call(case.request)
    enqueued = receiver.drain()
    assert 200 <= status < 500, case.description
    assert isinstance(answer, dict)
    assert len(enqueued) == (1 if status == 202 else 0), case.description
    # The receiver's checks run cheapest first: base64, size, content type, signature, then the event.
    if not case.base64_ok:
        assert status == 400, case.description
    elif case.size > LIMIT:
        assert status == 413, case.description
    elif not case.content_type_ok:
        assert status == 415, case.description
    elif not case.signed_ok:
        assert status == 401, case.description
    else:
        assert status in (200, 202, 400, 422), case.description
    if status == 202:
        assert answer["jobId"] == enqueued[0]["context"]["jobId"]
        assert ACCESS_TOKEN not in json.dumps(enqueued[0])
        assert "_accessToken" not in enqueued[0]


@FUZZ
@given(
    headers=st.dictionaries(st.text(max_size=30), st.text(max_size=60), max_size=8),
    body=st.text(max_size=200),
)
def test_any_header_set_is_answered_without_enqueueing(
    receiver: ReceiverUnderTest, headers: dict[str, str], body: str
) -> None:
    """Arbitrary header names and values (signature headers included) never enqueue and never raise."""
    status, answer = receiver.call(http_event(body, headers))
    assert 400 <= status < 500
    assert "error" in answer or "message" in answer
    assert receiver.drain() == []


def test_lone_surrogate_in_the_body_is_refused_not_raised(receiver: ReceiverUnderTest) -> None:
    """A body str with a lone surrogate (not a surrogateescape byte) is a 4xx, not an exception (a 5xx)."""
    headers = {"content-type": "application/json", **webhook.sign(SECRET, b"{}", msg_id="msg_1")}
    status, _ = receiver.call(http_event('{"a": "\ud800"}', headers))
    assert status in (400, 401)
    assert receiver.drain() == []


@pytest.mark.parametrize(("method", "path"), [("GET", "/webhook"), ("POST", "/other"), ("PUT", "/webhook")])
def test_other_routes_answer_json_404_and_enqueue_nothing(
    receiver: ReceiverUnderTest, method: str, path: str
) -> None:
    """Only POST /webhook is routed; anything else is a JSON 404 (API Gateway would not route it either)."""
    status, answer = receiver.call(
        http_event("{}", {"content-type": "application/json"}, method=method, path=path)
    )
    assert status == 404
    assert answer["message"] == "Not found"
    assert receiver.drain() == []
