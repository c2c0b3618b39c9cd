"""multipart_job_handler and its pieces: the split body, the part results, reading every page, a lost split answer."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from flatfile_jobs import FlatfileListener, PartResult, PartResults, multipart_job_handler
from flatfile_jobs._api import FlatfileClient
from flatfile_jobs._config import ApiSettings
from flatfile_jobs._part_results import read_parts, split_body
from flatfile_jobs_testing import FakeFlatfile, Fault


def part(index: int, status: str = "complete", message: str | None = None) -> PartResult:
    return PartResult(job_id=f"us_jb_{index}", index=index, status=status, data={}, message=message)


@pytest.mark.parametrize(
    ("value", "parallel", "body"),
    [
        (8, None, {"parts": 8}),
        (1, False, {"parts": 1, "runInParallel": False}),
        ([{"a": 1}, {"b": 2}], True, {"parts": [{"a": 1}, {"b": 2}], "runInParallel": True}),
        (({"a": 1},), None, {"parts": [{"a": 1}]}),
    ],
)
def test_split_body_takes_a_count_or_a_list_of_dicts(value: object, parallel: bool | None, body: Any) -> None:
    """A count or a sequence of mappings becomes the /split body; runInParallel only when given."""
    assert split_body(value, parallel) == body


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (0, "a part count is 1 to 10000"),
        (10_001, "a part count is 1 to 10000"),
        (True, "returned bool"),
        ("8", "returned str"),
        ([], "returned 0 part inputs"),
        ([{"a": 1}, 2], "not all objects"),
        (None, "returned NoneType"),
    ],
)
def test_split_body_refuses_anything_else_naming_it(value: object, says: str) -> None:
    """Bools, strings, empty lists, non-dict elements and out-of-range counts are refused with a reason."""
    with pytest.raises(ValueError, match=says):
        split_body(value, None)


def test_summary_of_complete_parts_names_the_count() -> None:
    """Every part complete: ok, and the summary is the default outcome message."""
    results = PartResults("us_jb_p", tuple(part(i) for i in range(8)))
    assert results.ok
    assert results.summary == "8 parts complete"
    assert PartResults("us_jb_p", (part(0),)).summary == "1 part complete"


def test_summary_names_the_parts_that_did_not_complete() -> None:
    """Failed and canceled parts are named (first five) with their messages; the rest counted."""
    parts = [part(0), part(1, "failed", "Row 12 is bad"), part(2, "canceled")]
    parts += [part(i, "failed") for i in range(3, 9)]
    results = PartResults("us_jb_p", tuple(parts))
    assert not results.ok
    assert results.summary == (
        "8 of 9 parts did not complete: part 1 (us_jb_1) failed: Row 12 is bad; part 2 (us_jb_2) canceled; "
        "part 3 (us_jb_3) failed; part 4 (us_jb_4) failed; part 5 (us_jb_5) failed; and 3 more"
    )


def test_no_parts_is_not_ok() -> None:
    """A parent with no parts found cannot be completed as if they had all succeeded."""
    results = PartResults("us_jb_p", ())
    assert not results.ok
    assert results.summary == "No parts found for job us_jb_p"


def test_part_result_reads_a_job() -> None:
    """outcome.message is preferred over info; partData and part are read; odd types are dropped."""
    job = {"id": "us_jb_1", "part": 3, "partData": {"rows": 10}, "status": "failed", "info": "x"}
    assert PartResult.of({**job, "outcome": {"message": "bad"}}) == PartResult(
        "us_jb_1", 3, "failed", {"rows": 10}, "bad"
    )
    assert PartResult.of(job).message == "x"
    assert PartResult.of({"id": "us_jb_2", "part": True, "partData": [1]}) == PartResult(
        "us_jb_2", None, "", {}, None
    )


def split_in_fake(fake: FakeFlatfile, parts: int) -> str:
    parent_id = str(fake.add_job("workbook:export", status="executing")["id"])
    headers = {"Authorization": f"Bearer {fake.token}"}
    answer = httpx.post(f"{fake.url}/v1/jobs/{parent_id}/split", json={"parts": parts}, headers=headers)
    assert answer.is_success
    return parent_id


def client_of(fake: FakeFlatfile) -> FlatfileClient:
    return FlatfileClient(ApiSettings.resolve(api_url=fake.url, token=fake.token, retry_budget=5.0))


def test_read_parts_reads_every_page_and_only_this_parents_parts(fake: FakeFlatfile) -> None:
    """250 parts: pages 1–3 of 100 are read (pagination.pageCount says when to stop); another parent's are not mixed in."""
    parent_id = split_in_fake(fake, 250)
    split_in_fake(fake, 3)

    async def read() -> PartResults:
        client = client_of(fake)
        try:
            return await read_parts(client, parent_id)
        finally:
            await client.aclose()

    results = asyncio.run(read())
    assert [p.index for p in results.parts] == list(range(250))
    assert {p.status for p in results.parts} == {"ready"}
    pages = [r.query["pageNumber"] for r in fake.requests if r.path == "/jobs"]
    assert pages == ["1", "2", "3"]


