"""The receiver's one operation: check a delivery, enqueue it, say what happened."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .delivery_policy import MalformedJSONError, receive

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["SecretUnavailableError", "accept", "raw_body"]


class SecretUnavailableError(Exception):
    """The webhook signing secret could not be read: nothing can be verified, so the sender should retry."""


def raw_body(body: str | None, *, is_base64_encoded: bool) -> bytes:
    """The request body as the sender's bytes (API Gateway base64-encodes binary bodies)."""
    if not body:
        return b""
    if is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedJSONError("the body is flagged base64 but is not") from None
    try:
        return body.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate no byte maps to: keep it, the JSON check refuses it (4xx)
        return body.encode("utf-8", errors="surrogatepass")


def accept(body: bytes, headers: Mapping[str, str], runtime: Runtime) -> tuple[int, dict[str, Any]]:
    """Verify, parse and route one delivery; enqueue it when a handler wants it (``runtime``'s listener).

    Returns:
        ``(202, {"status": "accepted", "jobId": …})`` or ``(200, {"status": "ignored"})``.

    Raises:
        DeliveryError: A subclass naming why the delivery is refused (the caller maps it to a status).
        SecretUnavailableError: Secrets Manager failed, or the stored secret is empty or malformed.
        QueueUnavailableError: The queue did not take the message.
    """
    try:
        policy = runtime.receive_policy()
    except Exception as exc:  # Powertools wraps every Secrets Manager failure; a bad value is ours to fix
        raise SecretUnavailableError("the webhook signing secret could not be read") from exc
    delivery = receive(body, headers, policy=policy, listener=runtime.listener)
    if delivery is None:
        return 200, {"status": "ignored"}
    runtime.queue.send(delivery)
    return 202, {"status": "accepted", "jobId": delivery.job_id, "eventId": delivery.event_id}
