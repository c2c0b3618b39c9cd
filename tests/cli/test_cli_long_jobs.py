"""Long jobs on this machine: `invoke` and `serve`'s stack run them through the SDK's local test runner."""

from __future__ import annotations

import json
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


def test_local_stack_runs_a_long_job_from_a_delivery_and_shows_its_progress() -> None:
    """Through the receiver and the queue: the worker starts the execution; its ticks reach the fake in order."""
    with LocalStack(LocalOptions(serve_http=False, allow_unsigned=True, workers=1), root=ROOT) as stack:
        assert stack.fake is not None
        event = stack.fake.create_job_event("file:extract", environment_id="us_env_local")
        job_id = str(event["context"]["jobId"])
        from flatfile_jobs_testing import http_api_event

        answer = stack.invoke_receiver(
            http_api_event(
                "POST", "/webhook", {"content-type": "application/json"}, json.dumps(event).encode()
            )
        )
        assert answer["statusCode"] == 202
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
