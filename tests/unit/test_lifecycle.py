"""The job lifecycle against the fake Flatfile API: wire parity with the plugin, then the improvements.

The plugin is @flatfile/plugin-job-handler (https://github.com/FlatFilers/flatfile-plugins/blob/main/plugins/job-handler/src/job.handler.ts).

Every scenario runs twice, with a ``def`` handler and an ``async def`` handler (the ``mode`` fixture).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from flatfile_jobs import (
    DispatchError,
    FlatfileAPIError,
    FlatfileEvent,
    FlatfileListener,
    JobCanceled,
    JobCompleteDetails,
    JobOutcome,
    JobResult,
    JobTimeoutError,
    NextUrl,
    job_handler,
)
from flatfile_jobs._api import FlatfileClient
from flatfile_jobs_testing import FakeFlatfile, Fault, forwarded_event

Listen = Callable[..., FlatfileListener]
Script = Callable[..., Callable[..., Any]]
Records = Callable[[], list[logging.LogRecord]]

DEFAULT_COMPLETE = {"outcome": {"message": "Job complete"}}
ACCEPTED = {"info": "Accepted", "progress": 0}
PREFIX = "[@flatfile/plugin-job-handler]"


def new_job(fake: FakeFlatfile, job: str = "space:configure", **kwargs: Any) -> tuple[dict[str, Any], str]:
    """A job:ready event (and its job) in the fake, and the job id."""
    event = fake.create_job_event(job, **kwargs)
    return event, str(event["context"]["jobId"])


def ack(job_id: str, body: dict[str, Any]) -> tuple[str, object]:
    return (f"POST /jobs/{job_id}/ack", body)


def complete(job_id: str, body: dict[str, Any] = DEFAULT_COMPLETE) -> tuple[str, object]:
    return (f"POST /jobs/{job_id}/complete", body)


def fail(job_id: str, message: str) -> tuple[str, object]:
    return (
        f"POST /jobs/{job_id}/fail",
        {"info": message, "outcome": {"acknowledge": True, "message": message}},
    )


def one_result(listener: FlatfileListener, event: dict[str, Any], **kwargs: Any) -> JobResult:
    (result,) = listener.dispatch(event, **kwargs)
    assert isinstance(result, JobResult)
    return result


def finishing_calls(fake: FakeFlatfile, job_id: str) -> list[str]:
    """The complete and fail calls recorded for a job, faulted ones included."""
    return [
        call for call, _ in fake.calls(job_id, include_faults=True) if call.endswith(("/complete", "/fail"))
    ]


# -- parity: exact request sequences (the plugin's jobHandler) -----------------------------------------------


def test_noop_handler_sends_ack_then_default_complete(
    fake: FakeFlatfile, listen: Listen, script: Script
) -> None:
    """A handler that does nothing: exactly ack{Accepted,0} then complete{outcome:{message:"Job complete"}}."""
    event, job_id = new_job(fake)
    result = one_result(listen(script()), event)
    assert fake.calls(job_id) == [ack(job_id, ACCEPTED), complete(job_id)]
    assert (result.status, result.job_id, result.job, result.event_id, result.message) == (
        "complete",
        job_id,
        "space:configure",
        event["id"],
        None,
    )
    assert fake.job(job_id)["status"] == "complete"


def test_basic_usage_seed_request_for_request(fake: FakeFlatfile, listen: Listen, script: Script) -> None:
    """The seed's "Basic Usage" with tick_interval=0 sends what the plugin sends, in order."""
    event, job_id = new_job(fake)
    handler = script(
        ("tick", 10, "Starting configuration..."),
        ("tick", 50, "Halfway there!"),
        ("tick", 100, "Configuration complete."),
    )
    assert one_result(listen(handler, tick_interval=0), event).status == "complete"
    assert fake.calls(job_id) == [
        ack(job_id, ACCEPTED),
        ack(job_id, {"progress": 10, "info": "Starting configuration..."}),
        ack(job_id, {"progress": 50, "info": "Halfway there!"}),
        ack(job_id, {"progress": 100, "info": "Configuration complete."}),
        complete(job_id),
    ]


def test_error_handling_seed_request_for_request(fake: FakeFlatfile, listen: Listen, script: Script) -> None:
    """The seed's "Error Handling Example": ack 0, ack 1, then fail with the error's message twice."""
    message = "Validation failed: No records found to validate."
    event, job_id = new_job(fake, "workbook:submitAction")
    handler = script(("tick", 1, "Starting validation..."), ("raise", Exception(message)))
    result = one_result(listen(handler, job="workbook:submitAction", tick_interval=0), event)
    assert fake.calls(job_id) == [
        ack(job_id, ACCEPTED),
        ack(job_id, {"progress": 1, "info": "Starting validation..."}),
        fail(job_id, message),
    ]
    assert (result.status, result.message) == ("failed", message)
    assert fake.job(job_id)["status"] == "failed"


