"""DeadLetterFunction: fails each dead-lettered job in Flatfile so no user waits on it forever."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from flatfile_app_jobs import listener
from flatfile_stack import dead_letter
from flatfile_stack.runtime import FunctionRuntime

logger = Logger()
# The library logs through logging.getLogger("flatfile_jobs"): its lines become this Logger's JSON lines.
copy_config_to_registered_loggers(source_logger=logger, include={"flatfile_jobs"})
metrics = Metrics(namespace="FlatfileJobs")
# A failed record is reported in batchItemFailures (not raised), also when it is the whole batch.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# The composition root: the adapters built from this function's environment on first use.
runtime = FunctionRuntime(listener)


def record_handler(record: SQSRecord) -> bool:
    """Fail the record's job unless it already ended; an exception keeps the record for a retry."""
    return dead_letter.handle_dead_letter(
        record.body,
        runtime=runtime(),
        message_id=record.message_id,
        receive_count=int(record.attributes.approximate_receive_count or 1),
        logger=logger,
        metrics=metrics,
    )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Handle a batch of dead letters, reporting the ones Flatfile could not be told about."""
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
