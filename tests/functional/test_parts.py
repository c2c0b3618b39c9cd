"""Multi-part jobs through receiver → queue → worker, with the fake Flatfile API emitting the part events.

The fake plays Flatfile and the forwarder: the parts' ``job:ready`` and the parent's ``job:parts-completed``
it emits are signed and delivered to the receiver, like any other event, before the API call that caused
them is answered.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flatfile_jobs import FlatfileEvent, FlatfileListener, JobPart, PartResults, multipart_job_handler
from flatfile_jobs_testing import FakeFlatfile

from ._pipeline import (
    API_TOKEN,
    Invocations,
    Pipeline,
    chaos_faults,
    isolated_stack,
    make_pipeline,
    response_json,
)

JOB = "export:parts"


@pytest.fixture
def fake() -> Iterator[FakeFlatfile]:
    with FakeFlatfile(token=API_TOKEN, seed=12) as server:
        yield server


@pytest.fixture(autouse=True)
def stack() -> Iterator[None]:
    with isolated_stack():
        yield


class Forwarder:
    """Subscribes to the fake: each event it emits is signed and posted to the pipeline's receiver."""

    def __init__(self, pipe: Pipeline) -> None:
        self.pipe = pipe
        self.topics: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()
        pipe.fake.subscribe(self)

    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:  # one receiver instance answers one request at a time
            answer = self.pipe.deliver_event(event)
            self.topics[event["topic"]] += 1
            self.statuses[answer["statusCode"]] += 1


def part_number(part: JobPart) -> int:
    """The part's position, from its ``partData`` (count split) or its index (list split)."""
    value = part.data.get("part", part.index)
    assert isinstance(value, int)
    return value


def parts_listener(
    api_url: str,
    invocations: Invocations,
    *,
    split: Callable[[FlatfileEvent], Any] | None = None,
    failing: frozenset[int] = frozenset(),
    finish: Callable[[FlatfileEvent, PartResults], Any] | None = None,
    asynchronous: bool = False,
    seen: list[JobPart] | None = None,
) -> FlatfileListener:
    """``export:parts``: split into ``input.parts`` parts; each part ticks 50 and completes, or fails if listed."""

    def default_split(event: FlatfileEvent) -> Any:
        return event.payload["input"].get("parts", 8)

    def act(part: JobPart) -> None:
        invocations.hit(part.job_id)
        if seen is not None:
            seen.append(part)
        if part_number(part) in failing:
            raise RuntimeError(f"Part {part_number(part)} broke")

    def sync_part(part: JobPart, tick: Callable[..., Any]) -> None:
        tick(50, "Halfway")
        act(part)

    async def async_part(part: JobPart, tick: Callable[..., Any]) -> None:
        await tick(50, "Halfway")
        await asyncio.sleep(0)
        act(part)

    plugin = multipart_job_handler(
        JOB,
        split=split or default_split,
        run_part=async_part if asynchronous else sync_part,
        finish=finish,
        api_url=api_url,
        tick_interval=0.01,
        retry_budget=30.0,
    )
    return FlatfileListener().use(plugin)


def start(fake: FakeFlatfile, listener: FlatfileListener, **input: Any) -> tuple[Pipeline, Forwarder, str]:
    """A pipeline with a forwarder, and one parent job delivered; returns the parent's id."""
    pipe = make_pipeline(fake, listener)
    forwarder = Forwarder(pipe)
    event = fake.create_job_event(JOB, input=input)
    assert pipe.deliver_event(event)["statusCode"] == 202
    return pipe, forwarder, str(event["context"]["jobId"])


def parent_calls(fake: FakeFlatfile, parent_id: str) -> list[str]:
    """The parent's requests as ``"METHOD /path"`` (faulted answers left out)."""
    return [call for call, _ in fake.calls(parent_id)]


