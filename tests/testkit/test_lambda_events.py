"""The test kit's Lambda side: signed API Gateway requests, SQS records, LocalContext and load_function."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from flatfile_jobs import webhook
from flatfile_jobs_testing import (
    FakeFlatfile,
    LocalContext,
    forwarded_event,
    http_api_event,
    job_ready_event,
    load_function,
    request_body,
    resign,
    signed_headers,
    sqs_event,
    sqs_record,
    webhook_request,
)
from flatfile_jobs_testing._server import HttpRequest
from flatfile_stack.queues import Delivery, MemoryJobQueue

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ROOT = Path(__file__).resolve().parents[2]


def test_signed_headers_verify_and_carry_the_events_id() -> None:
    """The signature verifies over the exact body; webhook-id is the Flatfile event's id (src.id when forwarded)."""
    event = job_ready_event(event_id="us_evt_sig1")
    for body in (json.dumps(event).encode(), json.dumps(forwarded_event(event)).encode()):
        headers = signed_headers(body, SECRET)
        assert headers["content-type"] == "application/json"
        assert headers["webhook-id"] == "us_evt_sig1"
        assert webhook.verify([SECRET], body, headers) == "us_evt_sig1"
        with pytest.raises(webhook.WebhookVerificationError):
            webhook.verify([SECRET], body + b" ", headers)


def test_signed_headers_take_an_explicit_id_and_timestamp() -> None:
    """msg_id and timestamp are used as given (the published Standard Webhooks vector reproduces)."""
    body = b'{"test": 2432232314}'
    headers = signed_headers(body, SECRET, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330)
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-timestamp"] == "1614265330"


def test_webhook_request_is_the_receivers_event_signed_or_not() -> None:
    """POST /webhook as HTTP API v2, compact JSON body; signed with a secret, no webhook-* headers without."""
    event = job_ready_event(event_id="us_evt_req1")
    signed = webhook_request(event, secret=SECRET, headers={"user-agent": "forwarder"})
    assert (signed["version"], signed["routeKey"], signed["requestContext"]["http"]["method"]) == (
        "2.0",
        "POST /webhook",
        "POST",
    )
    assert json.loads(signed["body"]) == event
    assert signed["headers"]["user-agent"] == "forwarder"
    assert webhook.verify([SECRET], request_body(signed), signed["headers"]) == "us_evt_req1"
    unsigned = webhook_request(event, secret=None)
    assert not [name for name in unsigned["headers"] if name.startswith("webhook-")]


def test_resign_replaces_only_the_signature_headers() -> None:
    """An old signature is replaced by a fresh one over the same body; other headers keep their names."""
    request = webhook_request(job_ready_event(), secret=SECRET, timestamp=int(time.time()) - 3600)
    request["headers"]["X-Custom"] = "kept"
    fresh = resign(request, SECRET)
    assert fresh["headers"]["X-Custom"] == "kept"
    assert fresh["headers"]["webhook-timestamp"] != request["headers"]["webhook-timestamp"]
    assert fresh["body"] == request["body"]
    webhook.verify([SECRET], request_body(fresh), fresh["headers"])
    with pytest.raises(webhook.WebhookVerificationError):
        webhook.verify([SECRET], request_body(request), request["headers"])


def test_request_body_gives_back_the_senders_bytes() -> None:
    """A non-UTF-8 body is base64-encoded by http_api_event and decoded back by request_body."""
    raw = b"\xff\xfe not utf-8"
    request = http_api_event("POST", "/webhook?x=1", {"Content-Type": "a", "content-type": "b"}, raw)
    assert request["isBase64Encoded"] is True
    assert base64.b64decode(request["body"]) == raw
    assert request_body(request) == raw
    assert request["headers"]["content-type"] == "a,b"
    assert request["queryStringParameters"] == {"x": "1"}


def test_sqs_record_matches_what_the_local_queue_hands_the_worker() -> None:
    """Same body and message attributes as the stack's in-process queue gives for the same event."""
    event = job_ready_event("workbook:submit", job_id="us_jb_sqs1", event_id="us_evt_sqs1")
    queue = MemoryJobQueue(max_receives=1)
    queue.send(Delivery(event=event, body=json.dumps(event, separators=(",", ":")), delivery_id="x"))
    queued = queue.receive(timeout=0)
    assert queued is not None
    record = sqs_record(event, message_id="m-1", receive_count=2)
    assert record["body"] == queued["body"]
    assert {name: value["stringValue"] for name, value in record["messageAttributes"].items()} == {
        name: value["stringValue"] for name, value in queued["messageAttributes"].items()
    }
    assert set(record) == set(queued)
    assert (record["messageId"], record["attributes"]["ApproximateReceiveCount"]) == ("m-1", "2")
    assert sqs_event(record) == {"Records": [record]}


def test_local_context_counts_down() -> None:
    """get_remaining_time_in_millis falls with time; set_remaining moves the end."""
    context = LocalContext("WorkerFunction", 900.0)
    assert 899_000 < context.get_remaining_time_in_millis() <= 900_000
    context.set_remaining(1.0)
    assert 0 < context.get_remaining_time_in_millis() <= 1000
    assert context.invoked_function_arn.endswith(":function:WorkerFunction")


def test_load_function_loads_a_fresh_app_each_time_or_says_what_is_missing(tmp_path: Path) -> None:
    """Two loads are two module objects (two execution environments); a missing app is FileNotFoundError."""
    first, second = load_function(ROOT, "receiver"), load_function(ROOT, "receiver")
    assert first is not second
    assert callable(first.lambda_handler)
    with pytest.raises(FileNotFoundError, match="no Lambda function"):
        load_function(tmp_path, "receiver")


def test_each_loaded_function_keeps_its_own_metrics_as_its_own_process_would() -> None:
    """Powertools' Metrics share class-level dicts in a process; two loads are two environments, so two sets.

    Before, a metric one worker copy added was flushed (and cleared) by another running in a thread beside it,
    which then raised SchemaValidationError on its own flush (seen in CI, test_concurrent_duplicates_...).
    """
    first, second = load_function(ROOT, "worker"), load_function(ROOT, "worker")
    first.metrics.add_metric(name="JobsStarted", unit="Count", value=1)
    assert second.metrics.provider.metric_set == {}
    assert list(first.metrics.provider.metric_set) == ["JobsStarted"]
    second.metrics.add_dimension(name="job", value="x")
    assert "job" not in first.metrics.provider.dimension_set
    first.metrics.clear_metrics()
    assert first.metrics.provider.metric_set == {}


def test_the_fake_answers_through_its_public_respond_method() -> None:
    """respond() answers an HTTP request without the server: auth checked, routed, recorded."""
    with FakeFlatfile(token="sk_test_respond") as fake:
        job = fake.add_job("space:configure")
        headers = {"authorization": "Bearer sk_test_respond"}
        reply = fake.respond(HttpRequest("GET", f"/v1/jobs/{job['id']}", headers, b""))
        assert (reply.status, json.loads(reply.body)["data"]["id"]) == (200, job["id"])
        refused = fake.respond(HttpRequest("GET", f"/v1/jobs/{job['id']}", {}, b""))
        assert refused.status == 401
        assert [request.status for request in fake.requests] == [200, 401]
