"""Topic globs and filter objects match exactly as @flatfile/listener 1.1.2 does.

https://github.com/FlatFilers/flatfile-core-libraries/tree/main/packages/listener
"""

from __future__ import annotations

from typing import Any

import pytest

from flatfile_jobs import FlatfileListener
from flatfile_jobs._matching import flatten, matches_filter, matches_topic

EVENT: dict[str, Any] = {
    "id": "us_evt_1",
    "topic": "job:ready",
    "domain": "job",
    "createdAt": "2026-01-01T00:00:00.000Z",
    "context": {
        "accountId": "us_acc_1",
        "environmentId": "us_env_1",
        "spaceId": "us_sp_1",
        "workbookId": "us_wb_1",
        "jobId": "us_jb_1",
        "actorId": "us_usr_1",
        "sheetSlug": "contacts",
        "tags": ["alpha", "beta"],
    },
    "payload": {
        "job": "space:configure",
        "domain": "space",
        "operation": "configure",
        "status": "ready",
        "info": None,
        "isPart": False,
        "progress": 1,
        "ratio": 0.5,
        "input": {},
    },
    "callbackUrl": "",
    "dataUrl": "",
    "namespaces": [],
    "origin": {"id": "us_jb_1"},
    "target": "",
}


@pytest.mark.parametrize(
    ("query", "topic", "expected"),
    [
        ("job:ready", "job:ready", True),
        ("job:*", "job:ready", True),
        ("*:ready", "job:ready", True),
        ("**", "job:ready", True),
        ("*", "job:ready", False),
        ("job", "job:ready", False),
        ("job:ready", "job:readyish", False),
        ("job:rea*", "job:ready", True),
        ("job:?eady", "job:ready", True),
        ("Job:ready", "job:ready", False),
        ("job:**", "job:ready", True),
        ("**:ready", "job:ready", True),
        ("space:*", "job:ready", False),
        ("records:*", "records:created", True),
        ("*", "job", True),
        (["job:created", "job:ready"], "job:ready", True),
        (["job:created", "job:failed"], "job:ready", False),
        (["space:*", "*:ready"], "job:ready", True),
        ([], "job:ready", False),
    ],
)
def test_topic_glob(query: str | list[str], topic: str, expected: bool) -> None:
    """Topics are ':'-separated globs: * is one segment, ** any number; a list matches if any does."""
    assert matches_topic(query, topic) is expected


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        # A bare key matches any path ending in .<key>: job hits payload.job.
        ({"job": "space:configure"}, True),
        ({"job": "space:configur"}, False),
        ({"job": "*"}, False),  # * cannot cross ':'
        ({"job": "space:*"}, True),
        ({"job": "*:configure"}, True),
        ({"job": "*:*"}, True),
        ({"job": "**"}, True),
        ({"job": "workbook:*"}, False),
        ({"job": ["workbook:submitAction", "space:configure"]}, True),  # a list: any element
        ({"job": ["workbook:submitAction", "sheet:*"]}, False),
        # Dotted keys and key globs are dot-separated globs over the event's paths.
        ({"payload.job": "space:configure"}, True),
        ({"payload.job": "space:nope"}, False),
        ({"job.payload": "space:configure"}, False),
        ({"**.environmentId": "us_env_1"}, True),
        ({"**.environmentId": "us_env_2"}, False),
        ({"*.environmentId": "us_env_1"}, True),
        ({"context.*": "us_sp_1"}, True),
        ({"*.job": "space:configure"}, True),
        ({"*job": "space:configure"}, False),  # a glob key gets no ends-with rule
        ({"environmentId": "us_env_1"}, True),
        ({"environmentId": "us_env_*"}, True),
        # Nested filters flatten to dot-paths.
        ({"context": {"sheetSlug": "contacts"}}, True),
        ({"context": {"sheetSlug": "x"}}, False),
        ({"context": {"sheetSlug": "contacts"}, "job": "space:configure"}, True),
        ({"context": {"sheetSlug": "contacts"}, "job": "workbook:*"}, False),  # every key must match
        ({"sheetSlug": "contacts"}, True),
        # Strings glob the event value as a string; other values compare with ===.
        ({"isPart": "false"}, True),
        ({"isPart": "true"}, False),
        ({"isPart": False}, True),
        ({"isPart": True}, False),
        ({"isPart": 0}, False),  # strict ===: 0 is not false
        ({"isPart": None}, False),
        ({"progress": 1}, True),
        ({"progress": 1.0}, True),  # JS numbers: 1 === 1.0
        ({"progress": "1"}, True),  # String(1) is "1"
        ({"progress": True}, False),  # true is not 1
        ({"progress": 2}, False),
        ({"ratio": "0.5"}, True),
        ({"ratio": 0.5}, True),
        ({"payload.status": ["ready", 3]}, True),
        # Event arrays match when any element does.
        ({"tags": "beta"}, True),
        ({"tags": "b*"}, True),
        ({"tags": "gamma"}, False),
        ({"tags": ["gamma", "alpha"]}, True),
        # Missing or null event values match only a None filter value.
        ({"info": None}, True),
        ({"info": "null"}, False),
        ({"info": "**"}, False),
        ({"missing": None}, True),
        ({"missing": "x"}, False),
        ({"missing": "**"}, False),
        ({"payload.missing": None}, True),
        # Case-sensitive, in keys and values.
        ({"job": "Space:configure"}, False),
        ({"Job": "space:configure"}, False),
        ({"JOB": "space:configure"}, False),
        ({"context": {"SheetSlug": "contacts"}}, False),
        # An empty filter matches everything.
        ({}, True),
    ],
)
def test_filter(filter_: dict[str, Any], expected: bool) -> None:
    """Filter keys and values follow @flatfile/listener (bare-key suffix rule, value globs, ===, arrays, nulls)."""
    assert matches_filter(filter_, EVENT) is expected


