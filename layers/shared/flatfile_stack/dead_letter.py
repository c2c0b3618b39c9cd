"""Dead letters are not silent: each dead-lettered job is failed in Flatfile with a clear message."""

from __future__ import annotations

import json

import flatfile_jobs

from .runtime import get_runtime

__all__ = ["DEAD_LETTER_MESSAGE", "fail_dead_letter"]

DEAD_LETTER_MESSAGE = (
    "This job could not be processed after several attempts and was set aside for investigation. "
    "Please try again; if it keeps failing, contact support with job id {job_id}."
)


def fail_dead_letter(body: str) -> bool:
    """Fail the job in a dead-lettered record unless it already ended; ``True`` when it was failed.

    Raises:
        FlatfileAPIError: Flatfile could not be reached; the record stays in the dead-letter queue.
    """
    event = json.loads(body)
    job_id = str(event["context"]["jobId"])
    flatfile_jobs.configure(token=get_runtime().api_token())
    return flatfile_jobs.fail_unfinished_job(job_id, DEAD_LETTER_MESSAGE.format(job_id=job_id))
