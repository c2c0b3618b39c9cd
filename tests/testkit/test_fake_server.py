"""The fake Flatfile API: endpoints, job transitions, event listing, auth, faults, concurrency."""

from __future__ import annotations

import http.client
import random
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from flatfile_jobs_testing import FakeFlatfile, Fault, RecordedRequest

TOKEN = "sk_test_fake"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
JOB_KEYS = {
    "id", "type", "operation", "source", "status", "progress", "info", "outcome", "input",
    "environmentId", "createdAt", "updatedAt", "startedAt", "finishedAt", "mode", "managed",
}  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[FakeFlatfile]:
    with FakeFlatfile(token=TOKEN, seed=0) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeFlatfile) -> FakeFlatfile:
    server.reset()
    server.canceled_ack = "ok"
    return server


@pytest.fixture(scope="module")
def shared_client(server: FakeFlatfile) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"{server.url}/v1", headers=headers, timeout=5) as http:
        yield http


@pytest.fixture
def client(fake: FakeFlatfile, shared_client: httpx.Client) -> httpx.Client:
    return shared_client


def ready_job(fake: FakeFlatfile, **kwargs: Any) -> str:
    return str(fake.add_job("workbook:submitAction", **kwargs)["id"])


# -- server basics --------------------------------------------------------------------------------------


def test_url_is_a_loopback_api_root(fake: FakeFlatfile) -> None:
    """The URL is http://127.0.0.1:PORT with no /v1 (the API lives under /v1)."""
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", fake.url)
    assert fake.token == TOKEN


@pytest.mark.parametrize("authorization", [None, "Bearer nope", TOKEN, f"Basic {TOKEN}"])
def test_a_missing_or_wrong_token_gets_401(fake: FakeFlatfile, authorization: str | None) -> None:
    """Any Authorization other than 'Bearer <token>' is answered 401 Unauthorized, state untouched."""
    job_id = ready_job(fake)
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.post(f"{fake.url}/v1/jobs/{job_id}/ack", json={}, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"errors": [{"message": "Unauthorized"}]}
    assert fake.jobs[job_id]["status"] == "ready"


def test_answers_are_json_with_content_length_over_one_kept_alive_connection(fake: FakeFlatfile) -> None:
    """Two requests share one TCP connection; each answer has a JSON type and an exact length."""
    job_id = ready_job(fake)
    conn = http.client.HTTPConnection("127.0.0.1", int(fake.url.rsplit(":", 1)[1]), timeout=5)
    try:
        ports = []
        for _ in range(2):
            conn.request("GET", f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {TOKEN}"})
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200
            assert response.getheader("Content-Type") == "application/json"
            assert int(response.getheader("Content-Length", "-1")) == len(body)
            assert conn.sock is not None
            ports.append(conn.sock.getsockname())
        assert ports[0] == ports[1]
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/nothing"), ("DELETE", "/v1/jobs/us_jb_x"), ("GET", "/jobs/us_jb_x"), ("PUT", "/v1/events")],
)
def test_unknown_routes_are_404_json(
    fake: FakeFlatfile, client: httpx.Client, method: str, path: str
) -> None:
    """Unknown paths, wrong methods and paths outside /v1 get a 404 with a JSON error."""
    response = client.request(method, f"{fake.url}{path}")
    assert response.status_code == 404
    assert response.json()["errors"][0]["message"]


def test_head_and_options_are_404_without_breaking_the_connection(client: httpx.Client) -> None:
    """HEAD gets headers only; OPTIONS a JSON 404; the kept-alive connection still works afterwards."""
    head = client.head("/jobs/x")
    assert (head.status_code, head.content) == (404, b"")
    assert client.options("/jobs/x").json()["errors"]
    assert client.get("/events").status_code == 200


def test_a_chunked_body_is_read_whole(fake: FakeFlatfile, client: httpx.Client) -> None:
    """A body sent with Transfer-Encoding: chunked is read and parsed like any other."""
    job_id = ready_job(fake)
    response = client.post(f"/jobs/{job_id}/ack", content=iter([b'{"progress"', b": 7}"]))
    assert response.json()["data"]["progress"] == 7
    assert fake.requests[-1].headers["transfer-encoding"] == "chunked"
    assert client.get(f"/jobs/{job_id}").status_code == 200


