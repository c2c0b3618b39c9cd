"""flatfile_jobs: run Flatfile jobs from Python, request for request like @flatfile/plugin-job-handler.

Example:
    >>> from flatfile_jobs import FlatfileEvent, FlatfileListener, Tick
    >>> listener = FlatfileListener()
    >>> @listener.job("space:configure")
    ... def configure_space(event: FlatfileEvent, tick: Tick) -> None:
    ...     tick(10, "Starting configuration...")
"""

import typing

from ._config import ApiSettings
from ._contract import AsyncJobHandler, AsyncTick, JobHandler, Tick
from ._durable import Steps, StepTick, long_job_handler
from ._errors import (
    ConfigurationError,
    DispatchError,
    FlatfileAPIError,
    FlatfileJobsError,
    InvalidOutcomeError,
    JobCanceled,
    JobTimeoutError,
    StepFailedError,
)
from ._event_loops import shutdown
from ._events import FlatfileEvent
from ._listener import FlatfileListener, Plugin, job_handler
from ._outcomes import (
    FileLink,
    JobCompleteDetails,
    JobOutcome,
    Next,
    NextDownload,
    NextFiles,
    NextId,
    NextRetry,
    NextSnapshot,
    NextUrl,
    NextView,
    NextWait,
)
from ._part_results import JobPart, PartResult, PartResults
from ._parts import multipart_job_handler
from ._polling import EventCursor, EventPoller
from ._results import JobResult
from ._table import JobRoute, job_table

if typing.TYPE_CHECKING:
    from ._api import FlatfileClient

__all__ = [
    "ApiSettings",
    "AsyncJobHandler",
    "AsyncTick",
    "ConfigurationError",
    "DispatchError",
    "EventCursor",
    "EventPoller",
    "FileLink",
    "FlatfileAPIError",
    "FlatfileClient",
    "FlatfileEvent",
    "FlatfileJobsError",
    "FlatfileListener",
    "InvalidOutcomeError",
    "JobCanceled",
    "JobCompleteDetails",
    "JobHandler",
    "JobOutcome",
    "JobPart",
    "JobResult",
    "JobRoute",
    "JobTimeoutError",
    "Next",
    "NextDownload",
    "NextFiles",
    "NextId",
    "NextRetry",
    "NextSnapshot",
    "NextUrl",
    "NextView",
    "NextWait",
    "PartResult",
    "PartResults",
    "Plugin",
    "StepFailedError",
    "StepTick",
    "Steps",
    "Tick",
    "job_handler",
    "job_table",
    "long_job_handler",
    "multipart_job_handler",
    "shutdown",
]


def __getattr__(name: str) -> object:
    """``FlatfileClient`` on first use: importing the package must not import httpx (the receiver's cold start)."""
    if name == "FlatfileClient":
        from ._api import FlatfileClient

        globals()[name] = FlatfileClient
        return FlatfileClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
