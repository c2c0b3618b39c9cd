"""Long jobs on the SDK's local test runner, against the fake Flatfile API: the lifecycle across replays.

Each test starts a real durable execution (``DurableFunctionTestRunner`` running the durable worker's handler,
``flatfile_stack.durable.handler_for``) and checks the exact requests Flatfile received.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flatfile_jobs import (
    FlatfileEvent,
    FlatfileListener,
    JobCompleteDetails,
    JobOutcome,
    StepFailedError,
    Steps,
    StepTick,
    long_job_handler,
)
from flatfile_jobs_cli._durable import LocalDurableStarter
from flatfile_jobs_testing import FakeFlatfile, Fault
from flatfile_stack import runtime
from flatfile_stack.settings import Settings

JOB = "file:extract"
ACCEPTED = {"info": "Accepted", "progress": 0}
DEFAULT_COMPLETE = {"outcome": {"message": "Job complete"}}


class _NoQueue:
    def send(self, delivery: object) -> None:
        raise AssertionError("the durable worker never queues")

    def retry_later(self, receipt_handle: str, seconds: float) -> None:
        raise AssertionError("the durable worker never queues")

    def extend_visibility(self, receipt_handle: str, seconds: float) -> None:
        raise AssertionError("the durable worker never queues")


@pytest.fixture
def durable_runtime() -> list[runtime.Runtime]:
    """The durable worker's runtime: the test puts it here before starting an execution."""
    return []


@pytest.fixture
def starter(durable_runtime: list[runtime.Runtime]) -> Iterator[LocalDurableStarter]:
    local = LocalDurableStarter(lambda: durable_runtime[-1], execution_timeout=120)
    try:
        yield local
    finally:
        local.close()


Run = Callable[..., tuple[str, dict[str, Any]]]


@pytest.fixture
def run_long(fake: FakeFlatfile, starter: LocalDurableStarter, durable_runtime: list[runtime.Runtime]) -> Run:
    """Register ``handler`` as a long job, start its execution for a new job and wait for its result."""

    def run(
        handler: Callable[[FlatfileEvent, Steps], Any],
        *,
        time_limit: float = 0.0,
        execution_fails: bool = False,
        **options: Any,
    ) -> tuple[str, dict[str, Any]]:
        options.setdefault("api_url", fake.url)
        options.setdefault("token", fake.token)
        options.setdefault("tick_interval", 0)
        listener = FlatfileListener().use(long_job_handler(JOB, handler, **options))
        durable_runtime.append(
            runtime.Runtime(
                settings=Settings(durable_execution_timeout=time_limit + 960 if time_limit else 0),
                queue=_NoQueue(),
                webhook_secrets=str,
                api_token=lambda: fake.token,
                listener=listener,
            )
        )
        event = fake.create_job_event(JOB)
        job_id = str(event["context"]["jobId"])
        name = starter.start(job_id, event)
        result = starter.result(name, timeout=60)
        if execution_fails:  # the execution itself ended failed: its error, as Lambda would record it
            assert result.error is not None
            assert result.result is None
            return job_id, {"error_type": result.error.type, "error_message": result.error.message}
        assert result.error is None, result.error
        return job_id, result_payload(result)

    return run


def result_payload(result: Any) -> dict[str, Any]:
    return dict(json.loads(result.result)) if isinstance(result.result, str) else dict(result.result)


def ack(job_id: str, body: dict[str, Any]) -> tuple[str, object]:
    return (f"POST /jobs/{job_id}/ack", body)


def get(job_id: str) -> tuple[str, object]:
    return (f"GET /jobs/{job_id}", None)


def ticking(progress: int, info: str) -> Callable[[StepTick], int]:
    """A step function that ticks once and returns ``progress``."""

    def step(tick: StepTick) -> int:
        tick(progress, info)
        return progress

    return step