def test_filter_key_matches_a_top_level_event_key() -> None:
    """A bare filter key also matches a top-level field (`**.<key>` covers zero segments; the JS event has `src.`).

    @flatfile/listener 1.1.2 builds the pattern `**.<key>` (wildcard-match lets `**` be empty; its own test
    `objectMatches({foo:'bar'}, {foo:'bar'})` is true) and matches against the FlatfileEvent, which carries
    the raw event under `src`, so `{topic: ...}`, `{id: ...}` or `{domain: "job"}` match there.
    """
    assert matches_filter({"topic": "job:ready"}, EVENT) is True
    assert matches_filter({"id": "us_evt_1"}, EVENT) is True
    assert matches_filter({"domain": "job"}, EVENT) is True
    assert matches_filter({"foo": "bar"}, {"foo": "bar"}) is True


def test_filter_top_level_key_still_reaches_nested_paths() -> None:
    """`domain` matches the payload's domain too (any selected path may match)."""
    assert matches_filter({"domain": "space"}, EVENT) is True
    assert matches_filter({"domain": "sheet"}, EVENT) is False


def test_nested_array_filter_value_means_any_element() -> None:
    """A list under a nested filter key is still "any of"."""
    assert matches_filter({"context": {"sheetSlug": ["x", "contacts"]}}, EVENT) is True
    assert matches_filter({"context": {"sheetSlug": ["x", "y"]}}, EVENT) is False


def test_flatten_keeps_lists_and_empty_objects_whole() -> None:
    """Flattening produces dot-paths; lists and empty objects are leaves."""
    flat = flatten({"a": {"b": 1, "c": [1, {"d": 2}], "e": {}}, "f": None})
    assert flat == {"a.b": 1, "a.c": [1, {"d": 2}], "a.e": {}, "f": None}


def test_matching_does_not_change_the_event_or_filter() -> None:
    """Matching is pure: neither argument is modified."""
    event = {"topic": "job:ready", "payload": {"job": "space:configure", "tags": ["a"]}}
    filter_ = {"payload": {"job": ["space:*"]}}
    before = (repr(event), repr(filter_))
    assert matches_filter(filter_, event) is True
    assert (repr(event), repr(filter_)) == before


@pytest.mark.parametrize(
    ("query", "filter_", "expected"),
    [
        ("job:ready", {"job": "space:configure"}, True),
        ("job:*", {"job": "space:*"}, True),
        ("job:ready", {"job": "workbook:*"}, False),
        ("space:*", {"job": "space:configure"}, False),
        ("**", None, True),
        (["job:created", "job:ready"], {"**.environmentId": "us_env_1"}, True),
    ],
)
def test_listener_matches_combines_topic_and_filter(
    query: str | list[str], filter_: dict[str, Any] | None, expected: bool
) -> None:
    """listener.matches needs both the topic glob and the filter to match."""
    listener = FlatfileListener()
    listener.on(query, filter_, lambda event: None)
    assert listener.matches(EVENT) is expected
