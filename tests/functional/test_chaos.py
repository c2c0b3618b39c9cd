"""Fault injection through receiver → queue → worker, with the fake Flatfile API misbehaving on purpose.

``make test`` runs the chaos test with 40 jobs; ``make chaos`` runs the ``slow`` tests with
``FLATFILE_JOBS_CHAOS_JOBS=1000``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from flatfile_jobs import FlatfileListener, JobTimeoutError, job_handler
from flatfile_jobs.testing import FakeFlatfile, Fault

from ._pipeline import (
    API_TOKEN,
    IDEMPOTENCY_TABLE,
    ROOT,
    Invocations,
    Pipeline,
    chaos_faults,
    chaos_listener,
    decision,
    dynamodb_client,
    dynamodb_store,
    isolated_stack,
    load_app,
    make_pipeline,
    planned_failure,
    response_json,
    sleepy_listener,
)

SMALL_JOBS = 40


@pytest.fixture
def fake() -> Iterator[FakeFlatfile]:
    with FakeFlatfile(token=API_TOKEN, seed=6) as server:
        yield server


@pytest.fixture
def stack() -> Iterator[None]:
    with isolated_stack():
        yield


def chaos_run(fake: FakeFlatfile, jobs: int, *, workers: int) -> dict[str, Any]:
    """Deliver ``jobs`` events through the pipeline under faults and drain it; return what happened."""
    invocations = Invocations()
    pipe = make_pipeline(fake, chaos_listener(fake.url, invocations))
    events = [fake.create_job_event("chaos:sync" if i % 2 else "chaos:async") for i in range(jobs)]
    faults = chaos_faults(fake)
    answers = Counter(pipe.deliver_event(event)["statusCode"] for event in events)
    started = time.monotonic()
    stats = pipe.drain(workers=workers)
    seconds = time.monotonic() - started
    requests = fake.requests
    return {
        "pipe": pipe,
        "events": events,
        "answers": answers,
        "invocations": invocations,
        "stats": stats,
        "faults": {f"{f.status or 'reset'}{'-after' if f.after else ''}": f.hits for f in faults},
        "requests": len(requests),
        "faulted": sum(1 for r in requests if r.fault),
        # complete/fail retried after its answer was lost: the API says the job already ended
        "refused_finish": sum(
            1 for r in requests if r.status == 400 and r.path.endswith(("/complete", "/fail"))
        ),
        "seconds": seconds,
    }


def check_chaos(fake: FakeFlatfile, run: dict[str, Any]) -> str:
    """Check every job ended as its handler decided, ran once, nothing lost; return the figures."""
    events, invocations, stats = run["events"], run["invocations"], run["stats"]
    assert run["answers"] == Counter({202: len(events)})
    assert run["faulted"] > 0
    pipe: Pipeline = run["pipe"]
    assert pipe.queue.pending() == 0
    assert stats.dead_letters == 0
    # Retries absorb every fault inside the worker: no record had to be redelivered.
    assert stats.batch_failures == 0
    finals: Counter[str] = Counter()
    for event in events:
        job_id = event["context"]["jobId"]
        job = fake.job(job_id)
        assert invocations.count(job_id) == 1, job_id
        verdict = decision(job_id)
        finals[job["status"]] += 1
        if verdict == "fail":
            assert job["status"] == "failed", job_id
            assert job["outcome"]["message"] == planned_failure(job_id)
        elif verdict == "outcome":
            assert job["status"] == "complete", job_id
            assert job["outcome"]["message"] == f"Custom outcome for {job_id}"
        else:
            assert job["status"] == "complete", job_id
            assert job["outcome"] == {"message": "Job complete"}
    assert sum(finals.values()) == len(events)
    return (
        f"chaos: {len(events)} jobs in {run['seconds']:.1f} s, {run['requests']} API requests, "
        f"{run['faulted']} faulted {run['faults']}, worker calls {stats.worker_calls}, "
        f"failed invocations {stats.batch_failures} ({run['refused_finish']} 'already ended' answers after a "
        f"lost response), dead letters {stats.dead_letters}, final {dict(finals)}"
    )


@pytest.mark.slow
def test_chaos_pipeline(fake: FakeFlatfile, stack: None, capsys: pytest.CaptureFixture[str]) -> None:
    """Under 20 % 5xx/429 and 5 % resets on every endpoint, each job ends as decided, its handler ran once."""
    jobs = int(os.environ.get("FLATFILE_JOBS_CHAOS_JOBS", str(SMALL_JOBS)))
    run = chaos_run(fake, jobs, workers=4 if jobs > SMALL_JOBS else 2)
    figures = check_chaos(fake, run)
    with capsys.disabled():  # the figures for the closing note, shown even without -s
        print(f"\n{figures}")


def test_duplicate_deliveries_in_a_row_run_once(fake: FakeFlatfile, stack: None) -> None:
    """The same event delivered 5 times one after another is enqueued 5 times and runs once."""
    invocations = Invocations()
    pipe = make_pipeline(fake, chaos_listener(fake.url, invocations))
    event = fake.create_job_event("chaos:sync")
    job_id = event["context"]["jobId"]
    answers = [pipe.deliver_event(event) for _ in range(5)]
    assert [a["statusCode"] for a in answers] == [202] * 5
    assert {response_json(a)["jobId"] for a in answers} == {job_id}
    stats = pipe.drain()
    assert stats.worker_calls == 5
    assert stats.batch_failures == 0
    assert invocations.count(job_id) == 1
    assert fake.job(job_id)["status"] == ("failed" if decision(job_id) == "fail" else "complete")
    assert [call for call, _ in fake.calls(job_id)].count(f"POST /jobs/{job_id}/ack") >= 1
    assert sum(1 for call, body in fake.calls(job_id) if body == {"info": "Accepted", "progress": 0}) == 1


def test_duplicate_deliveries_concurrently_run_once(fake: FakeFlatfile, stack: None) -> None:
    """The same event handed to 5 worker instances at once runs once; the other 4 are dropped, not failed."""
    invocations = Invocations()
    pipe = make_pipeline(fake, chaos_listener(fake.url, invocations, sleep=0.3))
    event = fake.create_job_event("chaos:async")
    job_id = event["context"]["jobId"]
    for _ in range(5):
        assert pipe.deliver_event(event)["statusCode"] == 202
    records = [pipe.queue.receive(timeout=1) for _ in range(5)]
    # Five Lambda instances: each its own app module (and BatchProcessor), one shared idempotency store.
    apps = [load_app("worker") for _ in range(5)]
    barrier = threading.Barrier(5)
    results: list[Any] = [None] * 5

    def run(i: int) -> None:
        barrier.wait()
        results[i] = pipe.run_record(records[i] or {}, worker=apps[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(result == {"batchItemFailures": []} for result in results), results
    assert invocations.count(job_id) == 1
    assert fake.job(job_id)["status"] == ("failed" if decision(job_id) == "fail" else "complete")
    assert sum(1 for _, body in fake.calls(job_id) if body == {"info": "Accepted", "progress": 0}) == 1


def test_handler_outliving_the_deadline_fails_the_job(fake: FakeFlatfile, stack: None) -> None:
    """A sync handler still running at the deadline is interrupted there (JobTimeoutError), not left to finish."""
    steps: list[float] = []
    stopped_by: list[BaseException] = []
    stopped = threading.Event()

    def slow(event: Any, tick: Any) -> None:
        tick(5, "Working")
        try:
            for _ in range(600):  # 6 s in small steps, so the interrupt lands between two of them
                steps.append(time.monotonic())
                time.sleep(0.01)
        except BaseException as exc:
            stopped_by.append(exc)
            raise
        finally:
            stopped.set()

    listener = FlatfileListener().use(job_handler("slow:job", slow, api_url=fake.url, tick_interval=0))
    pipe = make_pipeline(fake, listener, deadline_margin=0.5)
    event = fake.create_job_event("slow:job")
    job_id = event["context"]["jobId"]
    assert pipe.deliver_event(event)["statusCode"] == 202
    record = pipe.queue.receive(timeout=1)
    assert record is not None
    started = time.monotonic()
    result = pipe.run_record(record, remaining=2.5)  # deadline: 2.5 s - 0.5 s margin = 2 s
    took = time.monotonic() - started
    assert result == {"batchItemFailures": []}
    job = fake.job(job_id)
    assert job["status"] == "failed"
    # The handler's own time: the deadline less the ack (which a loaded machine can make long).
    assert re.fullmatch(r"Job timed out after [0-2] s", job["outcome"]["message"]), job["outcome"]
    assert job["info"] == job["outcome"]["message"]
    assert took < 4.0  # the deadline (2 s) plus the fail call, not the handler's 6 s
    # The handler itself was stopped: the interrupt reached its loop (an uninterrupted one runs on to 6 s).
    assert stopped.wait(1.5), "the handler kept running after the deadline"
    assert [type(exc) for exc in stopped_by] == [JobTimeoutError]
    assert steps[-1] - started < 3.5, f"last step {steps[-1] - started:.2f} s after the start"
    count = len(steps)
    time.sleep(0.1)
    assert len(steps) == count < 600


# -- a worker process killed mid-job --------------------------------------------------------------------
#
# Lambda can lose a worker mid-job (a crash, running out of memory, the platform's hard stop). Nothing marks
# the job then: SQS hands the message out again after its visibility timeout, and the idempotency record the
# dead run left is "in progress" with a lease that ends at the dead invocation's deadline. To test that
# honestly, the first worker runs in a separate process and the idempotency store is a real DynamoDB API
# (moto's server on loopback) that both processes use. The timeline is scaled down: the first invocation
# has 3 s of remaining time (its lease), it is SIGKILLed while its handler sleeps, and the record is
# redelivered once the lease has run out (in AWS the visibility timeout is >= 6x the function timeout, so a
# redelivery always comes after the lease).

KILL_LEASE_SECONDS = 3.0


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    dynamodb_client(endpoint).create_table(
        TableName=IDEMPOTENCY_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        yield endpoint
    finally:
        server.stop()


def wait_for(predicate: Any, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_worker_killed_mid_job_is_redelivered_and_the_job_ends(
    fake: FakeFlatfile, stack: None, moto_endpoint: str
) -> None:
    """A worker SIGKILLed mid-job: a redelivery within the lease is dropped, one after it finishes the job."""
    pipe = make_pipeline(fake, sleepy_listener(fake.url, 0.2))
    pipe.runtime.persistence = dynamodb_store(moto_endpoint)
    event = fake.create_job_event("kill:me")
    job_id = event["context"]["jobId"]
    assert pipe.deliver_event(event)["statusCode"] == 202
    record = pipe.queue.receive(timeout=1)
    assert record is not None
    config = {
        "token": fake.token,
        "endpoint": moto_endpoint,
        "api_url": fake.url,
        "record": record,
        "remaining": KILL_LEASE_SECONDS,
    }
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
        "from tests.functional._pipeline import child_worker; child_worker(sys.argv[1])"
    )
    env = {**os.environ, "POWERTOOLS_METRICS_NAMESPACE": "FlatfileJobs"}
    child = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        started = wait_for(
            lambda: any(body == {"progress": 50, "info": "Running"} for _, body in fake.calls(job_id)), 30
        )
        assert started, (
            child.stderr.read().decode() if child.poll() is not None and child.stderr else "no start"
        )
        killed_at = time.monotonic()
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stderr:
            child.stderr.close()
    assert fake.job(job_id)["status"] == "executing"

    fresh = load_app("worker")
    early = pipe.run_record(record, worker=fresh, remaining=30)
    assert early == {"batchItemFailures": []}  # in progress elsewhere: dropped, nothing run
    assert fake.job(job_id)["status"] == "executing"
    running = [body for _, body in fake.calls(job_id) if body == {"progress": 50, "info": "Running"}]
    assert len(running) == 1

    time.sleep(max(0.0, killed_at + KILL_LEASE_SECONDS + 1.1 - time.monotonic()))
    late = pipe.run_record(record, worker=load_app("worker"), remaining=30)
    assert late == {"batchItemFailures": []}
    job = fake.job(job_id)
    assert job["status"] == "complete"
    assert job["outcome"] == {"message": "Job complete"}
    running = [body for _, body in fake.calls(job_id) if body == {"progress": 50, "info": "Running"}]
    assert len(running) == 2  # the killed run and the one that finished


@pytest.mark.parametrize(
    ("verdict_job", "endpoint", "final"), [("complete", "complete", "complete"), ("fail", "fail", "failed")]
)
def test_a_lost_answer_to_complete_or_fail_is_not_a_failure(
    fake: FakeFlatfile, stack: None, verdict_job: str, endpoint: str, final: str
) -> None:
    """complete/fail took effect but its answer was lost: the retry's "already …" means done, not a failed record."""
    invocations = Invocations()
    pipe = make_pipeline(fake, chaos_listener(fake.url, invocations))
    event = next(
        e
        for e in (fake.create_job_event("chaos:sync") for _ in range(50))
        if (decision(e["context"]["jobId"]) == "fail") is (verdict_job == "fail")
    )
    job_id = event["context"]["jobId"]
    fake.add_fault(Fault(path=f"/jobs/{job_id}/{endpoint}", status=None, reset=True, after=True, times=1))
    assert pipe.deliver_event(event)["statusCode"] == 202
    record = pipe.queue.receive(timeout=1)
    assert record is not None
    result = pipe.run_record(record)
    assert result == {"batchItemFailures": []}
    assert fake.job(job_id)["status"] == final
    assert invocations.count(job_id) == 1