def test_tick_without_info_omits_info(fake: FakeFlatfile, listen: Listen, script: Script) -> None:
    """tick(N) sends {"progress": N} with no info key at all (not null)."""
    event, job_id = new_job(fake)
    one_result(listen(script(("tick", 10), ("tick", 20, None)), tick_interval=0), event)
    assert fake.calls(job_id)[1:3] == [ack(job_id, {"progress": 10}), ack(job_id, {"progress": 20})]


@pytest.mark.parametrize("form", ["dataclass", "dict"])
def test_returned_details_are_the_whole_complete_body(
    fake: FakeFlatfile, listen: Listen, script: Script, form: str
) -> None:
    """A returned JobCompleteDetails (or the same dict) is sent as the complete body, exactly."""
    wire = {
        "outcome": {
            "acknowledge": True,
            "buttonText": "Open",
            "next": {"url": "https://example.com/report", "label": "Report", "type": "url"},
            "message": "Imported 3 rows",
        },
        "info": "3 rows",
    }
    typed = JobCompleteDetails(
        outcome=JobOutcome(
            acknowledge=True,
            button_text="Open",
            next=NextUrl(url="https://example.com/report", label="Report"),
            message="Imported 3 rows",
        ),
        info="3 rows",
    )
    event, job_id = new_job(fake)
    one_result(listen(script(("return", typed if form == "dataclass" else wire))), event)
    assert fake.calls(job_id) == [ack(job_id, ACCEPTED), complete(job_id, wire)]


def test_exception_with_empty_message_fails_with_its_class_name(
    fake: FakeFlatfile, listen: Listen, script: Script
) -> None:
    """raise ValueError() fails the job with message "ValueError"."""
    event, job_id = new_job(fake)
    result = one_result(listen(script(("raise", ValueError()))), event)
    assert fake.calls(job_id) == [ack(job_id, ACCEPTED), fail(job_id, "ValueError")]
    assert result.message == "ValueError"


def test_debug_logs_job_complete_with_the_plugins_prefix(
    fake: FakeFlatfile, listen: Listen, script: Script, lib_records: Records
) -> None:
    """debug=True logs "[@flatfile/plugin-job-handler]:[INFO] Job complete"; debug=False does not."""
    event, _ = new_job(fake)
    one_result(listen(script()), event)
    assert not [r for r in lib_records() if r.getMessage() == f"{PREFIX}:[INFO] Job complete"]
    event, _ = new_job(fake)
    one_result(listen(script(), debug=True), event)
    lines = [r for r in lib_records() if r.getMessage() == f"{PREFIX}:[INFO] Job complete"]
    assert len(lines) == 1
    assert lines[0].levelno == logging.INFO


def test_fatal_line_is_always_logged_on_failure(
    fake: FakeFlatfile, listen: Listen, script: Script, lib_records: Records
) -> None:
    """A failing handler logs "[@flatfile/plugin-job-handler]:[FATAL] <message>" at ERROR, debug or not."""
    event, _ = new_job(fake)
    one_result(listen(script(("raise", RuntimeError("broken input")))), event)
    fatal = [r for r in lib_records() if r.getMessage() == f"{PREFIX}:[FATAL] broken input"]
    assert len(fatal) == 1
    assert fatal[0].levelno == logging.ERROR


def test_tick_returns_the_job_as_the_api_returned_it(
    fake: FakeFlatfile, listen: Listen, script: Script
) -> None:
    """tick() returns the job from the ack response: what the fake holds right after the tick."""
    event, job_id = new_job(fake)
    seen: dict[str, Any] = {}
    handler = script(
        ("tick", 42, "working"), ("do", lambda e: seen.setdefault("job", fake.job(job_id))), seen=seen
    )
    one_result(listen(handler, tick_interval=0), event)
    (returned,) = seen["ticks"]
    assert returned == seen["job"]
    assert (returned["id"], returned["status"], returned["progress"], returned["info"]) == (
        job_id,
        "executing",
        42,
        "working",
    )


# -- 1. tick coalescing -------------------------------------------------------------------------------------


def test_ten_thousand_ticks_cause_at_most_five_requests(
    fake: FakeFlatfile, listen: Listen, script: Script
) -> None:
    """10,000 ticks in a tight loop: ≤ 5 requests for the job, the final value sent, then complete."""
    event, job_id = new_job(fake)
    result = one_result(listen(script(("ticks", 10_000, 0, 100))), event)
    calls = fake.calls(job_id)
    assert result.status == "complete"
    assert len(calls) <= 5
    assert calls[0] == ack(job_id, ACCEPTED)
    assert calls[1] == ack(job_id, {"progress": 0, "info": "row 0"})  # the first tick goes at once
    assert calls[-2] == ack(job_id, {"progress": 100, "info": "row 9999"})  # the last value, flushed
    assert calls[-1] == complete(job_id)


def test_pending_tick_is_flushed_before_complete(fake: FakeFlatfile, listen: Listen, script: Script) -> None:
    """A coalesced tick still waiting is sent before complete, carrying the latest value."""
    event, job_id = new_job(fake)
    one_result(
        listen(script(("tick", 10, "a"), ("tick", 20, "b"), ("tick", 30, "c")), tick_interval=10), event
    )
    assert fake.calls(job_id) == [
        ack(job_id, ACCEPTED),
        ack(job_id, {"progress": 10, "info": "a"}),
        ack(job_id, {"progress": 30, "info": "c"}),
        complete(job_id),
    ]