def test_a_lost_split_answer_does_not_split_twice(fake: FakeFlatfile) -> None:
    """The split happened but its answer was lost (connection reset): the parts are found, no second split."""
    fake.add_fault(Fault(path="/jobs/*/split", status=None, reset=True, after=True, times=1))
    event = fake.create_job_event("workbook:export", input={})
    listener = FlatfileListener().use(
        multipart_job_handler(
            "workbook:export",
            split=lambda event: 4,
            run_part=lambda part, tick: None,
            api_url=fake.url,
            token=fake.token,
        )
    )
    [result] = listener.dispatch(event)
    parent_id = event["context"]["jobId"]
    assert result.status == "split"
    splits = [r for r in fake.requests if r.path == f"/jobs/{parent_id}/split"]
    assert [r.fault for r in splits] == [True]
    assert len(fake.parts(parent_id)) == 4


def test_a_refused_split_is_retried_until_it_takes(fake: FakeFlatfile) -> None:
    """Two 503s before the split takes effect: three attempts, one set of parts."""
    fake.add_fault(Fault(path="/jobs/*/split", status=503, times=2))
    event = fake.create_job_event("workbook:export", input={})
    listener = FlatfileListener().use(
        multipart_job_handler(
            "workbook:export",
            split=lambda event: [{"x": 1}, {"x": 2}],
            run_part=lambda part, tick: None,
            api_url=fake.url,
            token=fake.token,
        )
    )
    [result] = listener.dispatch(event)
    parent_id = event["context"]["jobId"]
    assert result.status == "split"
    assert len([r for r in fake.requests if r.path == f"/jobs/{parent_id}/split"]) == 3
    assert [p["partData"] for p in fake.parts(parent_id)] == [{"x": 1}, {"x": 2}]
    assert fake.job(parent_id)["status"] == "executing"


def test_registration_checks_its_arguments() -> None:
    """split and run_part must be callable, finish callable when given, tick_interval not negative."""
    with pytest.raises(TypeError, match="split"):
        multipart_job_handler("a:b", split=3, run_part=lambda part, tick: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="run_part"):
        multipart_job_handler("a:b", split=lambda event: 2, run_part=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="finish"):
        multipart_job_handler("a:b", split=lambda e: 2, run_part=lambda p, t: None, finish="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tick_interval"):
        multipart_job_handler("a:b", split=lambda e: 2, run_part=lambda p, t: None, tick_interval=-1)


def test_one_registration_routes_parents_parts_and_parts_completed() -> None:
    """The plugin listens to job:ready (parents and parts) and job:parts-completed for its job only."""
    listener = FlatfileListener().use(
        multipart_job_handler("workbook:export", split=lambda e: 2, run_part=lambda p, t: None)
    )
    for topic in ("job:ready", "job:parts-completed"):
        assert listener.matches({"topic": topic, "payload": {"job": "workbook:export", "isPart": False}})
    assert listener.matches({"topic": "job:ready", "payload": {"job": "workbook:export", "isPart": True}})
    assert not listener.matches({"topic": "job:parts-completed", "payload": {"job": "workbook:submit"}})
    assert not listener.matches({"topic": "job:completed", "payload": {"job": "workbook:export"}})


def test_a_split_that_outlives_the_deadline_fails_the_parent_as_timed_out(fake: FakeFlatfile) -> None:
    """split() still running at the worker's deadline: the parent is failed 'Job timed out', nothing is split."""

    async def slow_split(event: Any) -> int:
        await asyncio.sleep(5)
        return 2

    event = fake.create_job_event("workbook:export", input={})
    listener = FlatfileListener().use(
        multipart_job_handler(
            "workbook:export",
            split=slow_split,
            run_part=lambda part, tick: None,
            api_url=fake.url,
            token=fake.token,
        )
    )
    [result] = listener.dispatch(event, timeout=0.3)
    parent_id = event["context"]["jobId"]
    assert result.status == "timed_out"
    assert fake.job(parent_id)["status"] == "failed"
    assert fake.job(parent_id)["outcome"]["message"] == "Job timed out after 0 s"
    assert fake.parts(parent_id) == []
