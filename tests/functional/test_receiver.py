"""ReceiverFunction in-process: every answer it gives, against moto SQS and Secrets Manager.

Each test posts an HTTP API (payload v2) event to ``functions/receiver/app.py``'s ``lambda_handler`` with
the cloud wiring built from environment variables; the queue is read back from moto.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from flatfile_app_jobs import listener
from flatfile_jobs import webhook
from flatfile_jobs_cli._events import FunctionName
from flatfile_jobs_testing import LocalContext, forwarded_event, job_ready_event, resign
from flatfile_stack import delivery_policy

from ._pipeline import http_event
from ._support import (
    EVENTS,
    ROOT,
    WEBHOOK_SECRET,
    Answer,
    AwsStack,
    StackEnv,
    answer_of,
    load_event,
    point_logs_at_stdout,
    raw_body,
    signed,
    template_resource,
)

ENVIRONMENT = "us_env_example1"
OTHER_SECRET = "whsec_" + base64.b64encode(b"the previous signing key, rotated").decode()
ACCESS_TOKEN = "sk_agent_token_Vb8Rt2Yq6Wn3Xe5M"
# Standard Webhooks' published test vector
# (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

Post = Callable[[dict[str, Any]], Answer]


def event_body(job: str = "space:configure", **options: Any) -> dict[str, Any]:
    """A job:ready event from the test kit, in this file's environment."""
    options.setdefault("environment_id", ENVIRONMENT)
    return job_ready_event(job, **options)


def compact(value: Any) -> bytes:
    """JSON as a sender posts it."""
    return json.dumps(value, separators=(",", ":")).encode()


def signed_post(body: Any, secret: str = WEBHOOK_SECRET, **options: Any) -> dict[str, Any]:
    """An HTTP API event carrying ``body`` (JSON-encoded unless bytes), signed now with ``secret``."""
    raw = body if isinstance(body, bytes) else compact(body)
    return signed(http_event(raw, **options), secret)


@pytest.fixture
def receiver(
    stack_env: StackEnv, load_app: Callable[[FunctionName], ModuleType], capsys: pytest.CaptureFixture[str]
) -> ModuleType:
    """The receiver's app module with the receiver's environment, loaded as a cold start would."""
    stack_env.only("receiver")
    return load_app("receiver")


@pytest.fixture
def post(receiver: ModuleType, lambda_context: LocalContext) -> Post:
    """Invoke the receiver; every answer must be JSON, with a JSON content type, and never a 5xx."""

    def invoke(event: dict[str, Any]) -> Answer:
        point_logs_at_stdout()
        answer = answer_of(receiver.lambda_handler(event, lambda_context))
        assert answer.content_type == "application/json"
        assert answer.status < 500, answer
        return answer

    return invoke


def refused(answer: Answer, status: int, error: str) -> None:
    """``answer`` is a refusal with this status and error name."""
    assert (answer.status, answer.body["error"]) == (status, error), answer
    assert isinstance(answer.body["message"], str)
    assert answer.body["message"]


# -- 202 / 200 ------------------------------------------------------------------------------------------


def test_accepted_job_is_enqueued_with_its_ids_as_message_attributes(post: Post, aws: AwsStack) -> None:
    """A signed job:ready for a registered job answers 202 and puts the raw event on the SQS queue."""
    event = event_body("space:configure")
    answer = post(signed_post(event))
    assert answer.status == 202
    assert answer.body == {"status": "accepted", "jobId": event["context"]["jobId"], "eventId": event["id"]}
    [message] = aws.receive()
    assert json.loads(message["Body"]) == event
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes == {
        "eventId": event["id"],
        "jobId": event["context"]["jobId"],
        "job": "space:configure",
    }


def test_job_without_a_handler_is_ignored_and_not_enqueued(post: Post, aws: AwsStack) -> None:
    """A job no handler is registered for answers 200 ignored and leaves the queue empty."""
    answer = post(signed_post(event_body("sheet:duplicate")))
    assert (answer.status, answer.body) == (200, {"status": "ignored"})
    assert aws.receive() == []


def test_same_delivery_twice_is_enqueued_twice(post: Post, aws: AwsStack) -> None:
    """A duplicated delivery is accepted both times (the worker's idempotency makes it harmless)."""
    delivery = signed_post(event_body("workbook:submit"))
    assert [post(delivery).status, post(delivery).status] == [202, 202]
    messages = aws.receive()
    assert len(messages) == 2
    assert messages[0]["Body"] == messages[1]["Body"]


def test_base64_body_is_decoded_before_verifying(post: Post, aws: AwsStack) -> None:
    """A body API Gateway base64-encoded is verified and parsed as the sender's bytes."""
    event = event_body("file:process")
    answer = post(signed_post(event, is_base64=True))
    assert answer.status == 202
    [message] = aws.receive()
    assert json.loads(message["Body"]) == event


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_with_parameters_or_any_case_is_accepted(
    post: Post, aws: AwsStack, content_type: str
) -> None:
    """The media type is compared without parameters and case-insensitively."""
    answer = post(signed_post(event_body(), headers={"content-type": content_type}))
    assert answer.status == 202
    assert len(aws.receive()) == 1


