"""The files in events/: valid JSON, the shapes Lambda hands each function, and no secrets."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ._support import EVENTS, FUNCTIONS, raw_body, template_env

ALL_FILES = sorted(path for path in EVENTS.rglob("*") if path.is_file())
JSON_FILES = [path for path in ALL_FILES if path.suffix == ".json"]
RECEIVER_FILES = sorted((EVENTS / "receiver").glob("*.json"))
WORKER_FILES = sorted((EVENTS / "worker").glob("*.json"))
SQS_FILES = [*WORKER_FILES, *sorted((EVENTS / "dead_letter").glob("*.json"))]
SAMPLE_JOBS = {"space:configure", "workbook:submit", "file:process", "data:validate"}
ACCESS_TOKEN_PLACEHOLDER = "sk_placeholder_not_a_real_token"

# What a leaked credential looks like: Flatfile keys, Standard Webhooks secrets (the test vector and a
# placeholder are shorter), AWS access keys and secret keys, private keys.
SECRET_PATTERNS = [
    re.compile(r"sk_live_"),
    re.compile(r"sk_(?!placeholder_not_a_real_token\b)[A-Za-z0-9_]{12,}"),
    re.compile(r"pk_[A-Za-z0-9]{16,}"),
    re.compile(r"whsec_[A-Za-z0-9+/=]{16,}"),
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"(?i)aws_secret_access_key"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
]


def _load(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(value, dict), path
    return value


def _rel(path: Path) -> str:
    return str(path.relative_to(EVENTS))


def _job_ready(event: Any) -> None:
    """``event`` is a job:ready event in the shape Flatfile stores (``GET /events/{eventId}``)."""
    assert isinstance(event, dict)
    assert event["topic"] == "job:ready"
    assert event["domain"] == "job"
    assert re.fullmatch(r"us_evt_\w+", event["id"])
    assert re.fullmatch(r"us_jb_\w+", event["context"]["jobId"])
    assert re.fullmatch(r"us_env_\w+", event["context"]["environmentId"])
    domain, operation = event["payload"]["job"].split(":")
    assert (event["payload"]["domain"], event["payload"]["operation"]) == (domain, operation)
    assert event["payload"]["status"] == "ready"
    assert "_accessToken" not in event


def test_events_folder_holds_the_documented_files() -> None:
    """Receiver, worker, dead-letter and raw events, env.json and the README are all there."""
    names = {_rel(path) for path in ALL_FILES}
    assert {"README.md", "env.json", "raw/job_ready.json", "dead_letter/dead_letter.json"} <= names
    assert len(RECEIVER_FILES) == 7
    assert len(WORKER_FILES) == 4


@pytest.mark.parametrize("path", JSON_FILES, ids=_rel)
def test_every_json_file_parses(path: Path) -> None:
    """Each JSON file in events/ is one JSON object."""
    assert isinstance(_load(path), dict)


@pytest.mark.parametrize("path", RECEIVER_FILES, ids=_rel)
def test_receiver_events_are_http_api_v2_requests(path: Path) -> None:
    """Receiver events have the keys an HTTP API payload v2 request has, for POST /webhook, with JSON."""
    event = _load(path)
    assert {"version", "routeKey", "rawPath", "rawQueryString", "headers", "requestContext", "body"} <= set(
        event
    )
    assert (event["version"], event["routeKey"], event["rawPath"]) == ("2.0", "POST /webhook", "/webhook")
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["path"] == "/webhook"
    assert event["requestContext"]["stage"] == "$default"
    assert event["headers"]["content-type"] == "application/json"
    assert all(name == name.lower() for name in event["headers"])
    assert isinstance(event["isBase64Encoded"], bool)
    assert isinstance(event["body"], str)
    body = json.loads(raw_body(event))
    _job_ready(body.get("src", body))


def test_receiver_variants_are_what_their_names_say() -> None:
    """One base64 body, one forwarder body with a placeholder token, one unhandled job, four samples."""
    by_name = {path.stem: _load(path) for path in RECEIVER_FILES}
    encoded = by_name["space_configure_base64"]
    assert encoded["isBase64Encoded"] is True
    assert json.loads(base64.b64decode(encoded["body"], validate=True))["payload"]["job"] == "space:configure"
    assert [name for name, event in by_name.items() if event["isBase64Encoded"]] == ["space_configure_base64"]
    forwarded = json.loads(by_name["workbook_submit_forwarded"]["body"])
    assert forwarded["_accessToken"] == ACCESS_TOKEN_PLACEHOLDER
    assert forwarded["src"]["id"] == forwarded["id"]
    unhandled = json.loads(by_name["unhandled_job"]["body"])
    assert unhandled["payload"]["job"] not in SAMPLE_JOBS
    samples = {json.loads(by_name[job.replace(":", "_")]["body"])["payload"]["job"] for job in SAMPLE_JOBS}
    assert samples == SAMPLE_JOBS
    validate = json.loads(by_name["data_validate"]["body"])
    assert validate["context"]["sheetId"].startswith("us_sh_")


@pytest.mark.parametrize("path", SQS_FILES, ids=_rel)
def test_sqs_events_have_one_lambda_sqs_record(path: Path) -> None:
    """Worker and dead-letter events are SQS batches of one record, shaped as SQS→Lambda delivers them."""
    [record] = _load(path)["Records"]
    assert {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    } <= set(record)
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].startswith("arn:aws:sqs:")
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode(), usedforsecurity=False).hexdigest()
    assert int(record["attributes"]["ApproximateReceiveCount"]) >= 1
    for name in ("eventId", "jobId", "job"):
        attribute = record["messageAttributes"][name]
        assert attribute["dataType"] == "String"
        assert isinstance(attribute["stringValue"], str)
    event = json.loads(record["body"])
    _job_ready(event)
    assert record["messageAttributes"]["jobId"]["stringValue"] == event["context"]["jobId"]


def test_dead_letter_event_comes_from_the_dead_letter_queue() -> None:
    """The dead-letter record names its source queue and was received more often than maxReceiveCount."""
    [record] = _load(EVENTS / "dead_letter" / "dead_letter.json")["Records"]
    assert "DeadLetterQueue" in record["eventSourceARN"]
    assert "JobQueue" in record["attributes"]["DeadLetterQueueSourceArn"]
    assert int(record["attributes"]["ApproximateReceiveCount"]) > 5


def test_raw_event_is_a_job_ready_event() -> None:
    """events/raw/job_ready.json is a raw job:ready event (no envelope)."""
    event = _load(EVENTS / "raw" / "job_ready.json")
    _job_ready(event)
    assert "src" not in event


def test_env_json_sets_exactly_the_variables_template_yaml_declares() -> None:
    """sam local invoke only applies declared variables: env.json has each function's, and no others."""
    env = _load(EVENTS / "env.json")
    assert set(env) >= set(FUNCTIONS.values())
    for logical_id in env:
        declared = {name for name in template_env(logical_id) if not name.startswith("POWERTOOLS_SERVICE")}
        given = set(env[logical_id])
        assert given <= declared, (logical_id, given - declared)
        assert {name for name in declared if not name.startswith("POWERTOOLS_")} <= given, logical_id
        assert all(isinstance(value, str) for value in env[logical_id].values())