def test_close_ends_kept_alive_connections_and_the_port(client: httpx.Client) -> None:
    """After close(), neither a pooled connection nor a new one is answered; close() is idempotent."""
    fake = FakeFlatfile(token=TOKEN)
    url = f"{fake.url}/v1/jobs/x"
    assert client.get(url).status_code == 404
    fake.close()
    fake.close()
    with pytest.raises(httpx.TransportError):
        client.get(url)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)


def test_never_writes_to_stderr(
    fake: FakeFlatfile, client: httpx.Client, capfd: pytest.CaptureFixture[str]
) -> None:
    """No request log and no traceback, not even for a reset connection or a client that hangs up."""
    fake.add_fault(Fault(path="/jobs/*", reset=True, times=1))
    with pytest.raises(httpx.TransportError):
        client.get("/jobs/x")
    client.get("/jobs/x")
    fake.add_fault(Fault(path="/events", status=None, delay=0.2, times=1))
    with httpx.Client(timeout=0.05) as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.get(f"{fake.url}/v1/events")
    time.sleep(0.25)
    assert capfd.readouterr().err == ""


# -- jobs -----------------------------------------------------------------------------------------------


def test_add_job_has_the_api_shape_and_seeded_ids() -> None:
    """Jobs carry the API's fields; ids are us_jb_<8 hex> and the same for the same seed."""
    with FakeFlatfile(seed=7) as first, FakeFlatfile(seed=7) as second, FakeFlatfile(seed=8) as third:
        job = first.add_job("sheet:validate", source="us_sh_1", input={"a": 1})
        assert set(job) == JOB_KEYS
        assert re.fullmatch(r"us_jb_[0-9a-f]{8}", job["id"])
        assert (job["type"], job["operation"], job["source"]) == ("sheet", "validate", "us_sh_1")
        assert (job["status"], job["progress"], job["mode"], job["managed"]) == (
            "ready",
            0,
            "foreground",
            False,
        )
        assert job["input"] == {"a": 1}
        assert job["createdAt"] == job["updatedAt"]
        assert ISO_MS.match(job["createdAt"])
        assert second.add_job("sheet:validate")["id"] == job["id"]
        assert third.add_job("sheet:validate")["id"] != job["id"]


def test_add_job_rejects_a_bad_name_or_status(fake: FakeFlatfile) -> None:
    """A job name is domain:operation and a status is one of Flatfile's."""
    with pytest.raises(ValueError, match="domain"):
        fake.add_job("configure")
    with pytest.raises(ValueError, match="status"):
        fake.add_job(status="running")


def test_create_job_event_adds_a_ready_job_and_its_event(fake: FakeFlatfile) -> None:
    """create_job_event stores a job and a job:ready event pointing at it, with context merged in."""
    event = fake.create_job_event(
        "workbook:submitAction", environment_id="us_env_1", input={"x": 1}, context={"workbookId": "us_wb_1"}
    )
    job_id = event["context"]["jobId"]
    assert re.fullmatch(r"us_evt_[0-9a-f]{8}", event["id"])
    assert (event["topic"], event["payload"]["job"], event["payload"]["input"]) == (
        "job:ready",
        "workbook:submitAction",
        {"x": 1},
    )
    assert event["context"]["environmentId"] == "us_env_1"
    assert fake.events[event["id"]] == event
    job = fake.job(job_id)
    assert (job["status"], job["environmentId"], job["source"], job["input"]) == (
        "ready",
        "us_env_1",
        "us_wb_1",
        {"x": 1},
    )
    assert event["origin"] == {"id": job_id}


def test_create_job_event_takes_ids_and_status(fake: FakeFlatfile) -> None:
    """Given ids are used as they are, and the job gets the status asked for."""
    event = fake.create_job_event(job_id="us_jb_given", event_id="us_evt_given", status="executing")
    assert (event["id"], event["context"]["jobId"]) == ("us_evt_given", "us_jb_given")
    assert fake.jobs["us_jb_given"]["status"] == "executing"


def test_get_job_returns_it_and_unknown_is_404(fake: FakeFlatfile, client: httpx.Client) -> None:
    """GET /jobs/{id} wraps the job in data; an unknown id is 404."""
    job_id = ready_job(fake)
    assert client.get(f"/jobs/{job_id}").json() == {"data": fake.job(job_id)}
    response = client.get("/jobs/us_jb_missing")
    assert response.status_code == 404
    assert "errors" in response.json()


