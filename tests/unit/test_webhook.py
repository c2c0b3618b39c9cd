"""Standard Webhooks signing and verification: the published vector, tolerance, rotation, malformed input."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flatfile_jobs.webhook import (
    TOLERANCE_SECONDS,
    WebhookVerificationError,
    parse_secrets,
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
