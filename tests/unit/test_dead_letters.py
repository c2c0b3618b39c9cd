"""fail_unfinished_job: fails a job unless it ended, and never puts an id that is not a Flatfile id in a URL."""

from __future__ import annotations

import pytest

from flatfile_jobs._config import ApiSettings
from flatfile_jobs._dead_letters import fail_unfinished_job
from flatfile_jobs.webhook import InvalidEventError
from flatfile_jobs_testing import FakeFlatfile


@pytest.fixture
def settings(fake: FakeFlatfile) -> ApiSettings:
    return ApiSettings.resolve(api_url=fake.url, token=fake.token, retry_budget=1.0)


def test_an_unfinished_job_is_failed_with_the_message(fake: FakeFlatfile, settings: ApiSettings) -> None:
    """An executing job is read, then failed with the message: exactly GET then POST /fail."""
    job_id = fake.add_job(status="executing")["id"]
    assert fail_unfinished_job(job_id, "set aside", settings=settings) is True
    assert [call for call, _ in fake.calls()] == [f"GET /jobs/{job_id}", f"POST /jobs/{job_id}/fail"]
    assert fake.job(job_id)["status"] == "failed"


@pytest.mark.parametrize(
    "job_id",
    [
        "../../events",
        "x/../../spaces/us_sp_1#",
        "../sheets/us_sh_1?a=",
        "us_jb_1/complete",
        "",
        "..",
        "x\ud800",
    ],
    ids=ascii,
)
def test_a_job_id_that_is_not_a_flatfile_id_is_refused_before_any_request(
    fake: FakeFlatfile, settings: ApiSettings, job_id: str
) -> None:
    """A hostile job id raises InvalidEventError naming job_id; Flatfile receives nothing."""
    with pytest.raises(InvalidEventError, match="job_id"):
        fail_unfinished_job(job_id, "set aside", settings=settings)
    assert fake.requests == []