def test_env_local_json_sets_only_variables_template_yaml_declares() -> None:
    """sam local ignores undeclared variables: every one env.local.json gives is declared for its function."""
    env = _load(EVENTS / "env.local.json")
    assert env
    for logical_id, variables in env.items():
        declared = set(template_env(logical_id))
        assert set(variables) <= declared, (logical_id, set(variables) - declared)
        assert all(isinstance(value, str) for value in variables.values())


@pytest.mark.parametrize("path", ALL_FILES, ids=_rel)
def test_nothing_in_events_looks_like_a_real_secret(path: Path) -> None:
    """No Flatfile key, webhook secret, AWS key or private key is committed under events/."""
    text = path.read_text(encoding="utf-8")
    found = [pattern.pattern for pattern in SECRET_PATTERNS if pattern.search(text)]
    assert found == []


def test_secret_patterns_catch_what_they_should() -> None:
    """The secret check is not vacuous: real-looking values are caught, the placeholders are not."""
    leaks = [
        "sk_live_abc",
        "sk_test_Fn7cQx2LpW9rTz4K",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "AKIA" + "IOSFODNN7EXAMPLE",  # AWS's documented example key, split so scanners don't flag this file
        "aws_secret_access_key",
    ]
    for leak in leaks:
        assert any(pattern.search(leak) for pattern in SECRET_PATTERNS), leak
    assert not any(pattern.search(ACCESS_TOKEN_PLACEHOLDER) for pattern in SECRET_PATTERNS)