# -- forwarder shape and the access token --------------------------------------------------------------


def test_forwarder_shape_is_unwrapped_and_its_access_token_dropped(
    post: Post, aws: AwsStack, receiver: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """The forwarder plugin's body (``src``) is accepted; ``_accessToken`` reaches neither queue nor logs."""
    receiver.logger.setLevel("DEBUG")  # the accepted-delivery line is DEBUG (kept off the hot path)
    event = event_body("workbook:submit")
    answer = post(signed_post(forwarded_event(event, access_token=ACCESS_TOKEN)))
    assert answer.status == 202
    [message] = aws.receive()
    assert json.loads(message["Body"]) == event
    assert "_accessToken" not in message["Body"]
    assert ACCESS_TOKEN not in json.dumps(message)
    out, err = capsys.readouterr()
    assert "Delivery answered" in out
    assert ACCESS_TOKEN not in out + err
    assert ACCESS_TOKEN not in json.dumps(answer.body)


def test_refused_forwarder_delivery_does_not_log_the_access_token(
    post: Post, aws: AwsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forwarder body refused for its shape logs the refusal, never the token."""
    event = event_body("workbook:submit")
    event["topic"] = "job:completed"
    answer = post(signed_post(forwarded_event(event, access_token=ACCESS_TOKEN)))
    refused(answer, 422, "InvalidEventError")
    out, err = capsys.readouterr()
    assert "Delivery refused" in out
    assert ACCESS_TOKEN not in out + err + json.dumps(answer.body)
    assert aws.receive() == []


def test_access_token_is_not_logged_even_with_event_logging_on(
    stack_env: StackEnv,
    load_app: Callable[[FunctionName], ModuleType],
    lambda_context: LocalContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """POWERTOOLS_LOGGER_LOG_EVENT=true (a debugging switch) must not put ``_accessToken`` in the logs."""
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    stack_env.only("receiver")
    receiver = load_app("receiver")
    event = event_body("workbook:submit")
    response = receiver.lambda_handler(
        signed_post(forwarded_event(event, access_token=ACCESS_TOKEN)), lambda_context
    )
    assert answer_of(response).status == 202
    out, err = capsys.readouterr()
    assert "Delivery answered" in out
    assert ACCESS_TOKEN not in out + err


# -- 400 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b'{"id": "us_evt_1",', b"\xff\xfe{}", b"[" * 50_000 + b"]" * 50_000],
    ids=["broken", "empty", "truncated", "not-utf8", "too-deep"],
)
def test_malformed_json_is_400(post: Post, aws: AwsStack, body: bytes) -> None:
    """A correctly signed body that is not UTF-8 JSON answers 400."""
    refused(post(signed_post(body)), 400, "MalformedJSONError")
    assert aws.receive() == []


def test_body_flagged_base64_that_is_not_base64_is_400(post: Post) -> None:
    """``isBase64Encoded`` with a body that does not decode answers 400, not 500."""
    event = http_event(b"{}")
    event["isBase64Encoded"] = True
    event["body"] = "this is not base64!"
    refused(post(event), 400, "MalformedJSONError")


# -- 401 ------------------------------------------------------------------------------------------------


def _drop(name: str) -> Callable[[dict[str, str]], None]:
    def mutate(headers: dict[str, str]) -> None:
        del headers[name]

    return mutate


def _put(name: str, value: str) -> Callable[[dict[str, str]], None]:
    return lambda headers: headers.__setitem__(name, value)


def _resign(secret: str) -> Callable[[dict[str, str]], None]:
    def mutate(headers: dict[str, str]) -> None:
        headers["webhook-signature"] = webhook.sign(
            secret, b"other", msg_id=headers["webhook-id"], timestamp=int(headers["webhook-timestamp"])
        )["webhook-signature"]

    return mutate


BAD_HEADERS: dict[str, Callable[[dict[str, str]], None]] = {
    "no-signature": _drop("webhook-signature"),
    "no-timestamp": _drop("webhook-timestamp"),
    "no-id": _drop("webhook-id"),
    "signature-of-other-body": _resign(WEBHOOK_SECRET),
    "wrong-secret": lambda headers: headers.update(
        webhook.sign(OTHER_SECRET, b"x", msg_id=headers["webhook-id"], timestamp=int(time.time()))
    ),
    "timestamp-not-a-number": _put("webhook-timestamp", "abc"),
    "timestamp-float": _put("webhook-timestamp", "1614265330.5"),
    "timestamp-negative": _put("webhook-timestamp", "-5"),
    "timestamp-empty": _put("webhook-timestamp", ""),
    "timestamp-huge": _put("webhook-timestamp", "9" * 40),
    "timestamp-unicode-digits": _put("webhook-timestamp", "١٦١٤٢٦٥٣٣٠"),
    "signature-garbage-base64": _put("webhook-signature", "v1,@@@not*base64@@@"),
    "signature-truncated-base64": _put("webhook-signature", "v1,g0hM9SsE"),
    "signature-empty-v1": _put("webhook-signature", "v1,"),
    "signature-no-version": _put("webhook-signature", "garbage"),
    "signature-empty": _put("webhook-signature", ""),
    "signature-other-version": lambda headers: headers.__setitem__(
        "webhook-signature", headers["webhook-signature"].replace("v1,", "v2,")
    ),
    "id-empty": _put("webhook-id", ""),
    "id-too-long": _put("webhook-id", "m" * 1000),
}


@pytest.mark.parametrize("mutate", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_missing_wrong_or_malformed_signature_headers_are_401(
    post: Post, aws: AwsStack, mutate: Callable[[dict[str, str]], None]
) -> None:
    """Every missing, wrong or malformed Standard Webhooks header answers 401 (never 500)."""
    delivery = signed_post(event_body())
    mutate(delivery["headers"])
    refused(post(delivery), 401, "WebhookVerificationError")
    assert aws.receive() == []


@pytest.mark.parametrize("offset", [-310, 310, -86_400])
def test_timestamp_more_than_five_minutes_away_is_401(post: Post, offset: int) -> None:
    """A correctly signed delivery whose timestamp is over 5 minutes off (either way) answers 401."""
    event = signed(http_event(compact(event_body())), timestamp=int(time.time()) + offset)
    refused(post(event), 401, "WebhookVerificationError")


@pytest.mark.parametrize("offset", [-240, 240])
def test_timestamp_within_five_minutes_is_accepted(post: Post, offset: int) -> None:
    """Clock skew under 5 minutes either way is tolerated."""
    event = signed(http_event(compact(event_body())), timestamp=int(time.time()) + offset)
    assert post(event).status == 202


def test_unsigned_request_is_refused_by_default(post: Post, aws: AwsStack) -> None:
    """Without ALLOW_UNSIGNED a request with no signature answers 401 and enqueues nothing."""
    refused(post(http_event(compact(event_body()))), 401, "WebhookVerificationError")
    assert aws.receive() == []


def test_unsigned_request_is_accepted_only_when_allowed(post: Post, stack_env: StackEnv) -> None:
    """ALLOW_UNSIGNED=true accepts a request without signature headers; a wrong signature is still 401."""
    stack_env.set(ALLOW_UNSIGNED="true")
    assert post(http_event(compact(event_body()))).status == 202
    wrong = signed_post(event_body(), OTHER_SECRET)
    refused(post(wrong), 401, "WebhookVerificationError")
    assert len(stack_env.aws.receive()) == 1


def test_rotated_secret_list_accepts_old_and_new_secret(post: Post, aws: AwsStack) -> None:
    """During a rotation the stored value "whsec_old whsec_new" accepts deliveries signed with either."""
    aws.set_webhook_secret(f"{OTHER_SECRET} {WEBHOOK_SECRET}")
    assert post(signed_post(event_body(), OTHER_SECRET)).status == 202
    assert post(signed_post(event_body(), WEBHOOK_SECRET)).status == 202
    third = "whsec_" + base64.b64encode(b"a key nobody configured").decode()
    refused(post(signed_post(event_body(), third)), 401, "WebhookVerificationError")
    assert len(aws.receive()) == 2


def test_delivery_with_several_signatures_is_accepted_when_one_matches(post: Post) -> None:
    """A sender signing with old and new secret (space-separated list) is accepted by either receiver."""
    delivery = signed_post(event_body())
    good = delivery["headers"]["webhook-signature"]
    delivery["headers"]["webhook-signature"] = f"v1,{base64.b64encode(b'x' * 32).decode()} {good}"
    assert post(delivery).status == 202


def test_secret_stored_as_the_template_generates_it_is_accepted(post: Post, aws: AwsStack) -> None:
    """The stack stores 32 alphanumerics (no ``whsec_``); a sender using ``whsec_`` + that value is accepted."""
    generated = "Kq3vX9sLm2Tz8YwR4pN6bJ1cH5dF7gA0"
    aws.set_webhook_secret(generated)
    assert post(signed_post(event_body(), f"whsec_{generated}")).status == 202
    refused(post(signed_post(event_body(), WEBHOOK_SECRET)), 401, "WebhookVerificationError")


# Characters SQS accepts in a message body; anything else makes SendMessage fail (InvalidMessageContents).
SQS_BODY = re.compile("^[\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*$")


@pytest.mark.parametrize(
    "escaped",
    ["\\ud83d", "\\udc00 tail", "\\uffff", "\\ufffe", "\\u0000", "\\ud83d\\ude00", "caf\\u00e9 \\u4e2d"],
    ids=["lone-high-surrogate", "lone-low-surrogate", "U+FFFF", "U+FFFE", "NUL", "emoji-pair", "accents-cjk"],
)
def test_any_json_string_is_enqueued_as_sqs_accepts_it(post: Post, aws: AwsStack, escaped: str) -> None:
    """Valid JSON with unusual escapes (a browser's broken emoji…) is accepted and queued intact, never a 5xx."""
    template = compact(event_body(input={"note": "PLACEHOLDER"}))
    body = template.replace(b"PLACEHOLDER", escaped.encode())
    answer = post(signed_post(body))
    assert answer.status == 202, answer
    [message] = aws.receive()
    assert SQS_BODY.match(message["Body"]), ascii(message["Body"])
    assert json.loads(message["Body"]) == json.loads(body)


# -- published test vector (pure verifier, frozen clock) ----------------------------------------------


def test_published_vector_verifies() -> None:
    """Standard Webhooks' published vector verifies at its own timestamp and not 5 minutes later."""
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    assert webhook.verify([VECTOR_SECRET], VECTOR_BODY, headers, now=VECTOR_TIMESTAMP) == VECTOR_ID
    with pytest.raises(webhook.WebhookVerificationError):
        webhook.verify([VECTOR_SECRET], VECTOR_BODY, headers, now=VECTOR_TIMESTAMP + 301)
    with pytest.raises(webhook.WebhookVerificationError):
        webhook.verify([VECTOR_SECRET], VECTOR_BODY + b" ", headers, now=VECTOR_TIMESTAMP)


def test_receiver_path_accepts_a_job_signed_with_the_vector_secret_at_its_timestamp() -> None:
    """``receive`` (the receiver's verifier path) accepts a job:ready signed as the vector is, at a frozen now."""
    policy = delivery_policy.ReceivePolicy(secrets=(VECTOR_SECRET,))
    event = event_body("space:configure")
    body = compact(event)
    headers = {
        "content-type": "application/json",
        **webhook.sign(VECTOR_SECRET, body, msg_id=VECTOR_ID, timestamp=VECTOR_TIMESTAMP),
    }
    delivery = delivery_policy.receive(body, headers, policy=policy, listener=listener, now=VECTOR_TIMESTAMP)
    assert delivery is not None
    assert (delivery.delivery_id, delivery.event) == (VECTOR_ID, event)
    vector_headers = {
        "content-type": "application/json",
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    # The vector's own body passes the signature check and is then refused for its shape.
    with pytest.raises(webhook.InvalidEventError):
        delivery_policy.receive(
            VECTOR_BODY, vector_headers, policy=policy, listener=listener, now=VECTOR_TIMESTAMP
        )
    with pytest.raises(webhook.WebhookVerificationError):
        delivery_policy.receive(
            VECTOR_BODY, vector_headers, policy=policy, listener=listener, now=VECTOR_TIMESTAMP + 301
        )


# -- 403 / 413 / 415 / 422 -----------------------------------------------------------------------------


def test_environment_not_on_the_allow_list_is_403(post: Post, stack_env: StackEnv) -> None:
    """ALLOWED_ENVIRONMENT_IDS refuses other environments with 403 and accepts the listed ones."""
    stack_env.set(ALLOWED_ENVIRONMENT_IDS="us_env_other,us_env_more")
    refused(post(signed_post(event_body())), 403, "ForbiddenEnvironmentError")
    stack_env.set(ALLOWED_ENVIRONMENT_IDS=f"us_env_other, {ENVIRONMENT}")
    assert post(signed_post(event_body())).status == 202
    assert len(stack_env.aws.receive()) == 1


def test_body_over_the_limit_is_413(post: Post, aws: AwsStack) -> None:
    """A body over 256 KiB (an SQS message's limit) answers 413, signed or not."""
    event = event_body(input={"padding": "x" * delivery_policy.MAX_BODY_BYTES})
    refused(post(signed_post(event)), 413, "PayloadTooLargeError")
    refused(post(http_event(compact(event))), 413, "PayloadTooLargeError")
    assert aws.receive() == []


@pytest.mark.parametrize(
    "headers",
    [{"content-type": "text/plain"}, {"content-type": "application/xml"}, {"content-type": ""}, {}],
    ids=["text-plain", "xml", "empty", "missing"],
)
def test_wrong_or_missing_content_type_is_415(post: Post, aws: AwsStack, headers: dict[str, str]) -> None:
    """A body not declared as JSON answers 415."""
    refused(post(signed_post(event_body(), headers=headers)), 415, "UnsupportedMediaTypeError")
    assert aws.receive() == []


def _without(path: str) -> Callable[[dict[str, Any]], Any]:
    def shape(event: dict[str, Any]) -> Any:
        *parents, last = path.split(".")
        target = event
        for key in parents:
            target = target[key]
        del target[last]
        return event

    return shape


WRONG_SHAPES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "not-job-ready": lambda event: {**event, "topic": "job:completed"},
    "no-topic": _without("topic"),
    "no-job-id": _without("context.jobId"),
    "empty-job-id": lambda event: {**event, "context": {**event["context"], "jobId": ""}},
    "no-context": _without("context"),
    "no-payload-job": _without("payload.job"),
    "job-without-colon": lambda event: {**event, "payload": {**event["payload"], "job": "configure"}},
    "no-event-id": _without("id"),
    "array": lambda event: [event],
    "string": lambda event: "job:ready",
    "null": lambda event: None,
}


@pytest.mark.parametrize("shape", WRONG_SHAPES.values(), ids=WRONG_SHAPES.keys())
def test_valid_json_of_the_wrong_shape_is_422(
    post: Post, aws: AwsStack, shape: Callable[[dict[str, Any]], Any]
) -> None:
    """JSON that is not a job:ready event with an id, ``context.jobId`` and ``payload.job`` answers 422."""
    refused(post(signed_post(shape(event_body()))), 422, "InvalidEventError")
    assert aws.receive() == []


# -- signed but hostile: a 4xx, nothing queued ----------------------------------------------------------


def with_input(raw_input: bytes) -> bytes:
    """A job:ready body whose ``payload.input`` is ``raw_input`` as written (no re-encoding)."""
    return compact(event_body(input={"x": "PLACEHOLDER"})).replace(b'{"x":"PLACEHOLDER"}', raw_input)


def signed_as(body: bytes, msg_id: str = "msg_hostile") -> dict[str, Any]:
    """``body`` signed now with an explicit webhook-id (the body's own id may not be valid Unicode)."""
    return resign(http_event(body), WEBHOOK_SECRET, msg_id=msg_id)


def test_input_nested_a_thousand_levels_is_400_not_a_crash(post: Post, aws: AwsStack) -> None:
    """A ``payload.input`` 1,000 objects deep answers 400 before anything recursive runs, and queues nothing."""
    deep = b'{"a":' * 1000 + b"1" + b"}" * 1000
    answer = post(signed_post(with_input(deep)))
    refused(answer, 400, "MalformedJSONError")
    assert f"deeper than {delivery_policy.MAX_DEPTH}" in answer.body["message"]
    assert aws.receive() == []


@pytest.mark.parametrize(
    ("field", "escaped"),
    [
        ("id", "x\\ud800"),
        ("jobId", "x\\udfff"),
        ("job", "space:configure\\ud83d"),
        ("jobId", "us_jb_\\u0000"),
    ],
    ids=["event-id-high-surrogate", "job-id-low-surrogate", "job-name-surrogate", "job-id-nul"],
)
def test_id_a_message_attribute_cannot_carry_is_422_and_not_queued(
    post: Post, aws: AwsStack, field: str, escaped: str
) -> None:
    """A lone surrogate (or NUL) written as a JSON escape in an id that becomes an SQS attribute is refused."""
    event = event_body("space:configure")
    value = {"id": event["id"], "jobId": event["context"]["jobId"], "job": "space:configure"}[field]
    body = compact(event).replace(f'"{field}":"{value}"'.encode(), f'"{field}":"{escaped}"'.encode(), 1)
    assert body != compact(event)
    refused(post(signed_as(body)), 422, "InvalidEventError")
    assert aws.receive() == []


@pytest.mark.parametrize(
    "number",
    [b"1e999", b"-1e999", b"NaN", b"Infinity", b"-Infinity", b"[1.5e400]"],
    ids=["overflow", "negative-overflow", "nan", "infinity", "minus-infinity", "overflow-in-array"],
)
def test_non_standard_numbers_are_400(post: Post, aws: AwsStack, number: bytes) -> None:
    """Numbers RFC 8259 does not have, or that overflow to infinity, answer 400 (never re-written and queued)."""
    refused(post(signed_post(with_input(b'{"n":' + number + b"}"))), 400, "MalformedJSONError")
    assert aws.receive() == []


def test_duplicate_keys_are_400(post: Post, aws: AwsStack) -> None:
    """An object with a key twice answers 400: another parser could read the signed bytes differently."""
    event = event_body("space:configure")
    body = compact(event).replace(b'"topic":"job:ready"', b'"topic":"job:ready","topic":"job:ready"', 1)
    answer = post(signed_post(body))
    refused(answer, 400, "MalformedJSONError")
    assert "'topic'" in answer.body["message"]
    assert aws.receive() == []


def test_body_under_the_limit_whose_attributes_push_it_over_is_413(post: Post, aws: AwsStack) -> None:
    """A body 10 bytes under the queue's limit is refused (413): its message attributes make it too big."""
    from flatfile_stack.queues import MAX_MESSAGE_BYTES

    shell = with_input(b'{"pad":""}')
    body = shell.replace(b'"pad":""', b'"pad":"' + b"x" * (MAX_MESSAGE_BYTES - 10 - len(shell)) + b'"')
    assert len(body) == MAX_MESSAGE_BYTES - 10
    answer = post(signed_post(body))
    refused(answer, 413, "PayloadTooLargeError")
    assert str(MAX_MESSAGE_BYTES) in answer.body["message"]
    assert aws.receive() == []


def test_body_whose_message_just_fits_is_queued(post: Post, aws: AwsStack) -> None:
    """The largest body whose message (body and attributes) fits the limit is accepted and queued whole."""
    from flatfile_stack.queues import MAX_MESSAGE_BYTES

    event = event_body("space:configure")
    attributes = sum(
        len(name) + len("String") + len(value)
        for name, value in (
            ("eventId", event["id"]),
            ("jobId", event["context"]["jobId"]),
            ("job", "space:configure"),
        )
    )
    shell = compact({**event, "payload": {**event["payload"], "input": {"pad": ""}}})
    pad = MAX_MESSAGE_BYTES - attributes - len(shell)
    body = shell.replace(b'"pad":""', b'"pad":"' + b"x" * pad + b'"')
    assert post(signed_post(body)).status == 202
    [message] = aws.receive()
    assert message["Body"].encode() == body


# -- the one 5xx: what the receiver depends on failed ----------------------------------------------------


class SqsDown(http.server.BaseHTTPRequestHandler):
    """An SQS endpoint on loopback answering every call with a 503 (SQS's JSON protocol)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b'{"__type":"com.amazonaws.sqs#ServiceUnavailable","message":"Service Unavailable"}'
        self.send_response(503)
        self.send_header("content-type", "application/x-amz-json-1.0")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def answering_503() -> Iterator[str]:
    """The URL of a loopback server answering 503 to every request."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SqsDown)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def refusing_url() -> str:
    """A loopback URL nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def invoke_raw(receiver: ModuleType, lambda_context: LocalContext, event: dict[str, Any]) -> dict[str, Any]:
    """The receiver's response as Lambda returns it (headers included), whatever its status."""
    point_logs_at_stdout()
    response: dict[str, Any] = receiver.lambda_handler(event, lambda_context)
    return response


def assert_unavailable(response: dict[str, Any], out: str, reason: str) -> None:
    """A 503 JSON answer with Retry-After, and an ERROR log line naming ``reason``."""
    answer = answer_of(response)
    assert (answer.status, answer.body["error"]) == (503, "ServiceUnavailable"), answer
    assert answer.content_type == "application/json"
    headers = {name.lower(): value for name, value in response["headers"].items()}
    assert int(headers["retry-after"]) > 0
    errors = [json.loads(line) for line in out.splitlines() if '"level":"ERROR"' in line]
    assert len(errors) == 1, out
    assert errors[0]["message"] == "Delivery not accepted: a dependency failed"
    assert reason in errors[0]["exception"]
    # The template's metric filter (DeliveriesUnavailable, alarmed) counts exactly this line.
    pattern = template_resource("DeliveriesUnavailableMetricFilter")["Properties"]["FilterPattern"]
    counted = [
        line for line in out.splitlines() if line.startswith("{") and log_filter_matches(pattern, line)
    ]
    assert counted == [line for line in out.splitlines() if '"level":"ERROR"' in line]


def log_filter_matches(pattern: str, line: str) -> bool:
    """CloudWatch Logs' JSON filter pattern, for the ``{ $.key = "text" && $.key = number }`` form used here."""
    terms = re.findall(r'\$\.(\w+)\s*=\s*("[^"]*"|-?\d+(?:\.\d+)?)', pattern)
    assert terms, pattern
    assert pattern.strip().startswith("{"), pattern
    assert pattern.count("&&") == len(terms) - 1, pattern
    record = json.loads(line)
    return all(record.get(key) == json.loads(value) for key, value in terms)


@pytest.mark.parametrize("endpoint", ["503", "refused"])
def test_queue_failing_answers_503_with_retry_after_and_logs_an_error(
    stack_env: StackEnv,
    load_app: Callable[[FunctionName], ModuleType],
    lambda_context: LocalContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answering_503: str,
    endpoint: str,
) -> None:
    """SendMessage failing (SQS answers 503, or cannot be reached) answers 503 + Retry-After, never 202."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", answering_503 if endpoint == "503" else refusing_url())
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's own retries would only slow the test
    stack_env.only("receiver")
    receiver = load_app("receiver")
    response = invoke_raw(receiver, lambda_context, signed_post(event_body()))
    out, _ = capsys.readouterr()
    reason = "ServiceUnavailable" if endpoint == "503" else "EndpointConnectionError"
    assert_unavailable(response, out, reason)
    assert "SQS SendMessage failed" in answer_of(response).body["message"]
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS")
    assert stack_env.aws.receive() == []


def test_secrets_manager_unreachable_answers_503(
    stack_env: StackEnv,
    load_app: Callable[[FunctionName], ModuleType],
    lambda_context: LocalContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The signing secret cannot be read (Secrets Manager unreachable): 503 + Retry-After, nothing queued."""
    from aws_lambda_powertools.utilities.parameters import constants

    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", refusing_url())
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    # Powertools keeps one Secrets Manager client per process: let it build one for this endpoint.
    monkeypatch.delitem(constants.DEFAULT_PROVIDERS, "secrets", raising=False)
    stack_env.only("receiver")
    receiver = load_app("receiver")
    response = invoke_raw(receiver, lambda_context, signed_post(event_body()))
    out, _ = capsys.readouterr()
    assert_unavailable(response, out, "Could not connect to the endpoint URL")
    assert "signing secret" in answer_of(response).body["message"]
    assert stack_env.aws.receive() == []


def test_signing_secret_missing_answers_503(
    stack_env: StackEnv,
    load_app: Callable[[FunctionName], ModuleType],
    lambda_context: LocalContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WEBHOOK_SECRET_ID naming no secret (deleted, mistyped) answers 503 rather than accepting or crashing."""
    stack_env.only("receiver")
    monkeypatch.setenv("WEBHOOK_SECRET_ID", stack_env.aws.webhook_secret_arn + "-gone")
    receiver = load_app("receiver")
    response = invoke_raw(receiver, lambda_context, signed_post(event_body()))
    out, _ = capsys.readouterr()
    assert_unavailable(response, out, "ResourceNotFoundException")
    assert stack_env.aws.receive() == []


# -- ids never change the meaning of a URL ---------------------------------------------------------------

# The table: with these job ids the worker sent the API key to other endpoints.
HOSTILE_JOB_IDS = ["../../events", "x/../../spaces/us_sp_1#", "../sheets/us_sh_1?a=", "us_jb_1/complete"]


def _with_id(where: str, value: object) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def shape(event: dict[str, Any]) -> dict[str, Any]:
        if where == "id":
            return {**event, "id": value}
        return {**event, "context": {**event["context"], where: value}}

    return shape


@pytest.mark.parametrize("job_id", HOSTILE_JOB_IDS)
def test_a_signed_job_id_that_is_not_a_flatfile_id_is_422_naming_the_field(
    post: Post, aws: AwsStack, job_id: str
) -> None:
    """Each of the issue's job ids, signed, answers 422 naming context.jobId and nothing is queued."""
    answer = post(signed_post(_with_id("jobId", job_id)(event_body())))
    refused(answer, 422, "InvalidEventError")
    assert "event.context.jobId" in answer.body["message"]
    assert aws.receive() == []


@pytest.mark.parametrize("job_id", HOSTILE_JOB_IDS)
def test_unsigned_requests_allowed_still_refuse_a_hostile_job_id(
    post: Post, stack_env: StackEnv, aws: AwsStack, job_id: str
) -> None:
    """With AllowUnsignedRequests=true (anyone may post), a hostile job id is still a 422, never queued."""
    stack_env.set(ALLOW_UNSIGNED="true")
    answer = post(http_event(compact(_with_id("jobId", job_id)(event_body()))))
    refused(answer, 422, "InvalidEventError")
    assert "event.context.jobId" in answer.body["message"]
    assert aws.receive() == []


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("id", "us_evt_1/../ack"),
        ("sheetId", "../sheets/us_sh_1?a="),
        ("spaceId", "us_sp_1#x"),
        ("workbookId", "us wb"),
        ("environmentId", "us_env_1/"),
        ("jobId", "us_jb_\u00e9"),
        ("jobId", 7),
    ],
)
def test_every_id_that_may_reach_a_url_is_checked(
    post: Post, aws: AwsStack, where: str, value: object
) -> None:
    """The event id and context's job, sheet, space, workbook and environment ids must be Flatfile ids: 422."""
    answer = post(signed_post(_with_id(where, value)(event_body("data:validate"))))
    refused(answer, 422, "InvalidEventError")
    field = "event.id" if where == "id" else f"event.context.{where}"
    assert field in answer.body["message"]
    assert aws.receive() == []


def test_a_forwarded_event_with_a_hostile_job_id_is_422(post: Post, aws: AwsStack) -> None:
    """The forwarder's shape (raw event under src) is checked the same way."""
    event = _with_id("jobId", "../../events")(event_body())
    answer = post(signed_post(forwarded_event(event, access_token=ACCESS_TOKEN)))
    refused(answer, 422, "InvalidEventError")
    assert "event.context.jobId" in answer.body["message"]
    assert aws.receive() == []


# -- nothing gives a 5xx -------------------------------------------------------------------------------


def test_odd_requests_never_answer_5xx(post: Post) -> None:
    """Requests outside the contract (no body, no headers, other method or path) answer 4xx JSON."""
    no_body = http_event(None)
    no_headers = http_event(compact(event_body()))
    del no_headers["headers"]
    base64_none = http_event(None)
    base64_none["isBase64Encoded"] = True
    many_signatures = signed_post(event_body())
    many_signatures["headers"]["webhook-signature"] = " ".join(["v1,AAAA"] * 10_000)
    odd = [
        no_body,
        no_headers,
        base64_none,
        many_signatures,
        http_event(compact(event_body()), method="GET"),
        http_event(compact(event_body()), path="/other"),
    ]
    statuses = [post(event).status for event in odd]
    assert all(400 <= status < 500 for status in statuses), statuses


# -- the events/ files ---------------------------------------------------------------------------------

RECEIVER_FILES = sorted(path.name for path in (EVENTS / "receiver").glob("*.json"))
EXPECTED_STATUS = {"unhandled_job.json": 200}


def _queued_ids(aws: AwsStack) -> list[str]:
    return [m["MessageAttributes"]["jobId"]["StringValue"] for m in aws.receive()]


@pytest.mark.parametrize("name", RECEIVER_FILES)
def test_events_file_signed_fresh_gets_its_expected_answer(post: Post, aws: AwsStack, name: str) -> None:
    """Each events/receiver file, re-signed now by the CLI's helper (``make events``), is accepted or ignored."""
    event = load_event(f"receiver/{name}")
    answer = post(resign(event, WEBHOOK_SECRET))
    expected = EXPECTED_STATUS.get(name, 202)
    assert answer.status == expected, answer
    delivered = json.loads(raw_body(event))
    job_id = delivered.get("src", delivered)["context"]["jobId"]
    assert _queued_ids(aws) == ([job_id] if expected == 202 else [])


@pytest.mark.parametrize("name", RECEIVER_FILES)
def test_events_file_as_committed_needs_a_signature_or_allow_unsigned(
    post: Post, stack_env: StackEnv, name: str
) -> None:
    """Unsigned (as committed) the files answer 401 by default and their real answer with ALLOW_UNSIGNED=true."""
    event = load_event(f"receiver/{name}")
    # As committed: drop the headers ``make events`` may have added to the working copy.
    event["headers"] = {k: v for k, v in event["headers"].items() if not k.startswith("webhook-")}
    refused(post(event), 401, "WebhookVerificationError")
    stack_env.set(ALLOW_UNSIGNED="true")
    assert post(event).status == EXPECTED_STATUS.get(name, 202)


def test_every_receiver_events_file_is_exercised() -> None:
    """The parametrized tests above cover the four sample jobs and the three variants."""
    assert set(RECEIVER_FILES) == {
        "space_configure.json",
        "workbook_submit.json",
        "file_process.json",
        "data_validate.json",
        "space_configure_base64.json",
        "workbook_submit_forwarded.json",
        "unhandled_job.json",
    }
    assert all(Path(EVENTS / "receiver" / name).is_file() for name in RECEIVER_FILES)


# -- cold start: the app's job table, not its handler modules ---------------------------------------------

_FRESH_FUNCTION = """
import importlib.util, json, sys

spec = importlib.util.spec_from_file_location("app", sys.argv[1])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
handlers = lambda: sorted(name for name in sys.modules if name.startswith("flatfile_app_jobs."))
at_import = handlers()


class Context:
    function_name = "ReceiverFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:receiver"
    aws_request_id = "cold"

    def get_remaining_time_in_millis(self):
        return 30000


status = app.lambda_handler(json.loads(sys.argv[2]), Context())["statusCode"] if len(sys.argv) > 2 else None
print(json.dumps({"at_import": at_import, "after_request": handlers(), "status": status}))
"""


def _fresh_function(name: str, *args: str) -> dict[str, Any]:
    """Run ``functions/<name>/app.py`` in a fresh interpreter (unsigned deliveries allowed, in-memory queue)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "ALLOW_UNSIGNED": "true", "POWERTOOLS_SERVICE_NAME": "cold-start-test"}
    for setting in ("JOB_QUEUE_URL", "WEBHOOK_SECRET_ID", "AWS_LAMBDA_FUNCTION_NAME", "AWS_SAM_LOCAL"):
        env.pop(setting, None)
    app = str(ROOT / "functions" / name / "app.py")
    done = subprocess.run(
        [sys.executable, "-c", _FRESH_FUNCTION, app, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_cold_receiver_accepts_a_job_without_importing_any_handler_module() -> None:
    """A fresh receiver imports the app's job table, answers 202 for a sample job, and no handler module loads."""
    request = http_event(compact(job_ready_event("workbook:export")))
    seen = _fresh_function("receiver", json.dumps(request))
    assert seen == {"at_import": [], "after_request": [], "status": 202}


def test_a_cold_worker_imports_no_handler_module_before_its_first_job() -> None:
    """Importing the worker loads the job table only: a handler module is imported by its first job."""
    assert _fresh_function("worker")["at_import"] == []


@pytest.fixture
def stalling_url() -> Iterator[str]:
    """The URL of a loopback server that accepts connections and never answers (a hung dependency)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_a_hung_queue_answers_503_inside_the_receivers_timeout(
    stack_env: StackEnv,
    load_app: Callable[[FunctionName], ModuleType],
    lambda_context: LocalContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stalling_url: str,
) -> None:
    """SQS accepting but never answering: the receiver itself answers 503 + Retry-After before its Lambda
    timeout (template.yaml), with botocore's bounded attempts; with its defaults it would hang ~60 s per try."""
    from flatfile_stack.aws import worst_case_seconds

    receiver_timeout = float(template_resource("ReceiverFunction")["Properties"]["Timeout"])
    assert worst_case_seconds() < receiver_timeout
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", stalling_url)
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)  # the client's own bound is what is tested
    stack_env.only("receiver")
    receiver = load_app("receiver")
    started = time.monotonic()
    response = invoke_raw(receiver, lambda_context, signed_post(event_body()))
    elapsed = time.monotonic() - started
    out, _ = capsys.readouterr()
    assert_unavailable(response, out, "ReadTimeoutError")
    assert elapsed < receiver_timeout, elapsed
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS")
    assert stack_env.aws.receive() == []