def finishing_calls(fake: FakeFlatfile, job_id: str) -> list[tuple[str, object]]:
    """The complete and fail requests a job received."""
    return [(call, body) for call, body in fake.calls(job_id) if call.endswith(("/complete", "/fail"))]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_count_split_runs_every_part_once_and_completes_the_parent_once(
    fake: FakeFlatfile, asynchronous: bool
) -> None:
    """A split into 8: every part runs its own lifecycle once; the parent is acked once, split, completed once."""
    invocations = Invocations()
    listener = parts_listener(fake.url, invocations, asynchronous=asynchronous)
    pipe, forwarder, parent_id = start(fake, listener)
    stats = pipe.drain(workers=4)
    parts = fake.parts(parent_id)
    assert [part["partData"] for part in parts] == [{"part": i, "total": 8} for i in range(8)]
    assert all(part["status"] == "complete" for part in parts)
    assert sorted(invocations.snapshot().values()) == [1] * 8
    for part in parts:
        assert fake.calls(part["id"]) == [
            (f"POST /jobs/{part['id']}/ack", {"info": "Accepted", "progress": 0}),
            (f"POST /jobs/{part['id']}/ack", {"progress": 50, "info": "Halfway"}),
            (f"POST /jobs/{part['id']}/complete", {"outcome": {"message": "Job complete"}}),
        ]
    calls = fake.calls(parent_id)
    assert calls[:2] == [
        (f"POST /jobs/{parent_id}/ack", {"info": "Accepted", "progress": 0}),
        (f"POST /jobs/{parent_id}/split", {"parts": 8}),
    ]
    assert calls[-1] == (f"POST /jobs/{parent_id}/complete", {"outcome": {"message": "8 parts complete"}})
    # In between: each part's look at the parent, progress (parts ended / total) and the finish's look.
    assert sum(call == (f"GET /jobs/{parent_id}", None) for call in calls) == 8 + 1
    for call, body in calls[2:-1]:
        assert call == f"GET /jobs/{parent_id}" or (
            call == f"POST /jobs/{parent_id}/ack" and isinstance(body, dict) and "parts done" in body["info"]
        ), call
    assert fake.job(parent_id)["status"] == "complete"
    assert forwarder.topics == Counter({"job:ready": 8, "job:parts-completed": 1})
    assert forwarder.statuses == Counter({202: 9})
    assert stats.batch_failures == 0
    assert stats.dead_letters == 0
    assert pipe.queue.pending() == 0


def test_list_split_hands_each_part_its_own_input(fake: FakeFlatfile) -> None:
    """split() returning a list: each element is one part's partData, seen by run_part as part.data."""
    inputs = [
        {"sheet": "us_sh_a", "rows": [0, 500]},
        {"sheet": "us_sh_b", "rows": [500, 900]},
        {"sheet": "c"},
    ]
    seen: list[JobPart] = []
    invocations = Invocations()
    listener = parts_listener(fake.url, invocations, split=lambda event: inputs, seen=seen)
    pipe, _, parent_id = start(fake, listener)
    pipe.drain(workers=2)
    assert fake.calls(parent_id)[1] == (f"POST /jobs/{parent_id}/split", {"parts": inputs})
    assert [part["partData"] for part in fake.parts(parent_id)] == inputs
    assert sorted((part.index, dict(part.data)) for part in seen) == list(enumerate(inputs))
    assert {part.parent_id for part in seen} == {parent_id}
    assert fake.job(parent_id)["outcome"] == {"message": "3 parts complete"}


def test_a_failing_part_fails_itself_and_the_parent_names_it(fake: FakeFlatfile) -> None:
    """Part 2 raises: it fails with its message, the others complete, the parent fails naming part 2."""
    invocations = Invocations()
    listener = parts_listener(fake.url, invocations, failing=frozenset({2}))
    pipe, _, parent_id = start(fake, listener, parts=4)
    pipe.drain(workers=2)
    parts = fake.parts(parent_id)
    assert [part["status"] for part in parts] == ["complete", "complete", "failed", "complete"]
    assert parts[2]["outcome"] == {"acknowledge": True, "message": "Part 2 broke"}
    message = f"1 of 4 parts did not complete: part 2 ({parts[2]['id']}) failed: Part 2 broke"
    assert finishing_calls(fake, parent_id) == [
        (
            f"POST /jobs/{parent_id}/fail",
            {"info": message, "outcome": {"acknowledge": True, "message": message}},
        )
    ]


