"""Fault injection through receiver → queue → worker, with the fake Flatfile API misbehaving on purpose,
records redelivered and dead-lettered, and worker processes SIGKILLed mid-job.

``make test`` runs the chaos tests small (40 jobs; 8 with kills); ``make chaos`` runs the ``slow`` tests with
``FLATFILE_JOBS_CHAOS_JOBS=1000`` (50 with kills: each kill costs a new worker process).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flatfile_jobs import FlatfileListener, JobTimeoutError, job_handler
from flatfile_jobs_testing import FakeFlatfile, Fault, LocalContext
from flatfile_stack.dead_letter import CRASH_MESSAGE, DEAD_LETTER_MESSAGE
from flatfile_stack.queues import MemoryJobQueue

from ._pipeline import (
    API_TOKEN,
    IDEMPOTENCY_TABLE,
    SCALED,
    SCALED_QUEUE_VISIBILITY,
    TIME_SCALE,
    Invocations,
    Pipeline,
    WorkerProcess,
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
DECIDED_STATUS = {"fail": "failed", "outcome": "complete", "complete": "complete"}


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


def final_of(job: dict[str, Any]) -> tuple[str, str]:
    """A job's status and outcome message."""
    return str(job["status"]), str((job.get("outcome") or {}).get("message"))


MAX_RECEIVES = 2  # small enough that records really are dead-lettered


def fail_message(request: Any) -> object:
    """The outcome message of a recorded fail request."""
    body = request.body if isinstance(request.body, dict) else {}
    return (body.get("outcome") or {}).get("message")


def decided_final(job_id: str) -> tuple[str, str]:
    """The status and outcome message a chaos handler's decision ends its job with."""
    verdict = decision(job_id)
    if verdict == "fail":
        return "failed", planned_failure(job_id)
    if verdict == "outcome":
        return "complete", f"Custom outcome for {job_id}"
    return "complete", "Job complete"


