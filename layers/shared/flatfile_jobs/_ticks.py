"""Progress ticks: validation, coalescing (at most one request per interval) and cancel detection.

The first tick is sent at once; after that at most one request per ``interval`` seconds carries the latest
``(progress, info)``, and :meth:`Ticker.drain` flushes a pending value before the job completes or fails.
``interval=0`` sends every tick, request for request like the JS plugin. Sync handlers tick from their own
thread: deciding to coalesce costs a lock, not a trip to the event loop.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._errors import FlatfileAPIError, JobCanceled
from ._job_status import is_canceled, refused

if TYPE_CHECKING:
    from ._api import FlatfileClient
    from ._log import JobLog

__all__ = ["Ticker", "tick_body"]


def tick_body(progress: object, info: object = None) -> dict[str, Any]:
    """The ack body for a tick: progress as a whole number clamped to 0–100, ``info`` only when given.

    Raises:
        TypeError: ``progress`` is not a number (bools and NaN included) or ``info`` is not a string.
    """
    if isinstance(progress, bool) or not isinstance(progress, int | float) or math.isnan(progress):
        raise TypeError(f"tick() progress must be a number, got {progress!r}")
    if info is not None and not isinstance(info, str):
        raise TypeError(f"tick() info must be a string, got {type(info).__name__}")
    # Halves round up, like JavaScript's Math.round (Python's round() would send 2 for 2.5).
    value = math.floor(min(100.0, max(0.0, float(progress))) + 0.5)
    return {"progress": value} if info is None else {"progress": value, "info": info}


class Ticker:
    """The ``tick`` handed to one job's handler (sync and async forms)."""

    def __init__(
        self,
        client: FlatfileClient,
        job_id: str,
        *,
        interval: float,
        loop: asyncio.AbstractEventLoop,
        log: JobLog,
        last_job: dict[str, Any],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client, self._job_id, self._interval = client, job_id, interval
        self._loop, self._log, self._clock = loop, log, clock
        self._lock = threading.Lock()
        self._send_lock = asyncio.Lock()
        self._pending: dict[str, Any] | None = None
        self._last_sent: float | None = None
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed: BaseException | None = None
        self.last_job = last_job
        self.canceled = False
        self.sent = 0

    def _raise_if_stopped(self) -> None:
        if self._closed is not None:
            raise self._closed
        if self.canceled:
            raise JobCanceled(self._job_id)

    def _admit(self, progress: object, info: object) -> dict[str, Any] | None:
        """Validate a tick and decide: the body to send now, or ``None`` when it waits for the next flush."""
        body = tick_body(progress, info)
        with self._lock:
            self._raise_if_stopped()
            now = self._clock()
            due = self._last_sent is None or now - self._last_sent >= self._interval
            if self._interval <= 0 or (due and not self._flush_scheduled):
                self._last_sent, self._pending = now, None
                return body
            self._pending = body
            if not self._flush_scheduled:
                self._flush_scheduled = True
                delay = max(0.0, (self._last_sent or now) + self._interval - now)
                self._loop.call_soon_threadsafe(self._schedule_flush, delay)
            return None

    def _schedule_flush(self, delay: float) -> None:
        self._timer = self._loop.call_later(delay, self._start_flush)

    def _start_flush(self) -> None:
        task = self._loop.create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _take_pending(self) -> dict[str, Any] | None:
        with self._lock:
            body, self._pending = self._pending, None
            self._flush_scheduled = False
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if body is not None:
                self._last_sent = self._clock()
            return body

    async def _flush(self) -> None:
        body = self._take_pending()
        if body is not None:
            await self._send(body)

    async def _send(self, body: dict[str, Any]) -> None:
        async with self._send_lock:
            if self.canceled:
                return
            self.sent += 1
            try:
                job = await self._client.ack_job(self._job_id, body)
            except FlatfileAPIError as exc:
                if refused(exc) and await is_canceled(self._client, self._job_id):
                    self.canceled = True
                    return
                self._log.warning(
                    "Progress update failed; the job goes on", error=str(exc), status=exc.status
                )
                return
            self.last_job = job
            if job.get("status") == "canceled":
                self.canceled = True

    async def atick(self, progress: float, info: str | None = None) -> dict[str, Any]:
        """Report progress from an async handler; returns the job as the API last returned it.

        Raises:
            JobCanceled: The job was canceled in Flatfile.
            TypeError: ``progress`` is not a number.
        """
        body = self._admit(progress, info)
        if body is not None:
            await self._send(body)
        self._raise_if_stopped()
        return self.last_job

    def tick(self, progress: float, info: str | None = None) -> dict[str, Any]:
        """Report progress from a sync handler (its own thread); same contract as :meth:`atick`."""
        body = self._admit(progress, info)
        if body is not None:
            asyncio.run_coroutine_threadsafe(self._send(body), self._loop).result()
        self._raise_if_stopped()
        return self.last_job

    async def drain(self) -> None:
        """Send a pending tick (if the job is not canceled) and wait for requests in flight."""
        body = self._take_pending()
        if body is not None:
            await self._send(body)
        async with self._send_lock:
            pass

    def close(self, error: BaseException) -> None:
        """Make every later tick raise ``error`` (the handler outlived the deadline or the job ended)."""
        with self._lock:
            self._closed = error