def test_a_custom_finish_gets_every_part_and_its_return_completes_the_parent(fake: FakeFlatfile) -> None:
    """finish(event, results) sees every part (failures included) and decides the parent's outcome."""
    received: list[PartResults] = []

    async def finish(event: FlatfileEvent, results: PartResults) -> dict[str, Any]:
        received.append(results)
        return {"outcome": {"message": f"{len(results.completed)} exported, {len(results.unsuccessful)} not"}}

    invocations = Invocations()
    listener = parts_listener(fake.url, invocations, failing=frozenset({0}), finish=finish)
    pipe, _, parent_id = start(fake, listener, parts=3)
    pipe.drain(workers=2)
    [results] = received
    assert [(part.index, part.status) for part in results.parts] == [
        (0, "failed"),
        (1, "complete"),
        (2, "complete"),
    ]
    assert results.parts[0].message == "Part 0 broke"
    assert fake.job(parent_id)["status"] == "complete"
    assert fake.job(parent_id)["outcome"] == {"message": "2 exported, 1 not"}


def test_split_raising_fails_the_parent_and_splits_nothing(fake: FakeFlatfile) -> None:
    """An exception in split() fails the parent with its message; no split request is made."""

    def split(event: FlatfileEvent) -> int:
        raise ValueError("No records to export")

    listener = parts_listener(fake.url, Invocations(), split=split)
    pipe, _, parent_id = start(fake, listener)
    pipe.drain()
    assert parent_calls(fake, parent_id) == [
        f"POST /jobs/{parent_id}/ack",
        f"POST /jobs/{parent_id}/fail",
    ]
    assert fake.job(parent_id)["outcome"]["message"] == "No records to export"
    assert fake.parts(parent_id) == []


@pytest.mark.parametrize("value", [0, True, "8", [], [1, 2], {"parts": 2}])
def test_split_returning_something_else_fails_the_parent_clearly(fake: FakeFlatfile, value: object) -> None:
    """split() must return a count or a list of dicts: anything else fails the parent saying so."""
    listener = parts_listener(fake.url, Invocations(), split=lambda event: value)
    pipe, _, parent_id = start(fake, listener)
    pipe.drain()
    job = fake.job(parent_id)
    assert job["status"] == "failed"
    assert job["outcome"]["message"].startswith("split() returned")
    assert fake.parts(parent_id) == []


def test_duplicate_part_deliveries_run_the_part_once(fake: FakeFlatfile) -> None:
    """A part's job:ready delivered again (same worker store, then a store that lost it) runs nothing more."""
    invocations = Invocations()
    listener = parts_listener(fake.url, invocations)
    pipe, _, parent_id = start(fake, listener, parts=3)
    pipe.drain()
    part_events = [
        event
        for event in fake.events.values()
        if event["topic"] == "job:ready" and event["payload"]["isPart"]
    ]
    assert len(part_events) == 3
    for event in part_events:
        assert pipe.deliver_event(event)["statusCode"] == 202
    pipe.drain()
    other = make_pipeline(fake, listener)  # a new idempotency store: only Flatfile's statuses guard now
    for event in part_events:
        other.deliver_event(event)
    other.drain()
    assert sorted(invocations.snapshot().values()) == [1, 1, 1]
    for part in fake.parts(parent_id):
        assert len(finishing_calls(fake, part["id"])) == 1
    assert len(finishing_calls(fake, parent_id)) == 1


