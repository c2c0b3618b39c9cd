"""Job statuses in one vocabulary: Flatfile's words for how a job ends, and reading a job's status back.

Flatfile's job statuses are ``created planning scheduled ready executing complete failed canceled waiting``
(https://flatfile.com/docs/core-concepts/jobs); a job in one of :data:`ENDED` is never acked, completed or
failed again. A run's :data:`JobStatus` uses the same words for the same ends (``complete``, ``failed``,
``canceled``) and adds three of its own: ``timed_out``, ``skipped`` and ``split``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeAlias

from ._errors import FlatfileAPIError

if TYPE_CHECKING:
    from ._api import FlatfileClient

__all__ = ["ENDED", "JobStatus", "current_status", "is_canceled", "refused"]

#: How one run of a job ended (:attr:`JobResult.status`).
JobStatus: TypeAlias = Literal["complete", "failed", "timed_out", "canceled", "skipped", "split"]

#: Flatfile's statuses of a job that has ended.
ENDED = frozenset({"complete", "failed", "canceled"})


def refused(exc: FlatfileAPIError) -> bool:
    """Whether the API answered the call with a client error (it may be refusing a canceled or ended job)."""
    return exc.status is not None and 400 <= exc.status < 500


async def current_status(client: FlatfileClient, job_id: str) -> str | None:
    """The job's status in Flatfile (asked after the API refused a call), ``None`` when it can't be read."""
    try:
        job = await client.get_job(job_id)
    except FlatfileAPIError:
        return None
    status = job.get("status")
    return status if isinstance(status, str) else None


async def is_canceled(client: FlatfileClient, job_id: str) -> bool:
    """Whether the job is canceled in Flatfile (asked after the API refused a call)."""
    return await current_status(client, job_id) == "canceled"
