"""The sample data:validate job reads ``context.sheetId`` as a checked Flatfile id, never as a path fragment."""

from __future__ import annotations

import pytest

from flatfile_app_jobs.data_validate import validate_data
from flatfile_jobs import FlatfileListener, JobResult, job_handler
from flatfile_jobs_testing import FakeFlatfile

ACCEPTED = {"info": "Accepted", "progress": 0}


def run(fake: FakeFlatfile, sheet_id: object) -> tuple[JobResult, str]:
    event = fake.create_job_event("sheet:validate", context={"sheetId": sheet_id})
    listener = FlatfileListener().use(
        job_handler("sheet:validate", validate_data, api_url=fake.url, token=fake.token, tick_interval=0)
    )
    (result,) = listener.dispatch(event)
    assert isinstance(result, JobResult)
    return result, str(event["context"]["jobId"])


def test_a_valid_sheet_id_reads_that_sheets_records(fake: FakeFlatfile) -> None:
    """A Flatfile sheet id is read at /v1/sheets/<id>/records and the job completes."""
    fake.set_records("us_sh_1", [{"id": "us_rc_1", "values": {}}])
    result, _ = run(fake, "us_sh_1")
    assert result.status == "complete"
    assert "/v1/sheets/us_sh_1/records" in [request.target for request in fake.requests]


@pytest.mark.parametrize(
    "sheet_id", ["../../events", "x/../../spaces/us_sp_1#", "../sheets/us_sh_1?a=", "us_sh_1/records", 5]
)
def test_a_hostile_sheet_id_fails_the_job_naming_the_field_and_reads_nothing(
    fake: FakeFlatfile, sheet_id: object
) -> None:
    """A sheetId that is not a Flatfile id fails the job naming event.context.sheetId; no /sheets request."""
    result, job_id = run(fake, sheet_id)
    assert result.status == "failed"
    assert "event.context.sheetId" in (result.message or "")
    assert [call for call, _ in fake.calls()] == [f"POST /jobs/{job_id}/ack", f"POST /jobs/{job_id}/fail"]
