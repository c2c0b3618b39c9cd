"""Ids that may reach a URL: the one shape check (``require_flatfile_id``), ``context_id`` and job:ready events."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from flatfile_jobs import FlatfileEvent
from flatfile_jobs._events import is_flatfile_id, require_flatfile_id, require_job_ready
from flatfile_jobs.webhook import InvalidEventError
from flatfile_jobs_testing import job_ready_event

VALID = ["us_jb_1", "us_evt_vdQXTnBgq1uDQlMZ", "us_sh_datvali1", "eu_env_ABC_123", "a", "x" * 128]
# The table, then each character class that must never pass.
HOSTILE: list[object] = [
    "../../events",
    "x/../../spaces/us_sp_1#",
    "../sheets/us_sh_1?a=",
    "us_jb_1/complete",
    "",
    ".",
    "..",
    "us.jb.1",
    "us_jb_1?",
    "us_jb_1#",
    "us_jb_%2F",
    "us_jb_1\\",
    "us jb",
    "us_jb_1\n",
    "us_jb_\x00",
    "us_jb_\u00e9",
    "us_jb_\u0661",  # an Arabic-Indic digit: a digit to str.isdigit, not to the id shape
    "us_jb_\ud800",
    "us-jb-1",
    "x" * 129,
    None,
    12,
    ["us_jb_1"],
    {"id": "us_jb_1"},
]


@pytest.mark.parametrize("value", VALID)
def test_flatfile_shaped_ids_pass(value: str) -> None:
    """ASCII letters, digits and underscores, 1 to 128 of them, pass and come back unchanged."""
    assert is_flatfile_id(value)
    assert require_flatfile_id(value, "event.context.jobId") == value


@pytest.mark.parametrize("value", HOSTILE, ids=ascii)
def test_anything_else_is_refused_naming_the_field(value: object) -> None:
    """/ . ? # % \\ whitespace, control, non-ASCII, empty, too long and non-strings are refused, field named."""
    assert not is_flatfile_id(value)
    with pytest.raises(InvalidEventError) as caught:
        require_flatfile_id(value, "event.context.jobId")
    assert "event.context.jobId" in str(caught.value)
    if isinstance(value, str) and len(value) > 2:
        assert value not in str(caught.value)  # the sender's text is not echoed back


def test_context_id_returns_a_checked_id_or_none() -> None:
    """context_id gives the id when it is one, None when absent or empty, and refuses anything else."""
    event = FlatfileEvent.of({"context": {"sheetId": "us_sh_1", "spaceId": "", "fileId": "../x"}})
    assert event.context_id("sheetId") == "us_sh_1"
    assert event.context_id("spaceId") is None
    assert event.context_id("workbookId") is None
    with pytest.raises(InvalidEventError, match=r"event\.context\.fileId"):
        event.context_id("fileId")


def _with(where: str, value: object) -> dict[str, Any]:
    event = copy.deepcopy(job_ready_event("space:configure", job_id="us_jb_1", event_id="us_evt_1"))
    target = event
    *parents, key = where.split(".")
    for parent in parents:
        target = target[parent]
    target[key] = value
    return event


@pytest.mark.parametrize(
    "where",
    [
        "id",
        "context.jobId",
        "context.environmentId",
        "context.spaceId",
        "context.workbookId",
        "context.sheetId",
        "context.fileId",
    ],
)
@pytest.mark.parametrize("value", ["../../events", "us_jb_1/complete", "../sheets/us_sh_1?a=", "x#"])
def test_a_job_ready_event_with_a_hostile_id_is_refused_naming_it(where: str, value: str) -> None:
    """require_job_ready refuses a hostile event id, job id or context id, naming event.<field>."""
    with pytest.raises(InvalidEventError) as caught:
        require_job_ready(_with(where, value))
    assert f"event.{where}" in str(caught.value)


def test_a_job_ready_event_with_flatfile_ids_passes() -> None:
    """The test kit's job:ready event (every context id Flatfile-shaped) passes and keeps its ids."""
    view = require_job_ready(_with("context.sheetId", "us_sh_1"))
    assert (view.id, view.job_id, view.context_id("sheetId")) == ("us_evt_1", "us_jb_1", "us_sh_1")