def test_pending_tick_is_flushed_before_fail(fake: FakeFlatfile, listen: Listen, script: Script) -> None:
    """A coalesced tick still waiting is sent before fail too."""
    event, job_id = new_job(fake)
    handler = script(("tick", 10, "a"), ("tick", 20, "b"), ("raise", RuntimeError("no")))
    one_result(listen(handler, tick_interval=10), event)
    assert fake.calls(job_id) == [
        ack(job_id, ACCEPTED),
        ack(job_id, {"progress": 10, "info": "a"}),
        ack(job_id, {"progress": 20, "info": "b"}),
        fail(job_id, "no"),
    ]


def test_trailing_tick_is_sent_after_the_interval_not_at_the_end(
    fake: FakeFlatfile, listen: Listen, script: Script
) -> None:
    """With tick_interval=0.2 a held-back tick goes out ~0.2 s after the previous one, while the handler runs."""
    event, job_id = new_job(fake)
    seen: dict[str, Any] = {}
    handler = script(
        ("tick", 10),
        ("tick", 20),
        ("sleep", 0.5),
        ("do", lambda e: seen.setdefault("mid", fake.calls(job_id))),
        seen=seen,
    )
    one_result(listen(handler, tick_interval=0.2), event)
    assert ack(job_id, {"progress": 20}) in seen["mid"]  # sent while the handler was still sleeping
    acks = {str(r.body): r.at for r in fake.requests if r.path.endswith("/ack")}
    ended = next(r.at for r in fake.requests if r.path.endswith("/complete"))
    gap = acks[str({"progress": 20})] - acks[str({"progress": 10})]
    assert 0.15 <= gap < 0.45
    assert ended - acks[str({"progress": 20})] > 0.1
    assert fake.calls(job_id)[-1] == complete(job_id)


def test_ticks_further_apart_than_the_interval_are_each_sent_at_once(
    fake: FakeFlatfile, listen: Listen, script: Script
) -> None:
    """After a quiet spell longer than the interval, a tick is sent immediately, not held back."""
    event, job_id = new_job(fake)
    handler = script(("tick", 10), ("sleep", 0.15), ("tick", 20), ("sleep", 0.15), ("tick", 30))
    one_result(listen(handler, tick_interval=0.1), event)
    assert [body for _, body in fake.calls(job_id)[1:-1]] == [
        {"progress": 10},
        {"progress": 20},
        {"progress": 30},
    ]


def test_interval_zero_sends_every_tick(fake: FakeFlatfile, listen: Listen, script: Script) -> None:
    """tick_interval=0 is exact parity: one request per tick, in order."""
    event, job_id = new_job(fake)
    one_result(listen(script(("ticks", 50, 0, 49)), tick_interval=0), event)
    calls = fake.calls(job_id)
    assert calls[1:-1] == [ack(job_id, {"progress": i, "info": f"row {i}"}) for i in range(50)]
    assert len(calls) == 52


# -- 2. progress --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("progress", "sent"),
    [
        (150, 100),
        (-5, 0),
        (33.6, 34),
        (2.5, 3),
        (33.4, 33),
        (0, 0),
        (100, 100),
        (7.0, 7),
        (math.inf, 100),
        (-math.inf, 0),
    ],
)
def test_progress_is_a_whole_number_clamped_to_0_100(
    fake: FakeFlatfile, listen: Listen, script: Script, progress: float, sent: int
) -> None:
    """Progress is rounded to a whole number and clamped to 0–100 before it is sent."""
    event, job_id = new_job(fake)
    assert one_result(listen(script(("tick", progress)), tick_interval=0), event).status == "complete"
    assert fake.calls(job_id)[1] == ack(job_id, {"progress": sent})
    assert type(fake.calls(job_id)[1][1]["progress"]) is int  # type: ignore[index]


@pytest.mark.parametrize("progress", ["50", None, True, math.nan, [50]])
def test_a_non_number_progress_fails_the_job_with_a_type_error(
    fake: FakeFlatfile, listen: Listen, script: Script, progress: object
) -> None:
    """tick("50"), tick(None), tick(True), tick(NaN): TypeError in the handler, the job failed saying so."""
    event, job_id = new_job(fake)
    seen: dict[str, Any] = {}
    result = one_result(listen(script(("tick", progress), seen=seen), tick_interval=0), event)
    assert isinstance(seen["raised"], TypeError)
    assert result.status == "failed"
    assert result.message is not None
    assert "progress must be a number" in result.message
    assert fake.calls(job_id) == [ack(job_id, ACCEPTED), fail(job_id, result.message)]


