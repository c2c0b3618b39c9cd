"""One long-lived event loop per thread, so sync callers reuse one async HTTP client across invocations."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync", "shutdown"]

T = TypeVar("T")


class _ThreadRunner(threading.local):
    runner: asyncio.Runner | None = None


_state = _ThreadRunner()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on this thread's persistent loop.

    Raises:
        RuntimeError: Called from inside a running event loop (await the async variant there instead).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coro.close()
        raise RuntimeError("called from a running event loop: use 'await listener.adispatch(event)' instead")
    if _state.runner is None:
        _state.runner = asyncio.Runner()
    return _state.runner.run(coro)


def shutdown() -> None:
    """Close the calling thread's event loop, its Flatfile API clients and its handler thread.

    For threads that ran jobs and are about to end (a local worker pool, tests). Lambda never needs it:
    its one thread keeps the loop and client for the next warm invocation.
    """
    from ._handler_thread import retire_handler_thread

    retire_handler_thread()
    runner = _state.runner
    if runner is None:
        return
    _state.runner = None
    from ._api import close_clients

    with contextlib.suppress(Exception):
        runner.run(close_clients(runner.get_loop()))
    runner.close()
