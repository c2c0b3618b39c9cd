"""The job lifecycle: ack → handler(event, tick) → complete | fail, with parity to the JS plugin.

Wire behaviour, as @flatfile/plugin-job-handler's ``jobHandler`` sends it: ack
``{"info":"Accepted","progress":0}`` outside the error handling (if it fails the handler never runs and the
error reaches the caller, so the queue redelivers); the handler's return value is the complete body (default
``{"outcome":{"message":"Job complete"}}``); an exception from the handler or from complete fails the job with
its message. On top: coalesced ticks, cancellation, a deadline, outcome validation and retries (in the client).
The plugin: https://github.com/FlatFilers/flatfile-plugins/blob/main/plugins/job-handler/src/job.handler.ts
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from ._contract import AsyncJobHandler, JobHandler
from ._errors import (
    FlatfileAPIError,
    FlatfileJobsError,
    InvalidEventError,
    InvalidOutcomeError,
    JobCanceled,
    JobTimeoutError,
)
from ._events import FlatfileEvent
from ._handler_thread import retire_handler_thread, run_on_handler_thread
from ._job_status import ENDED, JobStatus, current_status, refused
from ._log import PLUGIN_PREFIX, JobLog, log_context
from ._outcomes import complete_body
from ._results import JobResult
from ._ticks import Ticker

if TYPE_CHECKING:
    from ._api import FlatfileClient

__all__ = ["ACK_BODY", "fail_body", "run_job"]

ACK_BODY: Mapping[str, Any] = {"info": "Accepted", "progress": 0}
# Seconds the fail call may take once the deadline has passed (the worker's margin must cover it).
AFTER_DEADLINE_BUDGET = 5.0

Handler: TypeAlias = JobHandler | AsyncJobHandler
AfterAck: TypeAlias = Callable[[dict[str, Any]], Awaitable[JobResult | None]]


def fail_body(message: str) -> dict[str, Any]:
    """The plugin's fail body for ``message``."""
    return {"info": message, "outcome": {"acknowledge": True, "message": message}}


def _message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


@dataclass(frozen=True, slots=True)
class _TimedOut:
    seconds: float


async def _await_handler(
    handler: Handler, event: FlatfileEvent, ticker: Ticker, timeout: float | None
) -> tuple[object, BaseException | None] | _TimedOut:
    """Run the handler (sync ones on the handler thread) until it ends or ``timeout`` passes."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    on_thread = not inspect.iscoroutinefunction(handler)
    if on_thread:
        future: asyncio.Future[object] = loop.create_future()
        # Like asyncio.to_thread: the handler's thread (and the ticks it sends) see the caller's contextvars.
        context = contextvars.copy_context()
        run_on_handler_thread(lambda: context.run(_call_in_thread, handler, event, ticker, future, loop))
    else:
        future = asyncio.ensure_future(cast("AsyncJobHandler", handler)(event, ticker.atick))
    done, _ = await asyncio.wait({future}, timeout=timeout)
    if done:
        exc = future.exception()
        return (None, exc) if exc is not None else (future.result(), None)
    elapsed = time.monotonic() - started
    ticker.close(JobTimeoutError(event.job_id or "", elapsed))
    future.cancel()
    if on_thread:
        retire_handler_thread(interrupt=True)
    else:
        await asyncio.wait({future}, timeout=1.0)
    return _TimedOut(elapsed)


def _call_in_thread(
    handler: Handler,
    event: FlatfileEvent,
    ticker: Ticker,
    future: asyncio.Future[object],
    loop: asyncio.AbstractEventLoop,
) -> None:
    def settle(result: object, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    try:
        result: object = cast("JobHandler", handler)(event, ticker.tick)
        if inspect.isawaitable(result):
            result = asyncio.run_coroutine_threadsafe(_awaited(result), loop).result()
    except BaseException as exc:
        outcome: tuple[object, BaseException | None] = (None, exc)
    else:
        outcome = (result, None)
    # A closed loop means the lifecycle gave up on this handler long ago.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle, *outcome)


async def _awaited(awaitable: Awaitable[object]) -> object:
    return await awaitable


async def _ack(client: FlatfileClient, job_id: str) -> tuple[dict[str, Any] | None, JobStatus | None]:
    """Ack the job; ``(job, None)`` to go on, ``(None, status)`` when it is canceled or already finished."""
    try:
        job = await client.ack_job(job_id, ACK_BODY)
    except FlatfileAPIError as exc:
        if not refused(exc):
            raise
        try:
            current = await client.get_job(job_id)
        except FlatfileAPIError:
            raise exc from None
        if current.get("status") == "canceled":
            return None, "canceled"
        if current.get("status") in ENDED:
            return None, "skipped"
        raise
    return (None, "canceled") if job.get("status") == "canceled" else (job, None)


class _JobRun:
    """One run of the lifecycle: the state its steps share."""

    def __init__(self, event: FlatfileEvent, client: FlatfileClient, job_id: str, debug: bool) -> None:
        self.event, self.client, self.job_id, self.debug = event, client, job_id, debug
        self.log = JobLog(event)
        self.started = time.monotonic()
        self.ticker: Ticker | None = None

    def result(self, status: JobStatus, message: str | None = None) -> JobResult:
        seconds = round(time.monotonic() - self.started, 6)
        return JobResult(self.job_id, self.event.job or "", self.event.id, status, seconds, message)

    async def drain(self) -> None:
        if self.ticker is not None:
            await self.ticker.drain()

    async def fail(self, message: str, status: JobStatus, *, budget: float | None = None) -> JobResult:
        """Log the plugin's FATAL line, flush ticks, fail the job; a failing fail reaches the caller."""
        self.log.error(f"{PLUGIN_PREFIX}:[FATAL] {message}")
        await self.drain()
        try:
            await self.client.fail_job(self.job_id, fail_body(message), budget=budget)
        except FlatfileAPIError as exc:
            settled = await self.settled_after(exc)
            if settled is not None:
                return self.result(settled, message if settled != "canceled" else None)
            self.log.error("Could not mark the job failed", error=str(exc), status=exc.status)
            raise
        return self.result(status, message)

    async def settled_after(self, exc: FlatfileAPIError) -> JobStatus | None:
        """How the job ended, when the API refused a finishing call because it already had.

        A retried complete/fail whose first answer was lost is refused ("already complete"); the job is then
        finished as intended, not broken. ``None`` when the refusal is not explained by the job's status.
        """
        if not refused(exc):
            return None
        status = await current_status(self.client, self.job_id)
        return cast("JobStatus", status) if status in ENDED else None

    async def complete(self, value: object) -> JobResult:
        """Check the handler's return value, flush ticks, complete the job (or fail it with the reason)."""
        try:
            body = complete_body(value)
        except InvalidOutcomeError as exc:
            return await self.fail(str(exc), "failed")
        await self.drain()
        if self.ticker is not None and self.ticker.canceled:
            return self.result("canceled")
        if self.debug:
            self.log.info(f"{PLUGIN_PREFIX}:[INFO] Job complete")
        try:
            job = await self.client.complete_job(self.job_id, body)
        except FlatfileAPIError as exc:
            settled = await self.settled_after(exc)
            if settled in ("canceled", "complete"):
                return self.result(settled)
            return await self.fail(_message(exc), "failed")
        # An API that answers a canceled job with the job rather than an error: it stays canceled.
        return self.result("canceled" if job.get("status") == "canceled" else "complete")


