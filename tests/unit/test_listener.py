"""FlatfileListener: on / use / job, registration order, sync and async callbacks, failures, dispatch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from flatfile_jobs import DispatchError, FlatfileEvent, FlatfileListener, job_handler
from flatfile_jobs_testing import FakeFlatfile, job_ready_event

EVENT = job_ready_event("space:configure", job_id="us_jb_1", event_id="us_evt_1")


def test_on_with_callback_registers_and_returns_it() -> None:
    """on(query, filter, callback) registers the callback and hands it back."""
    listener = FlatfileListener()
    calls: list[str] = []

    def callback(event: FlatfileEvent) -> None:
        calls.append(event.id)

    assert listener.on("job:ready", {"job": "space:*"}, callback) is callback
    listener.dispatch(EVENT)
    assert calls == ["us_evt_1"]


def test_on_without_callback_is_a_decorator() -> None:
    """@listener.on(query) and @listener.on(query, filter) register the decorated function."""
    listener = FlatfileListener()
    calls: list[str] = []

    @listener.on("job:*")
    def first(event: FlatfileEvent) -> str:
        calls.append("first")
        return "one"

    @listener.on("job:ready", {"job": "space:configure"})
    def second(event: FlatfileEvent) -> str:
        calls.append("second")
        return "two"

    assert callable(first)
    assert callable(second)
    assert first(FlatfileEvent.of(EVENT)) == "one"  # the decorator returns the function unchanged
    calls.clear()
    assert listener.dispatch(EVENT) == ["one", "two"]
    assert calls == ["first", "second"]


def test_callbacks_receive_a_read_only_event_view() -> None:
    """Callbacks get a FlatfileEvent exposing id, topic, job id and job name over the raw dict."""
    listener = FlatfileListener()
    seen: list[FlatfileEvent] = []
    listener.on("**", None, seen.append)
    listener.dispatch(EVENT)
    (event,) = seen
    assert (event.id, event.topic, event.job_id, event.job) == (
        "us_evt_1",
        "job:ready",
        "us_jb_1",
        "space:configure",
    )
    assert (event.domain, event.operation) == ("space", "configure")
    assert event.raw["context"]["jobId"] == "us_jb_1"
    with pytest.raises(TypeError):
        event.raw["id"] = "other"  # type: ignore[index]


def test_use_calls_the_plugin_with_the_listener_and_returns_it() -> None:
    """use(plugin) calls plugin(listener) once and returns the listener, so calls chain."""
    listener = FlatfileListener()
    received: list[FlatfileListener] = []
    assert listener.use(received.append).use(received.append) is listener
    assert received == [listener, listener]


def test_callbacks_run_in_registration_order_sync_and_async() -> None:
    """Matching callbacks run one after another in registration order; async ones are awaited."""
    listener = FlatfileListener()
    order: list[str] = []

    def sync_a(event: FlatfileEvent) -> str:
        order.append("a")
        return "A"

    async def async_b(event: FlatfileEvent) -> str:
        order.append("b-start")
        await asyncio.sleep(0.01)
        order.append("b-end")
        return "B"

    def skipped(event: FlatfileEvent) -> str:
        order.append("never")
        return "X"

    def sync_c(event: FlatfileEvent) -> str:
        order.append("c")
        return "C"

    listener.on("job:ready", None, sync_a)
    listener.on("job:ready", None, async_b)
    listener.on("space:created", None, skipped)
    listener.on("job:ready", {"job": "workbook:*"}, skipped)
    listener.on(["job:failed", "job:ready"], None, sync_c)
    assert listener.dispatch(EVENT) == ["A", "B", "C"]
    assert order == ["a", "b-start", "b-end", "c"]


def test_dispatch_with_no_match_runs_nothing() -> None:
    """An event no callback matches returns an empty result list."""
    listener = FlatfileListener()
    listener.on("space:*", None, lambda event: pytest.fail("must not run"))
    assert listener.dispatch(EVENT) == []
    assert listener.matches(EVENT) is False


def test_a_failing_callback_is_logged_the_others_still_run_then_dispatch_error(
    lib_log: pytest.LogCaptureFixture, lib_records: Callable[[], list[logging.LogRecord]]
) -> None:
    """One callback raising does not stop the rest (each logged once, no traceback); DispatchError carries all."""
    listener = FlatfileListener()
    ran: list[str] = []
    first_error = ValueError("first broke")
    second_error = KeyError("second broke")

    def ok(event: FlatfileEvent) -> None:
        ran.append("ok")

    def bad(event: FlatfileEvent) -> None:
        ran.append("bad")
        raise first_error

    async def bad_async(event: FlatfileEvent) -> None:
        ran.append("bad_async")
        raise second_error

    def last(event: FlatfileEvent) -> None:
        ran.append("last")

    for callback in (ok, bad, bad_async, last):
        listener.on("job:ready", None, callback)
    with pytest.raises(DispatchError) as caught:
        listener.dispatch(EVENT)
    assert ran == ["ok", "bad", "bad_async", "last"]
    assert caught.value.errors == [first_error, second_error]
    assert caught.value.__cause__ is first_error
    failures = [r for r in lib_records() if r.getMessage() == "Listener callback failed"]
    assert len(failures) == 2
    assert all(r.levelno == logging.ERROR for r in failures)
    # One line naming the error, without its traceback: DispatchError carries it to whoever logs it once.
    assert [(r.__dict__["reason"], r.exc_info) for r in failures] == [
        ("ValueError: first broke", None),
        ("KeyError: 'second broke'", None),
    ]
    assert all(r.__dict__["event_id"] == "us_evt_1" and r.__dict__["job_id"] == "us_jb_1" for r in failures)


def test_matches_tells_whether_any_callback_would_run() -> None:
    """matches() is True when any subscription's topic and filter match."""
    listener = FlatfileListener()
    assert listener.matches(EVENT) is False
    listener.on("job:ready", {"job": "workbook:submitAction"}, lambda event: None)
    assert listener.matches(EVENT) is False
    listener.on("job:ready", {"job": "space:configure"}, lambda event: None)
    assert listener.matches(EVENT) is True
    assert listener.matches({**EVENT, "topic": "job:created"}) is False


