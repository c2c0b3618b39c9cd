"""Shared fixtures for the unit tests: a clean environment, the fake Flatfile API, scripted handlers, logs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flatfile_jobs import FlatfileListener, job_handler
from flatfile_jobs._log import get_logger
from flatfile_jobs_testing import FakeFlatfile

# A token distinctive enough that finding it in a log line cannot be a coincidence.
TOKEN = "sk_test_Zq8vN3kLr5TtY1wQ"
_ENV = (
    "FLATFILE_API_URL",
    "FLATFILE_BEARER_TOKEN",
    "FLATFILE_API_KEY",
    "FLATFILE_ENVIRONMENT_ID",
    "AGENT_INTERNAL_URL",
    "POWERTOOLS_LOG_LEVEL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Flatfile or log-level setting leaks in from the shell or from another test."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeFlatfile]:
    with FakeFlatfile(token=TOKEN, seed=0) as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeFlatfile) -> FakeFlatfile:
    """The module's fake Flatfile API, emptied: no jobs, no recorded requests, no faults."""
    fake_server.reset()
    fake_server.canceled_ack = "ok"
    return fake_server


@pytest.fixture
def listen(fake: FakeFlatfile) -> Callable[..., FlatfileListener]:
    """Build a listener with one job handler pointed at the fake (options as for ``job_handler``)."""

    def make(handler: Callable[..., Any], job: Any = "space:configure", **options: Any) -> FlatfileListener:
        options.setdefault("api_url", fake.url)
        options.setdefault("token", fake.token)
        return FlatfileListener().use(job_handler(job, handler, **options))

    return make


@pytest.fixture
def lib_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG everywhere, with the library's records delivered to it whatever Powertools does.

    The library logs through ``logging.getLogger("flatfile_jobs")``; a function's Powertools Logger loaded by
    another test may have taken it over (no propagation to the root), so the capture handler is attached to
    the library's logger directly.
    """
    logger = logging.getLogger(get_logger().name)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger=logger.name)
    propagate = logger.propagate
    logger.propagate = False
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
        logger.propagate = propagate


@pytest.fixture
def lib_records(lib_log: pytest.LogCaptureFixture) -> Callable[[], list[logging.LogRecord]]:
    """A function returning the records the library itself logged so far (captured as ``lib_log``)."""
    name = get_logger().name
    return lambda: [record for record in lib_log.records if record.name == name]


# -- scripted handlers -------------------------------------------------------------------------------------
#
# A scenario is a list of steps; ``scripted("sync", ...)`` and ``scripted("async", ...)`` build the same
# handler as ``def handler(event, tick)`` and ``async def handler(event, tick)``, so every lifecycle case is
# checked for both kinds. Steps:
#   ("tick", progress[, info])    call tick, append what it returned to ``seen["ticks"]``
#   ("ticks", n, start, stop)     n ticks in a tight loop, progress from start to stop, info "row i"
#   ("sleep", seconds[, step])    sleep (time.sleep in 10 ms or ``step`` s steps / asyncio.sleep)
#   ("do", fn)                    call fn(event) (quick, synchronous; e.g. fake.cancel_job)
#   ("raise", exc)                raise exc
#   ("return", value)             return value
# ``seen`` gets "event" (what the handler received), "raised" (an exception that escaped it) and "ended"
# (time.monotonic() when it returned or raised).

Step = tuple[Any, ...]


def _plain(step: Step, event: Any) -> tuple[bool, Any]:
    """Run a step that is the same for both kinds; ``(True, value)`` when the handler should return."""
    kind = step[0]
    if kind == "do":
        step[1](event)
    elif kind == "raise":
        raise step[1]
    elif kind == "return":
        return True, step[1]
    else:
        raise AssertionError(f"unknown step {step!r}")
    return False, None


def _progress(step: Step, i: int) -> float:
    n, start, stop = step[1], step[2], step[3]
    return float(start + (stop - start) * i / max(1, n - 1))


def _sleep(step: Step) -> None:
    end = time.monotonic() + step[1]
    while time.monotonic() < end:
        time.sleep(step[2] if len(step) > 2 else 0.01)


def _sync_steps(steps: tuple[Step, ...], event: Any, tick: Callable[..., Any], record: dict[str, Any]) -> Any:
    for step in steps:
        if step[0] == "tick":
            record["ticks"].append(tick(*step[1:]))
        elif step[0] == "ticks":
            for i in range(step[1]):
                tick(_progress(step, i), f"row {i}")
        elif step[0] == "sleep":
            _sleep(step)
        else:
            done, value = _plain(step, event)
            if done:
                return value
    return None


async def _async_steps(
    steps: tuple[Step, ...], event: Any, tick: Callable[..., Any], record: dict[str, Any]
) -> Any:
    for step in steps:
        if step[0] == "tick":
            record["ticks"].append(await tick(*step[1:]))
        elif step[0] == "ticks":
            for i in range(step[1]):
                await tick(_progress(step, i), f"row {i}")
        elif step[0] == "sleep":
            await asyncio.sleep(step[1])
        else:
            done, value = _plain(step, event)
            if done:
                return value
    return None


def scripted(mode: str, *steps: Step, seen: dict[str, Any] | None = None) -> Callable[..., Any]:
    """A handler of kind ``mode`` ("sync" or "async") that runs ``steps``; ``seen`` collects what it saw."""
    record: dict[str, Any] = {} if seen is None else seen
    record.setdefault("ticks", [])

    def sync_handler(event: Any, tick: Callable[..., Any]) -> Any:
        record["event"] = event
        try:
            return _sync_steps(steps, event, tick, record)
        except BaseException as exc:
            record["raised"] = exc
            raise
        finally:
            record["ended"] = time.monotonic()

    async def async_handler(event: Any, tick: Callable[..., Any]) -> Any:
        record["event"] = event
        try:
            return await _async_steps(steps, event, tick, record)
        except BaseException as exc:
            record["raised"] = exc
            raise
        finally:
            record["ended"] = time.monotonic()

    if mode == "sync":
        return sync_handler
    if mode == "async":
        return async_handler
    raise AssertionError(f"unknown mode {mode!r}")


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run the test for a ``def`` handler and for an ``async def`` handler."""
    return str(request.param)


@pytest.fixture
def script(mode: str) -> Callable[..., Callable[..., Any]]:
    """``script(*steps, seen=None)``: the scripted handler for this test's ``mode``."""
    return lambda *steps, seen=None: scripted(mode, *steps, seen=seen)