@pytest.mark.parametrize("action", ["ack", "complete", "fail", "cancel"])
def test_actions_on_an_unknown_job_are_404(client: httpx.Client, action: str) -> None:
    """Every job action on an unknown id is 404."""
    assert client.post(f"/jobs/us_jb_missing/{action}", json={}).status_code == 404


@pytest.mark.parametrize("status", ["ready", "executing"])
def test_ack_moves_a_job_to_executing(fake: FakeFlatfile, client: httpx.Client, status: str) -> None:
    """Ack sets executing, progress, info and estimatedCompletionAt; startedAt is set once only."""
    job_id = ready_job(fake, status=status)
    first = client.post(f"/jobs/{job_id}/ack", json={"info": "Accepted", "progress": 0}).json()["data"]
    assert (first["status"], first["progress"], first["info"]) == ("executing", 0, "Accepted")
    assert first["startedAt"] is not None
    later = client.post(f"/jobs/{job_id}/ack", json={"progress": 50, "estimatedCompletionAt": "2030-01-01"})
    data = later.json()["data"]
    assert (data["progress"], data["info"], data["estimatedCompletionAt"]) == (50, "Accepted", "2030-01-01")
    assert data["startedAt"] == first["startedAt"]
    assert data["updatedAt"] > first["updatedAt"]
    assert fake.jobs[job_id] == data


def test_a_completed_job_reads_progress_100_and_a_failed_one_keeps_its_progress(
    fake: FakeFlatfile, client: httpx.Client
) -> None:
    """Complete sets progress 100 (as Flatfile's API returns a complete job: flatfile-node's Job example);
    fail leaves the progress the job reached."""
    done, failed = ready_job(fake), ready_job(fake)
    for job_id in (done, failed):
        client.post(f"/jobs/{job_id}/ack", json={"info": "Working", "progress": 40})
    completed = client.post(f"/jobs/{done}/complete", json={"outcome": {"message": "ok"}}).json()["data"]
    assert (completed["status"], completed["progress"], completed["info"]) == ("complete", 100, "Working")
    failing = client.post(f"/jobs/{failed}/fail", json={"info": "bad"}).json()["data"]
    assert (failing["status"], failing["progress"]) == ("failed", 40)


def test_ack_with_no_body_is_accepted(fake: FakeFlatfile, client: httpx.Client) -> None:
    """An empty body is an empty object."""
    job_id = ready_job(fake)
    assert client.post(f"/jobs/{job_id}/ack").json()["data"]["status"] == "executing"


@pytest.mark.parametrize("status", ["complete", "failed"])
def test_ack_on_a_finished_job_is_400(fake: FakeFlatfile, client: httpx.Client, status: str) -> None:
    """A complete or failed job cannot be acked."""
    job_id = ready_job(fake, status=status)
    response = client.post(f"/jobs/{job_id}/ack", json={"progress": 1})
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": "Job is not executing"}]}
    assert fake.jobs[job_id]["progress"] == 0


@pytest.mark.parametrize("progress", [-1, 101, "5", 5.5, True, None])
def test_ack_rejects_a_progress_that_is_not_an_int_0_to_100(
    fake: FakeFlatfile, client: httpx.Client, progress: object
) -> None:
    """Progress is a whole number 0-100; anything else is 400 and changes nothing."""
    job_id = ready_job(fake)
    assert client.post(f"/jobs/{job_id}/ack", json={"progress": progress}).status_code == 400
    assert fake.jobs[job_id]["status"] == "ready"


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_400(
    fake: FakeFlatfile, client: httpx.Client, content: bytes
) -> None:
    """Bodies must be JSON objects; invalid JSON is recorded with body None and its raw bytes."""
    job_id = ready_job(fake)
    response = client.post(f"/jobs/{job_id}/complete", content=content)
    assert response.status_code == 400
    assert fake.jobs[job_id]["status"] == "ready"
    assert fake.requests[-1].raw == content