def three_steps(event: FlatfileEvent, steps: Steps) -> JobCompleteDetails:
    read = steps.run("read", ticking(10, "Reading..."))
    steps.wait("cool-down-1", seconds=1200)
    extracted = steps.run("extract", ticking(40, "Extracting..."))
    steps.wait("cool-down-2", seconds=1200)
    steps.run("load", ticking(80, "Loading..."))
    assert (read, extracted) == (10, 40)  # checkpointed results come back on replay
    return JobCompleteDetails(outcome=JobOutcome(message="Extracted."))


def test_long_job_sends_one_ack_its_ticks_and_one_complete(fake: FakeFlatfile, run_long: Run) -> None:
    """Three steps with 20-minute waits: Accepted once, one status read and the ticks per step, one complete."""
    job_id, result = run_long(three_steps)
    assert fake.calls(job_id) == [
        ack(job_id, ACCEPTED),
        get(job_id),
        ack(job_id, {"progress": 10, "info": "Reading..."}),
        get(job_id),
        ack(job_id, {"progress": 40, "info": "Extracting..."}),
        get(job_id),
        ack(job_id, {"progress": 80, "info": "Loading..."}),
        (f"POST /jobs/{job_id}/complete", {"outcome": {"message": "Extracted."}}),
    ]
    assert result["status"] == "complete"
    assert fake.job(job_id)["status"] == "complete"


def fail(job_id: str, message: str) -> tuple[str, object]:
    return (
        f"POST /jobs/{job_id}/fail",
        {"info": message, "outcome": {"acknowledge": True, "message": message}},
    )


def test_replay_after_each_step_sends_nothing_again(fake: FakeFlatfile, run_long: Run) -> None:
    """A wait after every step makes the execution replay after each one: no ack, tick or step runs twice."""
    bodies: list[str] = []
    runs: dict[str, int] = {}

    def counted(name: str, progress: int) -> Callable[[StepTick], int]:
        def step(tick: StepTick) -> int:
            runs[name] = runs.get(name, 0) + 1
            tick(progress, name)
            return progress

        return step

    def handler(event: FlatfileEvent, steps: Steps) -> None:
        bodies.append("start")
        for index, name in enumerate(("one", "two", "three")):
            steps.run(name, counted(name, 30 * (index + 1)))
            steps.wait(f"after-{name}", seconds=3600)

    job_id, result = run_long(handler)
    assert len(bodies) == 4  # the first run and one replay after each wait
    assert runs == {"one": 1, "two": 1, "three": 1}
    assert fake.calls(job_id) == [
        ack(job_id, ACCEPTED),
        get(job_id),
        ack(job_id, {"progress": 30, "info": "one"}),
        get(job_id),
        ack(job_id, {"progress": 60, "info": "two"}),
        get(job_id),
        ack(job_id, {"progress": 90, "info": "three"}),
        (f"POST /jobs/{job_id}/complete", DEFAULT_COMPLETE),
    ]
    assert result["status"] == "complete"


def test_step_failing_through_its_attempts_fails_the_job_once_with_its_message(
    fake: FakeFlatfile, run_long: Run
) -> None:
    """A step that keeps raising is tried `attempts` times, then the job fails once with the step's message."""
    tries: list[int] = []

    def flaky(tick: StepTick) -> None:
        tries.append(1)
        raise ConnectionError("Partner API is down")

    def handler(event: FlatfileEvent, steps: Steps) -> None:
        steps.run("export", flaky)
        steps.run("never", lambda tick: None)

    job_id, result = run_long(handler, attempts=2)
    assert len(tries) == 2
    assert fake.calls(job_id) == [
        ack(job_id, ACCEPTED),
        get(job_id),
        get(job_id),
        fail(job_id, "Partner API is down"),
    ]
    assert result["status"] == "failed"
    assert result["message"] == "Partner API is down"
    assert fake.job(job_id)["status"] == "failed"


