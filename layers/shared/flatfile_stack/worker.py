"""The worker's record handler: idempotent on the job id, a deadline from Lambda's remaining time."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, cast

# Every job needs the lifecycle's HTTP and retry stack; import it during Lambda's init phase rather than
# inside the first invocation (the receiver never imports these).
import httpx  # noqa: F401
import stamina  # noqa: F401
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

import flatfile_jobs

from .runtime import Runtime, get_runtime

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

__all__ = ["IDEMPOTENCY_CONFIG", "process_record", "retry_soon_on_failure"]

# A failed record comes back after ~30 s, 1, 2, 4, 8 min… instead of the queue's 90-minute visibility timeout.
RETRY_BASE_SECONDS = 30
RETRY_CAP_SECONDS = 900


def _answered_from_store(response: Any, idempotent_data: DataRecord) -> Any:  # noqa: ANN401 - stored JSON
    """Mark a result replayed from the idempotency store, so it is not counted as a second run."""
    return {**response, "duplicate": True} if isinstance(response, dict) else response


# A finished job's record is kept a day: a later duplicate is answered from it without running anything.
IDEMPOTENCY_CONFIG = IdempotencyConfig(
    event_key_jmespath="job_id", expires_after_seconds=24 * 3600, response_hook=_answered_from_store
)
_METRIC_BY_STATUS = {
    "completed": "JobsCompleted",
    "failed": "JobsFailed",
    "timed_out": "JobsTimedOut",
    "canceled": "JobsCanceled",
    "skipped": "JobsSkipped",
}


class LambdaContextLike(Protocol):
    """What the worker needs of Lambda's context (the local run passes its own)."""

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the platform stops the invocation."""


def _run(runtime: Runtime, job: dict[str, Any]) -> dict[str, Any]:
    starter = runtime.durable_starter()
    if starter is not None and runtime.listener.long_job(job["event"]) is not None:
        # A long job runs as a durable execution named after the job; this record is done once it started.
        return {
            "job_id": job["job_id"],
            "results": [],
            "durable_execution": starter.start(job["job_id"], job["event"]),
        }
    flatfile_jobs.configure(token=runtime.api_token())
    results = runtime.listener.dispatch(job["event"], timeout=job["timeout"])
    finished = [r for r in results if isinstance(r, flatfile_jobs.JobResult)]
    return {"job_id": job["job_id"], "results": [_as_dict(r) for r in finished]}


def _as_dict(result: flatfile_jobs.JobResult) -> dict[str, Any]:
    return {"status": result.status, "seconds": result.seconds, "job": result.job, "message": result.message}


@cache
def _idempotent(runtime_id: int, persistence: BasePersistenceLayer) -> Callable[..., dict[str, Any]]:
    def run_once(job: dict[str, Any]) -> dict[str, Any]:
        return _run(get_runtime(), job)

    decorate = idempotent_function(
        data_keyword_argument="job", persistence_store=persistence, config=IDEMPOTENCY_CONFIG
    )
    return cast("Callable[..., dict[str, Any]]", decorate(run_once))


def process_record(body: str, context: LambdaContextLike, metrics: Metrics | None = None) -> dict[str, Any]:
    """Run the job in one SQS record's body, at most once per job id.

    A duplicate of a finished job returns the stored result; a duplicate of a job still running elsewhere
    is dropped (the original message is redelivered if that run dies). Errors propagate so the record is
    reported as a batch item failure and retried.
    """
    runtime = get_runtime()
    event = json.loads(body)
    job_id = str(event["context"]["jobId"])
    timeout = context.get_remaining_time_in_millis() / 1000 - runtime.settings.deadline_margin
    IDEMPOTENCY_CONFIG.register_lambda_context(context)  # type: ignore[arg-type]
    run = _idempotent(id(runtime), runtime.idempotency_store())
    try:
        outcome = run(job={"job_id": job_id, "event": event, "timeout": max(timeout, 1.0)})
    except IdempotencyAlreadyInProgressError:
        outcome = {"job_id": job_id, "results": [], "duplicate": True}
    if metrics is not None:
        _record_metrics(metrics, outcome)
    return outcome


def _record_metrics(metrics: Metrics, outcome: dict[str, Any]) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    if outcome.get("duplicate"):
        metrics.add_metric(name="JobsDuplicate", unit=MetricUnit.Count, value=1)
        return
    if outcome.get("durable_execution"):
        metrics.add_metric(name="LongJobsStarted", unit=MetricUnit.Count, value=1)
    for result in outcome["results"]:
        metrics.add_metric(name="JobsStarted", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=_METRIC_BY_STATUS[result["status"]], unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="JobDuration", unit=MetricUnit.Seconds, value=result["seconds"])


def retry_delay(receive_count: int) -> int:
    """Seconds before a record that failed on its ``receive_count``-th receive is handed out again."""
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, receive_count - 1))
    return int(ceiling / 2 + random.uniform(0, ceiling / 2))


@contextmanager
def retry_soon_on_failure(receipt_handle: str, receive_count: int) -> Iterator[None]:
    """On an exception, shorten the record's visibility so SQS retries it soon; the exception goes on."""
    try:
        yield
    except Exception:
        try:
            get_runtime().queue.retry_later(receipt_handle, retry_delay(receive_count))
        except Exception:
            from aws_lambda_powertools import Logger

            Logger(child=True).warning("Could not shorten the failed record's visibility", exc_info=True)
        raise
