"""Standard Webhooks signing and verification: the published vector, tolerance, rotation, malformed input."""

from __future__ import annotations

import base64
import contextlib
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flatfile_app_jobs import listener as sample_listener
from flatfile_jobs.webhook import (
    MAX_DEPTH,
    TOLERANCE_SECONDS,
    Delivery,
    InvalidEventError,
    MalformedJSONError,
    ReceivePolicy,
    WebhookVerificationError,
    parse_secrets,
    receive,
    sign,
    verify,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_" + base64.b64encode(b"another key, for rotation").decode()
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
HEADERS = {"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP), "webhook-signature": SIGNATURE}


def test_sign_reproduces_the_published_vector() -> None:
    """sign() gives the Standard Webhooks test vector's signature and headers."""
    assert sign(SECRET, BODY, msg_id=MSG_ID, timestamp=TIMESTAMP) == HEADERS


def test_verify_accepts_the_published_vector_and_returns_the_id() -> None:
    """verify() accepts the vector at its own time and returns webhook-id (the dedupe key)."""
    assert verify([SECRET], BODY, HEADERS, now=TIMESTAMP) == MSG_ID


def test_header_names_are_case_insensitive() -> None:
    """Headers may arrive in any case (API Gateway lower-cases, others do not)."""
    headers = {"Webhook-Id": MSG_ID, "WEBHOOK-TIMESTAMP": str(TIMESTAMP), "Webhook-Signature": SIGNATURE}
    assert verify([SECRET], BODY, headers, now=TIMESTAMP) == MSG_ID


def test_sign_then_verify_round_trips_with_the_current_time() -> None:
    """A fresh signature verifies without passing a clock."""
    headers = sign(OTHER_SECRET, b"{}", msg_id="us_evt_1")
    assert verify([OTHER_SECRET], b"{}", headers) == "us_evt_1"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (BODY, {**HEADERS, "webhook-id": MSG_ID + "x"}),
        (BODY, {**HEADERS, "webhook-timestamp": str(TIMESTAMP + 1)}),
        (b'{"test": 2432232315}', HEADERS),
        (b'{"test":2432232314}', HEADERS),  # re-serialized JSON is not the signed body
        (BODY + b"\n", HEADERS),
        (BODY, {**HEADERS, "webhook-signature": "v1,h0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}),
    ],
)
def test_tampering_is_rejected(body: bytes, headers: dict[str, str]) -> None:
    """Any change to the id, the timestamp, the body or the signature fails verification."""
    with pytest.raises(WebhookVerificationError):
        verify([SECRET], body, headers, now=int(headers["webhook-timestamp"]))


def test_a_wrong_secret_is_rejected() -> None:
    """A signature made with another secret does not verify."""
    with pytest.raises(WebhookVerificationError, match="no matching"):
        verify([OTHER_SECRET], BODY, HEADERS, now=TIMESTAMP)


@pytest.mark.parametrize(
    ("offset", "ok"),
    [
        (0, True),
        (TOLERANCE_SECONDS, True),
        (-TOLERANCE_SECONDS, True),
        (TOLERANCE_SECONDS + 1, False),  # stale
        (-TOLERANCE_SECONDS - 1, False),  # from the future
        (86_400, False),
        (-86_400, False),
    ],
)
def test_timestamp_tolerance_is_five_minutes_either_way(offset: int, ok: bool) -> None:
    """Deliveries more than 300 s old or ahead of the clock are refused, even with a valid signature."""
    assert TOLERANCE_SECONDS == 300
    if ok:
        assert verify([SECRET], BODY, HEADERS, now=TIMESTAMP + offset) == MSG_ID
    else:
        with pytest.raises(WebhookVerificationError, match="timestamp"):
            verify([SECRET], BODY, HEADERS, now=TIMESTAMP + offset)


def test_rotation_second_secret_matches() -> None:
    """During a rotation the old secret, listed second, still verifies."""
    assert verify([OTHER_SECRET, SECRET], BODY, HEADERS, now=TIMESTAMP) == MSG_ID


def test_rotation_several_signatures_in_the_header() -> None:
    """The header may list several signatures; any one matching any secret is enough."""
    new = sign(OTHER_SECRET, BODY, msg_id=MSG_ID, timestamp=TIMESTAMP)["webhook-signature"]
    both = {**HEADERS, "webhook-signature": f"{new} {SIGNATURE}"}
    assert verify([SECRET], BODY, both, now=TIMESTAMP) == MSG_ID
    assert verify([OTHER_SECRET], BODY, both, now=TIMESTAMP) == MSG_ID
    with_others = {**HEADERS, "webhook-signature": f"v2,abcd v1,!!notbase64 {SIGNATURE}"}
    assert verify([SECRET], BODY, with_others, now=TIMESTAMP) == MSG_ID


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"webhook-timestamp": str(TIMESTAMP), "webhook-signature": SIGNATURE},
        {"webhook-id": MSG_ID, "webhook-signature": SIGNATURE},
        {"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP)},
        {**HEADERS, "webhook-id": ""},
        {**HEADERS, "webhook-id": "x" * 300},
        {**HEADERS, "webhook-timestamp": ""},
        {**HEADERS, "webhook-timestamp": "abc"},
        {**HEADERS, "webhook-timestamp": "1614265330.0"},
        {**HEADERS, "webhook-timestamp": "-1614265330"},
        {**HEADERS, "webhook-timestamp": " 1614265330"},
        {**HEADERS, "webhook-timestamp": "１６１４２６５３３０"},  # full-width digits
        {**HEADERS, "webhook-timestamp": "9" * 40},
        {**HEADERS, "webhook-signature": ""},
        {**HEADERS, "webhook-signature": "v1,"},
        {**HEADERS, "webhook-signature": "v1"},
        {**HEADERS, "webhook-signature": "v1,!!!!"},
        {**HEADERS, "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE"},  # bad padding
        {**HEADERS, "webhook-signature": "v1,ZZZZ"},  # valid base64, wrong length
        {**HEADERS, "webhook-signature": "v1,é"},
        {**HEADERS, "webhook-signature": "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
        {**HEADERS, "webhook-signature": "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
        {**HEADERS, "webhook-signature": " ".join(["v1,AAAA"] * 1000)},
    ],
)
def test_malformed_headers_are_verification_errors(headers: dict[str, str]) -> None:
    """Missing or malformed headers raise WebhookVerificationError (a 401), never another exception."""
    with pytest.raises(WebhookVerificationError):
        verify([SECRET], BODY, headers, now=TIMESTAMP)


def test_an_id_that_is_not_valid_unicode_is_a_verification_error() -> None:
    """A webhook-id with a lone surrogate (JSON "\\ud800" in an API Gateway event) is a 401, not a 500."""
    headers = {**HEADERS, "webhook-id": "msg_\ud800"}
    with pytest.raises(WebhookVerificationError):
        verify([SECRET], BODY, headers, now=TIMESTAMP)


@settings(max_examples=300, deadline=None)
@given(
    msg_id=st.text(max_size=40), stamp=st.text(max_size=20), signature=st.text(max_size=120), body=st.binary()
)
def test_arbitrary_headers_never_raise_anything_else(
    msg_id: str, stamp: str, signature: str, body: bytes
) -> None:
    """Whatever the header values, verify either returns the id or raises WebhookVerificationError."""
    headers = {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": signature}
    with contextlib.suppress(WebhookVerificationError):
        assert verify([SECRET], body, headers, now=TIMESTAMP) == msg_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (SECRET, (SECRET,)),
        (f"{SECRET} {OTHER_SECRET}", (SECRET, OTHER_SECRET)),
        (f"{SECRET},{OTHER_SECRET}", (SECRET, OTHER_SECRET)),
        (f" {SECRET} ,\n {OTHER_SECRET},", (SECRET, OTHER_SECRET)),
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",)),
    ],
)
def test_parse_secrets_splits_on_spaces_and_commas(value: str, expected: tuple[str, ...]) -> None:
    """A configured list of secrets may be separated by spaces and/or commas."""
    assert parse_secrets(value) == expected


@pytest.mark.parametrize(
    "value", ["", " , ", "whsec_!!!", "whsec_", f"{SECRET} whsec_not*base64", "whsec_abc"]
)
def test_parse_secrets_rejects_bad_secrets(value: str) -> None:
    """An empty list, an empty key or a secret that is not base64 is a configuration error (ValueError)."""
    with pytest.raises(ValueError):
        parse_secrets(value)


def test_a_secret_without_the_prefix_verifies_the_same() -> None:
    """The whsec_ prefix is optional: the bare base64 key signs and verifies identically."""
    (bare,) = parse_secrets(SECRET.removeprefix("whsec_"))
    assert verify([bare], BODY, HEADERS, now=TIMESTAMP) == MSG_ID
    assert sign(bare, BODY, msg_id=MSG_ID, timestamp=TIMESTAMP)["webhook-signature"] == SIGNATURE


# -- what receive() refuses before anything recursive or the queue sees it ------------------------------

JOB_HEADERS = {"content-type": "application/json"}
OPEN_POLICY = ReceivePolicy(allow_unsigned=True)


def job_body(raw_input: str = "{}", *, event_id: str = "us_evt_1", job_id: str = "us_jb_1") -> bytes:
    """A job:ready body (for a registered sample job) with ``payload.input`` and the ids as written."""
    return (
        f'{{"id":"{event_id}","topic":"job:ready","context":{{"jobId":"{job_id}"}},'
        f'"payload":{{"job":"space:configure","input":{raw_input}}}}}'
    ).encode()


def nested(levels: int, *, opener: str = '{"a":', closer: str = "}") -> str:
    """``levels`` objects (or arrays) inside each other around a ``1``."""
    return opener * levels + "1" + closer * levels


def accept(body: bytes) -> Delivery:
    delivery = receive(body, JOB_HEADERS, policy=OPEN_POLICY, listener=sample_listener)
    assert delivery is not None
    return delivery


def test_nesting_up_to_the_limit_is_accepted_one_more_level_is_refused() -> None:
    """The event nests MAX_DEPTH levels (input at depth 3): accepted; one level more: MalformedJSONError."""
    accept(job_body(nested(MAX_DEPTH - 2)))
    accept(job_body(nested(MAX_DEPTH - 2, opener="[", closer="]")))
    for opener, closer in (('{"a":', "}"), ("[", "]")):
        with pytest.raises(MalformedJSONError, match=f"deeper than {MAX_DEPTH}"):
            receive(
                job_body(nested(MAX_DEPTH - 1, opener=opener, closer=closer)),
                JOB_HEADERS,
                policy=OPEN_POLICY,
                listener=sample_listener,
            )


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    """Brackets in strings (escaped quotes and backslashes around them too) are text, not depth."""
    text = '"' + "[{" * 200 + '\\"\\\\' + "]}" * 200 + '"'
    delivery = accept(job_body(f'{{"note":{text},"deep":{nested(10)}}}'))
    assert delivery.event["payload"]["input"]["note"].startswith("[{[{")


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":"' + b"[" * 100_000,
        b'"\\"' * 50_000 + b"[" * 100,
        b"[" * 100_000 + b'"',
        b"}" * 100 + b"{" * 100,
    ],
    ids=["unterminated-string", "escaped-quotes-only", "string-after-brackets", "closers-first"],
)
def test_malformed_text_full_of_brackets_is_a_malformed_json_error(body: bytes) -> None:
    """Unbalanced or unterminated text with many brackets is a MalformedJSONError, never another exception."""
    with pytest.raises(MalformedJSONError):
        receive(body, JOB_HEADERS, policy=OPEN_POLICY, listener=sample_listener)


JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ax\u00e9', max_size=6)


def depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@settings(max_examples=200, deadline=None)
@given(
    inner=st.recursive(
        JSON_LEAVES,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(JSON_LEAVES.filter(lambda leaf: isinstance(leaf, str)), children, max_size=3)
        ),
        max_leaves=8,
    ),
    wrappers=st.lists(st.sampled_from(["list", "dict"]), max_size=MAX_DEPTH + 4),
)
def test_depth_check_agrees_with_the_parsed_value(inner: object, wrappers: list[str]) -> None:
    """Refused for depth exactly when the parsed event nests deeper than MAX_DEPTH (brackets in keys too)."""
    value: object = inner
    for kind in wrappers:
        value = [value] if kind == "list" else {"k[": value}
    body = job_body(json.dumps(value))
    if 2 + depth(value) > MAX_DEPTH:
        with pytest.raises(MalformedJSONError, match="deeper than"):
            accept(body)
    else:
        accept(body)


@pytest.mark.parametrize(
    "number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1E400", "123456789e999"]
)
def test_numbers_json_does_not_have_are_refused(number: str) -> None:
    """NaN, Infinity and numbers overflowing to infinity are not RFC 8259 JSON: MalformedJSONError."""
    with pytest.raises(MalformedJSONError):
        receive(job_body(f'{{"n":{number}}}'), JOB_HEADERS, policy=OPEN_POLICY, listener=sample_listener)