@pytest.mark.parametrize(("action", "status"), [("complete", "complete"), ("fail", "failed")])
@pytest.mark.parametrize("start", ["ready", "executing"])
def test_complete_and_fail_finish_a_job(
    fake: FakeFlatfile, client: httpx.Client, action: str, status: str, start: str
) -> None:
    """Complete/fail store outcome and info and set finishedAt."""
    job_id = ready_job(fake, status=start)
    body = {"outcome": {"acknowledge": True, "message": "m"}, "info": "m"}
    data = client.post(f"/jobs/{job_id}/{action}", json=body).json()["data"]
    assert (data["status"], data["outcome"], data["info"]) == (status, body["outcome"], "m")
    assert data["finishedAt"] is not None
    again = client.post(f"/jobs/{job_id}/{action}", json={})
    assert again.status_code == 400
    assert fake.jobs[job_id]["outcome"] == body["outcome"]


def test_complete_without_a_body_keeps_outcome_empty(fake: FakeFlatfile, client: httpx.Client) -> None:
    """Complete with no body finishes the job with no outcome."""
    job_id = ready_job(fake)
    data = client.post(f"/jobs/{job_id}/complete").json()["data"]
    assert (data["status"], data["outcome"]) == ("complete", None)


def test_cancel_endpoint(fake: FakeFlatfile, client: httpx.Client) -> None:
    """Cancel sets canceled with info; canceling again is a no-op; a finished job cannot be canceled."""
    job_id = ready_job(fake)
    data = client.post(f"/jobs/{job_id}/cancel", json={"info": "stop"}).json()["data"]
    assert (data["status"], data["info"]) == ("canceled", "stop")
    assert client.post(f"/jobs/{job_id}/cancel", json={"info": "x"}).json()["data"] == data
    done = ready_job(fake, status="complete")
    assert client.post(f"/jobs/{done}/cancel").status_code == 400


def test_patch_sets_known_fields_and_validates(fake: FakeFlatfile, client: httpx.Client) -> None:
    """PATCH sets status/progress/info/metadata, ignores unknown keys and rejects a bad status."""
    job_id = ready_job(fake)
    body = {"status": "executing", "progress": 30, "metadata": {"k": 1}, "bogus": 1}
    data = client.patch(f"/jobs/{job_id}", json=body).json()["data"]
    assert (data["status"], data["progress"], data["metadata"]) == ("executing", 30, {"k": 1})
    assert "bogus" not in data
    assert client.patch(f"/jobs/{job_id}", json={"status": "running"}).status_code == 400


@pytest.mark.parametrize("action", ["ack", "complete", "fail"])
def test_canceled_ack_ok_answers_200_and_leaves_the_job(
    fake: FakeFlatfile, client: httpx.Client, action: str
) -> None:
    """With canceled_ack='ok', actions on a canceled job answer 200 with the job still canceled."""
    job_id = ready_job(fake)
    canceled = fake.cancel_job(job_id)
    response = client.post(f"/jobs/{job_id}/{action}", json={"progress": 10, "info": "x"})
    assert response.status_code == 200
    assert response.json()["data"] == canceled == fake.job(job_id)


@pytest.mark.parametrize("action", ["ack", "complete", "fail"])
def test_canceled_ack_error_answers_409(fake: FakeFlatfile, client: httpx.Client, action: str) -> None:
    """With canceled_ack='error', actions on a canceled job answer 409 'Job has been canceled'."""
    fake.canceled_ack = "error"
    job_id = ready_job(fake)
    fake.cancel_job(job_id)
    response = client.post(f"/jobs/{job_id}/{action}", json={})
    assert response.status_code == 409
    assert response.json() == {"errors": [{"message": "Job has been canceled"}]}
    assert fake.jobs[job_id]["status"] == "canceled"


def test_canceled_ack_only_takes_ok_or_error(fake: FakeFlatfile) -> None:
    """Any other canceled_ack value is refused."""
    with pytest.raises(ValueError, match="canceled_ack"):
        fake.canceled_ack = "maybe"  # type: ignore[assignment]
    with pytest.raises(KeyError):
        fake.cancel_job("us_jb_missing")


# -- events ---------------------------------------------------------------------------------------------


def test_get_and_ack_event(fake: FakeFlatfile, client: httpx.Client) -> None:
    """GET /events/{id} returns the event; ack answers success and stamps acknowledgedAt once."""
    event = fake.create_job_event()
    assert client.get(f"/events/{event['id']}").json() == {"data": event}
    assert client.post(f"/events/{event['id']}/ack").json() == {"data": {"success": True}}
    stamped = fake.events[event["id"]]["acknowledgedAt"]
    assert ISO_MS.match(stamped)
    client.post(f"/events/{event['id']}/ack")
    assert fake.events[event["id"]]["acknowledgedAt"] == stamped
    assert client.get("/events/us_evt_missing").status_code == 404
    assert client.post("/events/us_evt_missing/ack").status_code == 404


