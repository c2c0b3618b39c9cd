"""The worker's record handler: idempotent on the job id, a heartbeat while the job runs, failures reported.

While a job runs, a heartbeat thread keeps its SQS message invisible a little longer (``visibility_seconds``
from now) and renews the job's in-progress lease in the idempotency store (``lease_seconds`` from now), every
``heartbeat_seconds``. A worker that dies (out of memory, a crash, the sandbox recycled) stops beating: its
lease lapses, then its message becomes visible and another worker runs the job, within about
``visibility_seconds`` instead of the queue's visibility timeout. See README "Design notes and limits".
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, cast

from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

import flatfile_jobs
from flatfile_jobs._dead_letters import fail_unfinished_job

from .idempotency import JOB_KEY_PREFIX, LeaseRenewing, job_config, renew_lease

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

    from .queues import JobQueue
    from .runtime import Runtime

__all__ = [
    "Heartbeat",
    "JobRunner",
    "NoHandlerRanError",
    "handle_record",
    "idempotency_key",
    "process_record",
    "retry_delay",
    "retry_soon_on_failure",
    "runner_for",
]

# A failed record comes back after ~30 s, 1, 2, 4, 8 min… instead of the queue's visibility timeout.
RETRY_BASE_SECONDS = 30
RETRY_CAP_SECONDS = 900
# Deeper events are never run (the listener's matching recurses per level; the receiver refuses far less):
# the job is failed with a message saying why, not retried into the dead-letter queue.
MAX_EVENT_DEPTH = 500
# How long the heartbeat thread may take to stop once the job ended (one SQS or DynamoDB call at most).
HEARTBEAT_STOP_SECONDS = 10.0

_METRIC_BY_STATUS = {
    "complete": "JobsCompleted",
    "failed": "JobsFailed",
    "timed_out": "JobsTimedOut",
    "canceled": "JobsCanceled",
    "skipped": "JobsSkipped",
    "split": "JobsSplit",
}


class NoHandlerRanError(Exception):
    """The worker's listener has no handler for a job the receiver queued (their job tables disagree).

    Raised, not ignored: the job would otherwise stay ``ready`` in Flatfile with nothing counted. As a failed
    record it is logged at ERROR, counted (``RecordsFailed``), retried (a deploy still rolling out catches up)
    and finally dead-lettered, and the dead-letter function fails the job in Flatfile.
    """


class LambdaContextLike(Protocol):
    """What the worker needs of Lambda's context (the local run passes its own)."""

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the platform stops the invocation."""


def idempotency_key(event: dict[str, Any]) -> str:
    """The job id for ``job:ready``, else ``"<topic>#<job id>"``.

    A split parent's ``job:parts-completed`` carries the parent's job id: it must not hit the record of the
    parent's own ``job:ready``.
    """
    job_id = str(event["context"]["jobId"])
    topic = event.get("topic")
    return job_id if topic in (None, "job:ready") else f"{topic}#{job_id}"


class _Lease:
    """Stands in for the Lambda context Powertools reads the in-progress lease from: the heartbeat's lease."""

    def __init__(self, seconds: float) -> None:
        self.millis = int(seconds * 1000)

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


def _answered_from_store(response: Any, idempotent_data: DataRecord) -> Any:  # noqa: ANN401 - stored JSON
    """Mark a result replayed from the idempotency store, so it is not counted as a second run."""
    return {**response, "duplicate": True} if isinstance(response, dict) else response


def _logger() -> Logger:
    from aws_lambda_powertools import Logger

    return Logger(child=True)


class Heartbeat:
    """Calls ``beat`` now and then every ``period`` seconds on a daemon thread, until the ``with`` ends.

    Args:
        beat: One heartbeat; its exceptions are logged (WARNING) and the next beat still comes.
        period: Seconds between beats.
    """

    def __init__(self, beat: Callable[[], None], *, period: float) -> None:
        self._beat = beat
        self._period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        # Joined, so no late beat can undo what follows the run (a delete, or a failure's backoff).
        self._thread.join(HEARTBEAT_STOP_SECONDS)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._beat()
            except Exception as exc:
                _logger().warning(
                    "Heartbeat failed; the next one retries", extra={"reason": f"{type(exc).__name__}: {exc}"}
                )
            self._stop.wait(self._period)