def test_step_failure_reaches_the_handler_as_step_failed_error(fake: FakeFlatfile, run_long: Run) -> None:
    """The handler can catch a failed step (StepFailedError names the step) and still complete the job."""
    caught: list[tuple[str, str]] = []

    def no_thumbnails(tick: StepTick) -> None:
        raise ValueError("no thumbnails")

    def handler(event: FlatfileEvent, steps: Steps) -> None:
        try:
            steps.run("optional", no_thumbnails)
        except StepFailedError as exc:
            caught.append((exc.step, str(exc)))

    job_id, result = run_long(handler, attempts=1)
    assert caught[-1] == ("optional", "no thumbnails")
    assert fake.calls(job_id)[-1] == (f"POST /jobs/{job_id}/complete", DEFAULT_COMPLETE)
    assert result["status"] == "complete"


def test_a_retried_step_never_sends_lower_progress(fake: FakeFlatfile, run_long: Run) -> None:
    """The retry of a step that reached 50 % before failing starts from the job's 50 %, not from its own 20 %."""
    attempts: list[int] = []

    def step(tick: StepTick) -> None:
        attempts.append(1)
        tick(20, "Starting...")
        if len(attempts) == 1:
            tick(50, "Halfway...")
            raise TimeoutError("slow partner")
        tick(90, "Done.")

    job_id, result = run_long(lambda event, steps: steps.run("sync", step), attempts=2)
    progress = [
        body["progress"]
        for path, body in fake.calls(job_id)[1:]
        if isinstance(body, dict) and path.endswith("/ack")
    ]
    assert progress == [20, 50, 50, 90]
    assert result["status"] == "complete"


def test_cancellation_during_a_wait_is_seen_at_the_next_step(fake: FakeFlatfile, run_long: Run) -> None:
    """A job canceled while the execution waits: the next step's status read sees it; no complete, no fail."""
    ran: list[str] = []

    def first(tick: StepTick) -> None:
        ran.append("first")
        tick(10, "First")
        fake.cancel_job(str(tick(10)["id"]))  # the user cancels while the job waits

    def handler(event: FlatfileEvent, steps: Steps) -> None:
        steps.run("first", first)
        steps.wait("pause", seconds=600)
        steps.run("second", lambda tick: ran.append("second"))

    job_id, result = run_long(handler)
    assert ran == ["first"]
    assert result["status"] == "canceled"
    calls = fake.calls(job_id)
    assert calls[-1] == get(job_id)
    assert not any(path.endswith(("/complete", "/fail")) for path, _ in calls)


def test_cancellation_seen_by_a_tick_ends_the_job_without_fail(fake: FakeFlatfile, run_long: Run) -> None:
    """A tick answered with a canceled job raises JobCanceled in the step; the step is not retried."""
    ticks: list[int] = []

    def step(tick: StepTick) -> None:
        ticks.append(1)
        job = tick(10, "Working")
        fake.cancel_job(str(job["id"]))
        tick(20, "Still working")
        ticks.append(2)

    job_id, result = run_long(lambda event, steps: steps.run("work", step), attempts=3)
    assert ticks == [1]
    assert result["status"] == "canceled"
    assert not any(path.endswith(("/complete", "/fail")) for path, _ in fake.calls(job_id))


def test_duplicate_start_with_the_same_execution_name_runs_the_job_once(
    fake: FakeFlatfile, starter: LocalDurableStarter, durable_runtime: list[runtime.Runtime]
) -> None:
    """A redelivered record starts the execution named after the job again: one execution, one lifecycle."""
    listener = FlatfileListener().use(
        long_job_handler(JOB, three_steps, api_url=fake.url, token=fake.token, tick_interval=0)
    )
    durable_runtime.append(
        runtime.Runtime(
            settings=Settings(), queue=_NoQueue(), webhook_secrets=str, api_token=lambda: fake.token,
            listener=listener,
        )
    )  # fmt: skip
    event = fake.create_job_event(JOB)
    job_id = str(event["context"]["jobId"])
    names = {starter.start(job_id, event), starter.start(job_id, event)}
    assert names == {job_id}
    assert list(starter.executions) == [job_id]
    starter.result(job_id)
    calls = fake.calls(job_id)
    assert calls.count(ack(job_id, ACCEPTED)) == 1
    assert sum(path.endswith("/complete") for path, _ in calls) == 1


