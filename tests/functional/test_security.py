"""Security: Standard Webhooks signatures through the receiver, replays, and no secret in any log line."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from flatfile_app_jobs import listener as sample_listener
from flatfile_jobs import webhook
from flatfile_jobs_testing import FakeFlatfile, LocalContext, job_ready_event, signed_headers

from ._leaks import leaks
from ._pipeline import (
    ACCESS_TOKEN,
    API_TOKEN,
    OTHER_SECRET,
    SECRET,
    Invocations,
    ReceiverUnderTest,
    chaos_faults,
    chaos_listener,
    decision,
    http_event,
    isolated_stack,
    load_app,
    make_pipeline,
    receiver_under_test,
    signed_request,
    tap_all_logs,
)

VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.fixture
def stack() -> Iterator[None]:
    with isolated_stack():
        yield


@pytest.fixture
def receiver(stack: None) -> ReceiverUnderTest:
    return receiver_under_test(sample_listener)


@pytest.fixture
def fake() -> Iterator[FakeFlatfile]:
    with FakeFlatfile(token=API_TOKEN, seed=21) as server:
        yield server


def delivery(event: dict[str, Any], **options: Any) -> dict[str, Any]:
    """A signed request for ``event`` (see ``signed_request``)."""
    request: dict[str, Any] = signed_request(event, **options)
    return request


def with_headers(request: dict[str, Any], **changes: str | None) -> dict[str, Any]:
    """A copy of ``request`` with headers replaced (``None`` removes one); names use ``_`` for ``-``."""
    copy: dict[str, Any] = json.loads(json.dumps(request))
    for name, value in changes.items():
        header = name.replace("_", "-")
        if value is None:
            copy["headers"].pop(header, None)
        else:
            copy["headers"][header] = value
    return copy


# -- the published vector ---------------------------------------------------------------------------------


def test_published_vector_signs_and_verifies() -> None:
    """The Standard Webhooks test vector: our signature is byte for byte the published one, and it verifies."""
    headers = webhook.sign(SECRET, VECTOR_BODY, msg_id=VECTOR_ID, timestamp=VECTOR_TIMESTAMP)
    assert headers["webhook-signature"] == VECTOR_SIGNATURE
    assert webhook.verify([SECRET], VECTOR_BODY, headers, now=VECTOR_TIMESTAMP) == VECTOR_ID


def test_published_vector_through_the_receiver_is_stale(receiver: ReceiverUnderTest) -> None:
    """The vector as published (2021 timestamp) is refused by the receiver as too old: 401, nothing queued."""
    headers = {
        "content-type": "application/json",
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    status, answer = receiver.call(http_event(VECTOR_BODY, headers))
    assert status == 401
    assert "too old" in answer["message"]
    assert receiver.drain() == []


def test_vector_body_freshly_signed_passes_the_signature_check(receiver: ReceiverUnderTest) -> None:
    """The vector's body signed now gets past the signature (it is then refused as not an event: 422)."""
    headers = signed_headers(VECTOR_BODY, SECRET, msg_id=VECTOR_ID)
    status, answer = receiver.call(http_event(VECTOR_BODY, headers))
    assert status == 422
    assert answer["error"] == "InvalidEventError"


# -- tampering, time, malformed headers ---------------------------------------------------------------------


def test_a_correct_delivery_is_accepted(receiver: ReceiverUnderTest) -> None:
    """The control case: a signed job:ready event is accepted and queued once."""
    status, answer = receiver.call(delivery(job_ready_event("space:configure", job_id="us_jb_ok")))
    assert (status, answer["jobId"]) == (202, "us_jb_ok")
    assert len(receiver.drain()) == 1


