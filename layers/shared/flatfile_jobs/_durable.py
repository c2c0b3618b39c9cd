"""Long jobs: one Flatfile job as the checkpointed steps of a durable execution.

Durable executions are AWS Lambda's checkpoint-and-replay engine for work longer than one invocation
(https://docs.aws.amazon.com/lambda/latest/dg/durable-functions.html); this module knows only the
:class:`~flatfile_jobs._checkpoints.Checkpoints` it needs from one.

A long handler is ``def handler(event, steps)``. It does its work in named steps, ``steps.run("extract", fn)``
where ``fn(tick)`` ticks as usual and returns a JSON value, and pauses with ``steps.wait("cool-down",
seconds=1200)``. On a durable engine (the SDK adapter, ``flatfile_stack.durable``) each step's result is
checkpointed and a replay returns it without running the step again; code between steps re-runs on every replay
and must be deterministic. The lifecycle's own calls are steps too::

    flatfile:ack → handler(event, steps) → flatfile:complete | flatfile:fail

so "Accepted" is sent once, each tick once, complete or fail once, with the plain lifecycle's bodies. When the
ack or the complete step gives up (Flatfile kept refusing), or something unexpected fails, the job is failed
once with what went wrong. Progress
never goes backwards: every step starts from the higher of the progress the steps before it reached and the
job's own (read with one ``GET /jobs/{id}`` when the step starts, which is also where a cancellation made during
a wait is seen). The job's time limit counts from the ack; it is checked when a step starts and, with the
checkpointed clock, before a wait, so a job that would outlive its execution is failed with "Job timed out after
N s" while the execution still runs.

With no durable engine (long jobs turned off) the same handler runs in the plain lifecycle: steps run inline,
waits sleep, and the worker's deadline bounds the whole job.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar

from ._checkpoints import Checkpoints
from ._config import ApiSettings, debug_from_env, handler_settings
from ._contract import JobReturn, Tick
from ._errors import InvalidEventError, InvalidOutcomeError, JobCanceled, JobTimeoutError, StepFailedError
from ._events import FlatfileEvent
from ._job_status import JobStatus
from ._log import JobLog, log_context
from ._results import JobResult

if TYPE_CHECKING:
    from ._api import FlatfileClient
    from ._listener import FlatfileListener, Plugin

__all__ = [
    "Checkpoints",
    "LongJob",
    "LongJobHandler",
    "StepTick",
    "Steps",
    "close_long_job_loop",
    "long_job_handler",
]

T = TypeVar("T")


#: The ``tick`` a step's function gets: a job handler's sync :class:`Tick` (progress never goes below the job's).
StepTick: TypeAlias = Tick


ACK_STEP, COMPLETE_STEP, FAIL_STEP = "flatfile:ack", "flatfile:complete", "flatfile:fail"
# Exceptions that a step's retries cannot cure: the job ends at once.
_FINAL = (JobCanceled, JobTimeoutError, InvalidOutcomeError, TypeError)


class Steps(Protocol):
    """What a long handler gets instead of ``tick``: named steps and waits.

    Example:
        >>> def extract_file(event, steps):
        ...     rows = steps.run("read", lambda tick: tick(10, "Reading...") and 42)
        ...     steps.wait("cool-down", seconds=1200)
    """

    def run(self, name: str, fn: Callable[[StepTick], T]) -> T:
        """Run ``fn(tick)`` as the step ``name``; on a replay return its checkpointed (JSON) result.

        Raises:
            JobCanceled: The job was canceled in Flatfile.
            StepFailedError: ``fn`` kept failing through the step's attempts (its message fails the job).
        """
        ...

    def wait(self, name: str, *, seconds: float) -> None:
        """Pause the job ``seconds`` (whole seconds, at least 1); on a durable engine no compute is billed."""
        ...


#: ``def handler(event, steps)`` (sync): returns what a job handler returns.
LongJobHandler: TypeAlias = Callable[[FlatfileEvent, Steps], JobReturn]


class _LoopThread:
    """One event loop on its own thread for every long job's API calls (the SDK runs handlers on new threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="flatfile-jobs-long", daemon=True).start()
                self._loop = loop
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop()).result()

    def close(self) -> None:
        """Close the loop's API clients, stop it and close it (tests and the local run; Lambda keeps it)."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return
        from ._api import close_clients

        asyncio.run_coroutine_threadsafe(close_clients(loop), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        while loop.is_running():
            time.sleep(0.001)
        loop.close()


_LOOP = _LoopThread()


def close_long_job_loop() -> None:
    """Close the long jobs' event loop and its API clients (a later long job opens a new one)."""
    _LOOP.close()


