"""flatfile_jobs: run Flatfile jobs from Python, request for request like @flatfile/plugin-job-handler.

Example:
    >>> from flatfile_jobs import FlatfileListener
    >>> listener = FlatfileListener()
    >>> @listener.job("space:configure")
    ... def configure_space(event, tick):
    ...     tick(10, "Starting configuration...")
"""

from ._admin import fail_unfinished_job
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
from ._events import FlatfileEvent
from ._listener import FlatfileListener, configure, job_handler
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
from ._runtime import shutdown

__all__ = [
    "ConfigurationError",
    "DispatchError",
    "EventCursor",
    "EventPoller",
    "FileLink",
    "FlatfileAPIError",
    "FlatfileEvent",
    "FlatfileJobsError",
    "FlatfileListener",
    "InvalidOutcomeError",
    "JobCanceled",
    "JobCompleteDetails",
    "JobOutcome",
    "JobPart",
    "JobResult",
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
    "StepFailedError",
    "StepTick",
    "Steps",
    "configure",
    "fail_unfinished_job",
    "job_handler",
    "long_job_handler",
    "multipart_job_handler",
    "shutdown",
]