@pytest.mark.parametrize(
    "tamper",
    ["id", "timestamp", "body", "body-whitespace", "signature-bit", "signature-version", "secret"],
)
def test_tampered_deliveries_are_refused(receiver: ReceiverUnderTest, tamper: str) -> None:
    """Changing the id, timestamp, body (even whitespace) or signature, or signing with another secret: 401."""
    event = job_ready_event("space:configure")
    request = delivery(event, secret=OTHER_SECRET if tamper == "secret" else SECRET)
    headers = request["headers"]
    if tamper == "id":
        headers["webhook-id"] += "x"
    elif tamper == "timestamp":
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1)
    elif tamper == "body":
        request["body"] = request["body"].replace("space:configure", "space:configurf")
    elif tamper == "body-whitespace":
        request["body"] += " "
    elif tamper == "signature-bit":
        # Flip one bit of the decoded HMAC (editing the base64 text may only touch its padding bits).
        version, digest = headers["webhook-signature"].split(",", 1)
        flipped = bytearray(base64.b64decode(digest))
        flipped[0] ^= 1
        headers["webhook-signature"] = f"{version},{base64.b64encode(flipped).decode()}"
    elif tamper == "signature-version":
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    status, answer = receiver.call(request)
    assert status == 401
    assert answer["error"] == "WebhookVerificationError"
    assert receiver.drain() == []


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-301, False), (-299, True), (299, True), (301, False), (-86400, False), (10**6, False)],
)
def test_timestamps_more_than_five_minutes_away_are_refused(
    receiver: ReceiverUnderTest, offset: int, accepted: bool
) -> None:
    """Stale and future timestamps beyond ±5 minutes are 401; inside the window the delivery is accepted."""
    request = delivery(job_ready_event("space:configure"), timestamp=int(time.time()) + offset)
    status, _ = receiver.call(request)
    assert status == (202 if accepted else 401)
    assert len(receiver.drain()) == (1 if accepted else 0)


@pytest.mark.parametrize(
    "headers",
    [
        {"webhook_id": None},
        {"webhook_timestamp": None},
        {"webhook_signature": None},
        {"webhook_signature": ""},
        {"webhook_signature": "v1,"},
        {"webhook_signature": "v1,***not base64***"},
        {"webhook_signature": "garbage"},
        {"webhook_signature": "v1," + "A" * 100_000},
        {"webhook_timestamp": "not-a-number"},
        {"webhook_timestamp": "-1"},
        {"webhook_timestamp": "1e9"},
        {"webhook_timestamp": "１２３４５６７８９０"},
        {"webhook_timestamp": "9" * 40},
        {"webhook_id": ""},
        {"webhook_id": "x" * 10_000},
    ],
    ids=lambda headers: ",".join(f"{k}={str(v)[:16]}" for k, v in headers.items()),
)
def test_malformed_signature_headers_are_401_never_500(
    receiver: ReceiverUnderTest, headers: dict[str, str | None]
) -> None:
    """Every missing or malformed Standard Webhooks header is a 401 JSON answer (never an exception)."""
    status, answer = receiver.call(with_headers(delivery(job_ready_event("space:configure")), **headers))
    assert status == 401
    assert answer["error"] == "WebhookVerificationError"
    assert receiver.drain() == []


def test_unsigned_requests_are_refused_unless_allowed(stack: None) -> None:
    """No signature: 401 by default; accepted only when the stack allows unsigned requests and has no secret."""
    event = job_ready_event("space:configure")
    unsigned = http_event(json.dumps(event), {"content-type": "application/json"})
    assert receiver_under_test(sample_listener).call(unsigned)[0] == 401
    assert receiver_under_test(sample_listener, secrets="").call(unsigned)[0] == 401
    allowed = receiver_under_test(sample_listener, secrets="", allow_unsigned=True)
    assert allowed.call(unsigned)[0] == 202
    assert len(allowed.drain()) == 1


def test_a_signature_is_checked_even_where_unsigned_requests_are_allowed(stack: None) -> None:
    """allow_unsigned never turns off verification of a request that carries a (bad) signature."""
    receiver = receiver_under_test(sample_listener, allow_unsigned=True)
    request = delivery(job_ready_event("space:configure"), secret=OTHER_SECRET)
    assert receiver.call(request)[0] == 401
    assert receiver.drain() == []


# -- rotation -----------------------------------------------------------------------------------------------


def test_rotation_accepts_old_and_new_secret_then_only_the_new(stack: None) -> None:
    """During a rotation both secrets verify; once the old one is dropped its signatures are refused."""
    event = job_ready_event("space:configure")
    configured = {"value": f"{SECRET} {OTHER_SECRET}"}
    receiver = receiver_under_test(sample_listener)
    receiver.app.runtime().webhook_secrets = lambda: configured["value"]
    assert receiver.call(delivery(event, secret=SECRET))[0] == 202
    assert receiver.call(delivery(event, secret=OTHER_SECRET))[0] == 202
    configured["value"] = OTHER_SECRET
    assert receiver.call(delivery(event, secret=SECRET))[0] == 401
    assert receiver.call(delivery(event, secret=OTHER_SECRET))[0] == 202
    assert len(receiver.drain()) == 3


