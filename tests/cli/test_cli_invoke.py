"""`flatfile-jobs invoke EVENT_FILE`: one event through one function; the response on stdout, logs on stderr."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from flatfile_jobs_cli.__main__ import main
from flatfile_jobs_testing import http_api_event, job_ready_event

ROOT = Path(__file__).resolve().parents[2]
REPO_EVENTS = sorted(
    path.relative_to(ROOT)
    for folder in ("receiver", "worker", "dead_letter", "poller")
    for path in (ROOT / "events" / folder).glob("*.json")
)


def write(path: Path, event: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(event))
    return path


def sqs_event(body: dict[str, Any], *, dead: bool = False) -> dict[str, Any]:
    attributes = {"ApproximateReceiveCount": "6" if dead else "1"}
    if dead:
        attributes["DeadLetterQueueSourceArn"] = "arn:aws:sqs:us-east-1:123456789012:JobQueue"
    return {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "r-1",
                "body": json.dumps(body),
                "attributes": attributes,
                "messageAttributes": {"eventId": {"stringValue": body["id"], "dataType": "String"}},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:JobQueue",
                "awsRegion": "us-east-1",
            }
        ]
    }


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(["invoke", *args])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


@pytest.mark.parametrize("path", REPO_EVENTS, ids=str)
def test_every_event_file_in_the_repo_runs_and_prints_the_response(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each events/<function>/*.json runs through its function; the response is JSON on stdout."""
    code, answer, err = invoke(capsys, str(path))
    assert code == 0, err
    expected = {"receiver": "statusCode", "poller": "enqueued"}.get(path.parent.name, "batchItemFailures")
    assert expected in answer
    assert f"functions/{path.parent.name}/app.py" in err