def test_a_wait_past_the_time_limit_fails_the_job_before_the_execution_times_out(
    fake: FakeFlatfile, run_long: Run
) -> None:
    """With a 30-minute limit, a 1-hour wait is not started: the job fails once with a timeout message."""

    def handler(event: FlatfileEvent, steps: Steps) -> None:
        steps.run("read", ticking(10, "Reading..."))
        steps.wait("partner", seconds=3600)
        steps.run("never", lambda tick: None)

    job_id, result = run_long(handler, time_limit=1800)
    calls = fake.calls(job_id)
    assert calls[-1][0] == f"POST /jobs/{job_id}/fail"
    message = calls[-1][1]["info"]  # type: ignore[index]
    assert message.startswith("Job timed out after ")
    assert result["status"] == "timed_out"
    assert sum(path.endswith("/fail") for path, _ in calls) == 1


def test_handler_error_outside_steps_fails_the_job_once(fake: FakeFlatfile, run_long: Run) -> None:
    """An exception between steps fails the job with its message, once, across the replays after the wait."""

    def handler(event: FlatfileEvent, steps: Steps) -> None:
        steps.wait("settle", seconds=60)
        raise LookupError("Sheet 'Contacts' not found")

    job_id, result = run_long(handler)
    assert fake.calls(job_id) == [ack(job_id, ACCEPTED), fail(job_id, "Sheet 'Contacts' not found")]
    assert result["status"] == "failed"


def _fail_message(calls: list[tuple[str, object]]) -> str:
    """The message of the last request, a fail (checked to be shaped like the plugin's fail body)."""
    path, body = calls[-1]
    assert path.endswith("/fail")
    assert isinstance(body, dict)
    assert body["outcome"] == {"acknowledge": True, "message": body["info"]}
    return str(body["info"])


def test_ack_that_gives_up_fails_the_job_once_saying_it_could_not_start(
    fake: FakeFlatfile, run_long: Run
) -> None:
    """An ack Flatfile keeps refusing: tried `attempts` times, the handler never runs, the job fails once."""
    ran: list[int] = []
    fake.add_fault(Fault(path="/jobs/*/ack", method="POST", status=400))

    def handler(event: FlatfileEvent, steps: Steps) -> None:
        ran.append(1)

    job_id, result = run_long(handler, attempts=2)
    assert ran == []
    calls = fake.calls(job_id)
    message = _fail_message(calls)
    assert message == "The job could not be started: Injected fault"  # the API's own error message
    # attempt 1: the ack (refused) and a status read; attempt 2: the status read that guards "Accepted" being
    # sent twice, the ack (refused) and a status read; then the one fail.
    assert calls == [get(job_id), get(job_id), get(job_id), fail(job_id, message)]
    acks = [path for path, _ in fake.calls(job_id, include_faults=True) if path.endswith("/ack")]
    assert acks == [f"POST /jobs/{job_id}/ack"] * 2
    assert (result["status"], result["message"]) == ("failed", message)
    assert fake.job(job_id)["status"] == "failed"


def test_complete_that_gives_up_fails_the_job_once_saying_why(fake: FakeFlatfile, run_long: Run) -> None:
    """A complete Flatfile keeps refusing (and the complete step's own fail with it): one fail step after it."""
    fake.add_fault(Fault(path="/jobs/*/complete", method="POST", status=400))
    fake.add_fault(Fault(path="/jobs/*/fail", method="POST", status=400, times=1))

    def handler(event: FlatfileEvent, steps: Steps) -> None:
        steps.run("work", ticking(50, "Working"))

    job_id, result = run_long(handler, attempts=1)
    calls = fake.calls(job_id)
    message = _fail_message(calls)
    assert message == "The job's work finished, but it could not be marked complete: Injected fault"
    assert calls == [
        ack(job_id, ACCEPTED),
        get(job_id),
        ack(job_id, {"progress": 50, "info": "Working"}),
        get(job_id),  # the complete was refused: is the job already ended?
        get(job_id),  # the complete step's fail was refused: the same question
        fail(job_id, message),
    ]
    assert (result["status"], result["message"]) == ("failed", message)
    assert fake.job(job_id)["status"] == "failed"