def test_event_times_strictly_increase_with_millisecond_precision() -> None:
    """Generated createdAt values are ISO, ms, Z, strictly increasing, even after a later explicit one."""
    with FakeFlatfile() as fake:
        _check_event_times(fake)


def _check_event_times(fake: FakeFlatfile) -> None:
    stamps = [fake.create_job_event()["createdAt"] for _ in range(20)]
    assert all(ISO_MS.match(stamp) for stamp in stamps)
    assert stamps == sorted(set(stamps))
    fake.add_event({"topic": "x", "createdAt": "2099-01-01T00:00:00.000Z"})
    assert fake.add_event({"topic": "x"})["createdAt"] == "2099-01-01T00:00:00.001Z"
    with pytest.raises(ValueError):
        fake.add_event({"createdAt": "yesterday"})


def test_list_events_filters_on_environment_and_topic(fake: FakeFlatfile, client: httpx.Client) -> None:
    """environmentId and topic narrow the list; without them every unacknowledged event is listed."""
    mine = fake.create_job_event(environment_id="us_env_a")
    fake.create_job_event(environment_id="us_env_b")
    other = fake.add_event({"topic": "space:created", "context": {"environmentId": "us_env_a"}})
    listed = client.get("/events", params={"environmentId": "us_env_a", "topic": "job:ready"}).json()["data"]
    assert [e["id"] for e in listed] == [mine["id"]]
    assert [e["id"] for e in client.get("/events", params={"environmentId": "us_env_a"}).json()["data"]] == [
        mine["id"],
        other["id"],
    ]
    assert len(client.get("/events").json()["data"]) == 3


def test_list_events_since_is_inclusive_and_order_is_time_then_id(
    fake: FakeFlatfile, client: httpx.Client
) -> None:
    """since keeps createdAt >= since; equal times are ordered by id."""
    for event_id, created in [
        ("us_evt_c", "2026-01-01T00:00:02.000Z"),
        ("us_evt_b", "2026-01-01T00:00:01.000Z"),
        ("us_evt_a", "2026-01-01T00:00:01.000Z"),
        ("us_evt_0", "2026-01-01T00:00:00.999Z"),
    ]:
        fake.add_event({"id": event_id, "topic": "job:ready", "createdAt": created})
    data = client.get("/events", params={"since": "2026-01-01T00:00:01.000Z"}).json()["data"]
    assert [e["id"] for e in data] == ["us_evt_a", "us_evt_b", "us_evt_c"]
    data = client.get("/events", params={"since": "2026-01-01T00:00:01+00:00"}).json()["data"]
    assert len(data) == 3


def test_list_events_excludes_acknowledged_unless_asked(fake: FakeFlatfile, client: httpx.Client) -> None:
    """Acknowledged events are left out unless includeAcknowledged=true."""
    acked, kept = fake.create_job_event(), fake.create_job_event()
    client.post(f"/events/{acked['id']}/ack")
    assert [e["id"] for e in client.get("/events").json()["data"]] == [kept["id"]]
    everything = client.get("/events", params={"includeAcknowledged": "true"}).json()["data"]
    assert [e["id"] for e in everything] == [acked["id"], kept["id"]]


def test_list_events_paginates(fake: FakeFlatfile, client: httpx.Client) -> None:
    """pageSize and pageNumber (from 1) slice the sorted list; the default page size is 100."""
    ids = [fake.create_job_event()["id"] for _ in range(5)]
    pages = [
        [e["id"] for e in client.get("/events", params={"pageSize": 2, "pageNumber": n}).json()["data"]]
        for n in (1, 2, 3, 4)
    ]
    assert pages == [ids[0:2], ids[2:4], ids[4:5], []]
    for _ in range(100):
        fake.add_event({"topic": "job:ready"})
    assert len(client.get("/events").json()["data"]) == 100
    assert len(client.get("/events", params={"pageNumber": 2}).json()["data"]) == 5