def test_a_non_string_info_fails_the_job_with_a_type_error(
    fake: FakeFlatfile, listen: Listen, script: Script
) -> None:
    """tick(10, 5): TypeError naming info; nothing is sent for that tick."""
    event, job_id = new_job(fake)
    result = one_result(listen(script(("tick", 10, 5)), tick_interval=0), event)
    assert result.message is not None
    assert "info must be a string" in result.message
    assert [call for call, _ in fake.calls(job_id)] == [
        f"POST /jobs/{job_id}/ack",
        f"POST /jobs/{job_id}/fail",
    ]


# -- 3. retries -------------------------------------------------------------------------------------------


def test_complete_is_retried_after_503s(fake: FakeFlatfile, listen: Listen, script: Script) -> None:
    """Two 503s on complete, then OK: the job completes and three complete attempts were made."""
    event, job_id = new_job(fake)
    fake.add_fault(Fault(path=f"/jobs/{job_id}/complete", status=503, times=2))
    result = one_result(listen(script(), retry_budget=2.0), event)
    assert result.status == "complete"
    assert finishing_calls(fake, job_id) == [f"POST /jobs/{job_id}/complete"] * 3
    assert fake.job(job_id)["status"] == "complete"


def test_retry_after_is_waited_for(fake: FakeFlatfile, listen: Listen, script: Script) -> None:
    """A 429 with Retry-After: 0.3 on complete: the retry comes at least 0.3 s later."""
    event, job_id = new_job(fake)
    fake.add_fault(Fault(path=f"/jobs/{job_id}/complete", status=429, retry_after=0.3, times=1))
    assert one_result(listen(script(), retry_budget=2.0), event).status == "complete"
    first, second = (r for r in fake.requests if r.path.endswith("/complete"))
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.3


def test_a_400_is_not_retried(fake: FakeFlatfile, listen: Listen, script: Script) -> None:
    """A 400 on complete is not retried: one attempt, then the job is failed with the API's message."""
    event, job_id = new_job(fake)
    fake.add_fault(Fault(path=f"/jobs/{job_id}/complete", status=400, times=1))
    result = one_result(listen(script(), retry_budget=2.0), event)
    assert finishing_calls(fake, job_id) == [f"POST /jobs/{job_id}/complete", f"POST /jobs/{job_id}/fail"]
    assert (result.status, result.message) == ("failed", "Injected fault")
    assert fake.calls(job_id)[-1] == fail(job_id, "Injected fault")


def test_a_connection_reset_is_retried(fake: FakeFlatfile, listen: Listen, script: Script) -> None:
    """A connection reset on complete is retried and the job completes."""
    event, job_id = new_job(fake)
    fake.add_fault(Fault(path=f"/jobs/{job_id}/complete", reset=True, times=1))
    assert one_result(listen(script(), retry_budget=2.0), event).status == "complete"
    assert [r.status for r in fake.requests if r.path.endswith("/complete")] == [0, 200]
    assert fake.job(job_id)["status"] == "complete"


def test_a_tick_that_keeps_failing_is_logged_and_the_job_goes_on(
    fake: FakeFlatfile, listen: Listen, script: Script, lib_records: Records
) -> None:
    """Progress requests failing for good are logged as warnings; the job still completes."""
    event, job_id = new_job(fake)
    broken = Fault(path=f"/jobs/{job_id}/ack", status=503)
    handler = script(("do", lambda e: fake.add_fault(broken)), ("tick", 50, "half"), ("tick", 60))
    result = one_result(listen(handler, tick_interval=0, retry_budget=0.3), event)
    assert result.status == "complete"
    assert broken.hits >= 2  # retried before giving up
    assert fake.job(job_id)["status"] == "complete"
    warnings = [
        r for r in lib_records() if r.levelno == logging.WARNING and r.__dict__.get("job_id") == job_id
    ]
    assert len(warnings) == 2
    assert all(r.__dict__["status"] == 503 for r in warnings)


# -- 4. ack failure ---------------------------------------------------------------------------------------


def test_ack_failing_after_retries_does_not_run_the_handler(
    fake: FakeFlatfile, listen: Listen, script: Script
) -> None:
    """500 on ack until the budget is spent: handler not run, DispatchError raised, job left ready."""
    event, job_id = new_job(fake)
    fake.add_fault(Fault(path=f"/jobs/{job_id}/ack", status=500))
    seen: dict[str, Any] = {}
    started = time.monotonic()
    with pytest.raises(DispatchError) as caught:
        listen(script(seen=seen), retry_budget=0.5).dispatch(event)
    assert time.monotonic() - started < 2.0
    (error,) = caught.value.errors
    assert isinstance(error, FlatfileAPIError)
    assert (error.status, error.job_id) == (500, job_id)
    assert "event" not in seen
    assert fake.job(job_id)["status"] == "ready"
    assert finishing_calls(fake, job_id) == []
    assert len(fake.calls(job_id, include_faults=True)) >= 2  # the ack was retried