def test_several_signatures_in_one_header_pass_if_any_matches(receiver: ReceiverUnderTest) -> None:
    """A sender signing with the old and the new secret during a rotation: one valid entry is enough."""
    event = job_ready_event("space:configure")
    request = delivery(event, secret=SECRET)
    body = request["body"].encode()
    stamp = int(request["headers"]["webhook-timestamp"])
    other = webhook.sign(OTHER_SECRET, body, msg_id=str(event["id"]), timestamp=stamp)["webhook-signature"]
    request["headers"]["webhook-signature"] = f"v1,bm9wZQ== {other} {request['headers']['webhook-signature']}"
    assert receiver.call(request)[0] == 202
    request["headers"]["webhook-signature"] = f"v1,bm9wZQ== {other}"
    assert receiver.call(request)[0] == 401
    assert len(receiver.drain()) == 1


# -- replays --------------------------------------------------------------------------------------------------


def test_a_replayed_delivery_is_accepted_again_and_runs_once(fake: FakeFlatfile, stack: None) -> None:
    """The same signed request replayed 3 times is accepted each time; idempotency makes it one run."""
    invocations = Invocations()
    pipe = make_pipeline(fake, chaos_listener(fake.url, invocations))
    event = fake.create_job_event("chaos:sync")
    job_id = event["context"]["jobId"]
    request = delivery(event, access_token=ACCESS_TOKEN)
    answers = [pipe.deliver(request) for _ in range(3)]
    assert [answer["statusCode"] for answer in answers] == [202, 202, 202]
    stats = pipe.drain()
    assert stats.worker_calls == 3
    assert invocations.count(job_id) == 1
    assert fake.job(job_id)["status"] == ("failed" if decision(job_id) == "fail" else "complete")
    assert sum(1 for _, body in fake.calls(job_id) if body == {"info": "Accepted", "progress": 0}) == 1


def test_the_access_token_never_reaches_the_queue(receiver: ReceiverUnderTest) -> None:
    """A forwarder-shaped delivery is queued as the raw event, without `_accessToken`."""
    event = job_ready_event("space:configure")
    assert receiver.call(delivery(event, access_token=ACCESS_TOKEN))[0] == 202
    (queued,) = receiver.drain()
    assert queued == event
    assert ACCESS_TOKEN not in json.dumps(queued)


# -- no secret in any log line ------------------------------------------------------------------------------


def test_no_secret_in_any_log_line_of_a_chaos_run(
    fake: FakeFlatfile, stack: None, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A faulty run at DEBUG (accepted, refused, failed, retried, dead-lettered jobs): no piece of a secret logged."""
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("FLATFILE_API_URL", fake.url)  # for the dead-letter function
    invocations = Invocations()
    pipe = make_pipeline(fake, chaos_listener(fake.url, invocations), secrets=f"{SECRET},{OTHER_SECRET}")
    dead_letter = load_app("dead_letter")
    events = [fake.create_job_event("chaos:sync" if i % 2 else "chaos:async") for i in range(16)]
    with tap_all_logs() as tap:
        chaos_faults(fake)
        for event in events:
            assert pipe.deliver_event(event, access_token=ACCESS_TOKEN)["statusCode"] == 202
        refused = pipe.deliver_event(events[0], access_token=ACCESS_TOKEN, secret="whsec_" + "QUJD" * 8)
        assert refused["statusCode"] == 401
        stats = pipe.drain()
        fake.clear_faults()
        stranded = fake.create_job_event("chaos:sync")
        assert pipe.deliver_event(stranded, access_token=ACCESS_TOKEN)["statusCode"] == 202
        record = pipe.queue.receive(timeout=1)
        assert record is not None
        assert dead_letter.lambda_handler(
            {"Records": [record]}, LocalContext("DeadLetterFunction", 900.0)
        ) == {"batchItemFailures": []}
    out, err = capfd.readouterr()
    logged = "\n".join([*tap.lines, out, err])
    assert stats.dead_letters == 0
    assert fake.job(stranded["context"]["jobId"])["status"] == "failed"
    # The capture is real: it holds the lines these paths write.
    assert len(tap.lines) > 100
    for expected in (
        "Delivery answered",
        "Delivery refused",
        "Flatfile API call",
        "[FATAL] Planned failure",
        "Dead-lettered job",
    ):
        assert expected in logged, expected
    assert '"level":"INFO"' in out
    # Not one 8-character piece of a key, token or secret (its base64 or key bytes included).
    assert leaks(logged, [API_TOKEN, ACCESS_TOKEN, SECRET, OTHER_SECRET]) == []
