"""Dead letters are not silent: each dead-lettered job is failed in Flatfile with a message saying why.

A job whose worker kept dying without reporting (out of memory, a crash) left its idempotency record
``INPROGRESS``: its user is told that, with the worker's memory and time limits. Any other dead letter failed
for a reason our code reported (Flatfile unreachable, a bad setting) and gets the general message. A dead
letter that cannot be handled is retried a bounded number of times, then given up on deliberately.

The queue holds three shapes of record (README "Long jobs"):

- a ``job:ready`` event, redriven from the job queue after its receives ran out;
- ``{"event": <job:ready event>}``, a long job's start the durable worker's asynchronous invocation gave up on
  (its dead-letter queue, when Lambda uses it for a durable function);
- Lambda's ``Durable Execution Status Change`` event (EventBridge) for a long job's execution that ended
  ``TIMED_OUT``, ``STOPPED`` or ``FAILED``: the execution is named after the job, and the job is failed with
  :data:`LONG_JOB_ENDED_MESSAGE` unless the execution already ended it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flatfile_jobs import FlatfileEvent
from flatfile_jobs._dead_letters import fail_unfinished_job
from flatfile_jobs.webhook import InvalidEventError

from .idempotency import job_record_status

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics

    from .runtime import Runtime
    from .settings import Settings

__all__ = [
    "CRASH_MESSAGE",
    "DEAD_LETTER_MAX_RECEIVES",
    "DEAD_LETTER_MESSAGE",
    "DURABLE_STATUS_CHANGE",
    "LONG_JOB_ENDED_MESSAGE",
    "dead_letter_message",
    "fail_dead_letter",
    "handle_dead_letter",
    "long_job_ended_message",
]

DEAD_LETTER_MESSAGE = (
    "This job could not be processed after several attempts and was set aside for investigation. "
    "Please try again; if it keeps failing, contact support with job id {job_id}."
)
CRASH_MESSAGE = (
    "The worker stopped without reporting on this job at every attempt; it may have run out of memory"
    "{limits}. Try a smaller file; if it keeps failing, contact support with job id {job_id}."
)
LONG_JOB_ENDED_MESSAGE = (
    "Long job ended without finishing: {reason}. Please try again; if it keeps happening, contact support "
    "with job id {job_id}."
)
# Lambda's EventBridge event for a durable execution's status (source aws.lambda).
DURABLE_STATUS_CHANGE = "Durable Execution Status Change"
# How an execution ended without our code completing or failing the job (SUCCEEDED means it did).
_UNFINISHED_ENDS = frozenset({"TIMED_OUT", "STOPPED", "FAILED"})
# The execution's name is the job id: a Flatfile id, the same shape every id reaching a URL is held to.
_FLATFILE_ID = re.compile(r"[A-Za-z0-9_]{1,128}")
# A dead letter that still cannot be handled after this many receives (about an hour at the dead-letter
# queue's 6-minute visibility timeout) is logged at ERROR, counted and dropped, not retried for 14 days.
DEAD_LETTER_MAX_RECEIVES = 10


def dead_letter_message(job_id: str, *, crashed: bool, settings: Settings) -> str:
    """The message a dead-lettered job is failed with."""
    if not crashed:
        return DEAD_LETTER_MESSAGE.format(job_id=job_id)
    limits = ""
    if settings.worker_memory_mb and settings.worker_timeout:
        limits = (
            f" (the worker has {settings.worker_memory_mb} MB and {settings.worker_timeout} s per attempt)"
        )
    return CRASH_MESSAGE.format(job_id=job_id, limits=limits)


def long_job_ended_message(job_id: str, status: str, *, seconds: int | None = None) -> str:
    """The message a long job is failed with when its durable execution ended ``status`` without finishing it."""
    if status == "TIMED_OUT":
        after = f" after {seconds} s" if seconds is not None else ""
        reason = f"it ran past its time limit (its durable execution timed out{after})"
    elif status == "STOPPED":
        reason = "its durable execution was stopped"
    else:
        reason = "its durable execution failed"
    return LONG_JOB_ENDED_MESSAGE.format(reason=reason, job_id=job_id)


@dataclass(frozen=True, slots=True)
class _DeadLetter:
    """What a record asks for: fail ``job_id``; ``ended`` is the durable execution's status when it ended one."""

    job_id: str
    ended: str | None = None
    seconds: int | None = None


