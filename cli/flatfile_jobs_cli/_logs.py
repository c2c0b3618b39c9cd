"""Where the functions' Powertools log lines go during a local run: a stream, as JSON or one short line each."""

from __future__ import annotations

import json
import logging
import os
import sys
from types import TracebackType
from typing import Any, TextIO

__all__ = ["LogRoute", "compact_line", "service_name"]

LIBRARY_LOGGER = "flatfile_jobs"
# Keys Lambda adds to every line; the compact form leaves them out.
_NOISE = frozenset(
    {
        "level",
        "message",
        "timestamp",
        "location",
        "service",
        "sampling_rate",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "xray_trace_id",
        "correlation_id",
    }
)


def service_name() -> str:
    """The Powertools service the functions log under (``POWERTOOLS_SERVICE_NAME``)."""
    return os.environ.get("POWERTOOLS_SERVICE_NAME") or "service_undefined"


def compact_line(log: dict[str, Any]) -> str:
    """One readable line from a Powertools log dict: ``10:00:01.123 INFO  message  key=value …``."""
    stamp = str(log.get("timestamp", ""))[11:23]
    extras = "  ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value, default=str)}"
        for key, value in log.items()
        if key not in _NOISE and value not in (None, "", [], {})
    )
    line = f"{stamp} {log.get('level', 'INFO'):<5} {log.get('message', '')}"
    return f"{line}  {extras}" if extras else line


def _set_stream(handler: logging.StreamHandler[Any], stream: TextIO | None) -> None:
    """Swap the handler's stream without flushing the old one (``setStream`` would, and it may be closed)."""
    handler.acquire()
    try:
        handler.stream = stream
    finally:
        handler.release()


def _serialize_compact(log: Any) -> str:  # noqa: ANN401 - Powertools hands the log dict in
    return compact_line(dict(log))


class LogRoute:
    """Send the service logger's lines to ``stream`` (compact or JSON, at ``level``) until the ``with`` ends.

    The functions' ``Logger()`` share one Powertools handler per service; this changes that handler's stream
    and formatter, sends the library's logger (``flatfile_jobs``) through it too (as the functions'
    ``copy_config_to_registered_loggers`` does in Lambda; ``develop`` loads no function), and puts everything
    back on exit.
    """

    def __init__(self, stream: TextIO, *, level: str = "INFO", compact: bool = True) -> None:
        self.stream = stream
        self.level = level
        self.compact = compact
        self._saved: tuple[logging.StreamHandler[Any], TextIO, logging.Formatter | None, int] | None = None
        self._library: tuple[list[logging.Handler], bool, int] | None = None

    def __enter__(self) -> LogRoute:
        from aws_lambda_powertools import Logger
        from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

        service = service_name()
        # Built with the real stdout (Powertools' default) when no function made it yet.
        handler = Logger(service=service, stream=sys.__stdout__).registered_handler
        target = logging.getLogger(service)
        if isinstance(handler, logging.StreamHandler):
            self._saved = (handler, handler.stream, handler.formatter, target.level)
            _set_stream(handler, self.stream)
            serializer = _serialize_compact if self.compact else None
            handler.setFormatter(LambdaPowertoolsFormatter(json_serializer=serializer, service=service))
            library = logging.getLogger(LIBRARY_LOGGER)
            self._library = (library.handlers[:], library.propagate, library.level)
            library.handlers, library.propagate = [handler], False
            library.setLevel(self.level)
        target.setLevel(self.level)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._library is not None:
            library = logging.getLogger(LIBRARY_LOGGER)
            library.handlers, library.propagate = self._library[0], self._library[1]
            library.setLevel(self._library[2])
            self._library = None
        if self._saved is None:
            return
        handler, stream, formatter, level = self._saved
        _set_stream(handler, sys.__stdout__ if getattr(stream, "closed", False) else stream)
        if formatter is not None:
            handler.setFormatter(formatter)
        logging.getLogger(service_name()).setLevel(level)
        self._saved = None