@pytest.mark.parametrize(
    "params", [{"since": "yesterday"}, {"pageSize": "0"}, {"pageSize": "x"}, {"pageNumber": "-1"}]
)
def test_list_events_rejects_bad_parameters(client: httpx.Client, params: dict[str, str]) -> None:
    """A since that is not ISO, or a page number/size that is not a positive int, is 400."""
    assert client.get("/events", params=params).status_code == 400


# -- records, the request log, reset --------------------------------------------------------------------


def test_sheet_records(fake: FakeFlatfile, client: httpx.Client) -> None:
    """Records set for a sheet are served with counts; an unknown sheet has none."""
    records = [{"id": "us_rc_1", "values": {"name": {"value": "a"}}}, {"id": "us_rc_2", "values": {}}]
    fake.set_records("us_sh_1", records)
    assert client.get("/sheets/us_sh_1/records").json() == {
        "data": {"success": True, "records": records, "counts": {"total": 2, "valid": 2, "error": 0}}
    }
    empty = client.get("/sheets/us_sh_2/records").json()["data"]
    assert (empty["records"], empty["counts"]["total"]) == ([], 0)


def test_requests_are_recorded_in_full(fake: FakeFlatfile, client: httpx.Client) -> None:
    """Each request is recorded: method, path without /v1, query, lower-case headers, body, status."""
    job_id = ready_job(fake)
    before = time.monotonic()
    client.post(f"/jobs/{job_id}/ack", json={"progress": 5}, headers={"X-Disable-Hooks": "true"})
    client.get("/events", params={"topic": "job:ready"})
    ack, listing = fake.requests
    assert isinstance(ack, RecordedRequest)
    assert (ack.method, ack.path, ack.body, ack.status, ack.fault) == (
        "POST",
        f"/jobs/{job_id}/ack",
        {"progress": 5},
        200,
        False,
    )
    assert ack.raw == b'{"progress":5}'
    assert ack.headers["x-disable-hooks"] == "true"
    assert ack.headers["authorization"] == f"Bearer {TOKEN}"
    assert before <= ack.at <= listing.at
    assert (listing.path, listing.query, listing.body) == ("/events", {"topic": "job:ready"}, None)


def test_calls_lists_method_path_and_body_per_job(fake: FakeFlatfile, client: httpx.Client) -> None:
    """calls() gives ('METHOD /path', body) in order, optionally for one job only."""
    one, two = ready_job(fake), ready_job(fake)
    client.post(f"/jobs/{one}/ack", json={"info": "Accepted", "progress": 0})
    client.post(f"/jobs/{two}/ack", json={"progress": 0})
    client.post(f"/jobs/{one}/complete", json={"outcome": {"message": "Job complete"}})
    assert fake.calls(one) == [
        (f"POST /jobs/{one}/ack", {"info": "Accepted", "progress": 0}),
        (f"POST /jobs/{one}/complete", {"outcome": {"message": "Job complete"}}),
    ]
    assert len(fake.calls()) == 3
    assert fake.calls("us_jb_") == []


def test_reset_drops_everything(fake: FakeFlatfile, client: httpx.Client) -> None:
    """reset() empties jobs, events, records, requests and faults, and restarts seeded ids."""
    first = fake.create_job_event()
    fake.set_records("us_sh_1", [{"id": "r"}])
    fake.add_fault(Fault(path="/nothing"))
    client.get("/sheets/us_sh_1/records")
    fake.reset()
    assert (fake.jobs, fake.events, fake.requests) == ({}, {}, [])
    assert client.get("/sheets/us_sh_1/records").json()["data"]["records"] == []
    assert client.get("/nothing").status_code == 404
    assert fake.create_job_event()["id"] == first["id"]


# -- faults ---------------------------------------------------------------------------------------------


def test_status_fault_answers_it_with_retry_after_and_changes_nothing(
    fake: FakeFlatfile, client: httpx.Client
) -> None:
    """A status fault replaces the answer (with Retry-After when set) and leaves the job as it was."""
    job_id = ready_job(fake)
    fault = fake.add_fault(Fault(path="/jobs/*/ack", method="POST", status=429, retry_after=2))
    response = client.post(f"/jobs/{job_id}/ack", json={"progress": 1})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json() == {"errors": [{"message": "Injected fault"}]}
    assert fake.jobs[job_id]["status"] == "ready"
    assert fault.hits == 1
    assert client.get(f"/jobs/{job_id}").status_code == 200
    assert fake.requests[0].fault
    assert fake.requests[0].status == 429
    assert fake.calls(job_id) == [(f"GET /jobs/{job_id}", None)]
    assert fake.calls(job_id, include_faults=True)[0] == (f"POST /jobs/{job_id}/ack", {"progress": 1})