def test_large_small_and_exact_numbers_are_kept() -> None:
    """The largest double, an underflow to zero and big integers are standard JSON, queued as sent."""
    raw = '{"max":1.7976931348623157e308,"tiny":1e-999,"big":123456789012345678901234567890,"neg":-0.5}'
    delivery = accept(job_body(raw))
    assert delivery.event["payload"]["input"] == {
        "max": 1.7976931348623157e308,
        "tiny": 0.0,
        "big": 123456789012345678901234567890,
        "neg": -0.5,
    }
    assert raw in delivery.body


@pytest.mark.parametrize(
    "raw_input",
    ['{"a":1,"a":2}', '{"x":{"b":1,"c":2,"b":3}}', '[{"k":1},{"k":2,"k":2}]'],
    ids=["top", "nested", "in-array"],
)
def test_duplicate_keys_anywhere_are_refused(raw_input: str) -> None:
    """A key twice in one object, at any depth, is a MalformedJSONError naming the key."""
    with pytest.raises(MalformedJSONError, match="appears twice"):
        receive(job_body(raw_input), JOB_HEADERS, policy=OPEN_POLICY, listener=sample_listener)


def test_same_key_in_different_objects_is_fine() -> None:
    """Only duplicates within one object are refused."""
    accept(job_body('[{"k":1},{"k":2}]'))


@pytest.mark.parametrize(
    ("ids", "field"),
    [
        ({"event_id": "x\\ud800"}, "event.id"),
        ({"job_id": "x\\udfff"}, "event.context.jobId"),
        ({"job_id": "us_jb_\\u0001"}, "event.context.jobId"),
        ({"event_id": "us_evt_\\uffff"}, "event.id"),
    ],
)
def test_ids_sqs_cannot_carry_as_attributes_are_invalid_events(ids: dict[str, str], field: str) -> None:
    """A lone surrogate, control character or non-character in an id is refused, naming the field."""
    with pytest.raises(InvalidEventError, match=re.escape(field)):
        receive(job_body(**ids), JOB_HEADERS, policy=OPEN_POLICY, listener=sample_listener)


def test_lone_surrogate_in_the_input_is_queued_escaped() -> None:
    """Outside the ids a lone surrogate is valid JSON text: accepted, and the queued body stays UTF-8."""
    delivery = accept(job_body('{"note":"x\\ud800"}'))
    assert delivery.body.encode("utf-8")
    assert json.loads(delivery.body)["payload"]["input"]["note"] == "x\ud800"
