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
from ._results import JobResult
from ._table import JobRoute, job_table

if typing.TYPE_CHECKING:
    from ._api import FlatfileClient
    from ._event_loops import preload, shutdown
    from ._part_results import JobPart, PartResult, PartResults
    from ._parts import multipart_job_handler
    from ._polling import EventCursor, EventPoller

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
    "preload",
    "shutdown",
]


# Loaded on first use (PEP 562): the receiver imports this package on every cold start and needs none of
# them; ``FlatfileClient`` would import httpx.
_LAZY = {
    "EventCursor": "._polling",
    "EventPoller": "._polling",
    "FlatfileClient": "._api",
    "JobPart": "._part_results",
    "PartResult": "._part_results",
    "PartResults": "._part_results",
    "multipart_job_handler": "._parts",
    "preload": "._event_loops",
    "shutdown": "._event_loops",
}


def __getattr__(name: str) -> object:
    """The names in ``_LAZY``, imported on first use and then kept in the package like the others."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