def test_duplicate_parts_completed_finishes_the_parent_once(fake: FakeFlatfile) -> None:
    """parts-completed again (a redelivery, then a new event for the same parent): the parent is left alone."""
    listener = parts_listener(fake.url, Invocations())
    pipe, _, parent_id = start(fake, listener, parts=2)
    pipe.drain()
    [done] = [event for event in fake.events.values() if event["topic"] == "job:parts-completed"]
    assert pipe.deliver_event(done)["statusCode"] == 202
    again = {**done, "id": "us_evt_again001"}
    assert pipe.deliver_event(again)["statusCode"] == 202
    pipe.drain()
    other = make_pipeline(fake, listener)
    other.deliver_event(again)
    other.drain()
    assert finishing_calls(fake, parent_id) == [
        (f"POST /jobs/{parent_id}/complete", {"outcome": {"message": "2 parts complete"}})
    ]


def test_parts_completed_does_not_collide_with_the_parents_job_ready_record(fake: FakeFlatfile) -> None:
    """The worker keys parts-completed on topic + job id: the parent's own job:ready record does not answer it."""
    listener = parts_listener(fake.url, Invocations())
    pipe, _, parent_id = start(fake, listener, parts=1)
    pipe.drain()
    keys = {key for key in pipe.persistence._records}
    assert len(keys) == 3  # the parent's job:ready, the part's job:ready, the parent's parts-completed
    assert fake.job(parent_id)["status"] == "complete"


def test_a_redelivered_parent_is_not_split_twice(fake: FakeFlatfile) -> None:
    """The parent's job:ready again after its split (idempotency record lost): no second split."""
    invocations = Invocations()
    listener = parts_listener(fake.url, invocations)
    pipe = make_pipeline(fake, listener)
    Forwarder(pipe)
    event = fake.create_job_event(JOB, input={"parts": 2})
    pipe.deliver_event(event)
    record = pipe.queue.receive(timeout=0)
    assert record is not None
    pipe.run_record(record)  # the parent only: split, parts now queued
    pipe.queue.delete(record["receiptHandle"])
    other = make_pipeline(fake, listener)
    other.deliver_event(event)
    other.drain()
    parent_id = event["context"]["jobId"]
    assert [call for call in parent_calls(fake, parent_id) if call.endswith("/split")] == [
        f"POST /jobs/{parent_id}/split"
    ]
    assert len(fake.parts(parent_id)) == 2


def test_parts_of_a_canceled_parent_do_not_run(fake: FakeFlatfile) -> None:
    """The parent is canceled after its split: each part is canceled unrun, the parent is neither completed nor failed."""
    invocations = Invocations()
    listener = parts_listener(fake.url, invocations)
    pipe = make_pipeline(fake, listener)
    forwarder = Forwarder(pipe)
    event = fake.create_job_event(JOB, input={"parts": 4})
    pipe.deliver_event(event)
    parent_id = event["context"]["jobId"]
    record = pipe.queue.receive(timeout=0)
    assert record is not None
    pipe.run_record(record)
    pipe.queue.delete(record["receiptHandle"])
    fake.cancel_job(parent_id)
    pipe.drain(workers=2)
    assert invocations.snapshot() == {}
    for part in fake.parts(parent_id):
        assert part["status"] == "canceled"
        assert fake.calls(part["id"]) == [
            (f"POST /jobs/{part['id']}/ack", {"info": "Accepted", "progress": 0}),
            (f"POST /jobs/{part['id']}/cancel", {"info": "Parent job canceled"}),
        ]
    assert finishing_calls(fake, parent_id) == []
    assert fake.job(parent_id)["status"] == "canceled"
    assert forwarder.topics["job:parts-completed"] == 1


def test_pagination_reads_every_page_of_parts(fake: FakeFlatfile) -> None:
    """150 parts (two pages of 100): the finish reads both pages and sees every part."""
    received: list[PartResults] = []

    def finish(event: FlatfileEvent, results: PartResults) -> None:
        received.append(results)

    invocations = Invocations()
    listener = parts_listener(fake.url, invocations, finish=finish)
    pipe, _, parent_id = start(fake, listener, parts=150)
    stats = pipe.drain(workers=4)
    assert stats.dead_letters == 0
    [results] = received
    assert results.total == 150
    assert len(results.completed) == 150
    assert [part.index for part in results.parts] == list(range(150))
    pages = [
        request.query["pageNumber"]
        for request in fake.requests
        if request.path == "/jobs" and request.query.get("pageSize") == "100"
    ]
    assert "2" in pages
    assert "3" not in pages
    assert len(invocations.snapshot()) == 150
    assert fake.job(parent_id)["status"] == "complete"


