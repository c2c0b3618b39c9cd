"""PollerFunction against the fake Flatfile API and moto (SQS + DynamoDB): each handled job enqueued once.

Decision tested here: events no handler wants are passed over (the cursor moves past them) but not acked,
so other consumers of the environment still see them; handled ones are acked after they are enqueued.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from flatfile_app_jobs import listener
from flatfile_jobs import ConfigurationError, FlatfileAPIError
from flatfile_jobs_testing import FakeFlatfile, Fault, LocalContext, load_function
from flatfile_stack.delivery_policy import ReceivePolicy, receive
from flatfile_stack.idempotency import MemoryPersistenceLayer
from flatfile_stack.queues import SqsJobQueue
from flatfile_stack.runtime import Runtime, use_runtime
from flatfile_stack.settings import Settings

from ._pipeline import tap_all_logs

ROOT = Path(__file__).resolve().parents[2]
ENV = "us_env_poll"
TABLE = "flatfile-jobs-state"
SAMPLE_JOBS = ("space:configure", "workbook:submit", "file:process", "data:validate")


def context(seconds: float = 60.0) -> LocalContext:
    """The poller's Lambda context: ``seconds`` left (its template timeout by default)."""
    return LocalContext("poller", seconds)


@pytest.fixture
def fake() -> Iterator[FakeFlatfile]:
    with FakeFlatfile(seed=1) as server:
        yield server


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Moto's SQS queue and DynamoDB table (key ``id``), with throwaway credentials."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="JobQueue")["QueueUrl"]
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield {"sqs": sqs, "queue_url": queue_url, "dynamodb": dynamodb}


