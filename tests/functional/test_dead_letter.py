"""DeadLetterFunction in-process: dead-lettered jobs are failed in Flatfile with a clear message.

``functions/dead_letter/app.py``'s ``lambda_handler`` gets ``events/dead_letter/dead_letter.json`` (or a
message taken from moto's dead-letter queue); the API key comes from moto's Secrets Manager.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
import pytest

from flatfile_jobs_cli._events import FunctionName
from flatfile_jobs_testing import FakeFlatfile, Fault, LocalContext
from flatfile_stack.dead_letter import (
    CRASH_MESSAGE,
    DEAD_LETTER_MAX_RECEIVES,
    DEAD_LETTER_MESSAGE,
    long_job_ended_message,
)
from flatfile_stack.idempotency import JOB_KEY_PREFIX, dynamodb_persistence, job_config

from ._support import REGION, ROOT, AwsStack, StackEnv, load_event, metric_names, point_logs_at_stdout

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


# ------------------------------------------------------------ long jobs whose durable execution ended unfinished

LONG_JOB_ID = "us_jb_longdead1"
DURABLE_WORKER = "arn:aws:lambda:us-east-1:123456789012:function:flatfile-jobs-durable-worker"


def status_change(status: str, name: object = LONG_JOB_ID, **detail: object) -> dict[str, Any]:
    """Lambda's EventBridge event for a durable execution of the durable worker that ended ``status``."""
    return {
        "version": "0",
        "id": "d019b03c-a8a3-9d58-85de-241e96206538",
        "detail-type": "Durable Execution Status Change",
        "source": "aws.lambda",
        "account": "123456789012",
        "time": "2026-01-16T10:00:03Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "durableExecutionArn": f"{DURABLE_WORKER}:3/durable-execution/{name}/9f7d84c9-ea3d-3ffc-b3e5",
            "durableExecutionName": name,
            "functionArn": f"{DURABLE_WORKER}:3",
            "status": status,
            "startTimestamp": "2026-01-15T10:00:02.500Z",
            "endTimestamp": "2026-01-16T10:00:02.700Z",
            **detail,
        },
    }


def from_dead_letter_queue(aws: AwsStack, body: dict[str, Any]) -> dict[str, Any]:
    """The SQS event Lambda hands the dead-letter function for ``body`` sent to the DLQ (as EventBridge does)."""
    return aws.enqueue({"body": json.dumps(body), "messageAttributes": {}}, aws.dlq_url)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("TIMED_OUT", "it ran past its time limit (its durable execution timed out after 86400 s)"),
        ("STOPPED", "its durable execution was stopped"),
        ("FAILED", "its durable execution failed"),
    ],
)
def test_long_job_whose_execution_ended_unfinished_is_failed_saying_how(
    invoke: Invoke,
    fake: FakeFlatfile,
    aws: AwsStack,
    capsys: pytest.CaptureFixture[str],
    status: str,
    reason: str,
) -> None:
    """An execution that timed out, was stopped or failed leaves its still-executing job failed, saying how."""
    fake.add_job("file:extract", job_id=LONG_JOB_ID, status="executing", environment_id="us_env_example1")
    event = from_dead_letter_queue(aws, status_change(status))
    point_logs_at_stdout()
    assert invoke(event) == {"batchItemFailures": []}
    message = (
        f"Long job ended without finishing: {reason}. Please try again; if it keeps happening, contact "
        f"support with job id {LONG_JOB_ID}."
    )
    assert message == long_job_ended_message(LONG_JOB_ID, status, seconds=86400)
    assert fake.calls(LONG_JOB_ID) == [
        (f"GET /jobs/{LONG_JOB_ID}", None),
        (
            f"POST /jobs/{LONG_JOB_ID}/fail",
            {"info": message, "outcome": {"acknowledge": True, "message": message}},
        ),
    ]
    assert fake.job(LONG_JOB_ID)["status"] == "failed"
    out = capsys.readouterr().out
    assert metric_names(out) == ["JobsDeadLettered"]
    [line] = [json.loads(x) for x in out.splitlines() if '"Dead-lettered job"' in x]
    assert (line["level"], line["durable_execution_status"], line["marked_failed"]) == ("ERROR", status, True)


