"""Fuzzing the worker with hostile ids (hypothesis): every request it makes is one it is meant to make.

Events with job ids, event ids and sheet ids drawn from a hostile alphabet (``/ . ? # % \\``, spaces,
controls, any non-surrogate Unicode, dot segments, percent escapes) go straight onto the queue, as a message
sent by hand would (the receiver would refuse them), and through the worker's ``lambda_handler`` against the
fake Flatfile API. Whatever the worker does with them (run, fail, refuse, raise), each request the fake
receives is ``/v1/jobs/<the event's job id, encoded>[/ack|/complete|/fail]`` or, for ``data:validate`` with a
Flatfile-shaped sheet id, ``GET /v1/sheets/<that id>/records``. ``FLATFILE_JOBS_FUZZ_EXAMPLES`` sets the
number of examples.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flatfile_app_jobs import listener as sample_listener
from flatfile_jobs_testing import FakeFlatfile, job_ready_event
from flatfile_stack.queues import Delivery

from ._pipeline import API_TOKEN, isolated_stack, make_pipeline

EXAMPLES = int(os.environ.get("FLATFILE_JOBS_FUZZ_EXAMPLES", "200")) // 2
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FLATFILE_ID = re.compile(r"[A-Za-z0-9_]{1,128}")
# A percent-encoded path segment as the client writes it: unreserved characters and %XX escapes only.
SEGMENT = r"(?:[A-Za-z0-9\-._~]|%[0-9A-F]{2})+"
JOB_CALL = re.compile(rf"/v1/jobs/(?P<id>{SEGMENT})(?P<action>/ack|/complete|/fail)?")
SHEET_RECORDS = re.compile(r"/v1/sheets/(?P<id>[A-Za-z0-9_]{1,128})/records")
SAMPLE_JOBS = ["space:configure", "workbook:submit", "file:process", "data:validate"]
# The table, dot segments, escapes that decode to them, and ids that only look like Flatfile's.
TABLE = [
    "../../events",
    "x/../../spaces/us_sp_1#",
    "../sheets/us_sh_1?a=",
    "us_jb_1/complete",
    "",
    ".",
    "..",
    "%2e%2e",
    "%2F",
    "us_jb_1%2F..%2F",
    "us_jb_1?x=1",
    "us_jb_1#frag",
    "us_jb_1\\..\\x",
    "us_jb_\u2215x",  # DIVISION SLASH
    "us_jb_\uff0f",  # FULLWIDTH SOLIDUS
    " us_jb_1",
    "us_jb_1\r\nX-Injected: 1",
]
HOSTILE_CHARS = st.sampled_from([*"/.?#%\\ \t\r\n:@&=+;", "\u00e9", "\u4e2d", "\u202e", "\u0000"])
ANY_CHAR = st.characters(exclude_categories=["Cs"])  # no lone surrogates: SQS cannot carry them
HOSTILE_IDS = st.one_of(
    st.sampled_from(TABLE),
    st.text(HOSTILE_CHARS | ANY_CHAR | st.sampled_from(list("us_jb1")), max_size=24),
    st.builds(
        lambda head, tail: head + tail,
        st.sampled_from(["us_jb_", "../", "us_sh_1/"]),
        st.text(HOSTILE_CHARS, max_size=6),
    ),
    st.from_regex(FLATFILE_ID, fullmatch=True),
)


@pytest.fixture
def fake() -> Iterator[FakeFlatfile]:
    with FakeFlatfile(token=API_TOKEN, seed=9) as server:
        yield server


@st.composite
def hostile_events(draw: st.DrawFn) -> dict[str, Any]:
    """A job:ready event for a sample job whose event id, job id and sheet id may each be hostile."""
    event = job_ready_event(draw(st.sampled_from(SAMPLE_JOBS)), job_id="us_jb_placeholder")
    event["id"] = draw(HOSTILE_IDS)
    event["context"]["jobId"] = draw(HOSTILE_IDS)
    sheet = draw(st.one_of(st.none(), HOSTILE_IDS))
    if sheet is not None:
        event["context"]["sheetId"] = sheet
    return event


def check_requests(fake: FakeFlatfile, event: dict[str, Any]) -> None:
    """Every request is about this event's job, or reads this event's (Flatfile-shaped) sheet."""
    for request in fake.requests:
        target = request.target
        job_call = JOB_CALL.fullmatch(target)
        sheet_call = SHEET_RECORDS.fullmatch(target)
        if job_call is not None:
            assert unquote(job_call["id"]) == str(event["context"]["jobId"]), target
            assert unquote(job_call["id"]) not in ("", ".", ".."), target
            assert request.method == ("POST" if job_call["action"] else "GET"), target
        else:
            assert sheet_call is not None, f"unexpected request {request.method} {target!r}"
            assert event["payload"]["job"] == "data:validate", target
            assert sheet_call["id"] == event["context"].get("sheetId"), target
            assert request.method == "GET", target


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
@FUZZ
@given(event=hostile_events(), job_exists=st.booleans(), records=st.booleans())
def test_every_request_the_worker_makes_is_one_it_is_meant_to_make(
    fake: FakeFlatfile,
    monkeypatch: pytest.MonkeyPatch,
    event: dict[str, Any],
    job_exists: bool,
    records: bool,
) -> None:
    """Hostile ids through the worker: requests only hit /v1/jobs/<encoded job id>[/ack|/complete|/fail]
    or GET /v1/sheets/<Flatfile sheet id>/records, never another path, query or fragment."""
    fake.reset()
    monkeypatch.setenv("FLATFILE_API_URL", fake.url)
    job_id = event["context"]["jobId"]
    if job_exists and FLATFILE_ID.fullmatch(job_id):
        fake.add_job(event["payload"]["job"], job_id=job_id)  # the lifecycle gets past ack and runs the job
    sheet_id = event["context"].get("sheetId")
    if records and isinstance(sheet_id, str) and FLATFILE_ID.fullmatch(sheet_id):
        fake.set_records(sheet_id, [{"id": "us_rc_1", "values": {}}])
    with isolated_stack():
        pipe = make_pipeline(fake, sample_listener)
        body = json.dumps(event, separators=(",", ":"))
        pipe.queue.send(Delivery(event=event, body=body, delivery_id="msg_fuzz"))
        record = pipe.queue.receive(timeout=0)
        assert record is not None
        answer = pipe.run_record(record, remaining=60.0)
    check_requests(fake, event)
    if job_exists and FLATFILE_ID.fullmatch(job_id):
        # A real job: the worker ran it to an end (a hostile sheet id fails it), the record is done.
        assert answer == {"batchItemFailures": []}
        assert fake.requests[0].target == f"/v1/jobs/{job_id}/ack"
        assert fake.job(job_id)["status"] in ("complete", "failed")
    else:
        # No such job (or an id no job can have): the record fails, to be retried and dead-lettered.
        assert answer == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
