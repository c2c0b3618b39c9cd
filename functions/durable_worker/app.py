"""DurableWorkerFunction: runs each long job as a Lambda durable execution (the worker starts them)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

import flatfile_jobs
from flatfile_app_jobs import listener
from flatfile_stack import durable
from flatfile_stack.runtime import FunctionRuntime

logger = Logger()
# The library logs through logging.getLogger("flatfile_jobs"): its lines become this Logger's JSON lines.
copy_config_to_registered_loggers(source_logger=logger, include={"flatfile_jobs"})
# The composition root: the app's job table and the adapters built from this function's environment on first use.
runtime = FunctionRuntime(listener)
# Lambda's init loads the lifecycle, its HTTP stack and TLS context: the first job costs what later ones do.
flatfile_jobs.preload()
execution_handler = durable.handler_for(runtime)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Replay the execution's checkpoints and run its next steps (the SDK checkpoints and suspends)."""
    result: dict[str, Any] = execution_handler(event, context)
    return result
