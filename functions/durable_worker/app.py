"""DurableWorkerFunction: runs each long job as a Lambda durable execution (the worker starts them)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from flatfile_stack import durable

logger = Logger()
# The library logs through logging.getLogger("flatfile_jobs"): its lines become this Logger's JSON lines.
copy_config_to_registered_loggers(source_logger=logger, include={"flatfile_jobs"})


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Replay the execution's checkpoints and run its next steps (the SDK checkpoints and suspends)."""
    result: dict[str, Any] = durable.handler(event, context)
    return result
