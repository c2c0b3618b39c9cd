"""The durable worker's adapter to the AWS Durable Execution SDK: the one module that imports it.

The SDK is beta and pinned (functions/durable_worker/requirements.txt). Only the durable worker imports this
module; the receiver and the worker never do (``make bench`` measures both with and without it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from aws_durable_execution_sdk_python import DurableContext, StepContext, StepError, durable_execution
from aws_durable_execution_sdk_python.config import Duration, StepConfig
from aws_durable_execution_sdk_python.exceptions import UnrecoverableError
from aws_durable_execution_sdk_python.retries import RetryDecision, RetryStrategyConfig, create_retry_strategy

from flatfile_jobs import ConfigurationError, StepFailedError

from .settings import Settings

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["LAST_STEP_SECONDS", "SdkCheckpoints", "handler_for", "run_execution", "time_limit"]

T = TypeVar("T")

# The durable worker's Timeout (900 s, one step's longest run) plus a minute to complete or fail the job.
LAST_STEP_SECONDS = 960


class SdkCheckpoints:
    """The lifecycle's ``Checkpoints`` on the SDK's ``DurableContext``."""

    def __init__(self, context: DurableContext) -> None:
        self._context = context

    def step(
        self, name: str, fn: Callable[[int], T], *, attempts: int, retry_if: Callable[[BaseException], bool]
    ) -> T:
        """Run ``fn(attempt)`` as the SDK step ``name``; a final failure becomes ``StepFailedError``."""
        backoff = create_retry_strategy(RetryStrategyConfig(max_attempts=attempts))

        def retry(error: Exception, attempts_made: int) -> RetryDecision:
            return backoff(error, attempts_made) if retry_if(error) else RetryDecision.no_retry()

        def attempt(step: StepContext) -> T:
            return fn(step.attempt)

        try:
            return self._context.step(attempt, name=name, config=StepConfig(retry_strategy=retry))
        except StepError as exc:
            raise StepFailedError(name, exc.message or exc.error_type, error_type=exc.error_type) from None

    def wait(self, name: str, seconds: int) -> None:
        """Suspend the execution (no compute billed) for ``seconds``."""
        self._context.wait(Duration.from_seconds(seconds), name=name)

    def is_engine_error(self, exc: BaseException) -> bool:
        """The SDK's unrecoverable errors (non-determinism, checkpoint failures) end the invocation."""
        return isinstance(exc, UnrecoverableError)


def run_execution(payload: Mapping[str, Any], context: DurableContext, runtime: Runtime) -> dict[str, Any]:
    """Run the long job in ``payload`` (``{"event": <job:ready event>}``) as this execution's steps.

    Raises:
        ConfigurationError: No long job handler matches the event (the worker and this function disagree).
    """
    event = payload["event"]
    long_job = runtime.listener.long_job(event)
    if long_job is None:
        raise ConfigurationError(f"No long job handler matches job {event.get('payload', {}).get('job')!r}")
    return long_job.run_durable(
        event,
        SdkCheckpoints(context),
        time_limit=time_limit(runtime.settings),
        settings=runtime.api_settings(),
    )


def time_limit(settings: Settings) -> float | None:
    """Seconds a long job may run: the execution's timeout less room for its last step (``None``: no limit).

    A step starts only before the limit and ends within the function's timeout, so the job is completed or
    failed while the execution still runs.
    """
    timeout = settings.durable_execution_timeout
    return max(60.0, timeout - LAST_STEP_SECONDS) if timeout else None


def handler_for(runtime: Callable[[], Runtime]) -> Callable[[Any, Any], Any]:
    """The durable worker's Lambda handler, running long jobs with ``runtime()``'s adapters.

    The durable worker's ``app.py`` calls it with its runtime; the local run hands the result to the SDK's
    test runner.
    """

    def execution(payload: Mapping[str, Any], context: DurableContext) -> dict[str, Any]:
        return run_execution(payload, context, runtime())

    handler: Callable[[Any, Any], Any] = durable_execution(execution)
    return handler
