"""JobCompleteDetails, JobOutcome and every `next` variant: their wire form and the checks on return values."""

from __future__ import annotations

from typing import Any

import pytest

from flatfile_jobs import (
    FileLink,
    InvalidOutcomeError,
    JobCompleteDetails,
    JobOutcome,
    Next,
    NextDownload,
    NextFiles,
    NextId,
    NextRetry,
    NextSnapshot,
    NextUrl,
    NextView,
    NextWait,
)
from flatfile_jobs._outcomes import DEFAULT_COMPLETE_BODY, complete_body


@pytest.mark.parametrize(
    ("next_", "wire"),
    [
        (
            NextId(id="us_sh_1", label="Open sheet", path="/sheets", query="tab=1"),
            {"id": "us_sh_1", "label": "Open sheet", "path": "/sheets", "query": "tab=1", "type": "id"},
        ),
        (NextId(id="us_sh_1"), {"id": "us_sh_1", "type": "id"}),
        (
            NextUrl(url="https://example.com", label="Go"),
            {"url": "https://example.com", "label": "Go", "type": "url"},
        ),
        (
            NextDownload(url="https://example.com/f.csv", label="Get", file_name="f.csv"),
            {"url": "https://example.com/f.csv", "label": "Get", "fileName": "f.csv", "type": "download"},
        ),
        (
            NextFiles(
                files=[FileLink(file_id="us_fl_1", label="one"), FileLink(file_id="us_fl_2")], label="Files"
            ),
            {
                "files": [{"fileId": "us_fl_1", "label": "one"}, {"fileId": "us_fl_2"}],
                "label": "Files",
                "type": "files",
            },
        ),
        (
            NextFiles(files=(FileLink(file_id="us_fl_1"),)),
            {"files": [{"fileId": "us_fl_1"}], "type": "files"},
        ),
        (NextWait(fade=True, confetti=False), {"fade": True, "confetti": False, "type": "wait"}),
        (NextWait(), {"type": "wait"}),
        (
            NextSnapshot(snapshot_id="us_ss_1", sheet_id="us_sh_1"),
            {"snapshotId": "us_ss_1", "sheetId": "us_sh_1", "type": "snapshot"},
        ),
        (NextRetry(label="Again"), {"label": "Again", "type": "retry"}),
        (NextRetry(), {"type": "retry"}),
        (
            NextView(sheet_id="us_sh_1", hidden_columns=["a", "b"], label="View"),
            {"sheetId": "us_sh_1", "hiddenColumns": ["a", "b"], "label": "View", "type": "view"},
        ),
    ],
)
def test_every_next_variant_goes_on_the_wire_in_camel_case(next_: Next, wire: dict[str, Any]) -> None:
    """Each `next` dataclass becomes the API's camelCase object, None fields left out, `type` set."""
    body = complete_body(JobCompleteDetails(outcome=JobOutcome(next=next_)))
    assert body == {"outcome": {"next": wire}}


def test_outcome_fields_go_on_the_wire_in_camel_case() -> None:
    """JobOutcome's snake_case fields become buttonText / hideDefaultButton; None fields are omitted."""
    details = JobCompleteDetails(
        outcome=JobOutcome(
            acknowledge=True,
            trigger="manual",
            button_text="Done",
            heading="All good",
            message="Imported 3 rows",
            hide_default_button=False,
        ),
        info="3 rows",
    )
    assert complete_body(details) == {
        "outcome": {
            "acknowledge": True,
            "trigger": "manual",
            "buttonText": "Done",
            "heading": "All good",
            "message": "Imported 3 rows",
            "hideDefaultButton": False,
        },
        "info": "3 rows",
    }
    assert complete_body(JobCompleteDetails()) == {}
    assert complete_body(JobCompleteDetails(info="only info")) == {"info": "only info"}


def test_none_is_the_plugins_default_outcome() -> None:
    """A handler returning None completes with {"outcome":{"message":"Job complete"}}."""
    assert complete_body(None) == {"outcome": {"message": "Job complete"}}
    assert DEFAULT_COMPLETE_BODY == {"outcome": {"message": "Job complete"}}


def test_a_valid_dict_is_sent_as_the_whole_body() -> None:
    """A dict return value is the complete body, unchanged, like the plugin."""
    body = {"outcome": {"message": "ok", "next": {"type": "url", "url": "https://example.com"}}, "info": "x"}
    assert complete_body(body) == body


