"""The handler contract: what a job handler is given (``Tick``, ``AsyncTick``) and what it may be.

Like ``TickFunction`` and ``jobHandler``'s handler type in ``@flatfile/plugin-job-handler``: a handler written
against these types type-checks under ``mypy --strict`` without ``Any``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from ._outcomes import JobCompleteDetails

if TYPE_CHECKING:
    from ._events import FlatfileEvent

__all__ = ["AsyncJobHandler", "AsyncTick", "JobHandler", "JobReturn", "Tick"]

#: What a handler may return: ``None`` (the default outcome), a ``JobCompleteDetails`` or its dict.
JobReturn: TypeAlias = JobCompleteDetails | Mapping[str, Any] | None


class Tick(Protocol):
    """The ``tick`` a sync handler gets: ``tick(50, "Halfway there!")`` reports progress.

    Progress is a number, clamped to a whole 0–100; ``info`` is shown under the job's bar when given.
    """

    def __call__(self, progress: float, info: str | None = None) -> dict[str, Any]:
        """Report progress; returns the job as the API last returned it.

        Raises:
            JobCanceled: The job was canceled in Flatfile (let it propagate: the job is left canceled).
            TypeError: ``progress`` is not a number or ``info`` not a string.
        """
        ...


class AsyncTick(Protocol):
    """The ``tick`` an ``async def`` handler gets: ``await tick(50, "Halfway there!")``."""

    async def __call__(self, progress: float, info: str | None = None) -> dict[str, Any]:
        """Report progress; returns the job as the API last returned it (raises as :class:`Tick` does)."""
        ...


class JobHandler(Protocol):
    """A sync job handler, ``def handler(event: FlatfileEvent, tick: Tick) -> None``; it runs on its own thread.

    It returns ``None`` (completes with "Job complete"), a ``JobCompleteDetails`` or its dict; raising fails
    the job with the exception's message.
    """

    def __call__(self, event: FlatfileEvent, tick: Tick, /) -> JobReturn:
        """Run the job."""
        ...


class AsyncJobHandler(Protocol):
    """An async job handler, ``async def handler(event: FlatfileEvent, tick: AsyncTick) -> None``.

    It runs on the lifecycle's event loop (``await`` I/O, e.g. ``event.api``); returns and raises as a
    :class:`JobHandler` does.
    """

    def __call__(self, event: FlatfileEvent, tick: AsyncTick, /) -> Awaitable[JobReturn]:
        """Run the job."""
        ...
