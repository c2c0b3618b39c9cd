"""The library's logger: stdlib ``logging.getLogger("flatfile_jobs")``, configured by the app, not by us.

In Lambda the function's Powertools ``Logger`` takes it over (``copy_config_to_registered_loggers``), so its
lines are JSON with the function's keys. In a plain script where nothing configured logging, ``debug=True``
sends its lines to stderr (:func:`show_debug_lines`), as the JS plugin's ``debug`` prints to the console.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol, TextIO

__all__ = ["LOGGER_NAME", "PLUGIN_PREFIX", "JobLog", "get_logger", "log_context", "show_debug_lines"]

LOGGER_NAME = "flatfile_jobs"
# The plugin's message prefix, kept so log searches written for the JS plugin still find our lines.
PLUGIN_PREFIX = "[@flatfile/plugin-job-handler]"

#: Keys every line logged while a job runs carries (job_id, event_id, job); API call lines include them.
log_context: contextvars.ContextVar[Mapping[str, object]] = contextvars.ContextVar(
    "flatfile_jobs_log_context", default=MappingProxyType({})
)

# Created at import, so Powertools' copy_config_to_registered_loggers finds it registered.
_logger = logging.getLogger(LOGGER_NAME)
# The extras worth showing on a console line, in this order (the JSON formatter shows them all).
_CONSOLE_KEYS = ("job", "job_id", "method", "path", "status", "ms", "attempt", "error", "reason")


def get_logger() -> logging.Logger:
    """The library's logger, ``logging.getLogger("flatfile_jobs")``."""
    return _logger


class _JobEvent(Protocol):
    """What :class:`JobLog` reads from a job's event (a ``FlatfileEvent``)."""

    @property
    def id(self) -> str: ...
    @property
    def job_id(self) -> str | None: ...
    @property
    def job(self) -> str | None: ...


class JobLog:
    """Log lines carrying job id, event id and job name; the plugin's message prefix where it has one."""

    def __init__(self, event: _JobEvent) -> None:
        self._logger = get_logger()
        self.context = {"job_id": event.job_id, "event_id": event.id, "job": event.job}

    def info(self, message: str, **extra: object) -> None:
        """Log at INFO."""
        self._logger.info(message, extra={**self.context, **extra}, stacklevel=2)

    def warning(self, message: str, **extra: object) -> None:
        """Log at WARNING."""
        self._logger.warning(message, extra={**self.context, **extra}, stacklevel=2)

    def error(self, message: str, **extra: object) -> None:
        """Log at ERROR."""
        self._logger.error(message, extra={**self.context, **extra}, stacklevel=2)


class _ConsoleFormatter(logging.Formatter):
    """``time LEVEL message  key=value…``: the message, then the job's keys that the record carries."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        keys = "  ".join(
            f"{key}={record.__dict__[key]}"
            for key in _CONSOLE_KEYS
            if record.__dict__.get(key) not in (None, "")
        )
        return f"{line}  {keys}" if keys else line


class _DebugConsole(logging.StreamHandler[TextIO]):
    """Writes to stderr while logging stays unconfigured, like ``logging.lastResort`` but from INFO up.

    Once the app configures logging (a root handler), the lines go there instead: none is written twice.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(_ConsoleFormatter("%(asctime)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            self.stream = sys.stderr  # as it is now (under the handler's lock): scripts and pytest swap it
            super().emit(record)


def show_debug_lines() -> None:
    """With logging not configured at all (no handler on our logger or the root), send our lines to stderr.

    Called when a job runs with debug on. Sets the logger's level to INFO when it has none (the root's
    default, WARNING, would drop the debug lines). Does nothing when the app configured logging: then the
    app's configuration decides, as in Lambda where the function's Powertools Logger took the logger over.
    """
    if _logger.handlers or logging.getLogger().handlers:
        return
    _logger.addHandler(_DebugConsole())
    if _logger.level == logging.NOTSET:
        _logger.setLevel(logging.INFO)
