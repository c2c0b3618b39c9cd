"""Event files: HTTP API v2 requests for the receiver, SQS batches for the worker, schedules for the poller."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from flatfile_jobs_testing import request_body, webhook_request
from flatfile_stack.queues import Delivery

from ._common import CliError

__all__ = [
    "FUNCTIONS",
    "SAMPLE_JOBS",
    "FunctionName",
    "detect_function",
    "events_in",
    "flatfile_event",
    "function_event",
    "is_raw",
    "read_event",
    "sample_file",
]

FunctionName = Literal["receiver", "worker", "dead_letter", "poller"]
FUNCTIONS: tuple[FunctionName, ...] = ("receiver", "worker", "dead_letter", "poller")
# The sample jobs of layers/shared/flatfile_app_jobs and how each ends: data:validate fails by design; file:extract is a
# long job (3 steps, 20-minute waits) that the local run completes in seconds on the SDK's test runner.
SAMPLE_JOBS: dict[str, str] = {
    "space:configure": "complete",
    "workbook:submit": "complete",
    "file:process": "complete",
    "data:validate": "failed",
    "file:extract": "complete",
}


def read_event(path: Path) -> dict[str, Any]:
    """Read one event file (a JSON object).

    Raises:
        CliError: Missing, unreadable or not a JSON object.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"no such event file: {path}") from None
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path} as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a JSON object")
    return data


def detect_function(path: Path, event: Mapping[str, Any]) -> FunctionName:
    """The function an event file is for: from its folder (``events/<function>/``), else from its shape.

    Raises:
        CliError: Neither tells (pass ``--function``).
    """
    if path.parent.name in FUNCTIONS:
        return path.parent.name
    if event.get("version") == "2.0" and isinstance(event.get("requestContext"), Mapping):
        return "receiver"
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], Mapping):
        attributes = records[0].get("attributes") or {}
        return "dead_letter" if "DeadLetterQueueSourceArn" in attributes else "worker"
    if event.get("source") == "aws.events" or event.get("detail-type") == "Scheduled Event":
        return "poller"
    raise CliError(f"cannot tell which function {path} is for: pass --function {'|'.join(FUNCTIONS)}")


def events_in(event: Mapping[str, Any], function: FunctionName) -> list[dict[str, Any]]:
    """The Flatfile events an event file carries (receiver body or SQS record bodies)."""
    if function == "receiver":
        try:
            parsed = json.loads(request_body(event))
        except ValueError:
            return []
        source = parsed.get("src") if isinstance(parsed, dict) else None
        found = source if isinstance(source, dict) else parsed
        return [found] if isinstance(found, dict) else []
    if function in ("worker", "dead_letter"):
        bodies = [record.get("body") for record in event.get("Records") or [] if isinstance(record, Mapping)]
        parsed_bodies = [json.loads(body) for body in bodies if isinstance(body, str)]
        return [body for body in parsed_bodies if isinstance(body, dict)]
    return []


def sample_file(root: Path, job: str) -> Path:
    """Where the sample receiver event for ``job`` lives: ``events/receiver/<domain>_<operation>.json``."""
    return root / "events" / "receiver" / f"{job.replace(':', '_')}.json"


def is_raw(event: Mapping[str, Any]) -> bool:
    """Whether ``event`` is a Flatfile event as the API stores it (not a Lambda event wrapping one)."""
    return "topic" in event and "payload" in event and "Records" not in event and "version" not in event


def flatfile_event(
    job: str, *, context: Mapping[str, str] | None = None, input: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``job:ready`` event for ``job`` (the test kit's builder), with ``context`` values set on top.

    ``context`` keys are Flatfile's (``jobId``, ``environmentId``, ``workbookId``, ``sheetId``…); the
    environment defaults to the local run's ``us_env_local``.

    Raises:
        CliError: ``job`` is not ``domain:operation``.
    """
    from flatfile_jobs_testing import job_ready_event

    values = dict(context or {})
    try:
        event = job_ready_event(
            job,
            job_id=values.get("jobId"),
            environment_id=values.get("environmentId", "us_env_local"),
            input=input,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    event["context"].update(values)
    event["origin"] = {"id": event["context"]["jobId"]}
    return event


def function_event(
    function: FunctionName, event: dict[str, Any], *, secret: str | None = None
) -> dict[str, Any]:
    """A raw Flatfile event wrapped as ``function``'s Lambda event.

    receiver: the HTTP API v2 request ``POST /webhook`` (signed with ``secret`` when given); worker: an SQS
    batch of one record, as the receiver enqueues it (body + eventId/jobId/job attributes); dead_letter: that
    record as the dead-letter queue hands it out; poller: a scheduled event (the poller reads Flatfile).
    """
    if function == "receiver":
        return webhook_request(event, secret=secret)
    body = json.dumps(event, separators=(",", ":"))
    if function == "poller":
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "source": "aws.events",
            "detail-type": "Scheduled Event",
        }
    return {"Records": [_queued_record(event, body, dead=function == "dead_letter")]}


def _queued_record(event: dict[str, Any], body: str, *, dead: bool) -> dict[str, Any]:
    """The SQS record the local queue makes of ``event`` (received once; redriven to the DLQ when ``dead``)."""
    from flatfile_stack.queues import MemoryJobQueue

    queue = MemoryJobQueue(max_receives=1)
    try:
        queue.send(Delivery(event=event, body=body, delivery_id=str(event["id"])))
    except (KeyError, TypeError):
        raise CliError("the event needs an id, context.jobId and payload.job") from None
    record = queue.receive(timeout=0)
    if record is None:  # pragma: no cover - the message was just sent
        raise CliError("the local queue lost the message")
    if dead:
        source = record["eventSourceARN"]
        record["attributes"]["DeadLetterQueueSourceArn"] = source
        record["eventSourceARN"] = source.replace("JobQueue", "DeadLetterQueue")
    return record
