"""WorkerFunction in-process: the sample jobs' exact Flatfile requests, idempotency on DynamoDB, failures.

Each test calls ``functions/worker/app.py``'s ``lambda_handler`` with an SQS event (the files in
``events/worker/`` or a message taken from the moto queue); the API key comes from moto's Secrets Manager and
the idempotency records live in moto's DynamoDB table.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from flatfile_app_jobs.data_validate import NO_RECORDS_MESSAGE
from flatfile_jobs import FlatfileListener, job_handler
from flatfile_jobs_cli._events import FunctionName
from flatfile_jobs_testing import FakeFlatfile, Fault, LocalContext
from flatfile_stack import runtime
from flatfile_stack import worker as worker_module
from flatfile_stack.dead_letter import DEAD_LETTER_MESSAGE

from ._pipeline import Invocations, chaos_listener, isolated_stack, make_pipeline
from ._support import (
    API_TOKEN,
    EVENTS,
    NAMESPACE,
    AwsStack,
    StackEnv,
    emf_blobs,
    load_event,
    metric_names,
    point_logs_at_stdout,
)

Invoke = Callable[[dict[str, Any]], dict[str, Any]]
Calls = list[tuple[str, object]]

ACCEPTED = {"info": "Accepted", "progress": 0}
SHEET_ID = "us_sh_datvali1"
RECORDS = [
    {"id": "us_rc_1", "values": {"email": {"value": "a@example.com"}}},
    {"id": "us_rc_2", "values": {}},
]


def _fail_body(message: str) -> dict[str, Any]:
    return {"info": message, "outcome": {"acknowledge": True, "message": message}}


def expected_space_configure(job_id: str) -> Calls:
    """Basic Usage: ticks 10, 50, 100 in quick succession; 50 is coalesced away (1 s tick interval)."""
    return [
        (f"POST /jobs/{job_id}/ack", ACCEPTED),
        (f"POST /jobs/{job_id}/ack", {"progress": 10, "info": "Starting configuration..."}),
        (f"POST /jobs/{job_id}/ack", {"progress": 100, "info": "Configuration complete."}),
        (f"POST /jobs/{job_id}/complete", {"outcome": {"message": "Job complete"}}),
    ]


def expected_workbook_submit(job_id: str) -> Calls:
    return [
        (f"POST /jobs/{job_id}/ack", ACCEPTED),
        (f"POST /jobs/{job_id}/ack", {"progress": 25, "info": "Preparing submission..."}),
        (f"POST /jobs/{job_id}/ack", {"progress": 75, "info": "Sending data to the destination..."}),
        (
            f"POST /jobs/{job_id}/complete",
            {"outcome": {"acknowledge": True, "message": "Data submitted successfully."}},
        ),
    ]


def expected_file_process(job_id: str) -> Calls:
    outcome = {
        "heading": "File processed",
        "message": "Your file was processed successfully.",
        "buttonText": "Review data",
        "next": {"type": "id", "id": "us_wb_example1", "label": "Review data", "path": "workbook"},
    }
    return [
        (f"POST /jobs/{job_id}/ack", ACCEPTED),
        (f"POST /jobs/{job_id}/ack", {"progress": 20, "info": "Reading the file..."}),
        (f"POST /jobs/{job_id}/ack", {"progress": 80, "info": "Extracting sheets..."}),
        (f"POST /jobs/{job_id}/complete", {"outcome": outcome}),
    ]


def expected_data_validate(job_id: str) -> Calls:
    """Error Handling Example: no records, so the job fails with the seed's message."""
    return [
        (f"POST /jobs/{job_id}/ack", ACCEPTED),
        (f"POST /jobs/{job_id}/ack", {"progress": 1, "info": "Starting validation..."}),
        (f"POST /jobs/{job_id}/fail", _fail_body(NO_RECORDS_MESSAGE)),
    ]


EXPECTED: dict[str, tuple[str, Callable[[str], Calls], str]] = {
    "space_configure.json": ("complete", expected_space_configure, "JobsCompleted"),
    "workbook_submit.json": ("complete", expected_workbook_submit, "JobsCompleted"),
    "file_process.json": ("complete", expected_file_process, "JobsCompleted"),
    "data_validate.json": ("failed", expected_data_validate, "JobsFailed"),
}
WORKER_FILES = sorted(path.name for path in (EVENTS / "worker").glob("*.json"))


