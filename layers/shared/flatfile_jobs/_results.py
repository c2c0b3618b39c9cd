"""JobResult: how one job ended, as the listener reports it (kept light: the receiver imports it)."""

from __future__ import annotations

from dataclasses import dataclass

from ._job_status import JobStatus

__all__ = ["JobResult"]


@dataclass(frozen=True, slots=True)
class JobResult:
    """How one job ended, as :meth:`FlatfileListener.dispatch` reports it.

    Attributes:
        job_id: The job (``us_jb_…``).
        job: Its name, ``"domain:operation"``.
        event_id: The event that started it.
        status: ``complete``, ``failed`` (handler error or bad outcome), ``timed_out``, ``canceled`` (in
            Flatfile), ``skipped`` (already complete or failed when it arrived: a redelivery) or ``split``
            (a multi-part job's parent, split into parts and left executing until they end).
        seconds: Wall time from ack to the last call.
        message: The failure message, when there is one.
    """

    job_id: str
    job: str
    event_id: str
    status: JobStatus
    seconds: float
    message: str | None = None
