"""The job queue behind a small interface: SQS in the cloud, an in-process queue locally."""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flatfile_jobs.webhook import InvalidEventError, PayloadTooLargeError

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Delivery",
    "JobQueue",
    "MemoryJobQueue",
    "QueueUnavailableError",
    "SqsJobQueue",
    "message_size",
    "queue_safe",
    "require_queueable",
]

# The job queue's MaximumMessageSize: template.yaml sets the same number (a template test keeps them equal).
MAX_MESSAGE_BYTES = 262_144
# Characters an SQS message body may not hold: lone surrogates (not even UTF-8) and U+FFFE/U+FFFF.
# In compact JSON they can only sit inside strings, where a \uXXXX escape means the same.
_QUEUE_UNSAFE = re.compile("[\ud800-\udfff\ufffe\uffff]")
# What an SQS message attribute value may hold (SQS's character set): ids with anything else are refused.
_QUEUE_TEXT = re.compile("[\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]+")


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


def require_queueable(event: Mapping[str, Any]) -> None:
    """Refuse an event whose ids (they become SQS message attributes) hold a character SQS does not take.

    Raises:
        InvalidEventError: ``id``, ``context.jobId`` or ``payload.job`` holds a lone surrogate or a control
            character (the message names the field).
    """
    values = (event["id"], event["context"]["jobId"], event["payload"]["job"])
    if "".join(values).isprintable():  # the usual case, in C: printable characters are all SQS-safe
        return
    for name, value in zip(("id", "context.jobId", "payload.job"), values, strict=True):
        if not _QUEUE_TEXT.fullmatch(value):
            raise InvalidEventError(
                f"event.{name} holds a character a queue cannot carry (a lone surrogate or a control character)"
            )


def queue_safe(text: str) -> str:
    """``text`` with the characters SQS refuses written as JSON escapes (same JSON value)."""
    return _QUEUE_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


class QueueUnavailableError(Exception):
    """The queue did not take a message (throttled, unavailable, unreachable): the sender should retry."""


class JobQueue(Protocol):
    """Where accepted deliveries go; the worker consumes them as SQS records."""

    def send(self, delivery: Delivery) -> None:
        """Enqueue one delivery (at least once)."""

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again after ``seconds`` (a failed record's backoff)."""

    def extend_visibility(self, receipt_handle: str, seconds: float) -> None:
        """Keep a received message invisible ``seconds`` longer from now (a running job's heartbeat)."""


def _attributes(delivery: Delivery) -> dict[str, dict[str, str]]:
    return {
        "eventId": {"DataType": "String", "StringValue": delivery.event_id},
        "jobId": {"DataType": "String", "StringValue": delivery.job_id},
        "job": {"DataType": "String", "StringValue": delivery.job},
    }


def message_size(body: str, attributes: dict[str, dict[str, str]]) -> int:
    """The bytes SQS counts against ``MaximumMessageSize``: the body and each attribute's name, type and value."""
    size = len(body) if body.isascii() else len(body.encode())
    for name, value in attributes.items():
        text = name + value["DataType"] + value["StringValue"]
        size += len(text) if text.isascii() else len(text.encode())
    return size


def _fitting_attributes(delivery: Delivery) -> dict[str, dict[str, str]]:
    """The delivery's message attributes, once the whole message is known to fit the queue."""
    attributes = _attributes(delivery)
    size = message_size(delivery.body, attributes)
    if size > MAX_MESSAGE_BYTES:
        raise PayloadTooLargeError(
            f"the queued message (event and its ids) would be {size} bytes, over the queue's {MAX_MESSAGE_BYTES}"
        )
    return attributes


class SqsJobQueue:
    """Amazon SQS; the boto3 client is built on first send and reused across warm invocations."""

    def __init__(self, queue_url: str, *, client: Any = None) -> None:  # noqa: ANN401 - a boto3 SQS client
        self.queue_url = queue_url
        self._client = client

    def send(self, delivery: Delivery) -> None:
        """``SendMessage`` with the event id and job id as message attributes.

        Raises:
            PayloadTooLargeError: The message (body and attributes) is over :data:`MAX_MESSAGE_BYTES`.
            QueueUnavailableError: SQS refused or could not be reached (throttling, outage, network).
        """
        attributes = _fitting_attributes(delivery)
        sqs = self._sqs()
        from botocore.exceptions import BotoCoreError, ClientError  # loaded with boto3 by _sqs()

        try:
            sqs.send_message(QueueUrl=self.queue_url, MessageBody=delivery.body, MessageAttributes=attributes)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown")
            raise QueueUnavailableError(f"SQS SendMessage failed ({code})") from exc
        except BotoCoreError as exc:
            raise QueueUnavailableError(f"SQS SendMessage failed ({type(exc).__name__})") from exc

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """``ChangeMessageVisibility``: SQS hands the message out again after ``seconds``."""
        self._sqs().change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    def extend_visibility(self, receipt_handle: str, seconds: float) -> None:
        """``ChangeMessageVisibility`` from now (SQS takes whole seconds: rounded up)."""
        self._sqs().change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=math.ceil(seconds)
        )

    def _sqs(self) -> Any:  # noqa: ANN401 - a boto3 SQS client
        if self._client is None:
            from .aws import aws_client

            self._client = aws_client("sqs")
        return self._client