def fail_dead_letter(body: str, runtime: Runtime) -> bool:
    """Fail the job in a dead-lettered record unless it already ended; ``True`` when it was failed.

    Raises:
        FlatfileAPIError: Flatfile could not be reached; the record stays in the dead-letter queue.
        ValueError: The body holds no job (nor an unfinished durable execution's end), or its job id is not
            shaped like a Flatfile id: it names no job that could be failed and is never put in a URL
            (:func:`handle_dead_letter` drops it).
    """
    letter = _read(body)
    if letter.ended is not None:
        message = long_job_ended_message(letter.job_id, letter.ended, seconds=letter.seconds)
    else:
        crashed = job_record_status(runtime.idempotency_store(), letter.job_id) == "INPROGRESS"
        message = dead_letter_message(letter.job_id, crashed=crashed, settings=runtime.settings)
    return fail_unfinished_job(letter.job_id, message, settings=runtime.api_settings())


def handle_dead_letter(
    body: str, *, runtime: Runtime, message_id: str, receive_count: int, logger: Logger, metrics: Metrics
) -> bool:
    """:func:`fail_dead_letter`, giving up on a record that cannot be handled (logged, counted, dropped).

    Returns:
        Whether the job was failed now (``False``: it had already ended, or the record was given up on).

    Raises:
        Exception: A failure worth retrying; the record stays in the dead-letter queue for another try.
    """
    from aws_lambda_powertools.metrics import MetricUnit

    try:
        failed = fail_dead_letter(body, runtime)
    except Exception as exc:
        context = {"message_id": message_id, "receive_count": receive_count, "job_id": _job_id_or_none(body)}
        reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, ValueError) or receive_count >= DEAD_LETTER_MAX_RECEIVES:
            metrics.add_metric(name="DeadLettersDropped", unit=MetricUnit.Count, value=1)
            logger.error("Giving up on a dead letter; dropped", extra={**context, "reason": reason})
            return False
        # Counted too: with partial batch responses Lambda's Errors metric never sees it.
        metrics.add_metric(name="DeadLettersRetried", unit=MetricUnit.Count, value=1)
        logger.error(
            "Could not fail the dead-lettered job; retried later", extra={**context, "reason": reason}
        )
        raise
    metrics.add_metric(name="JobsDeadLettered", unit=MetricUnit.Count, value=1)
    extra: dict[str, Any] = {"message_id": message_id, "marked_failed": failed}
    ended = _read(body).ended
    if ended is not None:
        extra["durable_execution_status"] = ended
    logger.error("Dead-lettered job", extra=extra)
    return failed


def _read(body: str) -> _DeadLetter:
    """The record's job (and how its durable execution ended), its id checked like every id that reaches a URL.

    Raises:
        ValueError: No job to fail: not JSON, not one of the three shapes, or an id that is not a Flatfile id.
    """
    try:
        record = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"the record holds no job:ready event ({type(exc).__name__})") from None
    if not isinstance(record, dict):
        raise ValueError("the record holds no job:ready event (not a JSON object)")
    if record.get("detail-type") == DURABLE_STATUS_CHANGE:
        return _read_status_change(record)
    if set(record) == {"event"} and isinstance(record["event"], dict):
        record = record["event"]  # the durable worker's start, as the worker sent it
    try:
        job_id = FlatfileEvent.of(record).context_id("jobId")
    except InvalidEventError as exc:
        raise ValueError(str(exc)) from None
    if job_id is None:
        raise ValueError("event.context.jobId is missing")
    return _DeadLetter(job_id)


def _read_status_change(record: dict[str, Any]) -> _DeadLetter:
    detail = record.get("detail")
    if record.get("source") != "aws.lambda" or not isinstance(detail, dict):
        raise ValueError("the durable execution status change has no aws.lambda detail")
    status = detail.get("status")
    if status not in _UNFINISHED_ENDS:
        raise ValueError(
            f"detail.status {str(status)[:20]!r} is not an unfinished end (TIMED_OUT, STOPPED, FAILED)"
        )
    name = detail.get("durableExecutionName")
    if not isinstance(name, str) or not _FLATFILE_ID.fullmatch(name):
        raise ValueError(
            "detail.durableExecutionName must be a Flatfile job id (1 to 128 ASCII letters, digits or _)"
        )
    return _DeadLetter(name, ended=str(status), seconds=_elapsed(detail))


def _elapsed(detail: dict[str, Any]) -> int | None:
    """Whole seconds from the execution's start to its end, when both timestamps read as ISO-8601."""
    try:
        started = datetime.fromisoformat(str(detail["startTimestamp"]))
        ended = datetime.fromisoformat(str(detail["endTimestamp"]))
        seconds = (ended - started).total_seconds()
    except (KeyError, ValueError, TypeError):
        return None
    return round(seconds) if seconds >= 0 else None


def _job_id_or_none(body: str) -> str | None:
    try:
        return _read(body).job_id
    except ValueError:
        return None
