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
import math
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from flatfile_app_jobs import listener as sample_listener
from flatfile_jobs import webhook
from flatfile_jobs_testing import LocalContext, job_ready_event, signed_headers
from flatfile_stack.delivery_policy import MAX_BODY_BYTES, MAX_DEPTH
from flatfile_stack.queues import MAX_MESSAGE_BYTES, SqsJobQueue, message_size
from flatfile_stack.runtime import Runtime, use_runtime
from flatfile_stack.settings import Settings

from ._pipeline import (
    ACCESS_TOKEN,
    OTHER_SECRET,
    SECRET,
    ReceiverUnderTest,
    http_event,
    isolated_stack,
    load_app,
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
LIMIT = MAX_BODY_BYTES
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
    headers = signed_headers(b"{}", SECRET, msg_id="msg_1")
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


# -- hostile signed events through the receiver into SQS (moto) -------------------------------------------

# Characters that break URLs, headers, logs, SQS or JSON parsers, and a few harmless ones.
HOSTILE_ALPHABET = [
    *"azAZ09_-:",
    *"/.?#%&=+ \\\"'<>",
    "\r",
    "\n",
    "\t",
    "\x00",
    "\x01",
    "\x7f",
    "\u0085",
    "\u2028",
    "\ufeff",
    "\ufffe",
    "\uffff",
    "\ud800",
    "\udbff",
    "\udc00",
    "\udfff",
    "é",
    "中",
    "😀",
]
NUMBER_FORMS = [
    "0",
    "-0",
    "1.5",
    "-1e-7",
    "1e308",
    "1.7976931348623157e308",
    "1e-400",
    "12345678901234567890",
]
NOT_JSON_NUMBERS = ["1e999", "-1e999", "1E400", "NaN", "Infinity", "-Infinity"]
# What SQS takes in a message body or attribute value (anything else: InvalidMessageContents).
SQS_TEXT = re.compile("[\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
INPUT_MARK = "INPUT_PLACEHOLDER"
PAD_MARK = "PAD_PLACEHOLDER"


@dataclass(repr=False)
class HostileCase:
    """A signed job:ready with hostile parts, and what the receiver must do with it."""

    body: bytes
    queue_down: bool
    expect: frozenset[int]
    description: str

    def __repr__(self) -> str:
        return f"HostileCase({self.description}; body {self.body[:300]!r}…)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _hostile_text(draw: st.DrawFn, usual: str) -> str:
    """``usual`` half the time, else hostile characters after it or alone."""
    if draw(st.booleans()):
        return usual
    tail = draw(st.text(alphabet=st.sampled_from(HOSTILE_ALPHABET), min_size=1, max_size=12))
    return usual + tail if draw(st.booleans()) else tail


def _as_parsed(text: str, *, escaped: bool) -> str:
    """``text`` as a JSON parser reads it back: escaped surrogate pairs join into one character."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass") if escaped else text


@st.composite
def hostile_cases(draw: st.DrawFn) -> HostileCase:
    """Hostile ids, nesting, number forms, surrogates, duplicate keys and sizes around the queue's limit."""
    event = job_ready_event("space:configure", workbook_id="us_wb_fuzz")
    event["id"] = _hostile_text(draw, event["id"])
    event["context"]["jobId"] = _hostile_text(draw, event["context"]["jobId"])
    event["payload"]["job"] = _hostile_text(draw, draw(st.sampled_from(["space:configure", "file:process"])))
    event["payload"]["input"] = INPUT_MARK
    event["pad"] = PAD_MARK
    if draw(st.booleans()):
        event = {"src": copy.deepcopy(event), **event, "_accessToken": ACCESS_TOKEN}
    ascii_escapes = (
        draw(st.integers(0, 3)) > 0
    )  # False: ids go out as raw characters (lone surrogates: not UTF-8)
    text = json.dumps(event, ensure_ascii=ascii_escapes, separators=(",", ":"))

    levels = draw(
        st.sampled_from([0, 0, 0, 0, 0, 0, 1, 2, MAX_DEPTH - 3, MAX_DEPTH - 2, MAX_DEPTH - 1, 1000])
    )
    bad_number = draw(st.integers(0, 5)) == 0
    number = draw(st.sampled_from(NOT_JSON_NUMBERS if bad_number else NUMBER_FORMS))
    opener, closer = draw(st.sampled_from([('{"a":', "}"), ("[", "]")]))
    text = text.replace(f'"{INPUT_MARK}"', opener * levels + number + closer * levels)
    duplicate = draw(st.integers(0, 7)) == 0
    if duplicate:
        text = '{"topic":"job:ready",' + text[1:]

    encoded = text.encode("utf-8", errors="surrogatepass")
    pads = text.count(PAD_MARK)
    attributes = sum(len(name) + len("String") for name in ("eventId", "jobId", "job")) + sum(
        len(str(value).encode("utf-8", errors="surrogatepass"))
        for value in (event.get("src", event)["id"], event["context"]["jobId"], event["payload"]["job"])
    )
    target = draw(
        st.sampled_from(
            [0, 0, 0, LIMIT - attributes - 1, LIMIT - attributes, LIMIT - attributes + 1, LIMIT + 1]
        )
        | st.integers(LIMIT - attributes - 64, LIMIT)
    )
    fill = max(0, (target - (len(encoded) - pads * len(PAD_MARK))) // pads) if target else 0
    body = encoded.replace(PAD_MARK.encode(), b"x" * fill)

    sent_ids = (event.get("src", event)["id"], event["context"]["jobId"], event["payload"]["job"])
    ids = tuple(_as_parsed(value, escaped=ascii_escapes) for value in sent_ids)
    not_utf8 = not ascii_escapes and any(map(_lone_surrogate, ids))  # even a pair: UTF-8 has no surrogates
    # The event object, payload (under src too in the forwarder's shape), then the input's own levels.
    too_deep = (3 if "src" in event else 2) + levels > MAX_DEPTH
    not_json = not_utf8 or too_deep or bad_number or duplicate
    unqueueable_id = any(not SQS_TEXT.fullmatch(value) for value in ids)
    if len(body) > LIMIT:
        expect = {413}
    elif not_json:
        expect = {400}
    elif unqueueable_id:
        expect = {422}
    else:  # 422 too: another check may hold ids to Flatfile's id shape
        expect = {200, 202, 413, 422}
    queue_down = draw(st.integers(0, 7)) == 0
    if queue_down and 202 in expect:
        expect = (expect - {202}) | {503}
    description = (
        f"{len(body)} bytes, depth {levels} ({opener}), number {number}, duplicate {duplicate}, "
        f"escapes {ascii_escapes}, forwarder {'src' in event}, queue down {queue_down}, ids {ids!r}"
    )
    return HostileCase(body, queue_down, frozenset(expect), description)


def _lone_surrogate(value: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in value)


class _StrictJSONError(ValueError):
    pass


def _refuse(what: str) -> Any:
    raise _StrictJSONError(what)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise _StrictJSONError("duplicate key")
    return dict(pairs)


def strict_json(text: str) -> Any:
    """Parse ``text`` as RFC 8259 JSON: no NaN/Infinity, no overflowing number, no duplicate key."""

    def finite(number: str) -> float:
        value = float(number)
        if math.isinf(value):
            raise _StrictJSONError(f"{number} overflows")
        return value

    return json.loads(text, parse_constant=_refuse, parse_float=finite, object_pairs_hook=_no_duplicates)


@dataclass
class SqsReceiver:
    """The receiver app with a real SqsJobQueue on moto (or on a loopback port nothing answers)."""

    app: ModuleType
    sqs: Any
    queue_url: str
    up: Runtime
    down: Runtime

    def call(self, body: bytes, *, queue_down: bool) -> tuple[int, dict[str, str], Any]:
        use_runtime(self.down if queue_down else self.up)
        headers = signed_headers(body, SECRET, msg_id="msg_fuzz")
        response = self.app.lambda_handler(http_event(body, headers), LocalContext("ReceiverFunction", 30.0))
        out_headers = {str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()}
        assert out_headers.get("content-type", "").startswith("application/json"), response
        return int(response["statusCode"]), out_headers, json.loads(response["body"])

    def drain(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", []):
            for message in batch:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            messages.extend(batch)
        return messages


@pytest.fixture
def sqs_receiver() -> Iterator[SqsReceiver]:
    """A receiver whose queue is SQS (moto) with the template's MaximumMessageSize; ``down`` cannot connect."""
    import boto3
    from botocore.config import Config

    with mock_aws(), isolated_stack():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(
            QueueName="fuzz-jobs", Attributes={"MaximumMessageSize": str(MAX_MESSAGE_BYTES)}
        )["QueueUrl"]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            nowhere = f"http://127.0.0.1:{probe.getsockname()[1]}"
        unreachable = boto3.client(
            "sqs",
            region_name="us-east-1",
            endpoint_url=nowhere,
            config=Config(retries={"total_max_attempts": 1}),
        )

        def runtime(queue: SqsJobQueue) -> Runtime:
            return Runtime(
                settings=Settings(),
                queue=queue,
                webhook_secrets=lambda: SECRET,
                api_token=lambda: "unused",
                listener=sample_listener,
            )

        up, down = runtime(SqsJobQueue(url, client=sqs)), runtime(SqsJobQueue(url, client=unreachable))
        use_runtime(up)
        yield SqsReceiver(load_app("receiver"), sqs, url, up, down)


@FUZZ
@given(case=hostile_cases())
def test_hostile_signed_events_never_crash_and_never_queue_what_sqs_or_json_refuse(
    sqs_receiver: SqsReceiver, case: HostileCase
) -> None:
    """Hostile ids, depth, numbers, surrogates, sizes: only 2xx/4xx JSON (503 only with the queue down), and
    every queued message is UTF-8, strict JSON, SQS-safe, within the queue's limit, with the event's ids."""
    status, headers, answer = sqs_receiver.call(case.body, queue_down=case.queue_down)
    messages = sqs_receiver.drain()
    event(f"status {status}")
    assert status in case.expect, (status, answer, case.description)
    assert isinstance(answer, dict)
    if status >= 400:
        assert isinstance(answer["error"], str)
        assert isinstance(answer["message"], str)
    if status == 503:
        assert int(headers["retry-after"]) > 0
    assert len(messages) == (1 if status == 202 else 0), case.description
    for message in messages:
        body = message["Body"]
        body.encode("utf-8")  # strict: a lone surrogate raises
        assert SQS_TEXT.fullmatch(body), ascii(body[:300])
        queued = strict_json(body)
        attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
        assert attributes == {
            "eventId": queued["id"],
            "jobId": queued["context"]["jobId"],
            "job": queued["payload"]["job"],
        }
        assert all(SQS_TEXT.fullmatch(value) for value in attributes.values())
        sent = {name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()}
        assert message_size(body, sent) <= MAX_MESSAGE_BYTES
        assert answer == {"status": "accepted", "jobId": queued["context"]["jobId"], "eventId": queued["id"]}
        assert ACCESS_TOKEN not in body
