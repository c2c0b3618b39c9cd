"""PollerFunction (optional, EnablePoller=true): every minute, enqueue new job events (ready, parts-completed)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from flatfile_app_jobs import listener
from flatfile_stack import poller
from flatfile_stack.runtime import FunctionRuntime

logger = Logger()
# The library logs through logging.getLogger("flatfile_jobs"): its lines become this Logger's JSON lines.
copy_config_to_registered_loggers(source_logger=logger, include={"flatfile_jobs"})
metrics = Metrics(namespace="FlatfileJobs")
# The composition root: the app's job table (no handler module imported) and the adapters built from this
# function's environment on first use.
runtime = FunctionRuntime(listener)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Poll once (the schedule's event carries nothing we need) and report what was enqueued."""
    summary = poller.poll_once(runtime(), context.get_remaining_time_in_millis)
    metrics.add_metric(name="EventsPolled", unit=MetricUnit.Count, value=summary.events)
    metrics.add_metric(name="JobsEnqueued", unit=MetricUnit.Count, value=summary.enqueued)
    logger.info("Poll finished", extra=summary.as_dict())
    return summary.as_dict()