def test_a_receiver_event_is_resigned_and_enqueued(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An old or unsigned receiver event gets a fresh signature: 202, and the message for the worker is listed."""
    event = job_ready_event("file:process", job_id="us_jb_inv1")
    body = json.dumps(event).encode()
    path = write(
        tmp_path / "receiver" / "post.json",
        http_api_event("POST", "/webhook", {"content-type": "application/json"}, body),
    )
    code, answer, err = invoke(capsys, str(path))
    assert code == 0
    assert answer["statusCode"] == 202
    assert json.loads(answer["body"])["jobId"] == "us_jb_inv1"
    assert "Enqueued for the worker: 1 message(s)" in err
    assert "us_jb_inv1  file:process" in err
    assert '"message":"Delivery answered"' in err  # the function's own log line, as Lambda writes it


def test_a_base64_receiver_event_is_signed_over_its_decoded_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """isBase64Encoded bodies are signed as the bytes the sender sent, so they verify."""
    body = json.dumps(job_ready_event("space:configure")).encode()
    event = http_api_event("POST", "/webhook", {"content-type": "application/json"}, body)
    event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
    code, answer, _ = invoke(capsys, str(write(tmp_path / "b64.json", event)))
    assert code == 0
    assert answer["statusCode"] == 202


def test_a_worker_event_runs_its_job_in_the_fake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A worker event runs the job (created 'ready' in the fake first) and reports how it ended."""
    path = write(tmp_path / "batch.json", sqs_event(job_ready_event("space:configure", job_id="us_jb_w1")))
    code, answer, err = invoke(capsys, str(path))
    assert code == 0
    assert answer == {"batchItemFailures": []}
    assert "Job us_jb_w1 in the fake Flatfile API: complete  Job complete" in err


def test_a_dead_letter_event_fails_its_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A record from the dead-letter queue (detected by its source attribute) fails its job in Flatfile."""
    path = write(
        tmp_path / "dlq.json", sqs_event(job_ready_event("space:configure", job_id="us_jb_d1"), dead=True)
    )
    code, answer, err = invoke(capsys, str(path))
    assert code == 0
    assert answer == {"batchItemFailures": []}
    assert "Job us_jb_d1 in the fake Flatfile API: failed  This job could not be processed" in err


def test_a_scheduled_event_runs_the_poller(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A schedule event runs the poller against the fake, which holds the five sample jobs' events."""
    schedule = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    code, answer, err = invoke(capsys, str(write(tmp_path / "tick.json", schedule)))
    assert code == 0
    assert answer["enqueued"] == 5
    assert answer["environmentId"] == "us_env_local"
    assert "Enqueued for the worker: 5 message(s)" in err


def test_function_flag_overrides_detection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--function dead_letter runs an ordinary SQS batch through the dead-letter function."""
    path = write(tmp_path / "batch.json", sqs_event(job_ready_event("space:configure", job_id="us_jb_f1")))
    code, _, err = invoke(capsys, str(path), "--function", "dead_letter")
    assert code == 0
    assert "functions/dead_letter/app.py" in err
    assert "us_jb_f1 in the fake Flatfile API: failed" in err


def test_a_function_error_is_printed_as_lambda_does_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """When the handler raises, stdout gets {"errorType", "errorMessage"} and the exit status is 1."""
    code, answer, _ = invoke(
        capsys, str(write(tmp_path / "x.json", {"Records": "nope"})), "--function", "worker"
    )
    assert code == 1
    assert set(answer) == {"errorType", "errorMessage"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such event file"),
        ("[1, 2]", "must hold a JSON object"),
        ("{not json", "cannot read"),
        ('{"hello": "world"}', "pass --function receiver|worker|dead_letter|poller"),
    ],
)
def test_unusable_event_files_are_one_line_errors(
    tmp_path: Path, content: str | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Missing, malformed or unrecognisable files exit 2 with one line."""
    path = tmp_path / "event.json"
    if content is not None:
        path.write_text(content)
    code, _, err = invoke(capsys, str(path))
    assert code == 2
    assert message in err
    assert err.count("\n") == 1


def test_a_raw_event_runs_in_the_worker_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    """events/raw/job_ready.json (no Lambda wrapping) is wrapped as the worker's SQS event and its job runs."""
    code, answer, err = invoke(capsys, "events/raw/job_ready.json")
    assert code == 0, err
    assert answer == {"batchItemFailures": []}
    assert "raw Flatfile event: wrapped as the worker's event" in err
    assert "Job us_jb_spcconf1 in the fake Flatfile API: complete  Job complete" in err


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("receiver", "Enqueued for the worker: 1 message(s)"),
        ("dead_letter", "Job us_jb_spcconf1 in the fake Flatfile API: failed"),
        ("poller", "Enqueued for the worker: 1 message(s)"),
    ],
)
def test_a_raw_event_is_wrapped_for_any_function(
    function: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--function picks the wrapping: a signed request for the receiver, a DLQ record, an event the poller reads."""
    code, answer, err = invoke(
        capsys, "events/raw/job_ready.json", "--function", function, "--environment-id", "us_env_example1"
    )
    assert code == 0, err
    assert f"functions/{function}/app.py" in err
    assert expected in err
    if function == "receiver":
        assert answer["statusCode"] == 202


def test_invoke_prints_the_progress_updates_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    """The ticks the fake receives are printed as Flatfile shows them (percent and info), first to last.

    Ticks within a second are coalesced by the library, so the middle one may not reach Flatfile; the serve
    test compares the printed lines with the fake's requests one for one.
    """
    code, _, err = invoke(capsys, "events/worker/space_configure.json")
    assert code == 0
    ticks = [line for line in err.splitlines() if line.startswith("progress ")]
    assert ticks[:2] == [
        "progress space:configure us_jb_spcconf1   0%  Accepted",
        "progress space:configure us_jb_spcconf1  10%  Starting configuration...",
    ]
    assert ticks[-1] == "progress space:configure us_jb_spcconf1 100%  Configuration complete."
    percents = [int(line.split()[3].rstrip("%")) for line in ticks]
    assert percents == sorted(percents)


def test_invoke_prints_the_outcome_as_the_user_sees_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A custom outcome shows its heading, message and the button with where it leads."""
    event = job_ready_event("file:process", job_id="us_jb_o1", workbook_id="us_wb_o1")
    code, _, err = invoke(capsys, str(write(tmp_path / "batch.json", sqs_event(event))))
    assert code == 0
    assert (
        "Job us_jb_o1 in the fake Flatfile API: complete  File processed - Your file was processed successfully.\n"
        "  next: [Review data] opens workbook us_wb_o1\n"
    ) in err


def test_a_job_no_handler_ran_says_where_to_register_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An event for a job without a handler leaves it ready, and the report says where handlers are registered."""
    event = job_ready_event("sheet:export", job_id="us_jb_n1")
    code, _, err = invoke(capsys, str(write(tmp_path / "batch.json", sqs_event(event))))
    assert code == 0
    assert "Job us_jb_n1 in the fake Flatfile API: ready" in err
    assert (
        "no handler ran: is sheet:export registered on the listener in flatfile_app_jobs/__init__.py?" in err
    )