def test_ack_refused_as_unauthorized_does_not_run_the_handler(
    fake: FakeFlatfile, listen: Listen, script: Script
) -> None:
    """A 401 on ack (wrong token): not retried, handler not run, DispatchError, job untouched."""
    event, job_id = new_job(fake)
    seen: dict[str, Any] = {}
    with pytest.raises(DispatchError) as caught:
        listen(script(seen=seen), token="sk_wrong", retry_budget=2.0).dispatch(event)
    (error,) = caught.value.errors
    assert isinstance(error, FlatfileAPIError)
    assert error.status == 401
    assert "event" not in seen
    assert fake.job(job_id)["status"] == "ready"
    assert [call for call, _ in fake.calls(job_id)].count(f"POST /jobs/{job_id}/ack") == 1
    assert finishing_calls(fake, job_id) == []


# -- 5. complete and fail failing ---------------------------------------------------------------------------


def test_complete_failing_for_good_fails_the_job_with_that_message(
    fake: FakeFlatfile, listen: Listen, script: Script
) -> None:
    """complete answering 503 past the budget: the job is failed with the API error's message."""
    event, job_id = new_job(fake)
    fake.add_fault(Fault(path=f"/jobs/{job_id}/complete", status=503))
    result = one_result(listen(script(), retry_budget=0.5), event)
    assert (result.status, result.message) == ("failed", "Injected fault")
    assert fake.calls(job_id) == [ack(job_id, ACCEPTED), fail(job_id, "Injected fault")]
    assert fake.job(job_id)["status"] == "failed"


def test_fail_failing_for_good_reaches_the_caller_and_is_logged_with_the_job_id(
    fake: FakeFlatfile, listen: Listen, script: Script, lib_records: Records
) -> None:
    """fail answering 503 past the budget: DispatchError to the caller, an error logged with the job id."""
    event, job_id = new_job(fake)
    fake.add_fault(Fault(path=f"/jobs/{job_id}/fail", status=503))
    with pytest.raises(DispatchError) as caught:
        listen(script(("raise", RuntimeError("handler broke"))), retry_budget=0.5).dispatch(event)
    (error,) = caught.value.errors
    assert isinstance(error, FlatfileAPIError)
    assert (error.status, error.path) == (503, f"/jobs/{job_id}/fail")
    logged = [r for r in lib_records() if r.getMessage() == "Could not mark the job failed"]
    assert len(logged) == 1
    assert logged[0].levelno == logging.ERROR
    assert logged[0].__dict__["job_id"] == job_id
    assert fake.job(job_id)["status"] == "executing"


# -- 6. cancellation --------------------------------------------------------------------------------------


@pytest.mark.parametrize("canceled_ack", ["ok", "error"])
def test_cancel_while_running_raises_job_canceled_at_the_next_tick(
    fake: FakeFlatfile, listen: Listen, script: Script, canceled_ack: Any
) -> None:
    """Canceled in Flatfile mid-run: the next tick raises JobCanceled; neither complete nor fail is sent."""
    fake.canceled_ack = canceled_ack
    event, job_id = new_job(fake)
    seen: dict[str, Any] = {}
    handler = script(
        ("tick", 10), ("do", lambda e: fake.cancel_job(job_id)), ("tick", 20), ("tick", 30), seen=seen
    )
    result = one_result(listen(handler, tick_interval=0), event)
    assert isinstance(seen["raised"], JobCanceled)
    assert seen["raised"].job_id == job_id
    assert len(seen["ticks"]) == 1  # the tick after the cancel raised
    assert result.status == "canceled"
    assert finishing_calls(fake, job_id) == []
    assert fake.job(job_id)["status"] == "canceled"


@pytest.mark.parametrize("canceled_ack", ["ok", "error"])
def test_a_handler_that_swallows_job_canceled_still_does_not_complete(
    fake: FakeFlatfile, listen: Listen, mode: str, canceled_ack: Any
) -> None:
    """Catching JobCanceled and returning normally does not complete a canceled job."""
    fake.canceled_ack = canceled_ack
    event, job_id = new_job(fake)

    def sync_handler(event: FlatfileEvent, tick: Callable[..., Any]) -> str:
        fake.cancel_job(job_id)
        try:
            tick(50)
        except JobCanceled:
            return "ignored"
        raise AssertionError("tick did not raise")

    async def async_handler(event: FlatfileEvent, tick: Callable[..., Any]) -> str:
        fake.cancel_job(job_id)
        try:
            await tick(50)
        except JobCanceled:
            return "ignored"
        raise AssertionError("tick did not raise")

    handler = sync_handler if mode == "sync" else async_handler
    result = one_result(listen(handler, tick_interval=0), event)
    assert result.status == "canceled"
    assert finishing_calls(fake, job_id) == []


@pytest.mark.parametrize("canceled_ack", ["ok", "error"])
def test_canceled_after_the_last_tick_is_reported_canceled(
    fake: FakeFlatfile, listen: Listen, script: Script, canceled_ack: Any
) -> None:
    """Canceled after the handler's last tick: complete is refused (or echoes the canceled job) → "canceled"."""
    fake.canceled_ack = canceled_ack
    event, job_id = new_job(fake)
    handler = script(("tick", 10), ("do", lambda e: fake.cancel_job(job_id)))
    result = one_result(listen(handler, tick_interval=0), event)
    assert result.status == "canceled"
    assert fake.job(job_id)["status"] == "canceled"
    assert not any(path.endswith("/fail") for path, _ in fake.calls(job_id))