async def run_job(
    event: FlatfileEvent,
    handler: Handler,
    *,
    client: FlatfileClient,
    tick_interval: float,
    debug: bool,
    deadline: float | None,
    after_ack: AfterAck | None = None,
) -> JobResult:
    """Run one job through its lifecycle and report how it ended.

    ``after_ack(job)`` (the ack's answer) may return a result to end the run there, the handler not run
    (a multi-part job's part whose parent was canceled).

    Raises:
        FlatfileAPIError: The ack failed (the handler did not run) or the fail call failed.
        InvalidEventError: The event has no ``context.jobId``.
    """
    job_id = event.job_id
    if job_id is None:
        raise InvalidEventError("event.context.jobId is missing")
    run = _JobRun(FlatfileEvent.of(event.raw, api=client), client, job_id, debug)
    token = log_context.set(run.log.context)
    try:
        if debug:
            run.log.info("Job received")
        return await _run(run, handler, tick_interval, deadline, after_ack)
    finally:
        log_context.reset(token)


async def _run(
    run: _JobRun, handler: Handler, tick_interval: float, deadline: float | None, after_ack: AfterAck | None
) -> JobResult:
    client, job_id = run.client, run.job_id
    job, early = await _ack(client, job_id)
    if job is None or early is not None:
        run.log.info(f"Job not run: {early}", status=early)
        return run.result(early or "canceled")
    stopped = None if after_ack is None else await after_ack(job)
    if stopped is not None:
        return stopped
    loop = asyncio.get_running_loop()
    ticker = run.ticker = Ticker(client, job_id, interval=tick_interval, loop=loop, log=run.log, last_job=job)
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    ran = await _await_handler(handler, run.event, ticker, timeout)
    if isinstance(ran, _TimedOut):
        message = f"Job timed out after {ran.seconds:.0f} s"
        return await run.fail(message, "timed_out", budget=AFTER_DEADLINE_BUDGET)
    value, error = ran
    ticker.close(FlatfileJobsError(f"tick() called after job {job_id} ended"))
    if isinstance(error, JobCanceled) or ticker.canceled:
        await ticker.drain()
        return run.result("canceled")
    if error is not None:
        return await run.fail(_message(error), "failed")
    return await run.complete(value)