def _job_beat(runtime: Runtime, job_id: str, receipt_handle: str | None) -> Callable[[], None]:
    """Renew the job's lease first, then its message's visibility (so the lease always ends first)."""
    settings = runtime.settings
    persistence = runtime.idempotency_store()

    first = [True]

    def beat() -> None:
        if first:
            first.clear()  # the claim itself has just set the first lease
        elif isinstance(persistence, LeaseRenewing) and not renew_lease(
            persistence, job_id, settings.lease_seconds
        ):
            _logger().warning("The job's in-progress lease was lost", extra={"job_id": job_id})
        if receipt_handle:
            runtime.queue.extend_visibility(receipt_handle, settings.visibility_seconds)

    return beat


def _run(runtime: Runtime, job_id: str, event: dict[str, Any], timeout: float) -> dict[str, Any]:
    starter = runtime.durable_starter()
    if starter is not None and runtime.listener.long_job(event) is not None:
        # A long job runs as a durable execution named after the job; this record is done once it started.
        return {"job_id": job_id, "results": [], "durable_execution": starter.start(job_id, event)}
    results = runtime.listener.dispatch(event, timeout=timeout, settings=runtime.api_settings())
    if not results:
        raise NoHandlerRanError(
            f"no handler in this worker took the {flatfile_jobs.FlatfileEvent(event).job!r} job {job_id}, "
            "which the receiver queued: "
            "the receiver's and the worker's job tables disagree (a deploy in progress, or a handler removed)"
        )
    finished = [r for r in results if isinstance(r, flatfile_jobs.JobResult)]
    return {"job_id": job_id, "results": [_as_dict(r) for r in finished]}


def _as_dict(result: flatfile_jobs.JobResult) -> dict[str, Any]:
    return {"status": result.status, "seconds": result.seconds, "job": result.job, "message": result.message}


class JobRunner:
    """Runs a job after claiming its idempotency key in ``persistence`` (one per runtime, with its own config).

    Args:
        persistence: The runtime's idempotency store.
    """

    def __init__(self, persistence: BasePersistenceLayer) -> None:
        self.persistence = persistence
        self.config = job_config(response_hook=_answered_from_store)
        # Only ``job`` ({"job_id": <idempotency key>}) is hashed and deep-copied by Powertools, never the event.
        decorate = idempotent_function(
            data_keyword_argument="job",
            persistence_store=persistence,
            config=self.config,
            key_prefix=JOB_KEY_PREFIX,
        )
        self.run = cast("Callable[..., dict[str, Any]]", decorate(self._run_once))

    @staticmethod
    def _run_once(
        job: dict[str, str],
        event: dict[str, Any],
        timeout: float,
        receipt_handle: str | None,
        runtime: Runtime,
    ) -> dict[str, Any]:
        key = job["job_id"]  # the idempotency key: the job id, or "<topic>#<job id>"
        with Heartbeat(_job_beat(runtime, key, receipt_handle), period=runtime.settings.heartbeat_seconds):
            return _run(runtime, str(event["context"]["jobId"]), event, timeout)


def runner_for(runtime: Runtime) -> JobRunner:
    """The runtime's job runner, built on first use (and again when its idempotency store was replaced)."""
    persistence = runtime.idempotency_store()
    runner = runtime.job_runner
    if not isinstance(runner, JobRunner) or runner.persistence is not persistence:
        runner = runtime.job_runner = JobRunner(persistence)
    return runner