@pytest.mark.slow
def test_chaos_with_a_small_retry_budget_redelivers_and_dead_letters(
    fake: FakeFlatfile, stack: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Faults the client may not retry away: records are redelivered (backoff on the simulated clock) and
    dead-lettered after 2 receives; each job ends exactly as decided or failed with the dead-letter message."""
    jobs = int(os.environ.get("FLATFILE_JOBS_CHAOS_JOBS", str(SMALL_JOBS)))
    invocations = Invocations()
    pipe = make_pipeline(
        fake, chaos_listener(fake.url, invocations, retry_budget=0.02), max_receives=MAX_RECEIVES
    )
    events = [fake.create_job_event("chaos:sync" if i % 2 else "chaos:async") for i in range(jobs)]
    chaos_faults(fake)
    assert Counter(pipe.deliver_event(event)["statusCode"] for event in events) == Counter({202: jobs})
    stats = pipe.drain(workers=4 if jobs > SMALL_JOBS else 2)
    assert pipe.queue.pending() == 0
    assert stats.batch_failures > 0  # records really were redelivered…
    assert stats.dead_letters > 0  # …and dead-lettered
    receives = Counter(job_id for _, _, job_id in stats.receives)
    dead = set(stats.dead_lettered_jobs)
    ended: Counter[str] = Counter()
    for event in events:
        job_id = event["context"]["jobId"]
        final = final_of(fake.job(job_id))
        finishes = [
            r for r in fake.requests if r.path in (f"/jobs/{job_id}/complete", f"/jobs/{job_id}/fail")
        ]
        taken = [r for r in finishes if r.status == 200]
        runs = invocations.count(job_id)
        assert runs <= receives[job_id], job_id  # a handler runs at most once per delivery
        assert len(taken) <= 1, job_id  # and its job is finished at most once
        if final == decided_final(job_id):
            ended["as decided"] += 1
            assert runs >= 1, job_id
        elif final == ("failed", DEAD_LETTER_MESSAGE.format(job_id=job_id)):
            # Dead-lettered; only the dead-letter function's fail took effect.
            ended["dead-lettered"] += 1
            assert job_id in dead, job_id
            assert receives[job_id] == MAX_RECEIVES, job_id
            assert not [r for r in taken if r.path.endswith("/complete")], job_id
        else:
            # The handler decided "complete", complete failed for good: the job is failed with that error.
            ended["complete refused, failed with its error"] += 1
            assert decision(job_id) != "fail", (job_id, final)
            assert any(r.path.endswith("/complete") and r.status != 200 for r in finishes), job_id
            assert final[0] == "failed", (job_id, final)
            assert any(fail_message(r) == final[1] for r in finishes if r.path.endswith("/fail")), job_id
        assert job_id not in dead or receives[job_id] == MAX_RECEIVES, job_id
    assert sum(ended.values()) == jobs
    with capsys.disabled():
        print(
            f"\nchaos with redelivery: {jobs} jobs, worker calls {stats.worker_calls}, failed records "
            f"{stats.batch_failures}, dead letters {stats.dead_letters}, dead-letter calls "
            f"{stats.dead_letter_calls}, simulated {pipe.clock():.0f} s, ended {dict(ended)}"
        )


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
# Lambda can lose a worker mid-job (out of memory, a crash, the platform's hard stop): no code of ours runs.
# The worker's heartbeat is what bounds the damage: while a job runs it keeps the message invisible only
# `visibility_seconds` ahead and renews the job's in-progress lease, so a dead worker's message comes back
# soon and its lease has lapsed by then. To test that honestly the worker runs in its own process (its
# queue calls reach the test's MemoryJobQueue as JSON lines, as SQS calls would) and the idempotency store
# is a real DynamoDB API (moto's server on loopback) both processes use. The timeline is production's,
# 100 times faster (TIME_SCALE): the tests measure real time and report and bound it in simulated time.


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    httpx.post(f"{endpoint}/moto-api/reset").raise_for_status()  # moto's state is per process, not per server
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
        time.sleep(0.01)
    return False


def scaled_pipeline(
    fake: FakeFlatfile, listener: FlatfileListener, endpoint: str, **options: Any
) -> Pipeline:
    """A pipeline on production's timeline 100 times faster, in real time, with DynamoDB on moto's server."""
    pipe = make_pipeline(fake, listener, **SCALED, **options)
    pipe.queue = MemoryJobQueue(
        max_receives=options.get("max_receives", 5),
        visibility_timeout=SCALED_QUEUE_VISIBILITY,
        backoff_scale=1 / TIME_SCALE,
    )
    pipe.runtime.queue = pipe.queue
    pipe.runtime.persistence = pipe.persistence = dynamodb_store(endpoint)
    return pipe


def running_ticks(fake: FakeFlatfile, job_id: str) -> int:
    return sum(1 for _, body in fake.calls(job_id) if body == {"progress": 50, "info": "Running"})


def start_and_kill(pipe: Pipeline, fake: FakeFlatfile, endpoint: str, record: dict[str, Any]) -> float:
    """Run ``record`` in a worker process, SIGKILL it once its job ticked "Running"; return the kill time."""
    job_id = json.loads(record["body"])["context"]["jobId"]
    before = running_ticks(fake, job_id)
    child = WorkerProcess(
        pipe.queue, {"token": fake.token, "endpoint": endpoint, "api_url": fake.url, "listener": "sleepy"}
    )
    try:
        child.run(record)
        assert wait_for(lambda: running_ticks(fake, job_id) > before, 60), child.log()
        time.sleep(3 * SCALED["heartbeat_seconds"])  # a few heartbeats in
        killed_at = time.monotonic()
        child.kill()
        assert child.process.returncode == -signal.SIGKILL
    finally:
        child.close()
    return killed_at


def test_killed_worker_job_runs_again_within_minutes_and_completes(
    fake: FakeFlatfile, stack: None, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker SIGKILLed mid-job: its message is back in under 3 simulated minutes, and the retry completes."""
    pipe = scaled_pipeline(fake, sleepy_listener(fake.url, 0.05), moto_endpoint)
    event = fake.create_job_event("kill:me")
    job_id = event["context"]["jobId"]
    assert pipe.deliver_event(event)["statusCode"] == 202
    record = pipe.queue.receive(timeout=1)
    assert record is not None
    killed_at = start_and_kill(pipe, fake, moto_endpoint, record)
    assert fake.job(job_id)["status"] == "executing"

    again = pipe.queue.receive(timeout=10)
    back_after = (time.monotonic() - killed_at) * TIME_SCALE
    assert again is not None
    assert again["attributes"]["ApproximateReceiveCount"] == "2"
    assert back_after < 180, f"back after {back_after:.0f} simulated s"
    # The dead run's lease lapsed before its message came back: the retry runs the job, not drops it.
    assert pipe.run_record(again, worker=load_app("worker"), remaining=30) == {"batchItemFailures": []}
    pipe.queue.delete(again["receiptHandle"])
    job = fake.job(job_id)
    assert (job["status"], job["outcome"]) == ("complete", {"message": "Job complete"})
    assert running_ticks(fake, job_id) == 2  # the killed run and the one that finished
    with capsys.disabled():
        print(
            f"\ncrash to retry: {back_after:.0f} s simulated (visibility {SCALED['visibility_seconds'] * TIME_SCALE:.0f} s)"
        )


def test_job_crashing_at_every_attempt_is_failed_with_the_crash_message(
    fake: FakeFlatfile, stack: None, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed at each of its 3 receives, a job is dead-lettered and failed saying the worker stopped (OOM?)."""
    pipe = scaled_pipeline(
        fake,
        sleepy_listener(fake.url, 60),
        moto_endpoint,
        max_receives=3,
        worker_memory_mb=1024,
        worker_timeout=900,
    )
    event = fake.create_job_event("kill:me")
    job_id = event["context"]["jobId"]
    assert pipe.deliver_event(event)["statusCode"] == 202
    waits: list[float] = []  # simulated seconds from each kill to the next receive (or the dead letter)
    killed_at = None
    for attempt in range(1, 4):
        record = pipe.queue.receive(timeout=10)
        assert record is not None, f"attempt {attempt} never came"
        if killed_at is not None:
            waits.append((time.monotonic() - killed_at) * TIME_SCALE)
        assert record["attributes"]["ApproximateReceiveCount"] == str(attempt)
        killed_at = start_and_kill(pipe, fake, moto_endpoint, record)
    assert wait_for(lambda: pipe.queue.receive(timeout=0) is None and pipe.queue.dead_letters, 10)
    assert killed_at is not None
    waits.append((time.monotonic() - killed_at) * TIME_SCALE)
    assert pipe.queue.pending() == 0
    [dead] = pipe.queue.dead_letters
    dead_letter_app = load_app("dead_letter")
    answer = dead_letter_app.lambda_handler({"Records": [dead]}, LocalContext("DeadLetterFunction", 60.0))
    assert answer == {"batchItemFailures": []}
    message = CRASH_MESSAGE.format(job_id=job_id, limits=" (the worker has 1024 MB and 900 s per attempt)")
    job = fake.job(job_id)
    assert (job["status"], job["outcome"]["message"]) == ("failed", message)
    assert "out of memory" in message
    assert running_ticks(fake, job_id) == 3
    assert all(wait < 180 for wait in waits), waits
    with capsys.disabled():
        print(
            f"\nwaits after each crash: {[round(w) for w in waits]} simulated s (3 receives, then dead letter)"
        )


def test_duplicate_of_a_job_running_past_its_lease_is_dropped(
    fake: FakeFlatfile, stack: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job running 4 leases long keeps its claim (the heartbeat renews it): a duplicate meanwhile is dropped."""
    invocations = Invocations()
    pipe = make_pipeline(
        fake, chaos_listener(fake.url, invocations, sleep=4 * SCALED["lease_seconds"]), **SCALED
    )
    event = fake.create_job_event("chaos:async")
    job_id = event["context"]["jobId"]
    for _ in range(2):
        assert pipe.deliver_event(event)["statusCode"] == 202
    first, second = pipe.queue.receive(timeout=1), pipe.queue.receive(timeout=1)
    assert first is not None
    assert second is not None
    results: list[Any] = []
    running = threading.Thread(target=lambda: results.append(pipe.run_record(first)))
    running.start()
    try:
        assert wait_for(lambda: invocations.count(job_id) == 1, 30)
        time.sleep(2 * SCALED["lease_seconds"])  # two leases later, the job still runs
        assert running.is_alive()
        assert pipe.run_record(second, worker=load_app("worker")) == {"batchItemFailures": []}
    finally:
        running.join(timeout=60)
    assert results == [{"batchItemFailures": []}]
    assert invocations.count(job_id) == 1
    assert sum(1 for _, body in fake.calls(job_id) if body == {"info": "Accepted", "progress": 0}) == 1
    assert fake.job(job_id)["status"] == DECIDED_STATUS[decision(job_id)]


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


KILL_JOBS = 8
KILL_RATE = 0.3


class KillingEventSource:
    """Lambda's event source mapping over two worker processes, SIGKILLing a worker mid-job at random."""

    def __init__(self, pipe: Pipeline, config: dict[str, Any], rng: random.Random) -> None:
        self.pipe, self.config, self.rng = pipe, config, rng
        self.children = [WorkerProcess(pipe.queue, config) for _ in range(2)]
        self.running: dict[int, float | None] = {}  # child index → when to kill it (None: let it finish)
        self.kills = 0
        self.dead: list[str] = []
        self.dead_letter_app = load_app("dead_letter")

    def run(self, *, stop_at: float) -> None:
        """Hand out records, kill, handle dead letters, until nothing is left."""
        while time.monotonic() < stop_at:
            for index in range(len(self.children)):
                self._step(index)
            self._dead_letters()
            if self.pipe.queue.pending() == 0 and not self.running:
                return
            time.sleep(0.01)

    def _step(self, index: int) -> None:
        child = self.children[index]
        if index in self.running and child.done.is_set():
            del self.running[index]
        elif index in self.running and time.monotonic() >= (self.running[index] or float("inf")):
            child.close()  # SIGKILL mid-job; a fresh sandbox replaces it
            self.children[index] = WorkerProcess(self.pipe.queue, self.config)
            del self.running[index]
            self.kills += 1
        if index not in self.running and self.children[index].ready.is_set():
            record = self.pipe.queue.receive(timeout=0)
            if record is not None:
                self.children[index].run(record)
                kill = self.rng.random() < KILL_RATE
                self.running[index] = time.monotonic() + self.rng.uniform(0.05, 0.45) if kill else None

    def _dead_letters(self) -> None:
        while self.pipe.queue.dead_letters:
            record = self.pipe.queue.dead_letters.pop(0)
            self.dead.append(json.loads(record["body"])["context"]["jobId"])
            answer = self.dead_letter_app.lambda_handler(
                {"Records": [record]}, LocalContext("DeadLetterFunction", 60.0)
            )
            assert answer == {"batchItemFailures": []}

    def close(self) -> None:
        """Stop every worker process."""
        for child in self.children:
            child.close()


@pytest.mark.slow
def test_chaos_with_random_worker_kills(
    fake: FakeFlatfile, stack: None, moto_endpoint: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Faults plus workers SIGKILLed at random mid-job (worker processes, timeline 100 × faster, 3 receives):
    each job ends exactly as decided, or dead-lettered and failed with the crash message; a handler runs at
    most once per delivery and the job is finished once."""
    jobs = max(KILL_JOBS, int(os.environ.get("FLATFILE_JOBS_CHAOS_JOBS", "0")) // 20)
    side_effects = tmp_path / "runs.txt"
    side_effects.touch()
    pipe = scaled_pipeline(
        fake,
        chaos_listener(fake.url, Invocations()),
        moto_endpoint,
        max_receives=3,
        worker_memory_mb=1024,
        worker_timeout=900,
    )
    events = [fake.create_job_event("chaos:sync" if i % 2 else "chaos:async") for i in range(jobs)]
    chaos_faults(fake)
    assert Counter(pipe.deliver_event(event)["statusCode"] for event in events) == Counter({202: jobs})
    config = {
        "token": fake.token,
        "endpoint": moto_endpoint,
        "api_url": fake.url,
        "listener": "chaos",
        "sleep": 0.3,
        "side_effects": str(side_effects),
    }
    source = KillingEventSource(pipe, config, random.Random(14))
    try:
        source.run(stop_at=time.monotonic() + 300)
    finally:
        source.close()
    kills, dead = source.kills, source.dead
    assert pipe.queue.pending() == 0
    assert kills > 0
    runs = Counter(side_effects.read_text().split())
    crash = " (the worker has 1024 MB and 900 s per attempt)"
    ended: Counter[str] = Counter()
    for event in events:
        job_id = event["context"]["jobId"]
        final = final_of(fake.job(job_id))
        taken = [
            r
            for r in fake.requests
            if r.path in (f"/jobs/{job_id}/complete", f"/jobs/{job_id}/fail") and r.status == 200
        ]
        assert len(taken) <= 1, job_id  # finished once
        assert runs[job_id] <= 3, job_id  # at most once per delivery (3 receives)
        if final == decided_final(job_id):
            ended["as decided"] += 1
            assert runs[job_id] >= 1, job_id
        else:
            assert job_id in dead, (job_id, final)
            assert final == ("failed", CRASH_MESSAGE.format(job_id=job_id, limits=crash)), (job_id, final)
            ended["killed at every attempt, failed with the crash message"] += 1
    assert sum(ended.values()) == jobs
    with capsys.disabled():
        print(
            f"\nchaos with kills: {jobs} jobs, {kills} workers SIGKILLed, handler runs {sum(runs.values())}, "
            f"dead letters {len(dead)}, ended {dict(ended)}"
        )
