"""What the receiver accepts: one webhook delivery checked, cheapest first, and turned into a queue message.

The library verifies the Standard Webhooks signature (:func:`flatfile_jobs.webhook.verify`) and checks the
event's shape and ids (``require_job_ready``); this policy adds what a receiver on the public internet needs:
a size cap, JSON content types only, RFC 8259 JSON only (no NaN/Infinity, no number that overflows, no
duplicate keys) with a nesting cap checked before anything recursive parses it, an environment allow-list,
and what the job queue can carry (``queues.require_queueable``). The receiver and the poller both use it, so
a polled event becomes exactly the message a delivered one does.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flatfile_jobs._events import event_without_token, require_job_ready
from flatfile_jobs.webhook import (
    DeliveryError,
    ForbiddenEnvironmentError,
    InvalidEventError,
    MalformedJSONError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    WebhookVerificationError,
    find_header,
    verify,
)

from .queues import MAX_MESSAGE_BYTES, Delivery, queue_safe, require_queueable

if TYPE_CHECKING:
    from flatfile_jobs import FlatfileListener

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "Delivery",
    "DeliveryError",
    "ForbiddenEnvironmentError",
    "InvalidEventError",
    "MalformedJSONError",
    "PayloadTooLargeError",
    "ReceivePolicy",
    "UnsupportedMediaTypeError",
    "WebhookVerificationError",
    "receive",
]

# A body the job queue could never carry is refused before anything else; a job:ready event is a few KiB.
MAX_BODY_BYTES = MAX_MESSAGE_BYTES
# Arrays and objects nested deeper than this are refused before anything recursive (the JSON parser, the
# filter flattening, a deep copy) sees them; a Flatfile event nests a handful of levels.
MAX_DEPTH = 64
# A JSON string token, escapes included; an unterminated one runs to the end (one pass, never quadratic).
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\[\s\S])*+(?:"|\\?\Z)')
_NOT_BRACKET = bytes(byte for byte in range(256) if byte not in b"[]{}")
_BRACKET_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes


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


def _check_content_type(headers: Mapping[str, str]) -> None:
    media_type = (find_header(headers, "content-type") or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaTypeError("content-type must be application/json")


def _authenticate(
    body: bytes, headers: Mapping[str, str], policy: ReceivePolicy, now: float | None
) -> str | None:
    signed = any(find_header(headers, name) is not None for name in ("webhook-signature", "webhook-id"))
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
    if len(body) > policy.max_body_bytes:
        raise PayloadTooLargeError(f"the body is over {policy.max_body_bytes} bytes")
    _check_content_type(headers)
    delivery_id = _authenticate(body, headers, policy, now)
    text, parsed = _parse(body)
    if not isinstance(parsed, Mapping):
        raise InvalidEventError("the body must be a JSON object")
    event = event_without_token(parsed)
    view = require_job_ready(event)
    require_queueable(event)
    if policy.allowed_environments and view.environment_id not in policy.allowed_environments:
        raise ForbiddenEnvironmentError("events from this Flatfile environment are not accepted")
    if not listener.matches(event):
        return None
    # The raw event as sent is queued as is (no re-serializing); a forwarded or token-carrying one is rewritten.
    if event is not parsed:
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return Delivery(event=event, body=queue_safe(text), delivery_id=delivery_id or view.id)
