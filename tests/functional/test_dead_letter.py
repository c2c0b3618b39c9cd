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

from flatfile_jobs.testing import FakeFlatfile, Fault
from flatfile_jobs_cli._events import FunctionName
from flatfile_jobs_cli._lambda import LocalContext
from flatfile_stack.dead_letter import DEAD_LETTER_MESSAGE

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