def job_of(sqs_event: dict[str, Any]) -> tuple[str, str]:
    """The job name and job id of an SQS event's only record."""
    [record] = sqs_event["Records"]
    body = json.loads(record["body"])
    return str(body["payload"]["job"]), str(body["context"]["jobId"])


def add_job_for(fake: FakeFlatfile, sqs_event: dict[str, Any], status: str = "ready") -> str:
    """Create the record's job in the fake, ``ready``, under the event's job id; return the id."""
    job, job_id = job_of(sqs_event)
    fake.add_job(job, job_id=job_id, status=status, environment_id="us_env_example1")
    return job_id


@pytest.fixture
def worker(stack_env: StackEnv, load_app: Callable[[FunctionName], ModuleType]) -> ModuleType:
    """The worker's app module with the worker's environment from template.yaml (a cold start)."""
    stack_env.only("worker")
    return load_app("worker")


@pytest.fixture
def invoke(worker: ModuleType, lambda_context: LocalContext) -> Invoke:
    """Invoke the worker with an SQS event."""

    def run(event: dict[str, Any]) -> dict[str, Any]:
        point_logs_at_stdout()
        response = worker.lambda_handler(event, lambda_context)
        assert isinstance(response, dict)
        return response

    return run


def test_every_worker_events_file_has_an_expectation() -> None:
    """The four sample jobs each have a worker event file, and nothing else is there unchecked."""
    assert sorted(EXPECTED) == WORKER_FILES


