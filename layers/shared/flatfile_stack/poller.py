"""The optional scheduled poller: read new job events from Flatfile and enqueue what we handle.

For teams that cannot deploy the forwarder agent. Each run reads the ``job:ready`` events, then the
``job:parts-completed`` events (multi-part jobs), after each topic's cursor (kept in the ``POLLER_STATE_TABLE``
under ``poller-cursor#<environmentId>``, and ``…#job:parts-completed`` for the second topic), puts every job the listener handles on the job
queue as the same message the receiver sends, acks that event in Flatfile and saves the cursor after each
event. Events no handler wants are passed over but not acked: they stay visible to other consumers. A run
stops early when Lambda's remaining time drops under the deadline margin; the next run continues.
Delivery is at least once (a run cut short between enqueue and save re-enqueues that event); the worker
is idempotent on the job id.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from flatfile_jobs import ConfigurationError, EventCursor, EventPoller, FlatfileAPIError
from flatfile_jobs._events import JOB_TOPICS, iso_ms

from .delivery_policy import DeliveryError, ReceivePolicy, receive
from .runtime import Runtime
from .settings import FLATFILE_ENVIRONMENT_ID, POLLER_STATE_TABLE

__all__ = ["CURSOR_KEY", "POLLED_TOPICS", "DynamoCursorStore", "PollSummary", "cursor_key", "poll_once"]

CURSOR_KEY = "poller-cursor#{environment_id}"
# The topics polled, in order; the first keeps CURSOR_KEY, the others add "#<topic>" to it.
POLLED_TOPICS = JOB_TOPICS
# Events read from the API with our own key carry no signature; receive() still validates them, drops any
# _accessToken and builds the exact message the receiver enqueues.
_POLLED = ReceivePolicy(allow_unsigned=True)
_JSON = {"content-type": "application/json"}
# Seconds each API call may take with its retries, at most (less when Lambda has less time left).
_REQUEST_BUDGET = 20.0
_log = Logger(child=True)


class DynamoCursorStore:
    """The poller's cursor as one DynamoDB item ``{"id": key, "since": …, "seen": [...], "updatedAt": …}``.

    Args:
        table_name: The table (partition key ``id``, a string).
        key: The item's ``id``.
        client: A boto3 DynamoDB client; built on first use when omitted.
    """

    def __init__(self, table_name: str, key: str, *, client: Any = None) -> None:  # noqa: ANN401 - boto3
        self.table_name = table_name
        self.key = key
        self._client = client

    def _dynamodb(self) -> Any:  # noqa: ANN401 - a boto3 client
        if self._client is None:
            from .aws import aws_client

            self._client = aws_client("dynamodb")
        return self._client

    def load(self) -> EventCursor | None:
        """The saved cursor (a consistent read), or ``None`` before the first save."""
        answer = self._dynamodb().get_item(
            TableName=self.table_name, Key={"id": {"S": self.key}}, ConsistentRead=True
        )
        item = answer.get("Item")
        if not item:
            return None
        seen = [entry["S"] for entry in item.get("seen", {}).get("L", [])]
        return EventCursor.from_dict({"since": item["since"]["S"], "seen": seen})

    def save(self, cursor: EventCursor) -> None:
        """Overwrite the item with ``cursor``."""
        data = cursor.to_dict()
        self._dynamodb().put_item(
            TableName=self.table_name,
            Item={
                "id": {"S": self.key},
                "since": {"S": data["since"]},
                "seen": {"L": [{"S": event_id} for event_id in data["seen"]]},
                "updatedAt": {"S": iso_ms(datetime.now(UTC))},
            },
        )


@dataclass
class PollSummary:
    """What one run did (logged and returned by the function)."""

    environment_id: str
    events: int = 0
    enqueued: int = 0
    ignored: int = 0
    invalid: int = 0
    stopped_early: bool = False
    cursor: str = ""
    job_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The summary as the function's JSON answer."""
        return {
            "environmentId": self.environment_id,
            "events": self.events,
            "enqueued": self.enqueued,
            "ignored": self.ignored,
            "invalid": self.invalid,
            "stoppedEarly": self.stopped_early,
            "cursor": self.cursor,
            "jobIds": self.job_ids,
        }