def test_job_decorator_registers_a_job_ready_handler_with_the_job_filter() -> None:
    """@listener.job("space:configure") subscribes job:ready events whose payload.job matches."""
    listener = FlatfileListener()

    @listener.job("space:configure", token="unused")
    def configure_space(event: FlatfileEvent, tick: Any) -> None:
        """Never dispatched here."""

    assert callable(configure_space)
    assert configure_space.__doc__ == "Never dispatched here."
    assert listener.matches(EVENT) is True
    assert listener.matches(job_ready_event("workbook:submitAction")) is False
    assert listener.matches({**EVENT, "topic": "job:created"}) is False


def test_job_handler_with_a_filter_dict_and_globs() -> None:
    """job_handler takes a "domain:operation" glob or a whole filter, like jobHandler."""
    by_glob = FlatfileListener().use(job_handler("workbook:*", lambda event, tick: None))
    by_filter = FlatfileListener().use(
        job_handler({"job": "space:configure", "isPart": False}, lambda event, tick: None)
    )
    assert by_glob.matches(job_ready_event("workbook:submitAction")) is True
    assert by_glob.matches(EVENT) is False
    assert by_filter.matches(EVENT) is True
    assert by_filter.matches(job_ready_event("space:configure", is_part=True)) is False


def test_job_handler_rejects_a_non_callable_and_a_negative_interval() -> None:
    """Mistakes in job_handler's arguments fail at registration, not at the first event."""
    with pytest.raises(TypeError):
        job_handler("space:configure", "not a function")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tick_interval"):
        job_handler("space:configure", lambda event, tick: None, tick_interval=-1)


async def test_dispatch_inside_a_running_loop_raises_a_clear_error() -> None:
    """dispatch() from async code raises RuntimeError pointing at adispatch (no un-awaited coroutine left)."""
    listener = FlatfileListener()
    ran: list[str] = []
    listener.on("**", None, lambda event: ran.append("ran"))
    with pytest.raises(RuntimeError, match="adispatch"):
        listener.dispatch(EVENT)
    assert ran == []


async def test_adispatch_runs_sync_and_async_callbacks() -> None:
    """adispatch awaits async callbacks, calls sync ones, and returns results in order."""
    listener = FlatfileListener()

    async def slow(event: FlatfileEvent) -> str:
        await asyncio.sleep(0.01)
        return f"slow {event.id}"

    listener.on("job:ready", None, slow)
    listener.on("job:*", None, lambda event: f"fast {event.job_id}")
    assert await listener.adispatch(EVENT) == ["slow us_evt_1", "fast us_jb_1"]


async def test_adispatch_collects_errors_too() -> None:
    """adispatch raises DispatchError after running the remaining callbacks."""
    listener = FlatfileListener()
    ran: list[str] = []

    async def bad(event: FlatfileEvent) -> None:
        raise RuntimeError("boom")

    listener.on("**", None, bad)
    listener.on("**", None, lambda event: ran.append("after"))
    with pytest.raises(DispatchError) as caught:
        await listener.adispatch(EVENT)
    assert ran == ["after"]
    assert [str(e) for e in caught.value.errors] == ["boom"]


def test_dispatch_reuses_one_loop_per_thread() -> None:
    """Sync dispatches on one thread run on the same event loop (so one async HTTP client serves them)."""
    listener = FlatfileListener()

    async def loop_id(event: FlatfileEvent) -> int:
        return id(asyncio.get_running_loop())

    listener.on("**", None, loop_id)
    assert listener.dispatch(EVENT) == listener.dispatch(EVENT)


def test_dispatch_hands_its_deadline_and_settings_to_the_callbacks_on_the_event() -> None:
    """event.deadline is now + timeout (monotonic) and event.settings what dispatch got; None without them."""
    import time

    from flatfile_jobs import ApiSettings

    listener = FlatfileListener()
    seen: list[FlatfileEvent] = []
    listener.on("job:ready", None, seen.append)
    settings = ApiSettings.resolve(api_url="http://127.0.0.1:9/api", token="sk_test_handed_down")
    before = time.monotonic()
    listener.dispatch(EVENT, timeout=30.0, settings=settings)
    listener.dispatch(EVENT)
    assert seen[0].settings is settings
    assert seen[0].deadline is not None
    assert before + 30.0 <= seen[0].deadline <= time.monotonic() + 30.0
    assert (seen[1].deadline, seen[1].settings) == (None, None)


def test_a_job_handler_reaches_flatfile_with_the_dispatchs_settings_alone(fake: FakeFlatfile) -> None:
    """No token or URL in the environment: the settings handed to dispatch are what the job's calls use."""
    from flatfile_jobs import ApiSettings

    listener = FlatfileListener().use(job_handler("space:configure", lambda event, tick: None))
    event = fake.create_job_event("space:configure")
    (result,) = listener.dispatch(event, settings=ApiSettings.resolve(api_url=fake.url, token=fake.token))
    assert result.status == "complete"
    job_id = event["context"]["jobId"]
    assert [call for call, _ in fake.calls(job_id)] == [
        f"POST /jobs/{job_id}/ack",
        f"POST /jobs/{job_id}/complete",
    ]
