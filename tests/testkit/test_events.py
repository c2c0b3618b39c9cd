"""Event builders and the test kit's public surface."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import flatfile_jobs_testing
from flatfile_jobs_testing import forwarded_event, job_ready_event


def test_public_surface_is_exactly_these_names() -> None:
    """__all__ is sorted and holds the kit's public names: the fake, event builders, local Lambda helpers."""
    expected = [
        "FakeFlatfile",
        "Fault",
        "LocalContext",
        "RecordedRequest",
        "forwarded_event",
        "http_api_event",
        "job_ready_event",
        "load_function",
        "request_body",
        "resign",
        "signed_headers",
        "sqs_event",
        "sqs_record",
        "webhook_request",
    ]
    assert flatfile_jobs_testing.__all__ == expected
    assert all(hasattr(flatfile_jobs_testing, name) for name in expected)


def test_importing_the_kit_starts_nothing_and_pulls_no_third_party_module() -> None:
    """Import is cheap: no httpx, no thread, only the standard library."""
    root = str(Path(flatfile_jobs_testing.__file__).parents[2])
    code = (
        "import sys, threading, flatfile_jobs_testing as t; "
        "assert 'httpx' not in sys.modules and 'aws_lambda_powertools' not in sys.modules; "
        "assert threading.active_count() == 1"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=30)


def test_job_ready_event_has_the_stored_event_shape() -> None:
    """With ids and time given, the event is exactly the API's job:ready shape (as `GET /events/{eventId}` returns it)."""
    event = job_ready_event(
        "workbook:submitAction",
        job_id="us_jb_1",
        event_id="us_evt_1",
        environment_id="us_env_1",
        space_id="us_sp_1",
        account_id="us_acc_1",
        workbook_id="us_wb_1",
        created_at="2026-11-29T15:00:00.123Z",
    )
    assert event == {
        "id": "us_evt_1",
        "topic": "job:ready",
        "domain": "job",
        "createdAt": "2026-11-29T15:00:00.123Z",
        "context": {
            "accountId": "us_acc_1",
            "environmentId": "us_env_1",
            "spaceId": "us_sp_1",
            "workbookId": "us_wb_1",
            "jobId": "us_jb_1",
            "actorId": "us_usr_test",
        },
        "payload": {
            "job": "workbook:submitAction",
            "domain": "workbook",
            "operation": "submitAction",
            "status": "ready",
            "info": None,
            "isPart": False,
            "input": {},
        },
        "callbackUrl": "",
        "dataUrl": "",
        "namespaces": [],
        "origin": {"id": "us_jb_1"},
        "target": "",
    }


def test_job_ready_event_defaults() -> None:
    """Defaults: space:configure, test ids, random us_jb_/us_evt_ ids, now as ISO ms Z, no workbook/sheet."""
    first, second = job_ready_event(), job_ready_event()
    assert first["payload"]["job"] == "space:configure"
    assert re.fullmatch(r"us_jb_[0-9a-f]{8}", first["context"]["jobId"])
    assert re.fullmatch(r"us_evt_[0-9a-f]{8}", first["id"])
    assert first["id"] != second["id"]
    assert first["context"]["jobId"] != second["context"]["jobId"]
    assert first["origin"] == {"id": first["context"]["jobId"]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["createdAt"])
    assert first["context"]["environmentId"] == "us_env_test"
    assert first["context"]["spaceId"] == "us_sp_test"
    assert first["context"]["accountId"] == "us_acc_test"
    assert "workbookId" not in first["context"]
    assert "sheetId" not in first["context"]


def test_job_ready_event_options() -> None:
    """sheet_id, is_part and input land where the API puts them; actor_id=None leaves actorId out."""
    data = {"rows": [1, 2]}
    event = job_ready_event("sheet:validate", sheet_id="us_sh_1", is_part=True, input=data, actor_id=None)
    assert event["context"]["sheetId"] == "us_sh_1"
    assert "actorId" not in event["context"]
    assert (event["payload"]["isPart"], event["payload"]["input"]) == (True, data)
    event["payload"]["input"]["rows"].append(3)
    assert data == {"rows": [1, 2]}


@pytest.mark.parametrize("job", ["configure", ":configure", "space:", ""])
def test_job_ready_event_needs_domain_and_operation(job: str) -> None:
    """A job name without both parts is refused."""
    with pytest.raises(ValueError, match="domain"):
        job_ready_event(job)


def test_forwarded_event_wraps_like_the_webhook_forwarder() -> None:
    """The raw event under src, its top-level keys copied beside it, and the agent token as _accessToken."""
    event = job_ready_event(job_id="us_jb_1", event_id="us_evt_1")
    body = forwarded_event(event, access_token="sk_secret")
    assert body["src"] == event
    assert {key: body[key] for key in event} == event
    assert set(body) == {*event, "src", "_accessToken"}
    assert body["_accessToken"] == "sk_secret"
    assert next(iter(body)) == "src"


def test_forwarded_event_copies_deeply_and_has_a_default_token() -> None:
    """Changing the forwarded body leaves the event alone; the default token is sk_agent_token."""
    event = job_ready_event()
    body = forwarded_event(event)
    body["src"]["context"]["jobId"] = "changed"
    body["payload"]["input"]["x"] = 1
    assert event["context"]["jobId"] != "changed"
    assert event["payload"]["input"] == {}
    assert body["_accessToken"] == "sk_agent_token"
