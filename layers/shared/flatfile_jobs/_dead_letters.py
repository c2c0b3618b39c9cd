"""Dead letters: a job whose message could not be processed is failed in Flatfile, unless it already ended."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._events import require_flatfile_id
from ._job_status import ENDED

if TYPE_CHECKING:
    from ._config import ApiSettings

__all__ = ["fail_unfinished_job"]


def fail_unfinished_job(job_id: str, message: str, *, settings: ApiSettings | None = None) -> bool:
    """Fail a job unless it already ended; ``True`` when this call failed it.

    Used for jobs that could not be processed (dead letters): a job that completed before its message was
    dead-lettered must stay complete.

    Raises:
        InvalidEventError: ``job_id`` is not shaped like a Flatfile id; nothing is sent (a retry cannot
            help).
        FlatfileAPIError: The API could not be reached or refused (the caller keeps the message to retry).
    """
    from ._api import client_for
    from ._config import ApiSettings
    from ._event_loops import run_sync
    from ._lifecycle import fail_body

    require_flatfile_id(job_id, "job_id")

    async def run() -> bool:
        client = client_for(settings or ApiSettings.resolve())
        job = await client.get_job(job_id)
        if job.get("status") in ENDED:
            return False
        await client.fail_job(job_id, fail_body(message))
        return True

    return run_sync(run())
