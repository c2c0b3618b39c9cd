"""Standard Webhooks signing and verification, pure functions (the clock is passed in).

Signed content is ``"{id}.{timestamp}.{raw body}"``; the secret is ``whsec_`` + base64 of the key bytes;
``webhook-signature`` is a space-separated list of ``v1,<base64 HMAC-SHA256>`` so secrets can be rotated
without downtime. Every malformed input is a :class:`WebhookVerificationError`, never another exception.

Example:
    >>> headers = sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", b'{"test": 2432232314}',
    ...                msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330)
    >>> headers["webhook-signature"]
    'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ._errors import (
    DeliveryError,
    ForbiddenEnvironmentError,
    InvalidEventError,
    MalformedJSONError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    WebhookVerificationError,
)

if TYPE_CHECKING:
    from ._listener import FlatfileListener

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "TOLERANCE_SECONDS",
    "Delivery",
    "DeliveryError",
    "ForbiddenEnvironmentError",
    "InvalidEventError",
    "MalformedJSONError",
    "PayloadTooLargeError",
    "ReceivePolicy",
    "UnsupportedMediaTypeError",
    "WebhookVerificationError",
    "parse_secrets",
    "receive",
    "sign",
    "verify",
]

TOLERANCE_SECONDS = 300
# SQS takes 256 KiB per message; a job:ready event is a few KiB.
MAX_BODY_BYTES = 256 * 1024
_PREFIX = "whsec_"
# Characters an SQS message body may not hold: lone surrogates (not even UTF-8) and U+FFFE/U+FFFF.
# In compact JSON they can only sit inside strings, where a \uXXXX escape means the same.
_QUEUE_UNSAFE = re.compile("[\ud800-\udfff\ufffe\uffff]")
# What an SQS message attribute value may hold (SQS's character set): ids with anything else are refused.
_QUEUE_TEXT = re.compile("[\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]+")
# Arrays and objects nested deeper than this are refused before anything recursive (the JSON parser, the
# filter flattening, a deep copy) sees them; a Flatfile event nests a handful of levels.
MAX_DEPTH = 64
# A JSON string token, escapes included; an unterminated one runs to the end (one pass, never quadratic).
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\[\s\S])*+(?:"|\\?\Z)')
_NOT_BRACKET = bytes(byte for byte in range(256) if byte not in b"[]{}")
_BRACKET_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes
_MAX_SIGNATURES = 16


@lru_cache(maxsize=16)
def _key(secret: str) -> bytes:
    """Decode a ``whsec_`` secret into its key bytes."""
    encoded = secret.removeprefix(_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret must be 'whsec_' followed by base64") from exc
    if not key:
        raise ValueError("a webhook secret must not be empty")
    return key


def parse_secrets(value: str) -> tuple[str, ...]:
    """Split a configured secret list (space- or comma-separated) and check each one decodes.

    Raises:
        ValueError: When the list is empty or a secret is not ``whsec_`` + base64.
    """
    secrets = tuple(part for part in value.replace(",", " ").split() if part)
    if not secrets:
        raise ValueError("no webhook secret given")
    for secret in secrets:
        _key(secret)
    return secrets


def _signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def sign(secret: str, body: bytes, *, msg_id: str, timestamp: int | None = None) -> dict[str, str]:
    """Return the three Standard Webhooks headers for ``body``.

    Args:
        secret: A ``whsec_…`` secret.
        body: The exact bytes that will be sent.
        msg_id: The delivery id (use the Flatfile event id so the receiver can dedupe on it).
        timestamp: Unix seconds; now when omitted.
    """
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = _signature(_key(secret), msg_id, stamp, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def _find_header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, candidate in headers.items():
        if key.lower() == name:
            return candidate
    return None


def _header(headers: Mapping[str, str], name: str) -> str:
    value = _find_header(headers, name)
    if value is None:
        raise WebhookVerificationError(f"missing {name} header")
    return value


def verify(
    secrets: Sequence[str], body: bytes, headers: Mapping[str, str], *, now: float | None = None
) -> str:
    """Check a delivery's signature; return its ``webhook-id`` (the dedupe key).

    Args:
        secrets: Accepted ``whsec_…`` secrets (several during a rotation).
        body: The raw body bytes as received, never re-serialized JSON.
        headers: Request headers, any case.
        now: Unix seconds; the current time when omitted.

    Raises:
        WebhookVerificationError: Missing or malformed headers, a timestamp more than five minutes away,
            or no signature that matches any secret.
    """
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not msg_id or len(msg_id) > 256 or not _encodable(msg_id):
        raise WebhookVerificationError("invalid webhook-id header")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise WebhookVerificationError("invalid webhook-timestamp header")
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > TOLERANCE_SECONDS:
        raise WebhookVerificationError("webhook-timestamp is too old or too far in the future")
    candidates = [_decode_v1(item) for item in signatures.split()[:_MAX_SIGNATURES]]
    expected = [_signature(_key(secret), msg_id, stamp, body) for secret in secrets]
    matched = False
    for candidate in candidates:
        for digest in expected:
            # Check every pair so the time taken does not depend on which one matched.
            matched |= candidate is not None and hmac.compare_digest(candidate, digest)
    if not matched:
        raise WebhookVerificationError("no matching webhook signature")
    return msg_id


def _encodable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (a JSON-decoded header may hold a lone surrogate)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _decode_v1(item: str) -> bytes | None:
    """Decode one ``v1,<base64>`` entry; other versions and malformed entries give ``None``."""
    version, _, encoded = item.partition(",")
    if version != "v1" or not encoded:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class ReceivePolicy:
    """What a receiver accepts. Secrets never show in ``repr``.

    Attributes:
        secrets: Accepted signing secrets; several during a rotation.
        allow_unsigned: Accept requests without a signature (only behind another authenticator).
        allowed_environments: Flatfile environment ids to accept; empty accepts any.
        max_body_bytes: Larger bodies are refused.
    """

    secrets: tuple[str, ...] = field(default=(), repr=False)
    allow_unsigned: bool = False
    allowed_environments: frozenset[str] = frozenset()
    max_body_bytes: int = MAX_BODY_BYTES


@dataclass(frozen=True, slots=True)
class Delivery:
    """A job:ready event accepted for the queue.

    Attributes:
        event: The raw event, without ``_accessToken``.
        body: ``event`` as JSON text: what goes on the queue (the sender's text when it was a raw event).
        delivery_id: The ``webhook-id`` (the sender's dedupe key), else the event id.
    """

    event: dict[str, Any]
    body: str
    delivery_id: str

    @property
    def event_id(self) -> str:
        """The Flatfile event id."""
        return str(self.event["id"])

    @property
    def job_id(self) -> str:
        """The job id (``context.jobId``)."""
        return str(self.event["context"]["jobId"])

    @property
    def job(self) -> str:
        """The job name (``payload.job``)."""
        return str(self.event["payload"]["job"])


def _check_content_type(headers: Mapping[str, str]) -> None:
    media_type = (_find_header(headers, "content-type") or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaTypeError("content-type must be application/json")


def _authenticate(
    body: bytes, headers: Mapping[str, str], policy: ReceivePolicy, now: float | None
) -> str | None:
    signed = any(_find_header(headers, name) is not None for name in ("webhook-signature", "webhook-id"))
    if policy.secrets and (signed or not policy.allow_unsigned):
        return verify(policy.secrets, body, headers, now=now)
    if not policy.allow_unsigned:
        raise WebhookVerificationError("unsigned requests are not accepted")
    return None


def _nests_too_deep(body: bytes) -> bool:
    """Whether arrays and objects in ``body`` (JSON text) nest deeper than :data:`MAX_DEPTH`, without recursion.

    Strings are cut out first (a bracket in a string does not nest), then the running sum of ``+1`` per
    ``[``/``{`` and ``-1`` per ``]``/``}`` is taken in C. Text that is not JSON gives some answer; the
    parser refuses that text anyway.
    """
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return False
    steps = _JSON_STRING.sub(b"", body).translate(_BRACKET_STEP, _NOT_BRACKET)
    return max(itertools.accumulate(memoryview(steps).cast("b")), default=0) > MAX_DEPTH


def _refuse_constant(name: str) -> Any:  # noqa: ANN401 - json's parse_constant hook; never returns
    raise MalformedJSONError(f"{name} is not a JSON number (RFC 8259): send finite numbers only")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise MalformedJSONError(f"the number {text[:32]} is out of range (it would be Infinity)")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        from collections import Counter

        duplicate = next(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
        raise MalformedJSONError(f"the key {duplicate[:64]!r} appears twice in one object")
    return obj


# RFC 8259 JSON only: no NaN/Infinity, no number that overflows to infinity, no duplicate keys (another
# parser could read a signed body with duplicates differently: first value wins in some, last in others).
_STRICT_JSON = json.JSONDecoder(
    parse_float=_finite_float, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys
)


def _parse(body: bytes) -> tuple[str, Any]:
    """The body as text and as strict JSON, its nesting checked before the (recursive) parser runs."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJSONError("the body is not valid UTF-8 JSON") from exc
    if _nests_too_deep(body):
        raise MalformedJSONError(f"the JSON nests deeper than {MAX_DEPTH} levels")
    try:
        return text, _STRICT_JSON.decode(text)
    except (ValueError, RecursionError) as exc:
        raise MalformedJSONError("the body is not valid UTF-8 JSON") from exc


def _require_queueable(event: Mapping[str, Any]) -> None:
    """The ids that become SQS message attributes hold only characters SQS takes (no lone surrogate)."""
    values = (event["id"], event["context"]["jobId"], event["payload"]["job"])
    if "".join(values).isprintable():  # the usual case, in C: printable characters are all SQS-safe
        return
    for name, value in zip(("id", "context.jobId", "payload.job"), values, strict=True):
        if not _QUEUE_TEXT.fullmatch(value):
            raise InvalidEventError(
                f"event.{name} holds a character a queue cannot carry (a lone surrogate or a control character)"
            )


def _queue_safe(text: str) -> str:
    """``text`` with the characters SQS refuses written as JSON escapes (same JSON value)."""
    return _QUEUE_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def receive(
    body: bytes,
    headers: Mapping[str, str],
    *,
    policy: ReceivePolicy,
    listener: FlatfileListener,
    now: float | None = None,
) -> Delivery | None:
    """Check one webhook delivery; return what to enqueue, or ``None`` when no handler wants the job.

    Accepts the raw Flatfile event and the webhook-event-forwarder's shape (``src``); ``_accessToken`` is
    dropped before anything else sees the event. Checks run cheapest-first and signature before parsing.

    Raises:
        PayloadTooLargeError: The body is over ``policy.max_body_bytes``.
        UnsupportedMediaTypeError: The content type is not JSON.
        WebhookVerificationError: The signature is missing (and required), malformed, stale or wrong.
        MalformedJSONError: The body is not UTF-8 JSON as RFC 8259 defines it (no NaN/Infinity, no number
            overflowing to infinity, no duplicate keys) or nests deeper than :data:`MAX_DEPTH`.
        InvalidEventError: Not a job:ready event with ``context.jobId`` and ``payload.job``, or one of the
            ids that become message attributes holds a character SQS refuses.
        ForbiddenEnvironmentError: The event's environment is not on the allow-list.
    """
    from ._events import raw_event, require_job_ready

    if len(body) > policy.max_body_bytes:
        raise PayloadTooLargeError(f"the body is over {policy.max_body_bytes} bytes")
    _check_content_type(headers)
    delivery_id = _authenticate(body, headers, policy, now)
    text, parsed = _parse(body)
    if not isinstance(parsed, Mapping):
        raise InvalidEventError("the body must be a JSON object")
    event = raw_event(parsed)
    view = require_job_ready(event)
    _require_queueable(event)
    if policy.allowed_environments and view.environment_id not in policy.allowed_environments:
        raise ForbiddenEnvironmentError("events from this Flatfile environment are not accepted")
    if not listener.matches(event):
        return None
    # The raw event as sent is queued as is (no re-serializing); a forwarded or token-carrying one is rewritten.
    if event is not parsed:
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return Delivery(event=event, body=_queue_safe(text), delivery_id=delivery_id or view.id)
