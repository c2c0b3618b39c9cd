"""Standard Webhooks signing and verification, pure functions (the clock is passed in).

Signed content is ``"{id}.{timestamp}.{raw body}"``; the secret is ``whsec_`` + base64 of the key bytes;
``webhook-signature`` is a space-separated list of ``v1,<base64 HMAC-SHA256>`` so secrets can be rotated
without downtime. Every malformed input is a :class:`WebhookVerificationError`, never another exception.
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md)

What a receiver accepts beyond the signature (size, content type, JSON, the event's shape) is its own policy
(``flatfile_stack.delivery_policy``); the errors a refused delivery raises are the library's
(:class:`DeliveryError` and its subclasses, re-exported here).

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
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache

from ._errors import (
    DeliveryError,
    ForbiddenEnvironmentError,
    InvalidEventError,
    MalformedJSONError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    WebhookVerificationError,
)

__all__ = [
    "TOLERANCE_SECONDS",
    "DeliveryError",
    "ForbiddenEnvironmentError",
    "InvalidEventError",
    "MalformedJSONError",
    "PayloadTooLargeError",
    "UnsupportedMediaTypeError",
    "WebhookVerificationError",
    "find_header",
    "parse_secrets",
    "sign",
    "verify",
]

TOLERANCE_SECONDS = 300
_PREFIX = "whsec_"
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


def find_header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` (lower case) in ``headers`` of any case; ``None`` when absent."""
    value = headers.get(name)
    if value is not None:
        return value
    for key, candidate in headers.items():
        if key.lower() == name:
            return candidate
    return None


def _header(headers: Mapping[str, str], name: str) -> str:
    value = find_header(headers, name)
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