def test_dataclasses_and_equivalent_dicts_give_the_same_body() -> None:
    """The typed form and the dict form are interchangeable."""
    typed = JobCompleteDetails(
        outcome=JobOutcome(message="m", next=NextView(sheet_id="us_sh_1", hidden_columns=["x"])), info="i"
    )
    as_dict = {
        "outcome": {"message": "m", "next": {"type": "view", "sheetId": "us_sh_1", "hiddenColumns": ["x"]}},
        "info": "i",
    }
    assert complete_body(typed) == complete_body(as_dict)


def test_outcome_types_are_frozen_and_keyword_only() -> None:
    """Outcome values cannot be changed after creation, and fields are passed by name."""
    outcome = JobOutcome(message="m")
    with pytest.raises(AttributeError):
        outcome.message = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        NextUrl("https://example.com")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (42, "the handler returned int"),
        ("done", "the handler returned str"),
        ([{"outcome": {}}], "the handler returned list"),
        ({"outcomes": {}}, "JobCompleteDetails has unknown field 'outcomes'"),
        ({"outcome": []}, "JobCompleteDetails.outcome must be object, got list"),
        ({"info": 5}, "JobCompleteDetails.info must be str, got int"),
        ({"info": True}, "JobCompleteDetails.info must be str, got bool"),
        ({"outcome": {"mesage": "typo"}}, "outcome has unknown field 'mesage'"),
        ({"outcome": {"message": 3}}, "outcome.message must be str, got int"),
        ({"outcome": {"acknowledge": "yes"}}, "outcome.acknowledge must be bool, got str"),
        ({"outcome": {"acknowledge": 1}}, "outcome.acknowledge must be bool, got int"),
        ({"outcome": {"hideDefaultButton": "no"}}, "outcome.hideDefaultButton must be bool"),
        ({"outcome": {"buttonText": ["x"]}}, "outcome.buttonText must be str, got list"),
        ({"outcome": {"next": "https://example.com"}}, "outcome.next must be object, got str"),
        ({"outcome": {"next": {"type": "nope"}}}, "outcome.next.type must be one of"),
        ({"outcome": {"next": {"url": "https://example.com"}}}, "outcome.next.type must be one of"),
        ({"outcome": {"next": {"type": "url"}}}, "outcome.next.url is required"),
        ({"outcome": {"next": {"type": "url", "url": 5}}}, "outcome.next.url must be str, got int"),
        (
            {"outcome": {"next": {"type": "url", "url": "u", "extra": 1}}},
            "outcome.next has unknown field 'extra'",
        ),
        ({"outcome": {"next": {"type": "id"}}}, "outcome.next.id is required"),
        (
            {"outcome": {"next": {"type": "download", "url": "u", "fileName": 1}}},
            "outcome.next.fileName must be str",
        ),
        ({"outcome": {"next": {"type": "files"}}}, "outcome.next.files is required"),
        ({"outcome": {"next": {"type": "files", "files": "f"}}}, "outcome.next.files must be list or tuple"),
        ({"outcome": {"next": {"type": "files", "files": [{}]}}}, "outcome.next.files[0].fileId is required"),
        (
            {"outcome": {"next": {"type": "files", "files": [{"fileId": "a"}, 3]}}},
            "outcome.next.files[1] must be an object",
        ),
        ({"outcome": {"next": {"type": "wait", "fade": "slow"}}}, "outcome.next.fade must be bool"),
        ({"outcome": {"next": {"type": "snapshot", "snapshotId": "s"}}}, "outcome.next.sheetId is required"),
        ({"outcome": {"next": {"type": "retry", "label": 1}}}, "outcome.next.label must be str"),
        ({"outcome": {"next": {"type": "view", "sheetId": "s"}}}, "outcome.next.hiddenColumns is required"),
        (
            {"outcome": {"next": {"type": "view", "sheetId": "s", "hiddenColumns": [1]}}},
            "outcome.next.hiddenColumns must be a list of strings",
        ),
        (JobCompleteDetails(outcome=JobOutcome(message=3)), "outcome.message must be str, got int"),  # type: ignore[arg-type]
        (
            JobCompleteDetails(outcome=JobOutcome(next=NextFiles(files=[FileLink(file_id=None)]))),  # type: ignore[arg-type]
            "outcome.next.files[0].fileId is required",
        ),
    ],
)
def test_invalid_return_values_name_what_is_wrong(value: object, message: str) -> None:
    """A value that is not a JobCompleteDetails raises InvalidOutcomeError naming the field and the problem."""
    with pytest.raises(InvalidOutcomeError) as caught:
        complete_body(value)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)