def test_timed_out_execution_without_timestamps_still_fails_the_job(
    invoke: Invoke, fake: FakeFlatfile, aws: AwsStack
) -> None:
    """An event whose timestamps don't read as ISO-8601: the message leaves the duration out, nothing else."""
    fake.add_job("file:extract", job_id=LONG_JOB_ID, status="executing")
    event = from_dead_letter_queue(
        aws, status_change("TIMED_OUT", startTimestamp="yesterday", endTimestamp=None)
    )
    assert invoke(event) == {"batchItemFailures": []}
    job = fake.job(LONG_JOB_ID)
    assert job["status"] == "failed"
    assert "its durable execution timed out)" in job["outcome"]["message"]


def test_the_same_status_change_twice_fails_the_job_once(
    invoke: Invoke, fake: FakeFlatfile, aws: AwsStack
) -> None:
    """EventBridge may deliver an event twice: the second finds the job failed and only reads it."""
    fake.add_job("file:extract", job_id=LONG_JOB_ID, status="executing")
    body = status_change("TIMED_OUT")
    assert invoke(from_dead_letter_queue(aws, body)) == {"batchItemFailures": []}
    assert invoke(from_dead_letter_queue(aws, body)) == {"batchItemFailures": []}
    paths = [path for path, _ in fake.calls(LONG_JOB_ID)]
    assert paths == [f"GET /jobs/{LONG_JOB_ID}", f"POST /jobs/{LONG_JOB_ID}/fail", f"GET /jobs/{LONG_JOB_ID}"]


@pytest.mark.parametrize("job_status", ["complete", "failed", "canceled"])
def test_status_change_of_a_job_that_already_ended_sends_nothing(
    invoke: Invoke, fake: FakeFlatfile, aws: AwsStack, job_status: str
) -> None:
    """The execution ended the job before it ended itself (its fail-once, a cancel): the job is only read."""
    fake.add_job("file:extract", job_id=LONG_JOB_ID, status=job_status)
    assert invoke(from_dead_letter_queue(aws, status_change("FAILED"))) == {"batchItemFailures": []}
    assert fake.calls(LONG_JOB_ID) == [(f"GET /jobs/{LONG_JOB_ID}", None)]
    assert fake.job(LONG_JOB_ID)["status"] == job_status


def test_long_job_start_the_durable_worker_gave_up_on_is_failed(
    invoke: Invoke, fake: FakeFlatfile, aws: AwsStack
) -> None:
    """The durable worker's own dead letter ({"event": <job:ready event>}) fails the job with the general message."""
    job_event = json.loads(load_event("dead_letter/dead_letter.json")["Records"][0]["body"])
    job_id = str(job_event["context"]["jobId"])
    fake.add_job("space:configure", job_id=job_id, status="executing")
    assert invoke(from_dead_letter_queue(aws, {"event": job_event})) == {"batchItemFailures": []}
    message = DEAD_LETTER_MESSAGE.format(job_id=job_id)
    assert fake.calls(job_id)[-1] == (
        f"POST /jobs/{job_id}/fail",
        {"info": message, "outcome": {"acknowledge": True, "message": message}},
    )