def test_retry_after_keeps_fractions_and_is_absent_when_unset(
    client: httpx.Client, fake: FakeFlatfile
) -> None:
    """Retry-After carries the seconds as given; no header without retry_after."""
    fake.add_fault(Fault(path="/events", retry_after=0.5, times=1))
    assert client.get("/events").headers["Retry-After"] == "0.5"
    fake.add_fault(Fault(path="/events", status=500, times=1))
    response = client.get("/events")
    assert response.status_code == 500
    assert "Retry-After" not in response.headers


def test_delay_fault_slows_the_answer(fake: FakeFlatfile, client: httpx.Client) -> None:
    """delay sleeps before answering; with status=None the real answer follows and is not a fault."""
    job_id = ready_job(fake)
    fake.add_fault(Fault(path="/jobs/*", status=None, delay=0.15, times=1))
    started = time.monotonic()
    response = client.get(f"/jobs/{job_id}")
    assert time.monotonic() - started >= 0.15
    assert response.status_code == 200
    assert not fake.requests[0].fault
    fake.add_fault(Fault(status=503, delay=0.1, times=1))
    started = time.monotonic()
    assert client.get(f"/jobs/{job_id}").status_code == 503
    assert time.monotonic() - started >= 0.1


def test_reset_fault_breaks_the_connection_and_changes_nothing(
    fake: FakeFlatfile, client: httpx.Client
) -> None:
    """reset=True closes the socket with a TCP reset; httpx raises a read error; the next call works."""
    job_id = ready_job(fake)
    fake.add_fault(Fault(path="/jobs/*/complete", reset=True, times=1))
    with pytest.raises(httpx.ReadError):
        client.post(f"/jobs/{job_id}/complete", json={})
    assert fake.jobs[job_id]["status"] == "ready"
    recorded = fake.requests[0]
    assert (recorded.status, recorded.fault) == (0, True)
    assert client.post(f"/jobs/{job_id}/complete", json={}).json()["data"]["status"] == "complete"


def test_after_fault_changes_state_but_loses_the_answer(fake: FakeFlatfile, client: httpx.Client) -> None:
    """after=True processes the request, then sends the fault: the job is complete, the client saw 503."""
    job_id = ready_job(fake)
    fake.add_fault(Fault(path="/jobs/*/complete", after=True, times=1))
    assert client.post(f"/jobs/{job_id}/complete", json={"info": "done"}).status_code == 503
    assert fake.jobs[job_id]["status"] == "complete"
    assert client.post(f"/jobs/{job_id}/complete", json={}).status_code == 400


@pytest.mark.parametrize("after", [False, True])
def test_body_fault_answers_its_status_with_those_bytes(
    fake: FakeFlatfile, client: httpx.Client, after: bool
) -> None:
    """body= answers the status with exactly those bytes; with after=True the request took effect first."""
    job_id = ready_job(fake)
    fake.add_fault(Fault(path="/jobs/*/complete", status=200, body=b"<html>OK</html>", after=after, times=1))
    response = client.post(f"/jobs/{job_id}/complete", json={})
    assert (response.status_code, response.content) == (200, b"<html>OK</html>")
    assert fake.jobs[job_id]["status"] == ("complete" if after else "ready")
    assert fake.requests[-1].fault is True


def test_the_raw_request_target_is_recorded(fake: FakeFlatfile) -> None:
    """target keeps /v1, the query and percent-escapes as sent; path is decoded of neither."""
    httpx.get(f"{fake.url}/v1/jobs/a%2F..%2Fb?x=1", headers={"Authorization": f"Bearer {TOKEN}"})
    httpx.post(f"{fake.url}/outside/v1", headers={"Authorization": f"Bearer {TOKEN}"})
    inside, outside = fake.requests
    assert (inside.target, inside.path, inside.query) == (
        "/v1/jobs/a%2F..%2Fb?x=1",
        "/jobs/a%2F..%2Fb",
        {"x": "1"},
    )
    assert (outside.target, outside.path) == ("/outside/v1", "/outside/v1")


