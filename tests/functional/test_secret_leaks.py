"""No piece of a secret in any log line of the functions as deployed: secrets read from Secrets Manager.

The functions build everything from their environment (``Runtime.from_env``): the signing
secret and the API key come from moto's Secrets Manager, the queue is moto's SQS, idempotency moto's DynamoDB.
Every logger runs at DEBUG, botocore's included (it logs each AWS request and response), while the fake
Flatfile API injects faults, a delivery is refused, a record fails and is retried, one is dead-lettered.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from flatfile_jobs_cli._events import FunctionName
from flatfile_jobs_testing import FakeFlatfile, Fault, LocalContext

from ._leaks import leaks, windows
from ._pipeline import chaos_faults, signed_request, tap_all_logs
from ._support import API_TOKEN, AwsStack, StackEnv

# A signing secret with random-looking key bytes (their hex or repr cannot occur in a log by chance).
LEAK_SECRET = "whsec_" + base64.b64encode(hashlib.sha256(b"flatfile-jobs leak scan").digest()).decode()
ACCESS_TOKEN = "sk_agent_Vb7Yq3Ns8Kd2Wm6J"
SAMPLE_JOBS = ("space:configure", "workbook:submit", "file:process", "data:validate")


def test_the_scan_finds_pieces_of_a_secret() -> None:
    """The scan itself: a token minus two characters, a secret without its prefix, its key in hex are found."""
    key_hex = base64.b64decode(LEAK_SECRET.removeprefix("whsec_")).hex()
    for logged in (
        f"token={API_TOKEN[:-2]}",
        f"prefix {API_TOKEN[:8]}…",
        f"key {LEAK_SECRET.removeprefix('whsec_')[5:20]}",
        f"bytes {key_hex[10:30]}",
    ):
        assert leaks(logged, [API_TOKEN, LEAK_SECRET]), logged
    assert leaks("nothing secret here, sk_", [API_TOKEN, LEAK_SECRET]) == []
    assert len(windows(API_TOKEN)) == len(API_TOKEN) - 7


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_no_piece_of_a_secret_in_any_log_line_of_the_cloud_wiring(
    stack_env: StackEnv,
    load_app: Callable[[FunctionName], ModuleType],
    fake: FakeFlatfile,
    aws: AwsStack,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A faulty run at DEBUG, botocore too, secrets from Secrets Manager: no 8-character piece of one logged."""
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    aws.set_webhook_secret(LEAK_SECRET)
    receiver, worker, dead_letter = load_app("receiver"), load_app("worker"), load_app("dead_letter")
    events = [fake.create_job_event(SAMPLE_JOBS[i % 4]) for i in range(8)]
    refused_ack = fake.add_fault(
        Fault(path=f"/jobs/{events[0]['context']['jobId']}/ack", method="POST", status=401, times=1)
    )
    with tap_all_logs() as tap:
        chaos_faults(fake)
        answers = [
            receiver.lambda_handler(
                signed_request(event, secret=LEAK_SECRET, access_token=ACCESS_TOKEN),
                LocalContext("ReceiverFunction", 10.0),
            )["statusCode"]
            for event in events
        ]
        forged = signed_request(events[1], secret="whsec_" + "QUJD" * 8, access_token=ACCESS_TOKEN)
        refused = receiver.lambda_handler(forged, LocalContext("ReceiverFunction", 10.0))["statusCode"]
        failures = 0
        for message in aws.receive(delete=False):
            sqs_event = aws.lambda_event(message)
            for _ in range(5):  # a failed record is handed out again (here at once, not after its backoff)
                result = worker.lambda_handler(sqs_event, LocalContext("WorkerFunction", 900.0))
                if not result["batchItemFailures"]:
                    break
                failures += 1
        fake.clear_faults()
        stranded = fake.create_job_event("space:configure")
        dlq_event = aws.enqueue(_record_of(stranded), aws.dlq_url)
        dead = dead_letter.lambda_handler(dlq_event, LocalContext("DeadLetterFunction", 900.0))
    out, err = capfd.readouterr()
    logged = "\n".join([*tap.lines, out, err])
    assert (answers, refused) == ([202] * 8, 401)
    assert refused_ack.hits == 1
    assert failures >= 1
    assert dead == {"batchItemFailures": []}
    assert fake.job(stranded["context"]["jobId"])["status"] == "failed"
    # The capture is real: it holds botocore's request logs and the functions' own lines.
    for expected in (
        "GetSecretValue",
        "SendMessage",
        "PutItem",
        "ChangeMessageVisibility",
        "Delivery answered",
        "Delivery refused",
        "Flatfile API call",
        "Dead-lettered job",
    ):
        assert expected in logged, expected
    assert leaks(logged, [API_TOKEN, LEAK_SECRET, ACCESS_TOKEN]) == []


def _record_of(event: dict[str, Any]) -> dict[str, Any]:
    """An events/-style SQS record carrying ``event`` (for ``AwsStack.enqueue``)."""
    attributes = {"eventId": event["id"], "jobId": event["context"]["jobId"], "job": event["payload"]["job"]}
    return {
        "body": json.dumps(event),
        "messageAttributes": {k: {"dataType": "String", "stringValue": v} for k, v in attributes.items()},
    }
