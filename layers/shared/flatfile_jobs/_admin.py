"""Operations on a job outside a handler's lifecycle (the dead-letter function uses them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._events import require_flatfile_id

if TYPE_CHECKING:
    from ._config import ApiSettings

__all__ = ["fail_unfinished_job"]

_FINISHED = frozenset({"complete", "failed", "canceled"})


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
    from ._lifecycle import fail_body
    from ._runtime import run_sync

    require_flatfile_id(job_id, "job_id")

    async def run() -> bool:
        client = client_for(settings or ApiSettings.resolve())
        job = await client.get_job(job_id)
        if job.get("status") in _FINISHED:
            return False
        await client.fail_job(job_id, fail_body(message))
        return True

    return run_sync(run())