@pytest.fixture
def runtime(fake: FakeFlatfile, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The stack's runtime on moto and the fake, handed to the poller functions loaded next."""
    monkeypatch.setenv("FLATFILE_API_URL", fake.url)
    settings = Settings(job_queue_url=aws["queue_url"], poller_state_table=TABLE, environment_id=ENV)
    built = Runtime(
        settings=settings,
        queue=SqsJobQueue(aws["queue_url"]),
        webhook_secrets=str,
        api_token=lambda: fake.token,
        persistence=MemoryPersistenceLayer(),
        listener=listener,
    )
    use_runtime(built)
    try:
        yield built
    finally:
        use_runtime(None)


@pytest.fixture
def app(runtime: Runtime) -> ModuleType:
    return load_function(ROOT, "poller")


def messages(aws: dict[str, Any]) -> list[dict[str, Any]]:
    answer = aws["sqs"].receive_message(
        QueueUrl=aws["queue_url"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return list(answer.get("Messages", []))


def cursor_item(aws: dict[str, Any]) -> dict[str, Any]:
    answer = aws["dynamodb"].get_item(TableName=TABLE, Key={"id": {"S": f"poller-cursor#{ENV}"}})
    return dict(answer.get("Item", {}))


def add_sample_events(fake: FakeFlatfile) -> list[dict[str, Any]]:
    events = [fake.create_job_event(job, environment_id=ENV) for job in SAMPLE_JOBS]
    events.append(fake.create_job_event("sheet:unhandled", environment_id=ENV))
    return events


def test_each_handled_job_is_enqueued_once_across_runs(
    app: ModuleType, fake: FakeFlatfile, aws: dict[str, Any]
) -> None:
    """Run 1 enqueues the four sample jobs; run 2 enqueues nothing; a new event is enqueued by run 3."""
    events = add_sample_events(fake)
    first = app.lambda_handler({"source": "aws.events"}, context())
    assert (first["events"], first["enqueued"], first["ignored"]) == (5, 4, 1)
    assert sorted(first["jobIds"]) == sorted(e["context"]["jobId"] for e in events[:4])
    assert len(messages(aws)) == 4
    second = app.lambda_handler({}, context())
    assert (second["events"], second["enqueued"]) == (0, 0)
    late = fake.create_job_event("space:configure", environment_id=ENV)
    third = app.lambda_handler({}, context())
    assert third["jobIds"] == [late["context"]["jobId"]]


def test_messages_match_what_the_receiver_enqueues(
    app: ModuleType, fake: FakeFlatfile, aws: dict[str, Any]
) -> None:
    """Body and attributes (eventId, jobId, job) are the receiver's, so the worker cannot tell them apart."""
    event = fake.create_job_event("workbook:submit", environment_id=ENV)
    app.lambda_handler({}, context())
    [message] = messages(aws)
    stored = fake.events[event["id"]]
    expected = receive(
        json.dumps({k: v for k, v in stored.items() if k != "acknowledgedAt"}).encode(),
        {"content-type": "application/json"},
        policy=ReceivePolicy(allow_unsigned=True),
        listener=listener,
    )
    assert expected is not None
    assert json.loads(message["Body"]) == {**expected.event}
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes == {
        "eventId": event["id"],
        "jobId": event["context"]["jobId"],
        "job": "workbook:submit",
    }


def test_handled_events_are_acked_and_unhandled_ones_left_for_others(
    app: ModuleType, fake: FakeFlatfile
) -> None:
    """Enqueued events are acked in Flatfile; the unhandled job's event stays unacknowledged."""
    events = add_sample_events(fake)
    app.lambda_handler({}, context())
    acked = {e["id"] for e in events if fake.events[e["id"]].get("acknowledgedAt")}
    assert acked == {e["id"] for e in events[:4]}


def test_the_cursor_is_stored_under_the_environments_key(
    app: ModuleType, fake: FakeFlatfile, aws: dict[str, Any]
) -> None:
    """The item poller-cursor#<env> holds the newest event's createdAt and its id."""
    events = add_sample_events(fake)
    answer = app.lambda_handler({}, context())
    item = cursor_item(aws)
    assert item["since"]["S"] == events[-1]["createdAt"] == answer["cursor"]
    assert [entry["S"] for entry in item["seen"]["L"]] == [events[-1]["id"]]


def test_a_new_poller_instance_resumes_from_the_stored_cursor(
    runtime: Runtime, fake: FakeFlatfile, aws: dict[str, Any]
) -> None:
    """A cold start (fresh module, no pollers kept) reads the cursor from DynamoDB and repeats nothing."""
    add_sample_events(fake)
    load_function(ROOT, "poller").lambda_handler({}, context())
    runtime.pollers.clear()
    again = load_function(ROOT, "poller").lambda_handler({}, context())
    assert (again["events"], again["enqueued"]) == (0, 0)
    assert len(messages(aws)) == 4


def test_it_stops_early_when_lambda_time_runs_short(
    app: ModuleType, fake: FakeFlatfile, aws: dict[str, Any]
) -> None:
    """With less than the deadline margin left, nothing is enqueued and the next run picks everything up."""
    add_sample_events(fake)
    short = app.lambda_handler({}, context(seconds=5))
    assert short["stoppedEarly"] is True
    assert short["enqueued"] == 0
    assert app.lambda_handler({}, context())["enqueued"] == 4


# A failed poll raises before it publishes a metric, so Powertools warns "No application metrics to publish":
# Lambda's Errors metric counts the failure (PollerErrorsAlarm watches it). The warning must not mask the error.
failed_poll = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@failed_poll
def test_an_api_failure_fails_the_run_without_enqueueing(
    app: ModuleType, fake: FakeFlatfile, aws: dict[str, Any]
) -> None:
    """GET /events failing for good raises (the invocation fails; the next schedule retries)."""
    add_sample_events(fake)
    fake.add_fault(Fault(path="/events", status=503))
    with pytest.raises(FlatfileAPIError):
        app.lambda_handler({}, context(seconds=11))
    assert messages(aws) == []


@failed_poll
def test_missing_environment_id_names_the_variable(runtime: Runtime, app: ModuleType) -> None:
    """Without FLATFILE_ENVIRONMENT_ID the run fails with a ConfigurationError naming it."""
    use_runtime(dataclasses.replace(runtime, settings=Settings(poller_state_table=TABLE)))
    with pytest.raises(ConfigurationError, match="FLATFILE_ENVIRONMENT_ID"):
        app.lambda_handler({}, context())


@pytest.mark.parametrize(
    "hostile", ["../../events", "x/../../spaces/us_sp_1#", "../sheets/us_sh_1?a=", "us_jb_1/complete"]
)
def test_polled_ids_that_are_not_flatfile_ids_are_skipped_and_never_reach_a_url(
    app: ModuleType, fake: FakeFlatfile, aws: dict[str, Any], hostile: str
) -> None:
    """A hostile job id is counted invalid (logged naming the field), a hostile event id skipped; only the
    valid event is enqueued and acked, and every request stays on /v1/events."""
    bad_job = fake.create_job_event("space:configure", environment_id=ENV, job_id=hostile)
    fake.create_job_event("space:configure", environment_id=ENV, event_id=hostile)
    good = fake.create_job_event("space:configure", environment_id=ENV)
    with tap_all_logs() as logs:
        summary = app.lambda_handler({}, context())
    assert (summary["enqueued"], summary["invalid"], summary["jobIds"]) == (1, 1, [good["context"]["jobId"]])
    assert [json.loads(m["Body"])["id"] for m in messages(aws)] == [good["id"]]
    targets = [(request.method, request.target.partition("?")[0]) for request in fake.requests]
    # One GET /events per polled topic (job:ready, job:parts-completed), one ack.
    assert sorted(targets) == [("GET", "/v1/events")] * 2 + [("POST", f"/v1/events/{good['id']}/ack")]
    skipped = [line for line in logs.lines if "Polled event skipped" in line]
    assert len(skipped) == 1
    assert bad_job["id"] in skipped[0]
    assert "event.context.jobId must be a Flatfile id" in skipped[0]
    assert any("Event whose id is not a Flatfile id skipped" in line for line in logs.lines)


def test_parts_completed_events_are_polled_with_a_cursor_of_their_own(
    app: ModuleType, fake: FakeFlatfile, aws: dict[str, Any]
) -> None:
    """A split job's job:parts-completed is enqueued like job:ready; its topic keeps its own cursor item."""
    parent = fake.create_job_event("workbook:export", environment_id=ENV, input={"parts": 2})
    parent_id = parent["context"]["jobId"]
    headers = {"Authorization": f"Bearer {fake.token}"}
    assert httpx.post(f"{fake.url}/v1/jobs/{parent_id}/split", json={"parts": 2}, headers=headers).is_success
    for part in fake.parts(parent_id):
        assert httpx.post(f"{fake.url}/v1/jobs/{part['id']}/complete", json={}, headers=headers).is_success
    answer = app.lambda_handler({}, context())
    assert (answer["events"], answer["enqueued"]) == (4, 4)  # the parent, its two parts, its parts-completed
    bodies = [json.loads(message["Body"]) for message in messages(aws)]
    [done] = [body for body in bodies if body["topic"] == "job:parts-completed"]
    assert done["context"]["jobId"] == parent_id
    key = {"id": {"S": f"poller-cursor#{ENV}#job:parts-completed"}}
    item = aws["dynamodb"].get_item(TableName=TABLE, Key=key)["Item"]
    assert item["seen"]["L"] == [{"S": done["id"]}]
    assert app.lambda_handler({}, context())["enqueued"] == 0
