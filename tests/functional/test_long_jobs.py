"""Long jobs through the stack: the worker starts a durable execution and returns; the durable worker runs it.

The worker's ``lambda_handler`` runs with its template.yaml environment (moto, the fake Flatfile API); its
starter is the SDK's local test runner, which runs ``functions/durable_worker/app.py``'s handler code as Lambda
would. The cloud starter is checked against a loopback stand-in for Lambda's Invoke API (real botocore requests).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from flatfile_app_jobs import listener as sample_listener
from flatfile_jobs_cli._durable import LocalDurableStarter
from flatfile_jobs_cli._events import FunctionName
from flatfile_jobs_testing import FakeFlatfile, LocalContext
from flatfile_stack.long_jobs import LambdaDurableStarter, execution_name, execution_payload
from flatfile_stack.runtime import FunctionRuntime

from ._support import REGION, AwsStack, StackEnv, load_event, metric_names, point_logs_at_stdout

ACCEPTED = {"info": "Accepted", "progress": 0}
ALIAS_ARN = "arn:aws:lambda:us-east-1:123456789012:function:flatfile-jobs-durable-worker:live"


def long_job_record(fake: FakeFlatfile, job_id: str = "us_jb_extract1") -> dict[str, Any]:
    """An SQS event whose record carries a ``file:extract`` job:ready event; the job exists in the fake."""
    sqs_event = load_event("worker/workbook_submit.json")
    [record] = sqs_event["Records"]
    body = json.loads(record["body"])
    body["payload"]["job"] = "file:extract"
    body["context"]["jobId"] = body["origin"]["id"] = job_id
    record["body"] = json.dumps(body)
    record["messageAttributes"]["jobId"]["stringValue"] = job_id
    record["messageAttributes"]["job"]["stringValue"] = "file:extract"
    fake.add_job("file:extract", job_id=job_id, status="ready", environment_id="us_env_example1")
    return sqs_event


@pytest.fixture
def starter() -> Iterator[LocalDurableStarter]:
    local = LocalDurableStarter(FunctionRuntime(sample_listener))  # the durable worker's own runtime
    try:
        yield local
    finally:
        local.close()


@pytest.fixture
def worker(
    stack_env: StackEnv, load_app: Callable[[FunctionName], ModuleType], starter: LocalDurableStarter
) -> ModuleType:
    """The worker with its template environment, long jobs on (its starter is the local runner)."""
    stack_env.only("worker")
    module = load_app("worker")
    module.runtime().starter = starter
    return module


def test_worker_starts_the_long_job_and_the_durable_worker_runs_it(
    worker: ModuleType,
    starter: LocalDurableStarter,
    fake: FakeFlatfile,
    lambda_context: LocalContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The record succeeds at once (metric LongJobsStarted); the execution then runs the whole job."""
    event = long_job_record(fake)
    point_logs_at_stdout()
    assert worker.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert "LongJobsStarted" in metric_names(capsys.readouterr().out)
    assert list(starter.executions) == ["us_jb_extract1"]
    result = starter.result("us_jb_extract1")
    assert result.error is None
    calls = fake.calls("us_jb_extract1")
    assert calls[0] == ("POST /jobs/us_jb_extract1/ack", ACCEPTED)
    progress = [
        body["progress"] for path, body in calls[1:] if isinstance(body, dict) and path.endswith("/ack")
    ]
    assert progress == [10, 40, 80]
    assert calls[-1] == (
        "POST /jobs/us_jb_extract1/complete",
        {"outcome": {"message": "Extracted 1200 records from 3 sheets."}},
    )
    assert fake.job("us_jb_extract1")["status"] == "complete"


def test_redelivered_long_job_starts_nothing_new(
    worker: ModuleType,
    starter: LocalDurableStarter,
    fake: FakeFlatfile,
    lambda_context: LocalContext,
    aws: AwsStack,
) -> None:
    """The same record twice: one execution, one "Accepted", one complete."""
    event = long_job_record(fake)
    assert worker.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert worker.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    starter.result("us_jb_extract1")
    assert list(starter.executions) == ["us_jb_extract1"]
    calls = fake.calls("us_jb_extract1")
    assert calls.count(("POST /jobs/us_jb_extract1/ack", ACCEPTED)) == 1
    assert [path for path, _ in calls].count("POST /jobs/us_jb_extract1/complete") == 1


def test_with_long_jobs_off_the_long_job_runs_in_the_worker(
    stack_env: StackEnv,
    load_app: Callable[[FunctionName], ModuleType],
    fake: FakeFlatfile,
    lambda_context: LocalContext,
) -> None:
    """No DURABLE_WORKER_ARN (EnableLongJobs=false): the worker runs it inline; the 20-minute waits sleep.

    The worker's deadline (here 3 s left, 1 s margin) ends it: the job fails "Job timed out after N s".
    """
    stack_env.only("worker")
    stack_env.set(DEADLINE_MARGIN_SECONDS="1")
    worker = load_app("worker")
    lambda_context.set_remaining(3.0)
    event = long_job_record(fake, "us_jb_extract2")
    assert worker.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    calls = fake.calls("us_jb_extract2")
    assert calls[0] == ("POST /jobs/us_jb_extract2/ack", ACCEPTED)
    assert calls[1] == ("POST /jobs/us_jb_extract2/ack", {"progress": 10, "info": "Reading the file..."})
    assert calls[-1][0] == "POST /jobs/us_jb_extract2/fail"
    assert str(calls[-1][1]).count("Job timed out after") == 2
    assert fake.job("us_jb_extract2")["status"] == "failed"


