"""Dead letters are not silent: each dead-lettered job is failed in Flatfile with a message saying why.

A job whose worker kept dying without reporting (out of memory, a crash) left its idempotency record
``INPROGRESS``: its user is told that, with the worker's memory and time limits. Any other dead letter failed
for a reason our code reported (Flatfile unreachable, a bad setting) and gets the general message. A dead
letter that cannot be handled is retried a bounded number of times, then given up on deliberately.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import flatfile_jobs
from flatfile_jobs import FlatfileEvent
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
    "dead_letter_message",
    "fail_dead_letter",
    "handle_dead_letter",
]

DEAD_LETTER_MESSAGE = (
    "This job could not be processed after several attempts and was set aside for investigation. "
    "Please try again; if it keeps failing, contact support with job id {job_id}."
)
CRASH_MESSAGE = (
    "The worker stopped without reporting on this job at every attempt; it may have run out of memory"
    "{limits}. Try a smaller file; if it keeps failing, contact support with job id {job_id}."
)
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


def fail_dead_letter(body: str, runtime: Runtime) -> bool:
    """Fail the job in a dead-lettered record unless it already ended; ``True`` when it was failed.

    Raises:
        FlatfileAPIError: Flatfile could not be reached; the record stays in the dead-letter queue.
        ValueError: The body holds no job, or its ``context.jobId`` is not shaped like a Flatfile id: it names
            no job that could be failed and is never put in a URL (:func:`handle_dead_letter` drops it).
    """
    job_id = _job_id(body)
    crashed = job_record_status(runtime.idempotency_store(), job_id) == "INPROGRESS"
    message = dead_letter_message(job_id, crashed=crashed, settings=runtime.settings)
    return flatfile_jobs.fail_unfinished_job(job_id, message, settings=runtime.api_settings())


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
    logger.error("Dead-lettered job", extra={"message_id": message_id, "marked_failed": failed})
    return failed


def _job_id(body: str) -> str:
    """The dead letter's job id, checked like every id that reaches a URL (else it names no job to fail)."""
    try:
        event = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"the record holds no job:ready event ({type(exc).__name__})") from None
    if not isinstance(event, dict):
        raise ValueError("the record holds no job:ready event (not a JSON object)")
    try:
        job_id = FlatfileEvent.of(event).context_id("jobId")
    except InvalidEventError as exc:
        raise ValueError(str(exc)) from None
    if job_id is None:
        raise ValueError("event.context.jobId is missing")
    return job_id


def _job_id_or_none(body: str) -> str | None:
    try:
        return _job_id(body)
    except ValueError:
        return None
