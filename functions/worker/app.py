"""WorkerFunction: runs each queued job through its lifecycle, once per job id.

The composition root: the app's job table (each handler module imported on its first job) and the adapters
built from this function's environment on first use.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

import flatfile_jobs
from flatfile_app_jobs import listener
from flatfile_stack import worker
from flatfile_stack.runtime import FunctionRuntime

logger = Logger()
# The library logs through logging.getLogger("flatfile_jobs"): its lines become this Logger's JSON lines.
copy_config_to_registered_loggers(source_logger=logger, include={"flatfile_jobs"})
metrics = Metrics(namespace="FlatfileJobs")
# A failed record is reported in batchItemFailures (not raised), also when it is the whole batch.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
runtime = FunctionRuntime(listener)
# Lambda's init loads the lifecycle, its HTTP stack and TLS context: the first job costs what later ones do.
flatfile_jobs.preload()


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> dict[str, Any]:
    """Run one record's job; an exception (logged at ERROR, counted) marks the record failed for a retry.

    The batch processor hands in ``lambda_context`` (its remaining time is the job's deadline).
    """
    event_id = record.message_attributes["eventId"]
    job_id = record.message_attributes["jobId"]
    logger.set_correlation_id(event_id.string_value if event_id else record.message_id)
    return worker.handle_record(
        record.body,
        lambda_context,
        metrics,
        runtime=runtime(),
        receipt_handle=record.receipt_handle,
        receive_count=int(record.attributes.approximate_receive_count or 1),
        job_id=job_id.string_value if job_id else None,
    )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Process the batch (size 1) and report failed records individually."""
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
