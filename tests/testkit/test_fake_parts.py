"""The fake Flatfile API's multi-part jobs: split (count and list), GET /jobs?parentId= pages, emitted events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flatfile_jobs_testing import FakeFlatfile

TOKEN = "sk_test_fake"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeFlatfile]:
    with FakeFlatfile(token=TOKEN, seed=3) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeFlatfile) -> FakeFlatfile:
    server.reset()
    return server


@pytest.fixture
def client(server: FakeFlatfile) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"{server.url}/v1", headers=headers, timeout=5) as http:
        yield http


def parent(fake: FakeFlatfile) -> str:
    """A job:ready parent whose event context carries a workbook id; returns its job id."""
    event = fake.create_job_event("workbook:export", input={"parts": 3}, context={"workbookId": "us_wb_1"})
    return str(event["context"]["jobId"])


def subscribe(fake: FakeFlatfile) -> list[dict[str, Any]]:
    """Collect what the fake emits."""
    emitted: list[dict[str, Any]] = []
    fake.subscribe(emitted.append)
    return emitted


def test_count_split_creates_parts_and_emits_their_job_ready_before_answering(
    fake: FakeFlatfile, client: httpx.Client
) -> None:
    """{"parts": 3}: three ready parts (parentId, part, partData {part, total}), each announced with isPart."""
    parent_id = parent(fake)
    emitted = subscribe(fake)
    answer = client.post(f"/jobs/{parent_id}/split", json={"parts": 3})
    assert answer.status_code == 200
    assert answer.json()["data"]["id"] == parent_id
    parts = fake.parts(parent_id)
    assert [(p["parentId"], p["part"], p["partData"], p["status"]) for p in parts] == [
        (parent_id, i, {"part": i, "total": 3}, "ready") for i in range(3)
    ]
    assert {p["partExecution"] for p in parts} == {"parallel"}
    assert [e["context"]["jobId"] for e in emitted] == [p["id"] for p in parts]
    for event in emitted:
        assert event["topic"] == "job:ready"
        assert event["payload"]["job"] == "workbook:export"
        assert event["payload"]["isPart"] is True
        assert event["context"]["workbookId"] == "us_wb_1"
        assert event["id"] in fake.events


def test_list_split_makes_each_element_a_parts_data(fake: FakeFlatfile, client: httpx.Client) -> None:
    """{"parts": [objects]}: one part per element, partData the element."""
    parent_id = parent(fake)
    inputs = [{"sheet": "a"}, {"sheet": "b"}]
    assert client.post(f"/jobs/{parent_id}/split", json={"parts": inputs}).status_code == 200
    assert [p["partData"] for p in fake.parts(parent_id)] == inputs


@pytest.mark.parametrize(
    "body",
    [
        {"parts": 0},
        {"parts": True},
        {"parts": []},
        {"parts": [1]},
        {"parts": "3"},
        {},
        {"parts": 2, "runInParallel": 1},
    ],
)
def test_invalid_split_bodies_are_400(fake: FakeFlatfile, client: httpx.Client, body: dict[str, Any]) -> None:
    """A count under 1, an empty list, non-object elements or a non-boolean runInParallel are refused."""
    parent_id = parent(fake)
    assert client.post(f"/jobs/{parent_id}/split", json=body).status_code == 400
    assert fake.parts(parent_id) == []


def test_a_job_is_split_once_a_part_never_and_an_ended_job_not(
    fake: FakeFlatfile, client: httpx.Client
) -> None:
    """Splitting again, splitting a part, or splitting a finished job: 400 and nothing created."""
    parent_id = parent(fake)
    assert client.post(f"/jobs/{parent_id}/split", json={"parts": 2}).status_code == 200
    again = client.post(f"/jobs/{parent_id}/split", json={"parts": 2})
    assert (again.status_code, again.json()["errors"][0]["message"]) == (400, "Job is already split")
    part_id = fake.parts(parent_id)[0]["id"]
    assert client.post(f"/jobs/{part_id}/split", json={"parts": 2}).status_code == 400
    done = fake.add_job("workbook:export", status="complete")["id"]
    assert client.post(f"/jobs/{done}/split", json={"parts": 2}).status_code == 400
    assert len(fake.parts(parent_id)) == 2
    assert fake.parts(part_id) == fake.parts(done) == []


def test_list_jobs_by_parent_is_paginated(fake: FakeFlatfile, client: httpx.Client) -> None:
    """GET /jobs?parentId=&pageSize=2: pages of parts in order with pagination beside data."""
    parent_id = parent(fake)
    client.post(f"/jobs/{parent_id}/split", json={"parts": 5})
    other = parent(fake)
    client.post(f"/jobs/{other}/split", json={"parts": 1})
    pages = []
    for number in (1, 2, 3, 4):
        body = client.get("/jobs", params={"parentId": parent_id, "pageSize": 2, "pageNumber": number}).json()
        pages.append([job["part"] for job in body["data"]])
        assert body["pagination"] == {"currentPage": number, "pageCount": 3, "totalCount": 5}
    assert pages == [[0, 1], [2, 3], [4], []]
    assert (
        len(client.get("/jobs", params={"parentId": parent_id}).json()["data"]) == 5
    )  # 20 a page by default


def test_parts_completed_is_emitted_once_when_the_last_part_ends(
    fake: FakeFlatfile, client: httpx.Client
) -> None:
    """Complete, fail and cancel the three parts: one job:parts-completed, after the last, with the counts."""
    parent_id = parent(fake)
    client.post(f"/jobs/{parent_id}/ack", json={})
    client.post(f"/jobs/{parent_id}/split", json={"parts": 3})
    first, second, third = (p["id"] for p in fake.parts(parent_id))
    emitted = subscribe(fake)
    client.post(f"/jobs/{first}/complete", json={})
    client.post(f"/jobs/{second}/fail", json={"info": "broke"})
    assert emitted == []
    fake.cancel_job(third)
    [done] = emitted
    assert done["topic"] == "job:parts-completed"
    assert done["context"]["jobId"] == parent_id
    assert done["context"]["workbookId"] == "us_wb_1"
    assert done["payload"]["job"] == "workbook:export"
    assert done["payload"]["isPart"] is False
    assert done["payload"]["parts"] == {"total": 3, "completed": 1, "failed": 1, "canceled": 1}
    client.post(f"/jobs/{third}/cancel", json={})
    assert len(emitted) == 1


def test_sequential_parts_are_announced_one_after_another(fake: FakeFlatfile, client: httpx.Client) -> None:
    """runInParallel false: part 1 is scheduled until part 0 ends, then made ready and announced."""
    parent_id = parent(fake)
    emitted = subscribe(fake)
    client.post(f"/jobs/{parent_id}/split", json={"parts": 2, "runInParallel": False})
    first, second = fake.parts(parent_id)
    assert (first["status"], second["status"]) == ("ready", "scheduled")
    assert [e["context"]["jobId"] for e in emitted] == [first["id"]]
    client.post(f"/jobs/{first['id']}/complete", json={})
    assert fake.job(second["id"])["status"] == "ready"
    assert [e["context"]["jobId"] for e in emitted] == [first["id"], second["id"]]


def test_reset_drops_subscribers(fake: FakeFlatfile, client: httpx.Client) -> None:
    """After reset() nothing is delivered to the old subscribers."""
    emitted = subscribe(fake)
    fake.reset()
    parent_id = parent(fake)
    client.post(f"/jobs/{parent_id}/split", json={"parts": 1})
    assert emitted == []
