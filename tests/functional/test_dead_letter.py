"""DeadLetterFunction in-process: dead-lettered jobs are failed in Flatfile with a clear message.

``functions/dead_letter/app.py``'s ``lambda_handler`` gets ``events/dead_letter/dead_letter.json`` (or a
message taken from moto's dead-letter queue); the API key comes from moto's Secrets Manager.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from flatfile_jobs_cli._events import FunctionName
from flatfile_jobs_testing import FakeFlatfile, Fault, LocalContext
from flatfile_stack.dead_letter import CRASH_MESSAGE, DEAD_LETTER_MAX_RECEIVES, DEAD_LETTER_MESSAGE
from flatfile_stack.idempotency import JOB_KEY_PREFIX, dynamodb_persistence, job_config

from ._support import AwsStack, StackEnv, load_event, metric_names, point_logs_at_stdout

Invoke = Callable[[dict[str, Any]], Any]


@pytest.fixture
def dead_letter(stack_env: StackEnv, load_app: Callable[[FunctionName], ModuleType]) -> ModuleType:
    """The dead-letter function's app module with its environment from template.yaml (a cold start)."""
    stack_env.only("dead_letter")
    return load_app("dead_letter")


@pytest.fixture
def invoke(dead_letter: ModuleType, lambda_context: LocalContext) -> Invoke:
    """Invoke the dead-letter function with an SQS event."""

    def run(event: dict[str, Any]) -> Any:
        point_logs_at_stdout()
        return dead_letter.lambda_handler(event, lambda_context)

    return run


def dead_job(fake: FakeFlatfile, status: str) -> tuple[dict[str, Any], str]:
    """The committed dead-letter event and its job, created in the fake with ``status``."""
    event = load_event("dead_letter/dead_letter.json")
    body = json.loads(event["Records"][0]["body"])
    job_id = str(body["context"]["jobId"])
    fake.add_job(body["payload"]["job"], job_id=job_id, status=status, environment_id="us_env_example1")
    return event, job_id


