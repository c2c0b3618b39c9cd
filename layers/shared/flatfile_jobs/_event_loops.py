"""One long-lived event loop per thread, so sync callers reuse one async HTTP client across invocations."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["preload", "run_sync", "shutdown"]

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


def preload() -> None:
    """Load what running a job needs now, so that the first job costs what every later one does.

    Imports the lifecycle and its HTTP stack, starts this thread's event loop (with the async backend httpx's
    connections use) and builds the shared TLS context: about 100 ms that would otherwise land in the first
    job. Call it where a worker initialises (module level of its Lambda handler file: Lambda's init phase);
    never where no job runs, such as a webhook receiver. Optional, and a no-op when called again.
    """
    import httpcore  # noqa: F401 - httpx imports it when it builds its first client

    from . import _lifecycle  # noqa: F401 - with its handler thread, ticks and retries
    from ._api import tls_context

    tls_context()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        run_sync(_load_async_backend())


async def _load_async_backend() -> None:
    import anyio.lowlevel

    await anyio.lowlevel.checkpoint()  # anyio loads its asyncio backend here, as on httpx's first connection


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