def _with(body: dict[str, Any], **changes: object) -> dict[str, Any]:
    return {**body, **changes}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (status_change("SUCCEEDED"), "detail.status 'SUCCEEDED' is not an unfinished end"),
        (status_change("RUNNING"), "detail.status 'RUNNING' is not an unfinished end"),
        (status_change("TIMED_OUT", name="../../spaces/us_sp_1#"), "detail.durableExecutionName must be"),
        (status_change("TIMED_OUT", name="us-jb-1"), "detail.durableExecutionName must be"),
        (status_change("TIMED_OUT", name="x" * 129), "detail.durableExecutionName must be"),
        (status_change("STOPPED", name=42), "detail.durableExecutionName must be"),
        (status_change("STOPPED", name=None), "detail.durableExecutionName must be"),
        (_with(status_change("FAILED"), source="aws.events"), "the durable execution status change has no"),
        (_with(status_change("FAILED"), detail="TIMED_OUT"), "the durable execution status change has no"),
        ({"event": "us_jb_1"}, "event.context.jobId is missing"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_malformed_long_job_dead_letter_is_dropped_logged_and_counted(
    invoke: Invoke,
    fake: FakeFlatfile,
    aws: AwsStack,
    capsys: pytest.CaptureFixture[str],
    body: dict[str, Any],
    reason: str,
) -> None:
    """A status change that names no job to fail (or one no execution leaves unfinished): ERROR, counted,
    consumed, no request; the function does not crash."""
    event = from_dead_letter_queue(aws, body)
    point_logs_at_stdout()
    assert invoke(event) == {"batchItemFailures": []}
    assert fake.requests == []
    out = capsys.readouterr().out
    [line] = [json.loads(x) for x in out.splitlines() if '"Giving up on a dead letter' in x]
    assert (line["level"], line["message_id"]) == ("ERROR", event["Records"][0]["messageId"])
    assert line["reason"].startswith(f"ValueError: {reason}")
    assert line.get("job_id") is None  # no id worth naming (Powertools leaves a None field out)
    assert metric_names(out) == ["DeadLettersDropped"]


def _rule_pattern(stack: str, account: str) -> dict[str, Any]:
    """template.yaml's LongJobEndedRule pattern as CloudFormation resolves it for ``stack`` in ``account``."""
    decode = importlib.import_module("cfnlint.decode")
    template, errors = decode.decode_str((ROOT / "template.yaml").read_text(encoding="utf-8"))
    assert not errors
    names = {
        "AWS::Partition": "aws",
        "AWS::Region": REGION,
        "AWS::AccountId": account,
        "AWS::StackName": stack,
    }

    def resolve(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Fn::Sub"}:
            return re.sub(r"\$\{([^}]+)\}", lambda match: names[match[1]], node["Fn::Sub"])
        if isinstance(node, dict):
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    pattern: dict[str, Any] = resolve(
        json.loads(json.dumps(template["Resources"]["LongJobEndedRule"]["Properties"]["EventPattern"]))
    )
    return pattern


def test_the_rule_routes_unfinished_durable_worker_executions_to_the_dead_letter_function(
    invoke: Invoke, fake: FakeFlatfile, aws: AwsStack
) -> None:
    """End to end on moto: the template's rule takes the durable worker's TIMED_OUT change (not a SUCCEEDED one,
    nor another function's) to the DLQ, and the dead-letter function fails that job."""
    account = "123456789012"
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name="LongJobEndedRule", EventPattern=json.dumps(_rule_pattern("flatfile-jobs", account)))
    events.put_targets(
        Rule="LongJobEndedRule", Targets=[{"Id": "DeadLetterQueue", "Arn": aws.queue_arn(aws.dlq_url)}]
    )
    worker = f"arn:aws:lambda:{REGION}:{account}:function:flatfile-jobs-durable-worker"
    sent = [
        ("us_jb_longdead1", f"{worker}:3", "TIMED_OUT"),
        ("us_jb_longdead2", f"{worker}:3", "SUCCEEDED"),
        ("us_jb_longdead3", f"{worker}-other:3", "TIMED_OUT"),
        ("us_jb_longdead4", f"arn:aws:lambda:{REGION}:{account}:function:elsewhere:1", "STOPPED"),
    ]
    for job_id, function_arn, status in sent:
        fake.add_job("file:extract", job_id=job_id, status="executing")
        detail = status_change(status, name=job_id)["detail"] | {"functionArn": function_arn}
        answer = events.put_events(
            Entries=[
                {
                    "Source": "aws.lambda",
                    "DetailType": "Durable Execution Status Change",
                    "Detail": json.dumps(detail),
                }
            ]
        )
        assert answer["FailedEntryCount"] == 0
    [message] = aws.receive(aws.dlq_url, delete=False)
    assert invoke(aws.lambda_event(message, aws.dlq_url)) == {"batchItemFailures": []}
    assert [fake.job(job_id)["status"] for job_id, _, _ in sent] == [
        "failed",
        "executing",
        "executing",
        "executing",
    ]
    assert fake.job("us_jb_longdead1")["outcome"]["message"] == long_job_ended_message(
        "us_jb_longdead1", "TIMED_OUT", seconds=86400
    )