def test_executing_job_is_failed_with_the_dead_letter_message(
    invoke: Invoke, fake: FakeFlatfile, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dead-lettered job still executing is failed, telling the user what happened and the job id."""
    event, job_id = dead_job(fake, "executing")
    assert invoke(event) == {"batchItemFailures": []}
    message = DEAD_LETTER_MESSAGE.format(job_id=job_id)
    assert job_id in message
    assert fake.calls(job_id) == [
        (f"GET /jobs/{job_id}", None),
        (
            f"POST /jobs/{job_id}/fail",
            {"info": message, "outcome": {"acknowledge": True, "message": message}},
        ),
    ]
    job = fake.job(job_id)
    assert (job["status"], job["outcome"]["message"]) == ("failed", message)
    assert "JobsDeadLettered" in metric_names(capsys.readouterr().out)


@pytest.mark.parametrize("status", ["complete", "failed", "canceled"])
def test_job_that_already_ended_is_left_as_it_is(invoke: Invoke, fake: FakeFlatfile, status: str) -> None:
    """A job that ended before its message was dead-lettered is only read, never failed."""
    event, job_id = dead_job(fake, status)
    assert invoke(event) == {"batchItemFailures": []}
    assert fake.calls(job_id) == [(f"GET /jobs/{job_id}", None)]
    assert fake.job(job_id)["status"] == status


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_record_stays_in_the_queue_when_flatfile_cannot_be_told(
    invoke: Invoke, fake: FakeFlatfile, aws: AwsStack
) -> None:
    """When Flatfile refuses (a 401, not retried), the record is reported failed so it stays in the DLQ."""
    record = load_event("dead_letter/dead_letter.json")["Records"][0]
    event = aws.enqueue(record, aws.dlq_url)
    _, job_id = dead_job(fake, "executing")
    fake.add_fault(Fault(path=f"/jobs/{job_id}", method="GET", status=401))
    message_id = event["Records"][0]["messageId"]
    assert invoke(event) == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert fake.job(job_id)["status"] == "executing"


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_unreachable_flatfile_keeps_the_record_for_a_retry(
    dead_letter: ModuleType, lambda_context: LocalContext, fake: FakeFlatfile, aws: AwsStack
) -> None:
    """A whole batch that failed is answered with its record, not raised; the job is untouched, a retry fails it."""
    record = load_event("dead_letter/dead_letter.json")["Records"][0]
    event = aws.enqueue(record, aws.dlq_url)
    _, job_id = dead_job(fake, "executing")
    fake.add_fault(Fault(path=f"/jobs/{job_id}", method="GET", status=401, times=1))
    response = dead_letter.lambda_handler(event, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert fake.job(job_id)["status"] == "executing"
    assert dead_letter.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert fake.job(job_id)["status"] == "failed"


def test_only_the_failing_record_of_a_batch_is_kept(
    invoke: Invoke, fake: FakeFlatfile, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a batch of two, the record Flatfile refuses is reported; the other job is failed."""
    event, job_id = dead_job(fake, "executing")
    good = event["Records"][0]
    body = json.loads(good["body"])
    body["context"]["jobId"] = other_id = "us_jb_spcdead2"
    fake.add_job("space:configure", job_id=other_id, status="executing")
    fake.add_fault(Fault(path=f"/jobs/{other_id}", method="GET", status=401))
    bad = {**good, "messageId": "0d4f7e1a-0000-4000-8000-0000000000ee", "body": json.dumps(body)}
    assert invoke({"Records": [good, bad]}) == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    assert fake.job(job_id)["status"] == "failed"
    assert fake.job(other_id)["status"] == "executing"
    assert "JobsDeadLettered" in metric_names(capsys.readouterr().out)


def test_job_whose_worker_died_is_failed_with_the_crash_message(
    invoke: Invoke, fake: FakeFlatfile, aws: AwsStack
) -> None:
    """A run that left its record in progress (the worker died) is failed naming out of memory and the limits."""
    event, job_id = dead_job(fake, "executing")
    store = dynamodb_persistence(aws.table_name)
    store.configure(job_config(), key_prefix=JOB_KEY_PREFIX)
    store.save_inprogress({"job_id": job_id}, remaining_time_in_millis=1)
    assert invoke(event) == {"batchItemFailures": []}
    message = CRASH_MESSAGE.format(job_id=job_id, limits=" (the worker has 1024 MB and 900 s per attempt)")
    job = fake.job(job_id)
    assert (job["status"], job["outcome"]["message"]) == ("failed", message)


def test_unreadable_dead_letter_is_dropped_at_once_logged_and_counted(
    invoke: Invoke, fake: FakeFlatfile, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dead letter with no job in it can never be handled: logged at ERROR, counted, dropped, no API call."""
    record = load_event("dead_letter/dead_letter.json")["Records"][0]
    event = {"Records": [{**record, "body": "not json"}]}
    assert invoke(event) == {"batchItemFailures": []}
    assert fake.requests == []
    out = capsys.readouterr().out
    assert "DeadLettersDropped" in metric_names(out)
    [line] = [json.loads(x) for x in out.splitlines() if '"Giving up on a dead letter' in x]
    assert (line["level"], line["message_id"]) == ("ERROR", record["messageId"])
    assert line["reason"].startswith("ValueError: the record holds no job:ready event")


@pytest.mark.parametrize(
    ("receives", "dropped"), [(DEAD_LETTER_MAX_RECEIVES - 1, False), (DEAD_LETTER_MAX_RECEIVES, True)]
)
def test_dead_letter_flatfile_keeps_refusing_is_given_up_after_bounded_tries(
    invoke: Invoke, fake: FakeFlatfile, capsys: pytest.CaptureFixture[str], receives: int, dropped: bool
) -> None:
    """A dead letter Flatfile keeps refusing is kept for another try, until its 10th receive: then dropped."""
    event, job_id = dead_job(fake, "executing")
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(receives)
    fake.add_fault(Fault(path=f"/jobs/{job_id}", method="GET", status=401))
    kept = [] if dropped else [{"itemIdentifier": event["Records"][0]["messageId"]}]
    assert invoke(event) == {"batchItemFailures": kept}
    assert fake.job(job_id)["status"] == "executing"
    out = capsys.readouterr().out
    errors = [json.loads(x) for x in out.splitlines() if x.startswith('{"level":"ERROR"')]
    assert [line["receive_count"] for line in errors] == [receives]
    assert ("Giving up" in errors[0]["message"]) is dropped
    assert metric_names(out) == ["DeadLettersDropped" if dropped else "DeadLettersRetried"]


@pytest.mark.parametrize(
    "job_id",
    ["../../events", "x/../../spaces/us_sp_1#", "../sheets/us_sh_1?a=", "us_jb_1/complete", "", 42],
    ids=ascii,
)
def test_a_record_whose_job_id_is_not_a_flatfile_id_is_dropped_without_a_request(
    invoke: Invoke, fake: FakeFlatfile, capsys: pytest.CaptureFixture[str], job_id: object
) -> None:
    """A dead letter with a hostile context.jobId: ERROR log naming the field, record consumed, no request."""
    event = load_event("dead_letter/dead_letter.json")
    body = json.loads(event["Records"][0]["body"])
    body["context"]["jobId"] = job_id
    event["Records"][0]["body"] = json.dumps(body)
    assert invoke(event) == {"batchItemFailures": []}  # retrying could never succeed: not kept
    assert fake.requests == []
    out = capsys.readouterr().out
    [line] = [json.loads(x) for x in out.splitlines() if '"Giving up on a dead letter' in x]
    assert line["level"] == "ERROR"
    assert line["reason"].startswith("ValueError: event.context.jobId ")
    assert metric_names(out) == ["DeadLettersDropped"]
