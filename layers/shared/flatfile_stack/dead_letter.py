"""Dead letters are not silent: each dead-lettered job is failed in Flatfile with a clear message."""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger

import flatfile_jobs
from flatfile_jobs import FlatfileEvent
from flatfile_jobs.webhook import InvalidEventError

from .runtime import get_runtime

__all__ = ["DEAD_LETTER_MESSAGE", "fail_dead_letter"]

DEAD_LETTER_MESSAGE = (
    "This job could not be processed after several attempts and was set aside for investigation. "
    "Please try again; if it keeps failing, contact support with job id {job_id}."
)
_log = Logger(child=True)


def fail_dead_letter(body: str) -> bool:
    """Fail the job in a dead-lettered record unless it already ended; ``True`` when it was failed.

    A record whose ``context.jobId`` is not shaped like a Flatfile id names no job that could be failed: it
    is logged at ERROR and dropped (``False``), never put in a URL, never kept to fail again.

    Raises:
        FlatfileAPIError: Flatfile could not be reached; the record stays in the dead-letter queue.
    """
    event = json.loads(body)
    try:
        job_id = FlatfileEvent.of(event).context_id("jobId")
        if job_id is None:
            raise InvalidEventError("event.context.jobId is missing")
    except InvalidEventError as exc:
        _log.error("Dead letter dropped: no job to fail", extra={"reason": str(exc)})
        return False
    flatfile_jobs.configure(token=get_runtime().api_token())
    return flatfile_jobs.fail_unfinished_job(job_id, DEAD_LETTER_MESSAGE.format(job_id=job_id))
