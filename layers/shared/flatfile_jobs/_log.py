"""The library's Powertools logger: a child of the function's Logger (same service), built on first use."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

__all__ = ["PLUGIN_PREFIX", "get_logger"]

# The plugin's message prefix, kept so log searches written for the JS plugin still find our lines.
PLUGIN_PREFIX = "[@flatfile/plugin-job-handler]"


@cache
def get_logger() -> Logger:
    """A child Powertools Logger: it uses the handler of the app's ``Logger()`` of the same service."""
    from aws_lambda_powertools import Logger

    return Logger(child=True)