def _retryable(exc: BaseException) -> bool:
    return not isinstance(exc, _FINAL)


def _message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _unfinished_message(exc: BaseException) -> str:
    """What the user reads when the lifecycle itself gave up: which of its calls, and the last error."""
    if isinstance(exc, StepFailedError) and exc.step == ACK_STEP:
        return f"The job could not be started: {_message(exc)}"
    if isinstance(exc, StepFailedError) and exc.step == COMPLETE_STEP:
        return f"The job's work finished, but it could not be marked complete: {_message(exc)}"
    return f"The job stopped unexpectedly: {_message(exc)}"


def _is(error_type: str, cls: type[BaseException]) -> bool:
    return error_type == cls.__name__ or error_type.endswith(f".{cls.__name__}")


@dataclass(frozen=True, slots=True)
class LongJob:
    """A registered long handler and its options (what the durable worker runs)."""

    handler: LongJobHandler
    attempts: int
    debug: bool
    tick_interval: float
    settings: Callable[[ApiSettings | None], ApiSettings]

    def run_durable(
        self,
        event: Mapping[str, Any],
        engine: Checkpoints,
        *,
        time_limit: float | None = None,
        settings: ApiSettings | None = None,
    ) -> dict[str, Any]:
        """Run the job's lifecycle as steps of ``engine``; returns how it ended (a JobResult as a dict).

        ``settings`` are the API settings the caller hands down (the handler's own options override them).

        Raises:
            InvalidEventError: The event has no ``context.jobId``.
            StepFailedError: Failing the job failed through all attempts (an ack or complete that gives up
                fails the job instead; the execution then ends failed and the stack's dead-letter path fails
                the job later).
        """
        view = FlatfileEvent.of(event)
        if view.job_id is None:
            raise InvalidEventError("event.context.jobId is missing")
        run = _DurableRun(self, view, view.job_id, engine, time_limit, self.settings(settings))
        token = log_context.set({"job_id": view.job_id, "event_id": view.id, "job": view.job})
        try:
            return run.run()
        finally:
            log_context.reset(token)