@pytest.mark.parametrize("name", WORKER_FILES)
def test_events_file_runs_its_job_with_the_exact_flatfile_requests(
    invoke: Invoke, fake: FakeFlatfile, aws: AwsStack, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """Each events/worker file runs its sample job: the exact requests, final status and metrics."""
    event = load_event(f"worker/{name}")
    job_id = add_job_for(fake, event)
    status, expected_calls, metric = EXPECTED[name]
    assert invoke(event) == {"batchItemFailures": []}
    assert fake.calls(job_id) == expected_calls(job_id)
    assert fake.job(job_id)["status"] == status
    assert {request.headers["authorization"] for request in fake.requests} == {f"Bearer {API_TOKEN}"}
    [item] = aws.idempotency_items()
    assert item["status"]["S"] == "COMPLETED"
    names = metric_names(capsys.readouterr().out)
    assert {"JobsStarted", metric, "JobDuration"} <= set(names)


def test_the_library_logs_through_the_functions_logger_as_json_with_the_jobs_keys(
    invoke: Invoke, fake: FakeFlatfile, aws: AwsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """workbook:submit (debug=True): the library's lines are the worker Logger's JSON, keyed by job and event."""
    event = load_event("worker/workbook_submit.json")
    job_id = add_job_for(fake, event)
    event_id = json.loads(event["Records"][0]["body"])["id"]
    assert invoke(event) == {"batchItemFailures": []}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    calls = [line for line in lines if line.get("message") == "Flatfile API call"]
    assert [(line["method"], line["path"], line["status"]) for line in calls] == [
        ("POST", f"/jobs/{job_id}/ack", 200),
        ("POST", f"/jobs/{job_id}/ack", 200),
        ("POST", f"/jobs/{job_id}/ack", 200),
        ("POST", f"/jobs/{job_id}/complete", 200),
    ]
    assert all(isinstance(line["ms"], float) for line in calls)
    received = [line for line in lines if line.get("message") == "Job received"]
    complete = [
        line for line in lines if line.get("message") == "[@flatfile/plugin-job-handler]:[INFO] Job complete"
    ]
    assert len(received) == len(complete) == 1
    for line in [*received, *calls, *complete]:
        assert (line["level"], line["job_id"], line["event_id"]) == ("INFO", job_id, event_id)
        assert line["function_name"] == "flatfile-jobs-functional"  # the Lambda context's keys, too


def test_data_validate_fails_with_the_seed_message_when_the_sheet_is_empty(
    invoke: Invoke, fake: FakeFlatfile
) -> None:
    """data:validate reads the sheet's records through the API and fails with the seed's message."""
    event = load_event("worker/data_validate.json")
    job_id = add_job_for(fake, event)
    fake.set_records(SHEET_ID, [])
    invoke(event)
    assert ("GET /sheets/us_sh_datvali1/records", None) in fake.calls()
    job = fake.job(job_id)
    assert (job["status"], job["outcome"]["message"]) == ("failed", NO_RECORDS_MESSAGE)


def test_data_validate_completes_when_the_sheet_has_records(invoke: Invoke, fake: FakeFlatfile) -> None:
    """data:validate completes, counting the records, when the sheet has some."""
    event = load_event("worker/data_validate.json")
    job_id = add_job_for(fake, event)
    fake.set_records(SHEET_ID, RECORDS)
    assert invoke(event) == {"batchItemFailures": []}
    assert fake.calls(job_id) == [
        (f"POST /jobs/{job_id}/ack", ACCEPTED),
        (f"POST /jobs/{job_id}/ack", {"progress": 1, "info": "Starting validation..."}),
        (f"POST /jobs/{job_id}/ack", {"progress": 100, "info": "Validated 2 records."}),
        (f"POST /jobs/{job_id}/complete", {"outcome": {"message": "Validation passed: 2 records checked."}}),
    ]
    assert fake.job(job_id)["status"] == "complete"


def test_record_without_message_attributes_still_runs(invoke: Invoke, fake: FakeFlatfile) -> None:
    """A message sent by hand (no eventId/jobId attributes) runs its job; the ids come from the body."""
    event = load_event("worker/file_process.json")
    event["Records"][0]["messageAttributes"] = {}
    job_id = add_job_for(fake, event)
    assert invoke(event) == {"batchItemFailures": []}
    assert fake.calls(job_id) == expected_file_process(job_id)


def test_duplicate_delivery_runs_the_job_once(invoke: Invoke, fake: FakeFlatfile, aws: AwsStack) -> None:
    """The same job delivered twice (DynamoDB idempotency on the job id): one run, both records succeed."""
    event = load_event("worker/workbook_submit.json")
    job_id = add_job_for(fake, event)
    assert invoke(event) == {"batchItemFailures": []}
    assert invoke(event) == {"batchItemFailures": []}
    acks = [body for call, body in fake.calls(job_id) if call.endswith("/ack") and body == ACCEPTED]
    assert len(acks) == 1
    assert [call for call, _ in fake.calls(job_id)].count(f"POST /jobs/{job_id}/complete") == 1
    assert fake.job(job_id)["status"] == "complete"
    [item] = aws.idempotency_items()
    assert item["status"]["S"] == "COMPLETED"


def test_duplicate_is_not_counted_as_a_second_completed_job(
    invoke: Invoke, fake: FakeFlatfile, capsys: pytest.CaptureFixture[str]
) -> None:
    """A duplicate answered from the idempotency store publishes JobsDuplicate, not a second JobsCompleted."""
    event = load_event("worker/space_configure.json")
    add_job_for(fake, event)
    invoke(event)
    assert "JobsCompleted" in metric_names(capsys.readouterr().out)
    invoke(event)
    second = metric_names(capsys.readouterr().out)
    assert "JobsDuplicate" in second
    assert not {"JobsStarted", "JobsCompleted", "JobDuration"} & set(second)


def test_concurrent_duplicates_run_the_job_once_on_dynamodb(
    stack_env: StackEnv,
    load_app: Callable[[FunctionName], ModuleType],
    fake: FakeFlatfile,
    aws: AwsStack,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Four worker instances handed a job another is running claim it in DynamoDB (moto): one run, four duplicates.

    The four arrive one after another while the first runs: two claims in the same instant rely on DynamoDB's
    atomic conditional write, which moto's in-process backend does not lock, and five copies printing to one
    stdout at once interleave their lines (in Lambda each has its own process and log stream).
    """
    stack_env.only("worker")
    runs: list[str] = []
    started, duplicates_answered = threading.Event(), threading.Event()

    def slow(event: Any, tick: Any) -> None:
        runs.append(event.job_id)
        tick(50, "Working...")
        started.set()
        assert duplicates_answered.wait(20), "the duplicates were never answered"  # still running meanwhile

    slow_listener = FlatfileListener().use(job_handler("space:configure", slow))
    shared = runtime.Runtime.from_env(slow_listener)  # one DynamoDB table, as the five instances share
    runtime.use_runtime(shared)
    assert isinstance(shared.idempotency_store(), DynamoDBPersistenceLayer)
    record = load_event("worker/space_configure.json")["Records"][0]
    events = [aws.enqueue(record) for _ in range(5)]  # five SQS messages, one job
    assert len({event["Records"][0]["messageId"] for event in events}) == 5
    job_id = add_job_for(fake, events[0])
    apps = [load_app("worker") for _ in range(5)]  # five Lambda instances
    answers: list[Any] = [None] * 5

    def deliver(i: int) -> None:
        answers[i] = apps[i].lambda_handler(events[i], LocalContext("WorkerFunction", 900.0))

    first = threading.Thread(target=deliver, args=(0,))
    first.start()
    try:
        assert started.wait(20), "the first delivery never started the job"
        for i in range(1, 5):
            deliver(i)
        assert first.is_alive()  # the job was running all along
    finally:
        duplicates_answered.set()
        first.join(timeout=30)
    assert answers == [{"batchItemFailures": []}] * 5
    assert runs == [job_id]
    assert fake.calls(job_id) == [
        (f"POST /jobs/{job_id}/ack", ACCEPTED),
        (f"POST /jobs/{job_id}/ack", {"progress": 50, "info": "Working..."}),
        (f"POST /jobs/{job_id}/complete", {"outcome": {"message": "Job complete"}}),
    ]
    [item] = aws.idempotency_items()
    assert item["status"]["S"] == "COMPLETED"
    names = metric_names(capsys.readouterr().out)
    assert (names.count("JobsCompleted"), names.count("JobsDuplicate")) == (1, 4)


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_failed_ack_reports_the_record_and_releases_the_idempotency_key(
    invoke: Invoke, fake: FakeFlatfile, aws: AwsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused ack (401, not retried) fails the record for SQS to retry; the retry then runs the job."""
    event = aws.enqueue(load_event("worker/space_configure.json")["Records"][0])
    job_id = add_job_for(fake, event)
    fault = fake.add_fault(Fault(path=f"/jobs/{job_id}/ack", method="POST", status=401, times=1))
    message_id = event["Records"][0]["messageId"]
    assert invoke(event) == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert fault.hits == 1
    assert fake.job(job_id)["status"] == "ready"
    assert aws.idempotency_items() == []
    assert "Could not shorten" not in capsys.readouterr().out
    assert invoke(event) == {"batchItemFailures": []}
    # The refused ack was followed by a GET (is the job canceled or finished?), then the retry ran it all.
    assert fake.calls(job_id) == [(f"GET /jobs/{job_id}", None), *expected_space_configure(job_id)]
    assert fake.job(job_id)["status"] == "complete"


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_failed_ack_of_a_whole_batch_is_reported_not_raised(
    worker: ModuleType, lambda_context: LocalContext, fake: FakeFlatfile, aws: AwsStack
) -> None:
    """A batch whose only record failed is answered with that record (Powertools does not raise); a retry runs it."""
    event = aws.enqueue(load_event("worker/file_process.json")["Records"][0])
    job_id = add_job_for(fake, event)
    fake.add_fault(Fault(path=f"/jobs/{job_id}/ack", method="POST", status=401, times=1))
    response = worker.lambda_handler(event, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert fake.job(job_id)["status"] == "ready"
    assert aws.idempotency_items() == []
    assert worker.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert fake.job(job_id)["status"] == "complete"


def test_job_outliving_the_deadline_is_failed_as_timed_out(
    invoke: Invoke,
    fake: FakeFlatfile,
    stack_env: StackEnv,
    lambda_context: LocalContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With 11.5 s left and an 11 s margin the job gets 1 s; a slower handler is failed as timed out."""
    stack_env.set(DEADLINE_MARGIN_SECONDS="11")
    slow = FlatfileListener()

    async def sleepy(event: Any, tick: Any) -> None:
        await tick(5, "Working...")
        await asyncio.sleep(30)

    slow.use(job_handler("space:configure", sleepy))
    runtime.use_runtime(runtime.Runtime.from_env(slow))
    event = load_event("worker/space_configure.json")
    job_id = add_job_for(fake, event)
    lambda_context.set_remaining(11.5)
    assert invoke(event) == {"batchItemFailures": []}
    message = "Job timed out after 1 s"
    assert fake.calls(job_id) == [
        (f"POST /jobs/{job_id}/ack", ACCEPTED),
        (f"POST /jobs/{job_id}/ack", {"progress": 5, "info": "Working..."}),
        (f"POST /jobs/{job_id}/fail", _fail_body(message)),
    ]
    assert fake.job(job_id)["status"] == "failed"
    assert "JobsTimedOut" in metric_names(capsys.readouterr().out)


def test_metrics_are_published_in_the_stack_namespace(
    invoke: Invoke, fake: FakeFlatfile, capsys: pytest.CaptureFixture[str]
) -> None:
    """One completed and one failed job publish JobsCompleted and JobsFailed as EMF in FlatfileJobs."""
    for name in ("file_process.json", "data_validate.json"):
        event = load_event(f"worker/{name}")
        add_job_for(fake, event)
        invoke(event)
    blobs = emf_blobs(capsys.readouterr().out)
    assert {directive["Namespace"] for blob in blobs for directive in blob["_aws"]["CloudWatchMetrics"]} == {
        NAMESPACE
    }
    completed = [blob["JobsCompleted"] for blob in blobs if "JobsCompleted" in blob]
    failed = [blob["JobsFailed"] for blob in blobs if "JobsFailed" in blob]
    assert (completed, failed) == ([[1.0]], [[1.0]])


def test_worker_events_carry_what_the_receiver_enqueues() -> None:
    """Each worker file's body is the compact event its receiver file carries, with matching attributes."""
    for name in WORKER_FILES:
        [record] = load_event(f"worker/{name}")["Records"]
        receiver_event = json.loads(load_event(f"receiver/{name}")["body"])
        assert record["body"] == json.dumps(receiver_event, separators=(",", ":"), ensure_ascii=False)
        attributes = {key: value["stringValue"] for key, value in record["messageAttributes"].items()}
        assert attributes == {
            "eventId": receiver_event["id"],
            "jobId": receiver_event["context"]["jobId"],
            "job": receiver_event["payload"]["job"],
        }
    assert Path(EVENTS / "raw" / "job_ready.json").is_file()


# -- redelivery of a failed record, on the queue's simulated clock ---------------------------------------


def test_failed_record_comes_back_after_30s_1_2_4_min_then_is_dead_lettered(
    fake: FakeFlatfile, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record failing at every receive is handed out again after ~30 s, 1, 2, 4 min, then dead-lettered.

    Each failure is logged at ERROR with its job id and reason and counted (RecordsFailed); after the 5th
    receive the dead-letter function fails the job with the general message (our code reported each failure).
    """
    with isolated_stack():
        listener = chaos_listener(fake.url, Invocations())
        pipe = make_pipeline(fake, listener, max_receives=5)
        event = fake.create_job_event("chaos:sync")
        job_id = event["context"]["jobId"]
        fake.add_fault(Fault(path=f"/jobs/{job_id}/ack", method="POST", status=401))
        assert pipe.deliver_event(event)["statusCode"] == 202
        point_logs_at_stdout()
        stats = pipe.drain()
    assert [count for _, count, _ in stats.receives] == [1, 2, 3, 4, 5]
    times = [at for at, _, _ in stats.receives]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    for gap, ceiling in zip(gaps, (30, 60, 120, 240), strict=True):
        assert ceiling / 2 <= gap <= ceiling, gaps
    assert stats.dead_lettered_jobs == [job_id]
    job = fake.job(job_id)
    assert (job["status"], job["outcome"]["message"]) == ("failed", DEAD_LETTER_MESSAGE.format(job_id=job_id))
    out = capsys.readouterr().out
    errors = [json.loads(line) for line in out.splitlines() if line.startswith('{"level":"ERROR"')]
    failed = [line for line in errors if line["message"].startswith("Job record failed")]
    assert [line["receive_count"] for line in failed] == [1, 2, 3, 4, 5]
    assert {line["job_id"] for line in failed} == {job_id}
    assert {(line["reason"], line["status"]) for line in failed} == {
        ("FlatfileAPIError: Injected fault", 401)
    }
    assert metric_names(out).count("RecordsFailed") == 5


def nested_event(depth: int) -> dict[str, Any]:
    """The space:configure worker event with a ``payload.input`` ``depth`` objects deep."""
    event = load_event("worker/space_configure.json")
    [record] = event["Records"]
    body = json.loads(record["body"])
    deep: dict[str, Any] = {}
    for _ in range(depth - 1):
        deep = {"a": deep}
    body["payload"]["input"] = deep
    record["body"] = json.dumps(body)
    return event


def test_deeply_nested_event_runs_keyed_on_the_job_id(
    invoke: Invoke, fake: FakeFlatfile, aws: AwsStack
) -> None:
    """A payload.input 480 objects deep runs: idempotency is keyed on the job id, the event is never copied."""
    event = nested_event(480)
    job_id = add_job_for(fake, event)
    assert invoke(event) == {"batchItemFailures": []}
    assert fake.calls(job_id) == expected_space_configure(job_id)
    [item] = aws.idempotency_items()
    assert item["status"]["S"] == "COMPLETED"
    assert item["id"]["S"].startswith("job#")


def test_event_nested_1000_deep_fails_its_job_without_recursion_error(
    invoke: Invoke, fake: FakeFlatfile, aws: AwsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """1,000 levels (python3.13 parses it): the job is failed saying why, logged, counted, never retried."""
    event = nested_event(1000)
    job_id = add_job_for(fake, event)
    assert invoke(event) == {"batchItemFailures": []}
    message = f"This job's event is nested more than {worker_module.MAX_EVENT_DEPTH} levels deep, so it was not run."
    job = fake.job(job_id)
    assert (job["status"], job["outcome"]["message"]) == ("failed", message)
    assert aws.idempotency_items() == []
    out = capsys.readouterr().out
    assert "RecursionError" not in out
    assert metric_names(out) == ["JobsRefused"]


def test_placeholder_api_key_fails_the_record_naming_the_command_to_run(
    invoke: Invoke, fake: FakeFlatfile, aws: AwsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The template's placeholder key: each record fails at ERROR with the exact put-secret-value command."""
    aws.secretsmanager.put_secret_value(
        SecretId=aws.api_key_secret_arn, SecretString="REPLACE_WITH_FLATFILE_SECRET_KEY"
    )
    try:
        event = load_event("worker/file_process.json")
        job_id = add_job_for(fake, event)
        message_id = event["Records"][0]["messageId"]
        assert invoke(event) == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    finally:
        aws.secretsmanager.put_secret_value(SecretId=aws.api_key_secret_arn, SecretString=API_TOKEN)
    assert fake.requests == []
    out = capsys.readouterr().out
    [line] = [json.loads(x) for x in out.splitlines() if '"Job record failed' in x]
    command = (
        f"aws secretsmanager put-secret-value --secret-id {aws.api_key_secret_arn} --secret-string sk_..."
    )
    assert (line["level"], line["job_id"]) == ("ERROR", job_id)
    assert line["reason"] == (
        "ConfigurationError: The secret named by FLATFILE_API_KEY_SECRET_ID holds no value yet: "
        f"store it with {command}"
    )
    assert metric_names(out) == ["RecordsFailed"]


def test_a_job_no_handler_takes_fails_its_record_at_error_instead_of_staying_ready_unseen(
    invoke: Invoke, fake: FakeFlatfile, aws: AwsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """A queued job the worker's listener has no handler for (the receiver's table disagreed): before, the record
    was deleted and the job stayed ready with no log line or metric. Now the record fails (ERROR, RecordsFailed,
    retried then dead-lettered) and its idempotency key is released for the retry."""
    event = load_event("worker/space_configure.json")
    record = event["Records"][0]
    body = json.loads(record["body"])
    body["payload"]["job"] = "sheet:removed"
    record["body"] = json.dumps(body)
    job_id = add_job_for(fake, event)
    assert invoke(event) == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert fake.calls(job_id) == []
    assert fake.job(job_id)["status"] == "ready"
    assert aws.idempotency_items() == []
    out = capsys.readouterr().out
    [line] = [json.loads(x) for x in out.splitlines() if '"Job record failed' in x]
    assert (line["level"], line["job_id"]) == ("ERROR", job_id)
    assert line["reason"].startswith(
        f"NoHandlerRanError: no handler in this worker took the 'sheet:removed' job {job_id}"
    )
    assert metric_names(out) == ["RecordsFailed"]


def test_two_runtimes_in_one_process_reach_their_own_flatfile(fake: FakeFlatfile) -> None:
    """Two workers' runtimes in one process, running at once: each job's calls go to its runtime's API and key.

    Nothing process-wide carries the API or the deadline: each record's dispatch is handed its own settings.
    """
    from flatfile_stack.idempotency import MemoryPersistenceLayer
    from flatfile_stack.queues import MemoryJobQueue
    from flatfile_stack.settings import Settings

    started = threading.Barrier(2)

    def handler(event: Any, tick: Any) -> None:
        started.wait(5)  # both jobs are running at the same time
        tick(50, "Halfway")

    listener = FlatfileListener().use(job_handler("space:configure", handler, tick_interval=0))
    with FakeFlatfile(token="sk_test_other_flatfile_7Hq2") as other:

        def runtime_for(flatfile: FakeFlatfile) -> runtime.Runtime:
            return runtime.Runtime(
                settings=Settings(),
                queue=MemoryJobQueue(),
                webhook_secrets=str,
                api_token=lambda: flatfile.token,
                api_url=flatfile.url,
                persistence=MemoryPersistenceLayer(),
                listener=listener,
            )

        events = {
            fake: fake.create_job_event("space:configure"),
            other: other.create_job_event("space:configure"),
        }
        outcomes: dict[FakeFlatfile, dict[str, Any]] = {}

        def run(flatfile: FakeFlatfile) -> None:
            outcomes[flatfile] = worker_module.process_record(
                json.dumps(events[flatfile]),
                LocalContext("WorkerFunction", 60.0),
                runtime=runtime_for(flatfile),
            )

        threads = [threading.Thread(target=run, args=(flatfile,)) for flatfile in events]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        for flatfile, event in events.items():
            job_id = event["context"]["jobId"]
            assert outcomes[flatfile]["results"][0]["status"] == "complete"
            assert [call for call, _ in flatfile.calls(job_id)] == [
                f"POST /jobs/{job_id}/ack",
                f"POST /jobs/{job_id}/ack",
                f"POST /jobs/{job_id}/complete",
            ]
        assert all(
            request.path.startswith("/jobs/" + events[fake]["context"]["jobId"]) for request in fake.requests
        )
        assert all(
            request.path.startswith("/jobs/" + events[other]["context"]["jobId"])
            for request in other.requests
        )


def test_the_workers_aws_clients_share_one_boto3_session(
    invoke: Invoke, worker: ModuleType, fake: FakeFlatfile
) -> None:
    """Secrets Manager, DynamoDB and SQS clients share one session: botocore's data loads once per cold start."""
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    from flatfile_stack.queues import SqsJobQueue

    event = load_event("worker/workbook_submit.json")
    add_job_for(fake, event)
    assert invoke(event) == {"batchItemFailures": []}
    current = worker.runtime()
    assert isinstance(current.queue, SqsJobQueue)
    persistence = current.idempotency_store()
    assert isinstance(persistence, DynamoDBPersistenceLayer)
    clients = [DEFAULT_PROVIDERS["secrets"].client, persistence.client, current.queue._sqs()]
    assert [client.meta.service_model.service_name for client in clients] == [
        "secretsmanager",
        "dynamodb",
        "sqs",
    ]
    # A session's data loader is shared by every client it creates (and by no other session's).
    assert len({id(client._loader) for client in clients}) == 1