@pytest.mark.parametrize("canceled_ack", ["ok", "error"])
def test_ack_of_an_already_canceled_job_skips_the_handler(
    fake: FakeFlatfile, listen: Listen, script: Script, canceled_ack: Any
) -> None:
    """A job canceled before its event is handled: the handler does not run, the result is "canceled"."""
    fake.canceled_ack = canceled_ack
    event, job_id = new_job(fake, status="canceled")
    seen: dict[str, Any] = {}
    result = one_result(listen(script(seen=seen)), event)
    assert result.status == "canceled"
    assert "event" not in seen
    assert finishing_calls(fake, job_id) == []
    assert fake.job(job_id)["status"] == "canceled"


def test_a_redelivered_event_for_a_finished_job_is_skipped(
    fake: FakeFlatfile, listen: Listen, script: Script
) -> None:
    """An event for a job already complete (a queue redelivery): handler not run, result "skipped"."""
    event, job_id = new_job(fake, status="complete")
    seen: dict[str, Any] = {}
    result = one_result(listen(script(seen=seen)), event)
    assert result.status == "skipped"
    assert "event" not in seen
    assert finishing_calls(fake, job_id) == []


# -- 7. deadline ------------------------------------------------------------------------------------------


def test_deadline_interrupts_the_handler_and_fails_the_job(
    fake: FakeFlatfile, listen: Listen, script: Script, mode: str
) -> None:
    """dispatch(timeout=0.5) with a 10 s handler: the job fails "Job timed out after N s" well before 10 s."""
    event, job_id = new_job(fake)
    seen: dict[str, Any] = {}
    listener = listen(script(("sleep", 10, 0.05), seen=seen), retry_budget=2.0)
    started = time.monotonic()
    result = one_result(listener, event, timeout=0.5)
    elapsed = time.monotonic() - started
    assert result.status == "timed_out"
    assert result.message is not None
    assert re.fullmatch(r"Job timed out after \d+ s", result.message)
    assert 0.45 <= elapsed < 3.0
    assert fake.calls(job_id) == [ack(job_id, ACCEPTED), fail(job_id, result.message)]
    assert fake.job(job_id)["status"] == "failed"
    # The handler itself was stopped: a thread gets JobTimeoutError, a coroutine is cancelled.
    for _ in range(100):
        if "raised" in seen:
            break
        time.sleep(0.01)
    assert isinstance(seen["raised"], JobTimeoutError if mode == "sync" else asyncio.CancelledError)
    assert seen["ended"] - started < 3.0


def test_ticks_after_the_deadline_raise_in_the_handler(fake: FakeFlatfile, listen: Listen, mode: str) -> None:
    """A handler that ignores the interruption cannot report progress any more: tick raises JobTimeoutError."""
    event, job_id = new_job(fake)
    raised: list[BaseException] = []

    def stubborn(event: FlatfileEvent, tick: Callable[..., Any]) -> None:
        end = time.monotonic() + 2
        while time.monotonic() < end and len(raised) < 2:
            try:
                time.sleep(0.05)
                tick(1)
            except BaseException as exc:
                raised.append(exc)

    async def stubborn_async(event: FlatfileEvent, tick: Callable[..., Any]) -> None:
        end = time.monotonic() + 2
        while time.monotonic() < end and len(raised) < 2:
            try:
                await asyncio.sleep(0.05)
                await tick(1)
            except BaseException as exc:
                raised.append(exc)

    handler = stubborn if mode == "sync" else stubborn_async
    result = one_result(listen(handler, tick_interval=0), event, timeout=0.3)
    assert result.status == "timed_out"
    for _ in range(200):
        if len(raised) > 1:
            break
        time.sleep(0.01)
    first = JobTimeoutError if mode == "sync" else asyncio.CancelledError
    assert [type(exc) for exc in raised] == [first, JobTimeoutError]
    time.sleep(0.1)
    assert fake.calls(job_id)[-1] == fail(job_id, result.message or "")  # no progress after the fail


# -- 8. bad outcomes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "names"),
    [
        (42, "the handler returned int"),
        ({"outcome": {"next": {"type": "nope"}}}, "outcome.next.type must be one of"),
        ({"outcome": {"message": "ok"}, "extra": 1}, "JobCompleteDetails has unknown field 'extra'"),
        ({"outcome": {"next": {"type": "url"}}}, "outcome.next.url is required"),
    ],
)
def test_a_bad_outcome_fails_the_job_naming_the_problem(
    fake: FakeFlatfile, listen: Listen, script: Script, value: object, names: str
) -> None:
    """A return value that is not a JobCompleteDetails fails the job; the message says what is wrong."""
    event, job_id = new_job(fake)
    result = one_result(listen(script(("return", value))), event)
    assert result.status == "failed"
    assert result.message is not None
    assert names in result.message
    assert fake.calls(job_id) == [ack(job_id, ACCEPTED), fail(job_id, result.message)]