class _DurableRun:
    """One job's lifecycle on a durable engine; rebuilt (and replayed) on every invocation."""

    def __init__(
        self,
        job: LongJob,
        event: FlatfileEvent,
        job_id: str,
        engine: Checkpoints,
        time_limit: float | None,
        settings: ApiSettings,
    ) -> None:
        self.job, self.event, self.job_id, self.engine = job, event, job_id, engine
        self.time_limit = time_limit
        self.settings = settings
        self.verbose = job.debug or debug_from_env()
        self.started = self.last_at = 0.0
        self.floor = 0
        self.canceled = False
        self.fail_started = False

    # -- calls to Flatfile, on the shared loop ------------------------------------------------------------
    def call(self, fn: Callable[[FlatfileClient], Awaitable[T]]) -> T:
        async def go() -> T:
            from ._api import client_for

            return await fn(client_for(self.settings, debug=self.verbose))

        return _LOOP.run(go())

    def _job_run(self, client: FlatfileClient) -> Any:  # noqa: ANN401 - the lifecycle's _JobRun
        from ._lifecycle import _JobRun

        return _JobRun(FlatfileEvent.of(self.event.raw, api=client), client, self.job_id, self.verbose)

    def result(
        self, status: JobStatus, message: str | None = None, *, now: float | None = None
    ) -> dict[str, Any]:
        seconds = round(max(0.0, (now or time.time()) - self.started), 6) if self.started else 0.0
        ended = JobResult(self.job_id, self.event.job or "", self.event.id, status, seconds, message)
        return {"job_id": ended.job_id, "job": ended.job, "status": ended.status, "seconds": ended.seconds,
                "message": ended.message}  # fmt: skip

    def step(self, name: str, fn: Callable[[int], T]) -> T:
        return self.engine.step(name, fn, attempts=self.job.attempts, retry_if=_retryable)

    # -- the lifecycle --------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """The lifecycle; when a step of its own gives up (or something unexpected fails), fail the job once.

        The job is failed with what went wrong unless failing it is what gave up: then the execution ends
        failed, and the stack's dead-letter path fails the job from the execution's status change.
        """
        try:
            return self._lifecycle()
        except Exception as exc:
            if self.engine.is_engine_error(exc) or self.fail_started:
                raise
            message = _unfinished_message(exc)
            return self.fail_once(message, "failed")

    def fail_once(self, message: str, status: JobStatus) -> dict[str, Any]:
        """The one fail step of this execution (a second would send a second fail)."""
        self.fail_started = True
        return self.step(FAIL_STEP, lambda _attempt: self._fail(message, status))

    def _lifecycle(self) -> dict[str, Any]:
        ack = self.step(ACK_STEP, self._ack)
        if not ack["run"]:
            return self.result(ack["status"])
        self.started = self.last_at = float(ack["at"])
        self.floor = int(ack.get("progress") or 0)
        try:
            value = self.job.handler(self.event, _CheckpointedSteps(self))
        except JobCanceled:
            return self.result("canceled")
        except Exception as exc:
            if self.engine.is_engine_error(exc):
                raise
            status: JobStatus = "timed_out" if isinstance(exc, JobTimeoutError) else "failed"
            return self.fail_once(_message(exc), status)
        return self.step(COMPLETE_STEP, lambda _attempt: self._complete(value))

    def _ack(self, attempt: int) -> dict[str, Any]:
        from ._lifecycle import _ack

        async def ack(client: FlatfileClient) -> dict[str, Any]:
            if attempt > 1:
                # An earlier attempt may have acked before its answer was lost: "Accepted" goes out once.
                job = await client.get_job(self.job_id)
                if job.get("status") == "executing":
                    return {"run": True, "status": None, "progress": job.get("progress") or 0}
            job_now, early = await _ack(client, self.job_id)
            return {"run": job_now is not None and early is None, "status": early, "progress": 0}

        return {**self.call(ack), "at": time.time()}

    def _complete(self, value: object) -> dict[str, Any]:
        async def complete(client: FlatfileClient) -> JobResult:
            ended: JobResult = await self._job_run(client).complete(value)
            return ended

        ended = self.call(complete)
        return self.result(ended.status, ended.message)

    def _fail(self, message: str, status: JobStatus) -> dict[str, Any]:
        async def fail(client: FlatfileClient) -> JobResult:
            ended: JobResult = await self._job_run(client).fail(message, status)
            return ended

        ended = self.call(fail)
        return self.result(ended.status, ended.message)

    def check_time(self, now: float) -> None:
        """Raise JobTimeoutError when ``now`` is past the job's time limit."""
        if self.time_limit is not None and now - self.started > self.time_limit:
            raise JobTimeoutError(self.job_id, now - self.started)


class _CheckpointedSteps:
    """``Steps`` on a durable engine."""

    def __init__(self, run: _DurableRun) -> None:
        self._run = run

    def run(self, name: str, fn: Callable[[StepTick], T]) -> T:
        run = self._run
        if run.canceled:
            raise JobCanceled(run.job_id)
        try:
            out: dict[str, Any] = run.step(name, lambda attempt: self._attempt(fn))
        except StepFailedError as exc:
            if _is(exc.error_type, JobCanceled):
                run.canceled = True
                raise JobCanceled(run.job_id) from None
            if _is(exc.error_type, JobTimeoutError):
                raise JobTimeoutError(run.job_id, time.time() - run.started) from None
            raise
        run.floor = max(run.floor, int(out["progress"]))
        run.last_at = float(out["at"])
        value: T = out["value"]
        return value

    def _attempt(self, fn: Callable[[StepTick], T]) -> dict[str, Any]:
        from ._ticks import Ticker, tick_body

        run = self._run
        run.check_time(time.time())

        async def start(client: FlatfileClient) -> tuple[FlatfileClient, dict[str, Any]]:
            return client, await client.get_job(run.job_id)

        client, job = run.call(start)
        if job.get("status") == "canceled":
            raise JobCanceled(run.job_id)
        high = max(run.floor, int(job.get("progress") or 0))
        ticker = Ticker(
            client, run.job_id, interval=run.job.tick_interval, loop=_LOOP.loop(), log=JobLog(run.event),
            last_job=job,
        )  # fmt: skip

        def tick(progress: float, info: str | None = None) -> dict[str, Any]:
            nonlocal high
            sent = tick_body(progress, info)["progress"]
            high = max(high, sent)
            return ticker.tick(high, info)

        try:
            value = fn(tick)
        finally:
            ticker.close(JobCanceled(run.job_id))
            _LOOP.run(ticker.drain())
        if ticker.canceled:
            raise JobCanceled(run.job_id)
        return {"value": value, "progress": high, "at": time.time()}

    def wait(self, name: str, *, seconds: float) -> None:
        run = self._run
        if run.canceled:
            raise JobCanceled(run.job_id)
        whole = max(1, math.ceil(seconds))
        # The checkpointed clock: the same decision on every replay.
        run.check_time(run.last_at + whole)
        run.engine.wait(name, whole)
        run.last_at += whole


