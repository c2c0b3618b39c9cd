"""`flatfile-jobs generate-event`: events for any job in each function's shape, which `invoke` then runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flatfile_jobs import webhook
from flatfile_jobs_cli.__main__ import main
from flatfile_jobs_cli._events import detect_function, is_raw
from flatfile_jobs_testing import request_body

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks test vector's secret


def generate(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["generate-event", *args]) == 0
    event = json.loads(capsys.readouterr().out)
    assert isinstance(event, dict)
    return event


def test_a_worker_event_is_an_sqs_record_with_the_body_and_three_attributes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """worker: one SQS record whose body is the job:ready event (context and input as given) and whose
    eventId/jobId/job attributes match it."""
    event = generate(
        capsys, "worker", "sheet:export", "--context", "sheetId=us_sh_1", "--context", "jobId=us_jb_gen1",
        "--input", '{"format": "csv"}',
    )  # fmt: skip
    (record,) = event["Records"]
    body = json.loads(record["body"])
    assert body["topic"] == "job:ready"
    assert body["payload"] == {
        "job": "sheet:export", "domain": "sheet", "operation": "export", "status": "ready", "info": None,
        "isPart": False, "input": {"format": "csv"},
    }  # fmt: skip
    assert body["context"]["sheetId"] == "us_sh_1"
    assert body["context"]["jobId"] == body["origin"]["id"] == "us_jb_gen1"
    assert body["context"]["environmentId"] == "us_env_local"
    attributes = {name: value["stringValue"] for name, value in record["messageAttributes"].items()}
    assert attributes == {"eventId": body["id"], "jobId": "us_jb_gen1", "job": "sheet:export"}
    assert record["eventSource"] == "aws:sqs"
    assert detect_function(Path("event.json"), event) == "worker"


def test_a_signed_receiver_event_verifies_with_the_secret(capsys: pytest.CaptureFixture[str]) -> None:
    """receiver --secret: an HTTP API v2 POST /webhook whose Standard Webhooks signature verifies."""
    event = generate(capsys, "receiver", "space:configure", "--secret", SECRET)
    assert (event["version"], event["routeKey"]) == ("2.0", "POST /webhook")
    body = request_body(event)
    webhook.verify([SECRET], body, event["headers"])
    assert event["headers"]["webhook-id"] == json.loads(body)["id"]
    assert detect_function(Path("event.json"), event) == "receiver"


def test_sign_reads_the_secret_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """receiver --sign takes $WEBHOOK_SECRET; without --sign the event carries no signature."""
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    signed = generate(capsys, "receiver", "space:configure", "--sign")
    webhook.verify([SECRET], request_body(signed), signed["headers"])
    unsigned = generate(capsys, "receiver", "space:configure")
    assert not any(name.startswith("webhook-") for name in unsigned["headers"])


def test_a_dead_letter_event_is_the_record_from_the_dead_letter_queue(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """dead-letter: the record names the queue it was redriven from, so it is detected as the DLQ's."""
    event = generate(capsys, "dead-letter", "file:process")
    (record,) = event["Records"]
    assert record["attributes"]["DeadLetterQueueSourceArn"].endswith(":JobQueue")
    assert record["eventSourceARN"].endswith(":DeadLetterQueue")
    assert detect_function(Path("event.json"), event) == "dead_letter"


def test_a_raw_event_is_the_event_as_flatfile_stores_it(capsys: pytest.CaptureFixture[str]) -> None:
    """raw: just the job:ready event."""
    event = generate(capsys, "raw", "workbook:submit", "--context", "workbookId=us_wb_1")
    assert is_raw(event)
    assert (event["payload"]["job"], event["context"]["workbookId"]) == ("workbook:submit", "us_wb_1")


@pytest.mark.parametrize("shape", ["worker", "dead-letter", "receiver", "raw"])
def test_each_generated_event_runs_through_invoke(
    shape: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every shape is accepted by `invoke` (raw is wrapped as the worker's event): the worker completes the job,
    the dead-letter function fails it, the receiver enqueues it."""
    path = tmp_path / "event.json"
    path.write_text(json.dumps(generate(capsys, shape, "space:configure", "--context", "jobId=us_jb_gen2")))
    assert main(["invoke", str(path)]) == 0
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    if shape == "receiver":
        assert answer["statusCode"] == 202
        assert "us_jb_gen2  space:configure" in captured.err
    elif shape == "dead-letter":
        assert answer == {"batchItemFailures": []}
        assert "Job us_jb_gen2 in the fake Flatfile API: failed  " in captured.err
    else:
        assert answer == {"batchItemFailures": []}
        assert "Job us_jb_gen2 in the fake Flatfile API: complete  Job complete" in captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["worker", "export"], "a job name is '<domain>:<operation>'"),
        (["worker", "sheet:export", "--context", "sheetId"], "give KEY=VALUE"),
        (["worker", "sheet:export", "--input", "[1]"], "--input must be a JSON object"),
        (["worker", "sheet:export", "--input", "{nope"], "--input is not JSON"),
        (["worker", "sheet:export", "--sign"], "only receiver events are signed"),
        (["receiver", "sheet:export", "--sign"], "no signing secret"),
        (["receiver", "sheet:export", "--secret", "whsec_!!!"], "invalid signing secret"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad job name, context pair, input or signing request exits 2 with one line and prints no event."""
    assert main(["generate-event", *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.err.count("\n") == 1
    assert captured.out == ""