def test_fail_that_gives_up_ends_the_execution_failed_without_a_second_fail_step(
    fake: FakeFlatfile, run_long: Run
) -> None:
    """When failing the job is what gives up, the execution ends failed (the stack's dead-letter path then fails
    the job); the fail step is not started again."""
    fake.add_fault(Fault(path="/jobs/*/fail", method="POST", status=400))

    def handler(event: FlatfileEvent, steps: Steps) -> None:
        raise LookupError("Sheet 'Contacts' not found")

    job_id, error = run_long(handler, attempts=2, execution_fails=True)
    assert error["error_type"].endswith("StepFailedError")
    faulted = [path for path, _ in fake.calls(job_id, include_faults=True)]
    assert faulted.count(f"POST /jobs/{job_id}/fail") == 2  # the fail step's two attempts, no more
    assert fake.job(job_id)["status"] == "executing"


def test_canceled_before_the_ack_runs_nothing(fake: FakeFlatfile, run_long: Run) -> None:
    """A job canceled before the execution starts: the ack step sees it and the handler never runs."""
    ran: list[int] = []
    fake.canceled_ack = "ok"

    def handler(event: FlatfileEvent, steps: Steps) -> None:
        ran.append(1)

    original = fake.create_job_event

    def canceled_job(job: str = JOB, **kwargs: Any) -> dict[str, Any]:
        event = original(job, **kwargs)
        fake.cancel_job(str(event["context"]["jobId"]))
        return event

    fake.create_job_event = canceled_job  # type: ignore[method-assign]
    try:
        _, result = run_long(handler)
    finally:
        del fake.create_job_event
    assert ran == []
    assert result["status"] == "canceled"


def test_long_handler_runs_inline_when_long_jobs_are_off(fake: FakeFlatfile) -> None:
    """Without a durable engine the same handler runs in the plain lifecycle: steps inline, waits sleep."""
    waited: list[float] = []

    def handler(event: FlatfileEvent, steps: Steps) -> None:
        steps.run("a", ticking(50, "A"))
        started = time.monotonic()
        steps.wait("w", seconds=0.05)
        waited.append(time.monotonic() - started)

    listener = FlatfileListener().use(
        long_job_handler(JOB, handler, api_url=fake.url, token=fake.token, tick_interval=0)
    )
    event = fake.create_job_event(JOB)
    job_id = str(event["context"]["jobId"])
    assert listener.long_job(event) is not None
    [result] = listener.dispatch(event, timeout=10)
    assert result.status == "complete"
    assert waited[0] >= 0.05
    assert fake.calls(job_id) == [
        ack(job_id, ACCEPTED),
        ack(job_id, {"progress": 50, "info": "A"}),
        (f"POST /jobs/{job_id}/complete", DEFAULT_COMPLETE),
    ]


def test_long_job_handler_refuses_async_handlers_and_bad_options() -> None:
    """Long handlers are sync (the SDK replays them on its own threads); attempts and tick_interval are checked."""

    async def handler(event: FlatfileEvent, steps: Steps) -> None:
        return None

    with pytest.raises(TypeError):
        long_job_handler(JOB, handler)  # type: ignore[arg-type]  # refused statically too
    with pytest.raises(ValueError):
        long_job_handler(JOB, lambda event, steps: None, attempts=0)
    with pytest.raises(ValueError):
        long_job_handler(JOB, lambda event, steps: None, tick_interval=-1)


def test_plain_jobs_are_not_long() -> None:
    """listener.long_job() finds only long_job_handler registrations."""
    from flatfile_jobs import job_handler

    listener = FlatfileListener().use(job_handler("space:configure", lambda event, tick: None))
    listener.use(long_job_handler(JOB, lambda event, steps: None))
    assert listener.long_job({"topic": "job:ready", "payload": {"job": "space:configure"}}) is None
    assert listener.long_job({"topic": "job:ready", "payload": {"job": JOB}}) is not None