class _InlineSteps:
    """``Steps`` in the plain lifecycle (long jobs off): steps run at once, waits sleep."""

    def __init__(self, tick: StepTick) -> None:
        self._tick = tick

    def run(self, name: str, fn: Callable[[StepTick], T]) -> T:
        return fn(self._tick)

    def wait(self, name: str, *, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


class _LongJobCallback:
    """The listener callback of a long job: runs it in the plain lifecycle; ``long_job`` tells the worker."""

    def __init__(self, long_job: LongJob) -> None:
        self.long_job = long_job

    async def __call__(self, event: FlatfileEvent) -> JobResult:
        from ._api import client_for
        from ._lifecycle import run_job

        handler = self.long_job.handler
        verbose = self.long_job.debug or debug_from_env()

        def inline(view: FlatfileEvent, tick: Tick) -> JobReturn:
            return handler(view, _InlineSteps(tick))

        return await run_job(
            event,
            inline,
            client=client_for(self.long_job.settings(event.settings), debug=verbose),
            tick_interval=self.long_job.tick_interval,
            debug=verbose,
            deadline=event.deadline,
        )


def long_job_handler(
    job: str | Mapping[str, Any],
    handler: LongJobHandler,
    *,
    attempts: int = 3,
    debug: bool = False,
    tick_interval: float = 1.0,
    api_url: str | None = None,
    token: str | None = None,
    request_timeout: float | None = None,
    retry_budget: float | None = None,
) -> Plugin:
    """A plugin that runs ``handler(event, steps)`` for each matching ``job:ready`` event as a long job.

    With long jobs on (the stack's ``EnableLongJobs``) the worker starts a durable execution for the job and each
    step is checkpointed: the job may run up to the execution timeout, each step under the function's timeout.
    With them off the handler runs like any job, bounded by the worker's timeout.

    Args:
        job: The job name, or a filter dict for the event (as for ``job_handler``).
        handler: ``def handler(event, steps)`` (sync); returns what a job handler returns.
        attempts: Attempts of each step before it fails the job (jittered backoff between them).
        debug: As for ``job_handler``.
        tick_interval: Seconds between progress requests inside a step.
        api_url: The API root (default ``FLATFILE_API_URL``, else Flatfile's).
        token: The bearer token (default the caller's settings, else the environment's).
        request_timeout: Seconds per request.
        retry_budget: Seconds all attempts of one API call may take.

    Example:
        >>> def extract(event, steps):
        ...     steps.run("read", lambda tick: tick(50, "Reading...") and None)
        >>> plugin = long_job_handler("file:extract", extract)
    """
    if not callable(handler) or inspect.iscoroutinefunction(handler):
        raise TypeError("long_job_handler() needs a sync callable handler(event, steps)")
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    if tick_interval < 0:
        raise ValueError("tick_interval must be >= 0")
    filter_ = {"job": job} if isinstance(job, str) else dict(job)

    settings = handler_settings(
        api_url=api_url, token=token, request_timeout=request_timeout, retry_budget=retry_budget
    )
    long_job = LongJob(handler, attempts, debug, tick_interval, settings)

    def plugin(listener: FlatfileListener) -> None:
        listener.on("job:ready", filter_, _LongJobCallback(long_job))

    return plugin
