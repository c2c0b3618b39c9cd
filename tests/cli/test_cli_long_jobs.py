"""Long jobs on this machine: `invoke` and `serve`'s stack run them through the SDK's local test runner."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from flatfile_jobs_cli.__main__ import main
from flatfile_jobs_cli.local import LocalOptions, LocalStack
from flatfile_jobs_testing import job_ready_event

ROOT = Path(__file__).resolve().parents[2]


def _sqs_event(body: dict[str, object]) -> dict[str, object]:
    return {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "r-1",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:JobQueue",
                "awsRegion": "us-east-1",
            }
        ]
    }


def test_invoke_runs_a_long_job_to_the_end_in_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker event for file:extract (40 minutes of waits) ends complete in the fake within seconds."""
    event = job_ready_event("file:extract", job_id="us_jb_long1", environment_id="us_env_local")
    path = tmp_path / "long.json"
    path.write_text(json.dumps(_sqs_event(event)))
    started = time.monotonic()
    assert main(["invoke", str(path)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"batchItemFailures": []}
    assert "Job us_jb_long1 in the fake Flatfile API: complete" in captured.err
    assert time.monotonic() - started < 30


def _deliver_long_job(stack: LocalStack) -> str:
    """A ``file:extract`` job:ready posted to the local receiver (queued: 202); its job id."""
    from flatfile_jobs_testing import http_api_event

    assert stack.fake is not None
    event = stack.fake.create_job_event("file:extract", environment_id="us_env_local")
    body = json.dumps(event).encode()
    answer = stack.invoke_receiver(
        http_api_event("POST", "/webhook", {"content-type": "application/json"}, body)
    )
    assert answer["statusCode"] == 202
    return str(event["context"]["jobId"])


def test_local_stack_runs_a_long_job_from_a_delivery_and_shows_its_progress() -> None:
    """Through the receiver and the queue: the worker starts the execution; its ticks reach the fake in order."""
    with LocalStack(LocalOptions(serve_http=False, allow_unsigned=True, workers=1), root=ROOT) as stack:
        assert stack.fake is not None
        job_id = _deliver_long_job(stack)
        assert stack.drain(timeout=60)
        assert stack.durable is not None
        assert list(stack.durable.executions) == [job_id]
        progress = [
            body["progress"]
            for path, body in stack.fake.calls(job_id)
            if isinstance(body, dict) and path.endswith("/ack")
        ]
        assert progress == [0, 10, 40, 80]
        assert stack.fake.job(job_id)["status"] == "complete"
        assert stack.dead_lettered == []  # an execution that finished its job is not reported


def test_local_stack_fails_a_long_job_whose_execution_ended_failed_through_its_dead_letters() -> None:
    """As in the stack: an execution that ends FAILED (failing the job kept being refused) is reported as Lambda's
    status change, which the dead-letter function turns into the job's one successful fail."""
    from flatfile_jobs_testing import Fault
    from flatfile_stack.dead_letter import long_job_ended_message

    with LocalStack(LocalOptions(serve_http=False, allow_unsigned=True, workers=1), root=ROOT) as stack:
        assert stack.fake is not None
        stack.fake.add_fault(Fault(path="/jobs/*/ack", method="POST", status=400))
        # the fail step's three attempts are refused; the dead-letter function's fail goes through
        stack.fake.add_fault(Fault(path="/jobs/*/fail", method="POST", status=400, times=3))
        job_id = _deliver_long_job(stack)
        assert stack.drain(timeout=60)
        [dead] = stack.dead_lettered
        status_change = json.loads(dead["body"])
        assert status_change["detail-type"] == "Durable Execution Status Change"
        assert (status_change["detail"]["durableExecutionName"], status_change["detail"]["status"]) == (
            job_id,
            "FAILED",
        )
        message = long_job_ended_message(job_id, "FAILED")
        fails = [body for path, body in stack.fake.calls(job_id) if path.endswith("/fail")]
        assert fails == [{"info": message, "outcome": {"acknowledge": True, "message": message}}]
        assert stack.fake.job(job_id)["status"] == "failed"


def test_local_starter_reports_a_timed_out_execution_as_lambda_does() -> None:
    """An execution past its timeout (1 s, a step sleeping 1.5 s) is reported as a TIMED_OUT status change whose
    timestamps the dead-letter function turns into "timed out after 1 s"."""
    from flatfile_jobs import FlatfileEvent, FlatfileListener, Steps, long_job_handler
    from flatfile_jobs_cli._durable import LocalDurableStarter
    from flatfile_jobs_testing import FakeFlatfile
    from flatfile_stack import runtime
    from flatfile_stack.dead_letter import fail_dead_letter, long_job_ended_message
    from flatfile_stack.queues import MemoryJobQueue
    from flatfile_stack.settings import Settings

    slept = threading.Event()

    def sleep(tick: object) -> None:
        time.sleep(1.5)
        slept.set()

    def slow(event: FlatfileEvent, steps: Steps) -> None:
        steps.run("slow", sleep)

    reported: list[dict[str, object]] = []
    with FakeFlatfile() as fake:
        listener = FlatfileListener().use(
            long_job_handler("file:extract", slow, api_url=fake.url, token=fake.token, tick_interval=0)
        )
        stack_runtime = runtime.Runtime(
            settings=Settings(), queue=MemoryJobQueue(), webhook_secrets=str, api_token=lambda: fake.token,
            listener=listener, api_url=fake.url,
        )  # fmt: skip
        starter = LocalDurableStarter(
            lambda: stack_runtime, execution_timeout=1, on_unfinished=reported.append
        )
        try:
            event = fake.create_job_event("file:extract")
            job_id = str(event["context"]["jobId"])
            starter.start(job_id, event)
            assert (
                str(getattr(starter.result(job_id, timeout=30).execution_status, "value", "")) == "TIMED_OUT"
            )
            [status_change] = reported
            detail = status_change["detail"]
            assert isinstance(detail, dict)
            assert (detail["durableExecutionName"], detail["status"]) == (job_id, "TIMED_OUT")
            assert fail_dead_letter(json.dumps(status_change), stack_runtime) is True
            assert fake.job(job_id)["outcome"]["message"] == long_job_ended_message(
                job_id, "TIMED_OUT", seconds=1
            )
        finally:
            slept.wait(5)  # the step outlives its execution (as in Lambda, until the invocation's timeout)
            time.sleep(0.5)  # its invocation then finds the execution closed and ends
            starter.close()