# ---------------------------------------------------------------------------------------- the cloud starter


class _LambdaStandIn(ThreadingHTTPServer):
    """Lambda's Invoke on loopback: 202 for a new execution name, 409 (already started) for a known one."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _InvokeHandler)
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.names: set[str] = set()
        self.refuse_with: str | None = None


class _InvokeHandler(BaseHTTPRequestHandler):
    server: _LambdaStandIn

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {key.lower(): value for key, value in self.headers.items()}
        self.server.requests.append((self.path, headers, body))
        name = headers.get("x-amz-durable-execution-name", "")
        error = self.server.refuse_with or (
            "DurableExecutionAlreadyStartedException" if name in self.server.names else None
        )
        self.server.names.add(name)
        self.send_response(409 if error else 202)
        if error:
            self.send_header("x-amzn-ErrorType", error)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"message": error} if error else {}).encode())

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def lambda_api() -> Iterator[_LambdaStandIn]:
    server = _LambdaStandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _client(server: _LambdaStandIn) -> Any:
    return boto3.client(
        "lambda",
        region_name=REGION,
        endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_lambda_starter_invokes_the_alias_asynchronously_named_after_the_job(
    lambda_api: _LambdaStandIn,
) -> None:
    """One async Invoke of the alias ARN, DurableExecutionName = job id, the event as payload."""
    event = {"topic": "job:ready", "context": {"jobId": "us_jb_abc123"}, "payload": {"job": "file:extract"}}
    starter = LambdaDurableStarter(ALIAS_ARN, client=_client(lambda_api))
    assert starter.start("us_jb_abc123", event) == "us_jb_abc123"
    [(path, headers, body)] = lambda_api.requests
    assert path == "/2015-03-31/functions/" + ALIAS_ARN.replace(":", "%3A") + "/invocations"
    assert headers["x-amz-invocation-type"] == "Event"
    assert headers["x-amz-durable-execution-name"] == "us_jb_abc123"
    assert json.loads(body) == {"event": event}


def test_lambda_starter_treats_an_already_started_execution_as_started(lambda_api: _LambdaStandIn) -> None:
    """A second start with the same name (a redelivery) is answered 409 by Lambda: the job is already running."""
    event = {"context": {"jobId": "us_jb_abc123"}}
    starter = LambdaDurableStarter(ALIAS_ARN, client=_client(lambda_api))
    starter.start("us_jb_abc123", event)
    assert starter.start("us_jb_abc123", event) == "us_jb_abc123"
    assert len(lambda_api.requests) == 2
    assert lambda_api.requests[0][2] == lambda_api.requests[1][2]  # the same payload bytes each time


def test_lambda_starter_lets_other_refusals_fail_the_record(lambda_api: _LambdaStandIn) -> None:
    """Any other refusal (throttling, a missing alias) raises, so the record is retried."""
    lambda_api.refuse_with = "ResourceNotFoundException"
    starter = LambdaDurableStarter(ALIAS_ARN, client=_client(lambda_api))
    with pytest.raises(ClientError):
        starter.start("us_jb_abc123", {"context": {"jobId": "us_jb_abc123"}})


@pytest.mark.parametrize("job_id", ["", "us/jb/1", "us_jb_" + "x" * 60, "us jb", "us_jb_1?x=1"])
def test_an_id_that_cannot_name_an_execution_is_refused(job_id: str) -> None:
    """Lambda's names are [A-Za-z0-9_-]{1,64}: anything else is refused before any call."""
    with pytest.raises(ValueError):
        execution_name(job_id)


def test_payload_is_the_same_text_for_the_same_event() -> None:
    """Key order does not change the payload (Lambda compares payloads of same-named starts)."""
    assert execution_payload({"a": 1, "b": {"c": 2, "d": 3}}) == execution_payload(
        {"b": {"d": 3, "c": 2}, "a": 1}
    )


@pytest.mark.parametrize(
    ("function", "loads"), [("receiver", False), ("worker", False), ("durable_worker", True)]
)
def test_only_the_durable_worker_imports_the_sdk(function: str, loads: bool) -> None:
    """The beta SDK stays off the receiver's and the worker's import paths (a fresh interpreter each)."""
    import subprocess
    import sys

    from ._support import ROOT

    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(ROOT / 'functions' / function / 'app.py')!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(int('aws_durable_execution_sdk_python' in sys.modules))\n"
    )
    env = {"AWS_DEFAULT_REGION": REGION, "PATH": "/usr/bin:/bin", "POWERTOOLS_SERVICE_NAME": "t"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    assert done.stdout.strip() == str(int(loads))