def _suffix(topic: str) -> str:
    return "" if topic == POLLED_TOPICS[0] else f"#{topic}"


def cursor_key(environment_id: str, topic: str) -> str:
    """The DynamoDB key of ``topic``'s cursor (the template's IAM condition lists one per polled topic)."""
    return CURSOR_KEY.format(environment_id=environment_id) + _suffix(topic)


def _cursor_store(runtime: Runtime, topic: str) -> Any:  # noqa: ANN401 - a CursorStore
    """The runtime's in-memory store of ``topic``'s cursor when it keeps them (the local run), else DynamoDB."""
    if runtime.cursor_stores is not None:
        from flatfile_jobs._polling import MemoryCursorStore

        return runtime.cursor_stores.setdefault(topic, MemoryCursorStore())
    if not runtime.settings.poller_state_table:
        raise ConfigurationError(f"{POLLER_STATE_TABLE} is not set: give the poller a DynamoDB table")
    key = cursor_key(runtime.settings.environment_id, topic)
    return DynamoCursorStore(runtime.settings.poller_state_table, key)


def _pollers(runtime: Runtime, budget: float) -> list[EventPoller]:
    """The runtime's pollers, one per topic, built on first use and reused across warm invocations."""
    if not runtime.settings.environment_id:
        raise ConfigurationError(f"{FLATFILE_ENVIRONMENT_ID} is not set: give the poller a us_env_… id")
    pollers = []
    for topic in POLLED_TOPICS:
        poller = runtime.pollers.get(topic)
        if poller is None:
            poller = EventPoller(
                environment_id=runtime.settings.environment_id,
                topic=topic,
                store=_cursor_store(runtime, topic),
            )
            runtime.pollers[topic] = poller
        poller.request_budget = budget
        pollers.append(poller)
    return pollers


def poll_once(runtime: Runtime, remaining_ms: Callable[[], int]) -> PollSummary:
    """Poll once and enqueue what the listener handles, stopping early when time runs short.

    Args:
        runtime: The poller's adapters (its ``app.py`` builds them).
        remaining_ms: Milliseconds left in this invocation (Lambda's ``get_remaining_time_in_millis``).

    Raises:
        ConfigurationError: ``FLATFILE_ENVIRONMENT_ID`` or ``POLLER_STATE_TABLE`` is not set.
        FlatfileAPIError: ``GET /events`` failed; the next scheduled run tries again.
    """
    margin = runtime.settings.deadline_margin
    budget = max(1.0, min(_REQUEST_BUDGET, remaining_ms() / 1000 - margin))
    pollers = _pollers(runtime, budget)
    settings = runtime.api_settings()
    for poller in pollers:
        poller.settings = settings
    summary = PollSummary(pollers[0].environment_id)
    for poller in pollers:
        if summary.stopped_early:
            break
        events = poller.poll()
        summary.events += len(events)
        for event in events:
            if remaining_ms() / 1000 < margin:
                summary.stopped_early = True
                break
            _handle(runtime, poller, event, summary)
            poller.mark(event)
    summary.cursor = pollers[0].cursor.since
    return summary


def _handle(runtime: Runtime, poller: EventPoller, event: dict[str, Any], summary: PollSummary) -> None:
    """Enqueue and ack one event when a handler wants it; count it either way."""
    body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
    try:
        delivery = receive(body, _JSON, policy=_POLLED, listener=runtime.listener)
    except DeliveryError as exc:
        summary.invalid += 1
        _log.warning("Polled event skipped", extra={"event_id": event.get("id"), "reason": str(exc)})
        return
    if delivery is None:
        summary.ignored += 1
        return
    runtime.queue.send(delivery)
    summary.enqueued += 1
    summary.job_ids.append(delivery.job_id)
    _log.info("Job enqueued", extra={"event_id": delivery.event_id, "job_id": delivery.job_id})
    try:
        poller.ack(event)
    except FlatfileAPIError as exc:
        # The job is on the queue and the cursor moves on; only other consumers may still see the event.
        _log.warning("Event ack failed", extra={"event_id": delivery.event_id, "reason": str(exc)})