@dataclass
class _Message:
    body: str
    attributes: dict[str, dict[str, str]]
    sent_at: float
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    receives: int = 0
    visible_at: float = 0.0
    receipt: str | None = None


class MemoryJobQueue:
    """An in-process queue with the SQS semantics that matter here, on an injectable clock.

    Records are shaped like SQS's. A received message is invisible for ``visibility_timeout`` seconds unless
    deleted (:meth:`delete`) or made visible sooner or later (:meth:`retry_later`, :meth:`extend_visibility`, both
    ``ChangeMessageVisibility`` in SQS); a consumer that dies or reports a failure changes nothing, so the
    message comes back when its visibility runs out. A message already received ``max_receives`` times is
    moved to :attr:`dead_letters` instead of being handed out again (SQS's redrive policy).

    Args:
        max_receives: The redrive policy's ``maxReceiveCount``.
        visibility_timeout: The queue's visibility timeout, in the clock's seconds.
        clock: Returns the current time in seconds (``time.monotonic``; tests pass a simulated clock).
        backoff_scale: Multiplies :meth:`retry_later`'s delays (the local stack retries a minute's backoff
            in a second; heartbeats are never scaled).
    """

    def __init__(
        self,
        *,
        max_receives: int = 5,
        visibility_timeout: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
        backoff_scale: float = 1.0,
    ) -> None:
        self.max_receives = max_receives
        self.visibility_timeout = visibility_timeout
        self.clock = clock
        self.backoff_scale = backoff_scale
        self.dead_letters: list[dict[str, Any]] = []
        self._messages: dict[str, _Message] = {}
        self._receipts: dict[str, str] = {}
        self._changed = threading.Condition()

    def send(self, delivery: Delivery) -> None:
        """Enqueue one delivery (visible at once; refused as SQS would when over :data:`MAX_MESSAGE_BYTES`)."""
        message = _Message(delivery.body, _fitting_attributes(delivery), sent_at=self.clock())
        message.visible_at = message.sent_at
        with self._changed:
            self._messages[message.message_id] = message
            self._changed.notify_all()

    def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Take the next visible message as an SQS record (``None`` when none came within ``timeout``).

        ``timeout`` is real (wall-clock) seconds; visibility is judged on the queue's clock.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                record = self._take_visible()
                if record is not None:
                    return record
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return None
                # Invisible messages become visible as the clock moves, which notifies nobody: poll then.
                if self._messages:
                    wait = _POLL_SECONDS if wait is None else min(wait, _POLL_SECONDS)
                self._changed.wait(wait)

    def _take_visible(self) -> dict[str, Any] | None:
        now = self.clock()
        for message in list(self._messages.values()):
            if message.visible_at > now:
                continue
            if message.receives >= self.max_receives:
                self._forget(message)
                self.dead_letters.append(_record(message, str(uuid.uuid4())))
                continue
            if message.receipt is not None:
                self._receipts.pop(message.receipt, None)
            message.receives += 1
            message.receipt = str(uuid.uuid4())
            message.visible_at = now + self.visibility_timeout
            self._receipts[message.receipt] = message.message_id
            return _record(message, message.receipt)
        return None

    def dead_letter(self, body: str) -> None:
        """Put ``body`` straight into :attr:`dead_letters`, as an EventBridge rule sends it to the DLQ.

        As the stack's rule for unfinished durable executions (or a failed asynchronous invocation) does: no
        message attributes, received once.
        """
        message = _Message(body, {}, sent_at=self.clock(), receives=1)
        with self._changed:
            self.dead_letters.append(_record(message, str(uuid.uuid4()), queue="DeadLetterQueue"))

    def retry_later(self, receipt_handle: str, seconds: float) -> None:
        """Make a received message visible again ``seconds`` (times ``backoff_scale``) from now.

        Raises:
            ValueError: The receipt handle is not the message's current one (it was deleted or received again).
        """
        self._set_visibility(receipt_handle, seconds * self.backoff_scale)

    def extend_visibility(self, receipt_handle: str, seconds: float) -> None:
        """Keep a received message invisible for ``seconds`` from now (a running job's heartbeat).

        Raises:
            ValueError: The receipt handle is not the message's current one (it was deleted or received again).
        """
        self._set_visibility(receipt_handle, seconds)

    def _set_visibility(self, receipt_handle: str, seconds: float) -> None:
        with self._changed:
            message = self._in_flight(receipt_handle)
            if message is None:
                raise ValueError("the receipt handle is not the current one of a message in flight")
            message.visible_at = self.clock() + seconds
            self._changed.notify_all()

    def delete(self, receipt_handle: str) -> None:
        """Drop a processed message (a stale receipt handle deletes nothing)."""
        with self._changed:
            message = self._in_flight(receipt_handle)
            if message is not None:
                self._forget(message)
            self._changed.notify_all()

    def release(self, receipt_handle: str) -> None:
        """A consumer reports a failed message: as in SQS nothing changes; it returns when its visibility ends.

        The worker shortens that with :meth:`retry_later`; a message nobody shortened waits out the queue's
        visibility timeout.
        """

    def pending(self) -> int:
        """Messages waiting or in flight (not deleted, not dead-lettered)."""
        with self._changed:
            return len(self._messages)

    def next_visible_in(self) -> float | None:
        """Clock seconds until the next pending message is visible (``0`` if one is); ``None`` when none is."""
        with self._changed:
            if not self._messages:
                return None
            soonest = min(message.visible_at for message in self._messages.values())
            return max(0.0, soonest - self.clock())

    def _in_flight(self, receipt_handle: str) -> _Message | None:
        message = self._messages.get(self._receipts.get(receipt_handle, ""))
        if message is None or message.receipt != receipt_handle or message.visible_at <= self.clock():
            return None
        return message

    def _forget(self, message: _Message) -> None:
        self._messages.pop(message.message_id, None)
        if message.receipt is not None:
            self._receipts.pop(message.receipt, None)


_POLL_SECONDS = 0.01


def _record(message: _Message, receipt: str, *, queue: str = "JobQueue") -> dict[str, Any]:
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": message.message_id,
        "receiptHandle": receipt,
        "body": message.body,
        "attributes": {
            "ApproximateReceiveCount": str(message.receives),
            "SentTimestamp": now_ms,
            "SenderId": "local",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {
            name: {"stringValue": value["StringValue"], "dataType": value["DataType"]}
            for name, value in message.attributes.items()
        },
        "md5OfBody": hashlib.md5(message.body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:local:000000000000:{queue}",
        "awsRegion": "local",
    }
