"""Long jobs on the SDK's local test runner, against the fake Flatfile API: the lifecycle across replays.

Each test starts a real durable execution (``DurableFunctionTestRunner`` running the durable worker's handler,
``flatfile_stack.durable.handler``) and checks the exact requests Flatfile received.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flatfile_jobs import (
    FlatfileEvent,
    FlatfileListener,
    JobCanceled,
    JobCompleteDetails,
    JobOutcome,
    StepFailedError,
    Steps,
    StepTick,
    long_job_handler,
)
from flatfile_jobs.testing import FakeFlatfile
from flatfile_jobs_cli._durable import LocalDurableStarter
from flatfile_stack import runtime
from flatfile_stack.settings import Settings

JOB = "file:extract"
ACCEPTED = {"info": "Accepted", "progress": 0}
DEFAULT_COMPLETE = {"outcome": {"message": "Job complete"}}


class _NoQueue:
    def send(self, delivery: object) -> None:
        raise AssertionError("the durable worker never queues")

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        raise AssertionError("the durable worker never queues")


@pytest.fixture
def starter() -> Iterator[LocalDurableStarter]:
    local = LocalDurableStarter(execution_timeout=120)
    try:
        yield local
    finally:
        local.close()
        runtime.use_runtime(None)


Run = Callable[..., tuple[str, dict[str, Any]]]


@pytest.fixture
def run_long(fake: FakeFlatfile, starter: LocalDurableStarter) -> Run:
    """Register ``handler`` as a long job, start its execution for a new job and wait for its result."""

    def run(
        handler: Callable[[FlatfileEvent, Steps], Any], *, time_limit: float = 0.0, **options: Any
    ) -> tuple[str, dict[str, Any]]:
        options.setdefault("api_url", fake.url)
        options.setdefault("token", fake.token)
        options.setdefault("tick_interval", 0)
        listener = FlatfileListener().use(long_job_handler(JOB, handler, **options))
        runtime.use_runtime(
            runtime.Runtime(
                settings=Settings(long_job_time_limit=time_limit),
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
        assert result.error is None, result.error
        return job_id, result_payload(result)

    return run


def result_payload(result: Any) -> dict[str, Any]:  # noqa: ANN401 - the runner's result
    import json

    return dict(json.loads(result.result)) if isinstance(result.result, str) else dict(result.result)


def ack(job_id: str, body: dict[str, Any]) -> tuple[str, object]:
    return (f"POST /jobs/{job_id}/ack", body)


def get(job_id: str) -> tuple[str, object]:
    return (f"GET /jobs/{job_id}", None)


def three_steps(event: FlatfileEvent, steps: Steps) -> JobCompleteDetails:
    steps.run("read", lambda tick: tick(10, "Reading...") and 3)
    steps.wait("cool-down-1", seconds=1200)
    steps.run("extract", lambda tick: tick(40, "Extracting...") and 1200)
    steps.wait("cool-down-2", seconds=1200)
    steps.run("load", lambda tick: tick(80, "Loading...") and None)
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
    assert result["status"] == "completed"
    assert fake.job(job_id)["status"] == "complete"
