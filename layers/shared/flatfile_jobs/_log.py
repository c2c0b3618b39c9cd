"""The library's Powertools logger: a child of the function's Logger (same service), built on first use."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

__all__ = ["PLUGIN_PREFIX", "get_logger", "log_context"]

# The plugin's message prefix, kept so log searches written for the JS plugin still find our lines.
PLUGIN_PREFIX = "[@flatfile/plugin-job-handler]"

#: Keys every line logged while a job runs carries (job_id, event_id, job); API call lines include them.
log_context: contextvars.ContextVar[Mapping[str, object]] = contextvars.ContextVar(
    "flatfile_jobs_log_context", default=MappingProxyType({})
)


@cache
def get_logger() -> Logger:
    """A child Powertools Logger: it uses the handler of the app's ``Logger()`` of the same service."""
    from aws_lambda_powertools import Logger

    return Logger(child=True)
