"""A long-lived thread per event-loop thread that runs sync job handlers one at a time.

Starting a thread for every job costs a few hundred microseconds (mostly handing the GIL over); a warm
worker runs jobs back to back, so one thread is kept and fed through a queue. A thread whose handler
outlived its deadline is interrupted and retired; the next job gets a fresh one.
"""

from __future__ import annotations

import ctypes
import queue
import threading
from collections.abc import Callable

from ._errors import JobTimeoutError

__all__ = ["retire_handler_thread", "run_on_handler_thread"]

Work = Callable[[], None]


class _HandlerThread:
    def __init__(self) -> None:
        self._inbox: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._retired = False
        self._thread = threading.Thread(target=self._serve, name="flatfile-jobs-handler", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                work = self._inbox.get()
                if work is None:
                    return
                work()
            except JobTimeoutError:  # an interrupt that arrived between jobs
                if self._retired:
                    return

    def submit(self, work: Work) -> None:
        self._inbox.put(work)

    def retire(self, *, interrupt: bool) -> None:
        """Stop after the current work; with ``interrupt``, raise JobTimeoutError in it (best effort)."""
        self._retired = True
        if interrupt and self._thread.ident is not None:
            # Raised at the handler's next bytecode; a call blocked in C finishes first.
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._thread.ident), ctypes.py_object(JobTimeoutError)
            )
        self._inbox.put(None)


class _Local(threading.local):
    current: _HandlerThread | None = None


_local = _Local()


def run_on_handler_thread(work: Work) -> None:
    """Run ``work`` on the calling thread's handler thread (started on first use)."""
    if _local.current is None:
        _local.current = _HandlerThread()
    _local.current.submit(work)


def retire_handler_thread(*, interrupt: bool = False) -> None:
    """Retire the calling thread's handler thread (its handler outlived the deadline, or shutdown)."""
    current, _local.current = _local.current, None
    if current is not None:
        current.retire(interrupt=interrupt)