def test_after_reset_fault_changes_state_and_resets(fake: FakeFlatfile, client: httpx.Client) -> None:
    """after=True with reset: the ack happened, the client gets a connection error."""
    job_id = ready_job(fake)
    fake.add_fault(Fault(path="/jobs/*/ack", reset=True, after=True, times=1))
    with pytest.raises(httpx.ReadError):
        client.post(f"/jobs/{job_id}/ack", json={"progress": 3})
    assert fake.jobs[job_id]["progress"] == 3


def test_times_limits_a_fault_then_later_faults_apply(fake: FakeFlatfile, client: httpx.Client) -> None:
    """A fault with times=2 hits twice; then the next matching fault applies; clear_faults removes all."""
    first = fake.add_fault(Fault(path="/events", status=502, times=2))
    second = fake.add_fault(Fault(path="/events", status=504, times=1))
    statuses = [client.get("/events").status_code for _ in range(4)]
    assert statuses == [502, 502, 504, 200]
    assert (first.hits, second.hits) == (2, 1)
    fake.add_fault(Fault())
    fake.clear_faults()
    assert client.get("/events").status_code == 200


def test_method_and_path_globs_select_requests(fake: FakeFlatfile, client: httpx.Client) -> None:
    """Only requests whose method and path match the globs are faulted."""
    job_id = ready_job(fake)
    fake.add_fault(Fault(path="/jobs/*", method="POST"))
    assert client.get(f"/jobs/{job_id}").status_code == 200
    assert client.post(f"/jobs/{job_id}/ack", json={}).status_code == 503
    assert client.get("/events").status_code == 200


def test_rate_with_a_seed_gives_a_stable_count(client: httpx.Client) -> None:
    """rate draws from random.Random(seed): the same seed faults the same requests."""
    expected_rng = random.Random(3)
    expected = [expected_rng.random() < 0.3 for _ in range(60)]
    with FakeFlatfile(token=TOKEN, seed=3) as fake:
        fake.add_fault(Fault(path="/events", rate=0.3))
        faulted = [client.get(f"{fake.url}/v1/events").status_code == 503 for _ in range(60)]
    assert faulted == expected
    assert 5 < sum(faulted) < 35


def test_rate_zero_never_faults(fake: FakeFlatfile, client: httpx.Client) -> None:
    """rate=0 never applies."""
    fault = fake.add_fault(Fault(rate=0.0))
    assert all(client.get("/events").status_code == 200 for _ in range(5))
    assert fault.hits == 0


@pytest.mark.parametrize(
    "kwargs", [{"rate": 1.5}, {"rate": -0.1}, {"times": -1}, {"delay": -1.0}, {"status": 42}]
)
def test_fault_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    """Rates outside 0-1, negative times or delay, and non-HTTP statuses are refused."""
    with pytest.raises(ValueError):
        Fault(**kwargs)


# -- concurrency ----------------------------------------------------------------------------------------


def test_many_threads_at_once(fake: FakeFlatfile) -> None:
    """16 threads x 25 requests on 16 connections: every one answered and recorded, last progress kept."""
    job_ids = [ready_job(fake) for _ in range(16)]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=16)
    with httpx.Client(base_url=f"{fake.url}/v1", headers=headers, timeout=10, limits=limits) as http:

        def work(job_id: str) -> list[int]:
            return [http.post(f"/jobs/{job_id}/ack", json={"progress": n * 4}).status_code for n in range(25)]

        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(work, job_ids))
    assert all(status == 200 for statuses in results for status in statuses)
    assert len(fake.requests) == 16 * 25
    assert all(fake.jobs[job_id]["progress"] == 96 for job_id in job_ids)
    assert all(len(fake.calls(job_id)) == 25 for job_id in job_ids)


def test_one_shared_client_across_threads_with_faults(fake: FakeFlatfile, client: httpx.Client) -> None:
    """A shared pooled client and a times-limited fault under contention: exactly `times` hits."""
    fault = fake.add_fault(Fault(path="/events", status=503, times=10))
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: client.get("/events").status_code, range(80)))
    assert statuses.count(503) == 10 == fault.hits
    assert statuses.count(200) == 70
    assert sum(1 for request in fake.requests if request.fault) == 10
