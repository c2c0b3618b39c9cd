"""Keep secret values out of botocore's DEBUG logs.

botocore logs every response body at DEBUG (``botocore.parsers``: ``Response body: b'{...}'``); for
Secrets Manager's ``GetSecretValue`` that body is the secret. Anyone who turns on DEBUG for the root logger
(Lambda's ``ApplicationLogLevel``, ``boto3.set_stream_logger``) would write the API key and the signing
secret to CloudWatch. A filter on that one logger replaces such a body with a note.
"""

from __future__ import annotations

import logging

__all__ = ["hide_secret_values_from_botocore"]

_MARKERS = ('"SecretString"', '"SecretBinary"')
_NOTE = "Response body: <not logged: it holds a secret value>"


class _SecretBodyFilter(logging.Filter):
    """Rewrites a botocore log record whose rendered text carries a secret value field."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            text = record.getMessage()
            if any(marker in text for marker in _MARKERS):
                record.msg, record.args = _NOTE, None
        return True


_FILTER = _SecretBodyFilter()


def hide_secret_values_from_botocore() -> None:
    """Install the filter on ``botocore.parsers`` (idempotent; cheap enough to call before each read)."""
    logger = logging.getLogger("botocore.parsers")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
