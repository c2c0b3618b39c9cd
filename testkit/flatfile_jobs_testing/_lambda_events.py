"""Lambda events as AWS hands them over: API Gateway HTTP API requests (signed like the forwarder's) and SQS.

These are the one way this repo builds a signed delivery: ``signed_headers`` signs a body as the forwarder
agent does (Standard Webhooks, ``webhook-id`` = the Flatfile event's id), ``webhook_request`` wraps a Flatfile
event as the HTTP API request the receiver gets, and ``resign`` gives an existing request fresh signatures.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = [
    "JOB_QUEUE_ARN",
    "http_api_event",
    "request_body",
    "resign",
    "signed_headers",
    "sqs_event",
    "sqs_record",
    "webhook_request",
]

JOB_QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:JobQueue"


def _delivery_id(body: bytes) -> str:
    """The Flatfile event id in a body (raw or forwarder-shaped ``src``): the ``webhook-id`` the forwarder sends."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        parsed = None
    source = parsed.get("src", parsed) if isinstance(parsed, dict) else None
    if isinstance(source, dict) and isinstance(source.get("id"), str) and source["id"]:
        return str(source["id"])
    return f"msg_{hashlib.sha256(body).hexdigest()[:32]}"


def signed_headers(
    body: bytes, secret: str, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """The headers the forwarder agent sends with ``body``: a JSON content type and Standard Webhooks' three.

    Example:
        >>> headers = signed_headers(b'{"id": "us_evt_1"}', "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        >>> headers["webhook-id"], sorted(headers)
        ('us_evt_1', ['content-type', 'webhook-id', 'webhook-signature', 'webhook-timestamp'])

    Args:
        body: The exact bytes to post.
        secret: The signing secret, ``whsec_…``.
        msg_id: ``webhook-id``; by default the Flatfile event's id in ``body`` (``src.id`` or ``id``).
        timestamp: ``webhook-timestamp`` in Unix seconds; now when not given.

    Returns:
        A new dict of lower-case header names.
    """
    from flatfile_jobs import webhook  # on first use: importing the kit stays standard library only

    headers = {"content-type": "application/json"}
    headers.update(webhook.sign(secret, body, msg_id=msg_id or _delivery_id(body), timestamp=timestamp))
    return headers


def http_api_event(
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload v2) event for one request, as Lambda receives it.

    Header names are lower-cased and repeated ones joined with ``,`` (as API Gateway does); a body that is
    not UTF-8 is base64-encoded with ``isBase64Encoded``.
    """
    path, _, query = target.partition("?")
    lowered: dict[str, str] = {}
    for key, value in headers.items():
        name = key.lower()
        lowered[name] = f"{lowered[name]},{value}" if name in lowered else value
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    now = time.time()
    host = lowered.get("host", "127.0.0.1")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if body:
        event["body"] = text
    if query:
        event["queryStringParameters"] = dict(part.partition("=")[::2] for part in query.split("&") if part)
    return event


def webhook_request(
    event: Mapping[str, Any] | bytes,
    *,
    secret: str | None,
    msg_id: str | None = None,
    timestamp: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The receiver's Lambda event for one delivery: ``POST /webhook`` carrying ``event``, signed with ``secret``.

    Example:
        >>> request = webhook_request({"id": "us_evt_1", "topic": "job:ready"}, secret=None)
        >>> request["routeKey"], request["body"]
        ('POST /webhook', '{"id":"us_evt_1","topic":"job:ready"}')

    Args:
        event: A Flatfile event (or a forwarder-shaped body) as JSON, or the exact body bytes.
        secret: The signing secret; ``None`` sends it unsigned.
        msg_id: ``webhook-id``; by default the event's id.
        timestamp: ``webhook-timestamp``; now when not given.
        headers: More headers (e.g. ``user-agent``).

    Returns:
        An API Gateway HTTP API (payload v2) event.
    """
    body = event if isinstance(event, bytes) else json.dumps(event, separators=(",", ":")).encode()
    sent = {"content-type": "application/json", **(headers or {})}
    if secret is not None:
        sent.update(signed_headers(body, secret, msg_id=msg_id, timestamp=timestamp))
    return http_api_event("POST", "/webhook", sent, body)


def request_body(request: Mapping[str, Any]) -> bytes:
    """The body of an HTTP API event as the sender's bytes (base64 decoded; lone surrogates kept as sent)."""
    body = request.get("body") or ""
    if request.get("isBase64Encoded"):
        return base64.b64decode(str(body))
    return str(body).encode("utf-8", errors="surrogateescape")


def resign(
    request: Mapping[str, Any], secret: str, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, Any]:
    """A copy of an HTTP API event with fresh Standard Webhooks headers over its exact body.

    Its other headers are kept (their names' case too); the old ``webhook-*`` ones are replaced.
    """
    copied: dict[str, Any] = json.loads(json.dumps(request))
    body = request_body(request)
    headers = {
        key: value
        for key, value in (copied.get("headers") or {}).items()
        if not key.lower().startswith("webhook-")
    }
    signed = signed_headers(body, secret, msg_id=msg_id, timestamp=timestamp)
    headers.update({name: value for name, value in signed.items() if name != "content-type"})
    copied["headers"] = headers
    return copied


def sqs_record(
    event: Mapping[str, Any],
    *,
    message_id: str | None = None,
    receive_count: int = 1,
    queue_arn: str = JOB_QUEUE_ARN,
) -> dict[str, Any]:
    """The SQS record Lambda hands the worker for ``event``, as the receiver enqueues it.

    The body is the event's compact JSON; the message attributes are ``eventId``, ``jobId`` and ``job``.

    Raises:
        KeyError: ``event`` has no ``id``, ``context.jobId`` or ``payload.job``.
    """
    body = json.dumps(event, separators=(",", ":"))
    attributes = {"eventId": event["id"], "jobId": event["context"]["jobId"], "job": event["payload"]["job"]}
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": str(uuid.uuid4()),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": str(int(time.time() * 1000)),
            "SenderId": "local",
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": {
            name: {
                "stringValue": str(value),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
            for name, value in attributes.items()
        },
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def sqs_event(*records: Mapping[str, Any]) -> dict[str, Any]:
    """An SQS batch event: ``{"Records": [...]}`` (copies of ``records``)."""
    return {"Records": [dict(record) for record in records]}