def process_record(
    body: str,
    context: LambdaContextLike,
    metrics: Metrics | None = None,
    *,
    runtime: Runtime,
    receipt_handle: str | None = None,
) -> dict[str, Any]:
    """Run the job in one SQS record's body, at most once per job id, with a heartbeat while it runs.

    A duplicate of a finished job returns the stored result; a duplicate of a job still running elsewhere
    is dropped (that run's heartbeat keeps its lease; if it dies, its own message is redelivered after the
    lease lapsed). Errors propagate so the record is reported as a batch item failure and retried.
    """
    event = json.loads(body)
    job_id = str(event["context"]["jobId"])
    if nesting_depth(event) > MAX_EVENT_DEPTH:
        return _refuse_too_deep(runtime, job_id, metrics)
    timeout = context.get_remaining_time_in_millis() / 1000 - runtime.settings.deadline_margin
    runner = runner_for(runtime)
    persistence = runner.persistence
    # The in-progress lease is the heartbeat's (renewed while the job runs), not Lambda's remaining time;
    # a store that cannot renew keeps the remaining time, so a long job is never claimed twice.
    lease = _Lease(runtime.settings.lease_seconds) if isinstance(persistence, LeaseRenewing) else context
    runner.config.register_lambda_context(lease)  # type: ignore[arg-type]
    try:
        outcome = runner.run(
            job={"job_id": idempotency_key(event)},
            event=event,
            timeout=max(timeout, 1.0),
            receipt_handle=receipt_handle,
            runtime=runtime,
        )
    except IdempotencyAlreadyInProgressError:
        outcome = {"job_id": job_id, "results": [], "duplicate": True}
    if metrics is not None:
        _record_metrics(metrics, outcome)
    return outcome


def nesting_depth(value: object) -> int:
    """How deeply containers nest in ``value`` (``0`` for a scalar), without recursion."""
    depth, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth = max(depth, level + 1)
        stack.extend((child, level + 1) for child in children)
    return depth


def _refuse_too_deep(runtime: Runtime, job_id: str, metrics: Metrics | None) -> dict[str, Any]:
    """Fail a job whose event nests too deeply to run (logged at ERROR, counted as JobsRefused)."""
    message = f"This job's event is nested more than {MAX_EVENT_DEPTH} levels deep, so it was not run."
    _logger().error("Job refused: event nested too deeply", extra={"job_id": job_id, "reason": message})
    fail_unfinished_job(job_id, message, settings=runtime.api_settings())
    if metrics is not None:
        from aws_lambda_powertools.metrics import MetricUnit

        metrics.add_metric(name="JobsRefused", unit=MetricUnit.Count, value=1)
    return {"job_id": job_id, "results": [], "refused": True}


def handle_record(
    body: str,
    context: LambdaContextLike,
    metrics: Metrics,
    *,
    runtime: Runtime,
    receipt_handle: str,
    receive_count: int,
    job_id: str | None = None,
) -> dict[str, Any]:
    """:func:`process_record`, with a failure logged at ERROR, counted (``RecordsFailed``) and backed off.

    Args:
        body: The SQS record's body (the job:ready event).
        context: Lambda's context (its remaining time is the job's deadline).
        metrics: Where the job's metrics go.
        runtime: The worker's adapters (its ``app.py`` builds them).
        receipt_handle: The record's receipt handle (heartbeat and backoff).
        receive_count: How often SQS handed this message out (``ApproximateReceiveCount``).
        job_id: The ``jobId`` message attribute, for the log line when the body cannot be read.
    """
    try:
        with retry_soon_on_failure(runtime.queue, receipt_handle, receive_count):
            return process_record(body, context, metrics, runtime=runtime, receipt_handle=receipt_handle)
    except Exception as exc:
        from aws_lambda_powertools.metrics import MetricUnit

        metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=1)
        cause = exc.errors[0] if isinstance(exc, flatfile_jobs.DispatchError) and exc.errors else exc
        _logger().error(
            "Job record failed; SQS delivers it again after a backoff, or dead-letters it",
            extra={
                "job_id": job_id or _job_id_of(body),
                "reason": f"{type(cause).__name__}: {cause}",
                "status": getattr(cause, "status", None),
                "receive_count": receive_count,
            },
            exc_info=True,
        )
        raise


def _job_id_of(body: str) -> str | None:
    try:
        event = json.loads(body)
        return str(event["context"]["jobId"])
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


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
def retry_soon_on_failure(queue: JobQueue, receipt_handle: str, receive_count: int) -> Iterator[None]:
    """On an exception, shorten the record's visibility in ``queue`` so it is retried soon; the exception goes on."""
    try:
        yield
    except Exception:
        try:
            queue.retry_later(receipt_handle, retry_delay(receive_count))
        except Exception:
            _logger().warning("Could not shorten the failed record's visibility", exc_info=True)
        raise