# -- 9. one HTTP client -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "debug",
    [False, True],
)
def test_one_client_is_reused_across_dispatches(
    fake: FakeFlatfile, listen: Listen, script: Script, debug: bool
) -> None:
    """Two jobs dispatched on one thread get the very same FlatfileClient (debug or not)."""
    apis: list[Any] = []
    listener = listen(script(("do", lambda e: apis.append(e.api))), debug=debug)
    for _ in range(2):
        event, _ = new_job(fake)
        assert one_result(listener, event).status == "complete"
    first, second = apis
    assert isinstance(first, FlatfileClient)
    assert id(first) == id(second)


def test_sync_and_async_handlers_share_the_async_client(fake: FakeFlatfile) -> None:
    """A def handler and an async def handler receive the same async client (its calls are coroutines)."""
    apis: dict[str, Any] = {}

    def sync_handler(event: FlatfileEvent, tick: Callable[..., Any]) -> None:
        apis["sync"] = event.api

    async def async_handler(event: FlatfileEvent, tick: Callable[..., Any]) -> None:
        apis["async"] = event.api
        assert event.api is not None
        job = await event.api.get_job(str(event.job_id))
        apis["status"] = job["status"]

    listener = FlatfileListener()
    options: dict[str, Any] = {"api_url": fake.url, "token": fake.token}
    listener.use(job_handler("space:configure", sync_handler, **options))
    listener.use(job_handler("workbook:submitAction", async_handler, **options))
    one_result(listener, new_job(fake)[0])
    one_result(listener, new_job(fake, "workbook:submitAction")[0])
    assert apis["sync"] is apis["async"]
    assert inspect.iscoroutinefunction(apis["async"].get_job)
    assert apis["status"] == "executing"


async def test_adispatch_runs_a_job_on_the_callers_loop(
    fake: FakeFlatfile, listen: Listen, script: Script
) -> None:
    """await listener.adispatch(event) runs the whole lifecycle on the running loop."""
    event, job_id = new_job(fake)
    seen: dict[str, Any] = {}
    (result,) = await listen(script(("tick", 5), seen=seen), tick_interval=0).adispatch(event)
    try:
        assert result.status == "complete"
        assert fake.calls(job_id) == [ack(job_id, ACCEPTED), ack(job_id, {"progress": 5}), complete(job_id)]
    finally:
        await seen["event"].api.aclose()


# -- 10. logs ---------------------------------------------------------------------------------------------


def test_lifecycle_log_records_carry_job_id_event_id_and_job(
    fake: FakeFlatfile, listen: Listen, script: Script, lib_records: Records
) -> None:
    """Every record the lifecycle logs (FATAL, Job complete, warnings) carries job_id, event_id and job."""
    first, first_id = new_job(fake)
    second, second_id = new_job(fake)
    refuse_tick = Fault(path=f"/jobs/{first_id}/ack", status=400, times=1)
    handler = script(("do", lambda e: fake.add_fault(refuse_tick)), ("tick", 3))
    one_result(listen(handler, debug=True, tick_interval=0), first)
    one_result(listen(script(("raise", RuntimeError("x"))), debug=True), second)
    lifecycle = [r for r in lib_records() if r.filename in {"_lifecycle.py", "_ticks.py"}]
    messages = {r.getMessage() for r in lifecycle}
    assert {
        f"{PREFIX}:[INFO] Job complete",
        f"{PREFIX}:[FATAL] x",
        "Progress update failed; the job goes on",
    } <= messages
    by_job = {first_id: first, second_id: second}
    for record in lifecycle:
        job_id = record.__dict__["job_id"]
        assert job_id in by_job
        assert record.__dict__["event_id"] == by_job[job_id]["id"]
        assert record.__dict__["job"] == "space:configure"


def test_debug_logs_every_api_call_with_method_path_status_and_ms(
    fake: FakeFlatfile, listen: Listen, script: Script, lib_records: Records
) -> None:
    """debug=True: one INFO line per API call with method, path, status and duration in ms."""
    event, job_id = new_job(fake)
    fake.add_fault(Fault(path=f"/jobs/{job_id}/complete", status=503, times=1))
    one_result(listen(script(("tick", 10)), debug=True, tick_interval=0, retry_budget=2.0), event)
    calls = [r for r in lib_records() if r.getMessage() == "Flatfile API call"]
    assert [(r.__dict__["method"], r.__dict__["path"], r.__dict__["status"]) for r in calls] == [
        ("POST", f"/jobs/{job_id}/ack", 200),
        ("POST", f"/jobs/{job_id}/ack", 200),
        ("POST", f"/jobs/{job_id}/complete", 503),
        ("POST", f"/jobs/{job_id}/complete", 200),
    ]
    assert all(r.levelno == logging.INFO for r in calls)
    assert all(isinstance(r.__dict__["ms"], float) and r.__dict__["ms"] >= 0 for r in calls)


