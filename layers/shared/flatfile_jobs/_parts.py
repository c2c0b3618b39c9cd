"""Multi-part jobs (Flatfile's own fan-out): split a parent into parts, run each part, finish the parent once.

One registration covers the three events of a multi-part job::

    job:ready, isPart false   ack the parent ─ split(event) ─ POST /jobs/{id}/split ─ left executing
    job:ready, isPart true    the job lifecycle: ack (its answer is the part) ─ GET the parent ─ canceled:
                              cancel the part, run nothing ─ else run_part(part, tick) ─ complete | fail
                              then the parent's progress: parts ended / total (coalesced)
    job:parts-completed       parent already ended: leave it ─ else GET /jobs?parentId= (every page)
                              ─ finish(event, results) ─ complete | fail the parent

Nothing is kept between events: every decision is read from Flatfile, so parts run on as many workers as
the queue allows and any worker can finish the parent. Duplicates are absorbed by Flatfile's statuses (a
split parent is not split again, an ended parent is not finished again, an ended part is not run again) on
top of the worker's idempotency.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from ._config import handler_settings
from ._contract import AsyncJobHandler, AsyncTick, JobHandler, JobReturn, Tick
from ._errors import FlatfileAPIError, InvalidEventError
from ._events import PARTS_COMPLETED, FlatfileEvent
from ._job_status import ENDED
from ._log import JobLog, log_context
from ._outcomes import JobCompleteDetails, JobOutcome
from ._part_results import JobPart, PartResults, has_parts, read_parts, split_body
from ._results import JobResult

if TYPE_CHECKING:
    from ._api import FlatfileClient
    from ._lifecycle import _JobRun
    from ._listener import FlatfileListener, Plugin

__all__ = ["PARTS_COMPLETED", "multipart_job_handler"]

_PROGRESS_ENTRIES = 1_024

SplitParts: TypeAlias = int | Sequence[Mapping[str, Any]]
SplitFunction: TypeAlias = Callable[[FlatfileEvent], SplitParts | Awaitable[SplitParts]]
#: ``run_part(part, tick)``: sync (a :class:`Tick`) or ``async def`` (an :class:`AsyncTick`), returning as a handler.
PartFunction: TypeAlias = (
    Callable[[JobPart, Tick], JobReturn] | Callable[[JobPart, AsyncTick], Awaitable[JobReturn]]
)
FinishFunction: TypeAlias = Callable[[FlatfileEvent, PartResults], JobReturn | Awaitable[JobReturn]]


def _default_finish(event: FlatfileEvent, results: PartResults) -> JobCompleteDetails:
    if not results.ok:
        raise RuntimeError(results.summary)
    return JobCompleteDetails(outcome=JobOutcome(message=results.summary))


async def _call(function: Callable[..., Any], *args: object) -> Any:  # noqa: ANN401 - the user's value
    """Await an async callable; run a sync one in a thread (it may do blocking I/O)."""
    if inspect.iscoroutinefunction(function):
        return await function(*args)
    value = await asyncio.to_thread(function, *args)
    return await value if inspect.isawaitable(value) else value


def _retryable(exc: FlatfileAPIError) -> bool:
    return exc.status is None or exc.status in (408, 429) or exc.status >= 500


async def _split(client: FlatfileClient, job_id: str, body: Mapping[str, Any]) -> None:
    """``POST /split`` once per attempt; after any error the parts are looked for before trying again.

    Splitting twice would run every part twice, so a split whose answer was lost is not blindly retried:
    when the parent has parts, the split happened.
    """
    started, attempt = time.monotonic(), 0
    budget = client.settings.retry_budget
    while True:
        attempt += 1
        try:
            await client.split_job(job_id, body, budget=0.001)  # one attempt, no retry inside the client
            return
        except FlatfileAPIError as exc:
            if await has_parts(client, job_id):
                return
            remaining = budget - (time.monotonic() - started)
            delay = random.uniform(0, min(8.0, 0.25 * 2 ** (attempt - 1)))
            if not _retryable(exc) or delay >= remaining:
                raise
            await asyncio.sleep(delay)


class _ParentProgress:
    """At most one parent progress update per ``interval`` from this process (any number of parents)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def due(self, parent_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(parent_id)
            if last is not None and now - last < self.interval:
                return False
            if len(self._last) >= _PROGRESS_ENTRIES:
                self._last.clear()
            self._last[parent_id] = now
            return True

    async def update(self, client: FlatfileClient, parent_id: str, log: JobLog) -> None:
        """Ack the parent with parts ended / total; the last part leaves the parent to the finish."""
        if not self.due(parent_id):
            return
        try:
            results = await read_parts(client, parent_id)
            ended = sum(part.status in ENDED for part in results.parts)
            if not results.total or ended >= results.total:
                return
            body = {
                "progress": ended * 100 // results.total,
                "info": f"{ended} of {results.total} parts done",
            }
            await client.ack_job(parent_id, body)
        except FlatfileAPIError as exc:
            log.warning("Parent progress update failed; the parts go on", error=str(exc), status=exc.status)


@dataclass(frozen=True)
class _Options:
    split: SplitFunction
    run_part: PartFunction
    finish: FinishFunction
    run_in_parallel: bool | None
    tick_interval: float
    debug: bool
    progress: _ParentProgress


def _verbose(options: _Options) -> bool:
    from ._config import debug_from_env

    return options.debug or debug_from_env()


def _job_run(event: FlatfileEvent, client: FlatfileClient, options: _Options) -> _JobRun:
    from ._lifecycle import _JobRun

    if event.job_id is None:
        raise InvalidEventError("event.context.jobId is missing")
    return _JobRun(FlatfileEvent.of(event.raw, api=client), client, event.job_id, _verbose(options))


def _message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class _Late(Exception):
    """A role's function outlived the worker's deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Job timed out after {seconds:.0f} s")


async def _in_time(function: Callable[..., Any], deadline: float | None, *args: object) -> Any:  # noqa: ANN401
    """:func:`_call` within the deadline; :class:`_Late` when it passed (a sync function's thread runs on)."""
    if deadline is None:
        return await _call(function, *args)
    started = time.monotonic()
    try:
        return await asyncio.wait_for(_call(function, *args), max(0.0, deadline - started))
    except TimeoutError:
        raise _Late(time.monotonic() - started) from None


async def _run_parent(
    event: FlatfileEvent, client: FlatfileClient, options: _Options, deadline: float | None
) -> JobResult:
    from ._lifecycle import AFTER_DEADLINE_BUDGET, _ack

    run = _job_run(event, client, options)
    token = log_context.set(run.log.context)
    try:
        job, early = await _ack(client, run.job_id)
        if job is None or early is not None:
            run.log.info(f"Job not run: {early}", status=early)
            return run.result(early or "canceled")
        if await has_parts(client, run.job_id):
            run.log.info("Job already split: a redelivery")
            return run.result("split")
        try:
            body = split_body(await _in_time(options.split, deadline, run.event), options.run_in_parallel)
        except _Late as exc:
            return await run.fail(str(exc), "timed_out", budget=AFTER_DEADLINE_BUDGET)
        except Exception as exc:
            return await run.fail(_message(exc), "failed")
        try:
            await _split(client, run.job_id, body)
        except FlatfileAPIError as exc:
            return await run.fail(f"Could not split the job: {exc}", "failed")
        parts = body["parts"]
        run.log.info("Job split", parts=parts if isinstance(parts, int) else len(parts))
        return run.result("split")
    finally:
        log_context.reset(token)


async def _cancel_part(client: FlatfileClient, part_id: str) -> None:
    try:
        await client.cancel_job(part_id, {"info": "Parent job canceled"})
    except FlatfileAPIError as exc:
        if _retryable(exc):
            raise  # the record is retried; a refusal means the part already ended


async def _run_part(
    event: FlatfileEvent, client: FlatfileClient, options: _Options, deadline: float | None
) -> JobResult:
    from ._lifecycle import run_job

    part_id = event.job_id
    if part_id is None:
        raise InvalidEventError("event.context.jobId is missing")
    part: dict[str, Any] = {}

    async def after_ack(job: dict[str, Any]) -> JobResult | None:
        """Read the part from the ack's answer; a canceled parent's part is canceled, its handler not run."""
        started = time.monotonic()
        part.update(job if "parentId" in job else await client.get_job(part_id))
        parent_id = part.get("parentId")
        if parent_id and (await client.get_job(str(parent_id))).get("status") == "canceled":
            await _cancel_part(client, part_id)
            seconds = round(time.monotonic() - started, 6)
            return JobResult(part_id, event.job or "", event.id, "canceled", seconds, "Parent job canceled")
        return None

    def part_of(view: FlatfileEvent) -> JobPart:
        data, index, parent_id = part.get("partData"), part.get("part"), part.get("parentId")
        return JobPart(
            event=view,
            job_id=part_id,
            parent_id=str(parent_id) if parent_id else None,
            data=data if isinstance(data, Mapping) else {},
            index=index if isinstance(index, int) and not isinstance(index, bool) else None,
        )

    handler: JobHandler | AsyncJobHandler
    if inspect.iscoroutinefunction(options.run_part):
        run_async = cast("Callable[[JobPart, AsyncTick], Awaitable[JobReturn]]", options.run_part)

        async def run_async_part(view: FlatfileEvent, tick: AsyncTick) -> JobReturn:
            return await run_async(part_of(view), tick)

        handler = run_async_part
    else:
        run_sync = cast("Callable[[JobPart, Tick], JobReturn]", options.run_part)

        def run_sync_part(view: FlatfileEvent, tick: Tick) -> JobReturn:
            return run_sync(part_of(view), tick)

        handler = run_sync_part
    result = await run_job(
        event,
        handler,
        client=client,
        tick_interval=options.tick_interval,
        debug=_verbose(options),
        deadline=deadline,
        after_ack=after_ack,
    )
    parent_id = part.get("parentId")
    if parent_id and result.status in ("complete", "failed", "timed_out"):
        await options.progress.update(client, str(parent_id), JobLog(event))
    return result


async def _all_parts_ended(client: FlatfileClient, results: PartResults, log: JobLog) -> None:
    """The parent's progress at 100 % before its finish (best effort: the finish matters, not this)."""
    ended = sum(part.status in ENDED for part in results.parts)
    if not results.total:
        return
    body = {"progress": ended * 100 // results.total, "info": f"{ended} of {results.total} parts done"}
    try:
        await client.ack_job(results.parent_id, body)
    except FlatfileAPIError as exc:
        log.warning("Parent progress update failed; finishing it anyway", error=str(exc), status=exc.status)


async def _finish_parent(
    event: FlatfileEvent, client: FlatfileClient, options: _Options, deadline: float | None
) -> JobResult:
    from ._lifecycle import AFTER_DEADLINE_BUDGET

    run = _job_run(event, client, options)
    token = log_context.set(run.log.context)
    try:
        status = (await client.get_job(run.job_id)).get("status")
        if status == "canceled":
            run.log.info("Parent canceled: left as it is")
            return run.result("canceled")
        if status in ENDED:
            run.log.info(f"Parent already {status}: a duplicate parts-completed")
            return run.result("skipped")
        results = await read_parts(client, run.job_id)
        await _all_parts_ended(client, results, run.log)
        try:
            value = await _in_time(options.finish, deadline, run.event, results)
        except _Late as exc:
            return await run.fail(str(exc), "timed_out", budget=AFTER_DEADLINE_BUDGET)
        except Exception as exc:
            return await run.fail(_message(exc), "failed")
        return await run.complete(value)
    finally:
        log_context.reset(token)


def multipart_job_handler(
    job: str | Mapping[str, Any],
    *,
    split: SplitFunction,
    run_part: PartFunction,
    finish: FinishFunction | None = None,
    run_in_parallel: bool | None = None,
    debug: bool = False,
    tick_interval: float = 1.0,
    api_url: str | None = None,
    token: str | None = None,
    request_timeout: float | None = None,
    retry_budget: float | None = None,
) -> Plugin:
    """A plugin that runs a Flatfile multi-part job: split the parent, run each part, finish the parent once.

    Args:
        job: The job name ``"domain:operation"`` (globs allowed) or a filter dict; parent and parts share it.
        split: ``split(event)`` (sync or async) for the parent: a part count (1 to 10,000) or a list of
            dicts, each becoming one part's ``partData``. Raising fails the parent with the message.
        run_part: ``run_part(part, tick)`` (sync or async) for each part, in its own lifecycle: ``part`` is
            a :class:`JobPart`; the return value completes the part as a ``job_handler``'s does; raising
            fails the part.
        finish: ``finish(event, results)`` (sync or async) once every part ended: its return value
            completes the parent (a ``JobCompleteDetails`` or its dict), raising fails it. ``results`` is a
            :class:`PartResults` of every part, failures included. Default: complete with
            ``"8 parts complete"``, or fail naming the parts that did not complete.
        run_in_parallel: Sent as the split's ``runInParallel`` when given (Flatfile's default otherwise).
        debug: As for ``job_handler``.
        tick_interval: Seconds between progress requests for a part, and between updates of the parent's
            progress (parts ended / total) from one process.
        api_url: As for ``job_handler``.
        token: As for ``job_handler``.
        request_timeout: As for ``job_handler``.
        retry_budget: As for ``job_handler``.

    Example:
        >>> from flatfile_jobs import FlatfileListener
        >>> listener = FlatfileListener().use(multipart_job_handler(
        ...     "workbook:export", split=lambda event: 8, run_part=lambda part, tick: None))
        >>> listener.matches({"topic": "job:parts-completed", "payload": {"job": "workbook:export"}})
        True
    """
    for name, value in (("split", split), ("run_part", run_part)):
        if not callable(value):
            raise TypeError(f"multipart_job_handler() needs a callable {name}")
    if finish is not None and not callable(finish):
        raise TypeError("multipart_job_handler() finish must be callable")
    if tick_interval < 0:
        raise ValueError("tick_interval must be >= 0")
    filter_ = {"job": job} if isinstance(job, str) else dict(job)
    options = _Options(
        split=split,
        run_part=run_part,
        finish=finish or _default_finish,
        run_in_parallel=run_in_parallel,
        tick_interval=tick_interval,
        debug=debug,
        progress=_ParentProgress(tick_interval),
    )

    settings = handler_settings(
        api_url=api_url, token=token, request_timeout=request_timeout, retry_budget=retry_budget
    )

    def client_of(event: FlatfileEvent) -> FlatfileClient:
        from ._api import client_for
        from ._config import debug_from_env

        return client_for(settings(event.settings), debug=debug or debug_from_env())

    async def on_ready(event: FlatfileEvent) -> JobResult:
        if event.payload.get("isPart") is True:
            return await _run_part(event, client_of(event), options, event.deadline)
        return await _run_parent(event, client_of(event), options, event.deadline)

    async def on_parts_completed(event: FlatfileEvent) -> JobResult:
        return await _finish_parent(event, client_of(event), options, event.deadline)

    def plugin(listener: FlatfileListener) -> None:
        listener.on("job:ready", filter_, on_ready)
        listener.on(PARTS_COMPLETED, filter_, on_parts_completed)

    return plugin