@pytest.mark.slow
def test_chaos_on_every_endpoint_every_part_once_parent_once_nothing_lost(
    fake: FakeFlatfile, capsys: pytest.CaptureFixture[str]
) -> None:
    """Faults on every endpoint (resets before and after, 429/500/503): each part runs once, each parent ends once.

    4 parents of 6 parts; ``make chaos`` (``FLATFILE_JOBS_CHAOS_JOBS=1000``) runs 1,000 parts.
    """
    parents = max(4, int(os.environ.get("FLATFILE_JOBS_CHAOS_JOBS", "24")) // 6)
    invocations = Invocations()
    listener = parts_listener(fake.url, invocations, failing=frozenset({3}))
    pipe = make_pipeline(fake, listener)
    forwarder = Forwarder(pipe)
    events = [fake.create_job_event(JOB, input={"parts": 6}) for _ in range(parents)]
    faults = chaos_faults(fake)
    for event in events:
        assert response_json(pipe.deliver_event(event))["status"] == "accepted"
    started = time.monotonic()
    stats = pipe.drain(workers=4)
    seconds = time.monotonic() - started
    assert sum(fault.hits for fault in faults) > 0
    assert stats.dead_letters == 0
    assert pipe.queue.pending() == 0
    for event in events:
        parent_id = event["context"]["jobId"]
        parts = fake.parts(parent_id)
        assert len(parts) == 6
        assert [part["status"] for part in parts] == ["complete"] * 3 + ["failed"] + ["complete"] * 2
        for part in parts:
            assert invocations.count(part["id"]) == 1, part["id"]
        job = fake.job(parent_id)
        assert job["status"] == "failed"
        assert job["outcome"]["message"].startswith(
            f"1 of 6 parts did not complete: part 3 ({parts[3]['id']})"
        )
        # A finish that took effect is answered 200 at most once; any retry after a lost answer is refused.
        finished = [
            r for r in fake.requests if r.path.startswith(f"/jobs/{parent_id}/") and r.method == "POST"
        ]
        assert sum(1 for r in finished if r.path.endswith(("/complete", "/fail")) and r.status == 200) <= 1
    assert forwarder.topics == Counter({"job:ready": 6 * parents, "job:parts-completed": parents})
    requests = fake.requests
    with capsys.disabled():  # the figures for the closing note, shown even without -s
        print(
            f"\nparts chaos: {parents} parents × 6 parts in {seconds:.1f} s, {len(requests)} API requests, "
            f"{sum(r.fault for r in requests)} faulted, worker calls {stats.worker_calls}, "
            f"redelivered records {stats.batch_failures}, dead letters {stats.dead_letters}"
        )


def test_the_receiver_accepts_parts_completed_and_still_refuses_other_job_topics(fake: FakeFlatfile) -> None:
    """job:parts-completed is accepted (202, queued); job:completed for the same job is refused with 422."""
    pipe = make_pipeline(fake, parts_listener(fake.url, Invocations()))
    event = fake.create_job_event(JOB)
    done = {**event, "id": "us_evt_done0001", "topic": "job:parts-completed"}
    answer = pipe.deliver_event(done)
    assert answer["statusCode"] == 202
    assert response_json(answer)["jobId"] == event["context"]["jobId"]
    refused = pipe.deliver_event({**event, "id": "us_evt_other001", "topic": "job:completed"})
    assert refused["statusCode"] == 422
    assert "job:parts-completed" in response_json(refused)["message"]
    assert pipe.queue.pending() == 1