def test_api_calls_are_logged_at_debug_unless_asked(
    fake: FakeFlatfile, listen: Listen, script: Script, lib_records: Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without debug the call lines are DEBUG; POWERTOOLS_LOG_LEVEL=DEBUG turns them to INFO like debug=True."""
    event, _ = new_job(fake)
    one_result(listen(script()), event)
    quiet = [r for r in lib_records() if r.getMessage() == "Flatfile API call"]
    assert len(quiet) == 2
    assert all(r.levelno == logging.DEBUG for r in quiet)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    event, _ = new_job(fake)
    one_result(listen(script()), event)
    loud = [r for r in lib_records() if r.getMessage() == "Flatfile API call"][2:]
    assert len(loud) == 2
    assert all(r.levelno == logging.INFO for r in loud)


def test_api_call_lines_carry_event_id_and_job_name(
    fake: FakeFlatfile, listen: Listen, script: Script, lib_records: Records
) -> None:
    """*Each* line a job logs carries job id, event id and job name, the API call lines too."""
    event, job_id = new_job(fake)
    one_result(listen(script(), debug=True), event)
    calls = [r for r in lib_records() if r.getMessage() == "Flatfile API call"]
    assert calls
    for record in calls:
        assert record.__dict__.get("job_id") == job_id
        assert record.__dict__.get("event_id") == event["id"]
        assert record.__dict__.get("job") == "space:configure"


def test_the_token_never_appears_in_logs(
    fake: FakeFlatfile, listen: Listen, script: Script, lib_log: pytest.LogCaptureFixture
) -> None:
    """Across successes, failures, retries, a 401 and a forwarded event, no log text holds a secret."""
    agent_token = "sk_agent_Vb7pQ2mXw9"
    ok, ok_id = new_job(fake)
    bad, bad_id = new_job(fake)
    fake.add_fault(Fault(path=f"/jobs/{ok_id}/complete", status=503, times=1))
    listen(script(("tick", 10, "x")), debug=True, tick_interval=0, retry_budget=2.0).dispatch(
        forwarded_event(ok, access_token=agent_token)
    )
    listen(script(("raise", RuntimeError("no"))), debug=True).dispatch(bad)
    with pytest.raises(DispatchError):
        listen(script(), token="sk_wrong_token_value", debug=True).dispatch(new_job(fake)[0])
    assert fake.job(ok_id)["status"] == "complete"
    assert fake.job(bad_id)["status"] == "failed"
    assert len(lib_log.records) > 10
    for secret in (fake.token, agent_token, "sk_wrong_token_value"):
        assert secret not in lib_log.text
        for record in lib_log.records:
            assert secret not in str(record.__dict__)
            assert secret not in record.getMessage()


# -- lost answers ---------------------------------------------------------------------------------------------


def test_a_lost_complete_answer_still_ends_completed(
    fake: FakeFlatfile, listen: Listen, script: Script
) -> None:
    """complete lands but its answer is lost; the retry is refused ("already complete") → completed, no fail."""
    event, job_id = new_job(fake)
    fake.add_fault(Fault(path=f"/jobs/{job_id}/complete", reset=True, after=True, times=1))
    result = one_result(listen(script(), retry_budget=5), event)
    assert result.status == "complete"
    assert fake.job(job_id)["status"] == "complete"
    assert not any(path.endswith("/fail") for path, _ in fake.calls(job_id, include_faults=True))


def test_a_lost_fail_answer_still_ends_failed(fake: FakeFlatfile, listen: Listen, script: Script) -> None:
    """fail lands but its answer is lost; the retry is refused ("already failed") → failed, nothing raised."""
    event, job_id = new_job(fake)
    fake.add_fault(Fault(path=f"/jobs/{job_id}/fail", reset=True, after=True, times=1))
    result = one_result(listen(script(("raise", RuntimeError("broke"))), retry_budget=5), event)
    assert (result.status, result.message) == ("failed", "broke")
    assert fake.job(job_id)["status"] == "failed"


# -- unusable answers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("landed", "status", "outcome"),
    [(False, "failed", "failed"), (True, "complete", "complete")],
    ids=["complete-not-applied", "complete-applied"],
)
def test_a_complete_answered_200_with_a_non_json_body_runs_the_handler_once(
    fake: FakeFlatfile, listen: Listen, landed: bool, status: str, outcome: str
) -> None:
    """complete answered 200 <html> on every try: 3 deliveries, 1 handler run; the job fails (or stays complete).

    The answer says nothing usable, so the lifecycle fails the job with that reason; if Flatfile had in fact
    applied the complete, the fail is refused and the job is reported completed. Either way it ends, so a
    redelivery finds it finished and skips the handler.
    """
    event, job_id = new_job(fake)
    fake.add_fault(Fault(path=f"/jobs/{job_id}/complete", status=200, body=b"<html>OK</html>", after=landed))
    runs: list[int] = []
    listener = listen(lambda event, tick: runs.append(1))
    results = [one_result(listener, event) for _ in range(3)]
    assert len(runs) == 1
    assert [result.status for result in results] == [outcome, "skipped", "skipped"]
    job = fake.job(job_id)
    assert job["status"] == status
    if not landed:
        assert job["outcome"]["message"] == (
            f"POST /jobs/{job_id}/complete: Flatfile answered 200 with a body that is not JSON"
        )
