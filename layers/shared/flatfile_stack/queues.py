"""The job queue behind a small interface: SQS in the cloud, an in-process queue locally."""

from __future__ import annotations

import hashlib
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from flatfile_jobs.webhook import Delivery, PayloadTooLargeError

__all__ = [
    "MAX_MESSAGE_BYTES",
    "JobQueue",
    "MemoryJobQueue",
    "QueueUnavailableError",
    "SqsJobQueue",
    "message_size",
]

# The job queue's MaximumMessageSize: template.yaml sets the same number (a template test keeps them equal).
MAX_MESSAGE_BYTES = 262_144


class QueueUnavailableError(Exception):
    """The queue did not take a message (throttled, unavailable, unreachable): the sender should retry."""


class JobQueue(Protocol):
    """Where accepted deliveries go; the worker consumes them as SQS records."""

    def send(self, delivery: Delivery) -> None:
        """Enqueue one delivery (at least once)."""

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again after ``seconds`` (a failed record's backoff)."""


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

    def _sqs(self) -> Any:  # noqa: ANN401 - a boto3 SQS client
        if self._client is None:
            import boto3

            self._client = boto3.client("sqs")
        return self._client


@dataclass
class _Message:
    body: str
    attributes: dict[str, dict[str, str]]
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    receives: int = 0


class MemoryJobQueue:
    """An in-process queue with the SQS semantics that matter here.

    Records are shaped like SQS's, failed records are redelivered, and a message received ``max_receives``
    times goes to the dead-letter list.
    """

    def __init__(self, *, max_receives: int = 5) -> None:
        self.max_receives = max_receives
        self.dead_letters: list[dict[str, Any]] = []
        self._queue: queue.Queue[_Message] = queue.Queue()
        self._in_flight: dict[str, _Message] = {}
        self._lock = threading.Lock()

    def send(self, delivery: Delivery) -> None:
        """Enqueue one delivery (refused as SQS would when the message is over :data:`MAX_MESSAGE_BYTES`)."""
        self._queue.put(_Message(delivery.body, _fitting_attributes(delivery)))

    def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Take the next message as an SQS record (``None`` when none came within ``timeout``)."""
        try:
            message = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        message.receives += 1
        receipt = str(uuid.uuid4())
        with self._lock:
            self._in_flight[receipt] = message
        return _record(message, receipt)

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """Nothing to do: :meth:`release` puts a failed message back at once (local runs don't wait)."""

    def delete(self, receipt_handle: str) -> None:
        """Drop a processed message."""
        with self._lock:
            self._in_flight.pop(receipt_handle, None)

    def release(self, receipt_handle: str) -> None:
        """Return a failed message to the queue, or to the dead letters once it was received too often."""
        with self._lock:
            message = self._in_flight.pop(receipt_handle, None)
        if message is None:
            return
        if message.receives >= self.max_receives:
            self.dead_letters.append(_record(message, receipt_handle))
        else:
            self._queue.put(message)

    def pending(self) -> int:
        """Messages waiting or in flight."""
        with self._lock:
            return self._queue.qsize() + len(self._in_flight)


def _record(message: _Message, receipt: str) -> dict[str, Any]:
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
        "eventSourceARN": "arn:aws:sqs:local:000000000000:JobQueue",
        "awsRegion": "local",
    }
