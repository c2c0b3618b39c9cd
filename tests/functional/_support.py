"""Helpers of the functional tests: the moto stack, the functions' environment, events, reading answers."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_lambda_powertools.utilities import parameters

from flatfile_jobs_testing import request_body, resign
from flatfile_stack import runtime

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
REGION = "us-east-1"
SERVICE = "flatfile-jobs-functional"
NAMESPACE = "FlatfileJobs"
# Distinctive values, so finding one in a log line or a queued message cannot be a coincidence.
API_TOKEN = "sk_test_Fn7cQx2LpW9rTz4K"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"flatfile-jobs functional tests!!").decode()
TABLE_NAME = "flatfile-jobs-IdempotencyTable"


@dataclass
class AwsStack:
    """The stack's AWS resources, in moto (boto3 clients and the resources' names)."""

    sqs: Any
    dynamodb: Any
    secretsmanager: Any
    table_name: str
    webhook_secret_arn: str
    api_key_secret_arn: str
    queue_url: str = ""
    dlq_url: str = ""
    _queues: int = 0

    def reset(self, *, webhook_secret: str) -> None:
        """New, empty queues (a job queue redriving to its DLQ), an empty idempotency table, the secret."""
        self._queues += 1
        suffix = f"{self._queues:04d}"
        self.dlq_url = self.sqs.create_queue(QueueName=f"flatfile-jobs-DeadLetterQueue-{suffix}")["QueueUrl"]
        redrive = json.dumps({"deadLetterTargetArn": self.queue_arn(self.dlq_url), "maxReceiveCount": "5"})
        self.queue_url = self.sqs.create_queue(
            QueueName=f"flatfile-jobs-JobQueue-{suffix}",
            Attributes={"VisibilityTimeout": "900", "RedrivePolicy": redrive},
        )["QueueUrl"]
        for item in self.idempotency_items():
            self.dynamodb.delete_item(TableName=self.table_name, Key={"id": item["id"]})
        self.set_webhook_secret(webhook_secret)

    def queue_arn(self, queue_url: str) -> str:
        """The ARN of a queue."""
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def receive(self, queue_url: str | None = None, *, delete: bool = True) -> list[dict[str, Any]]:
        """Receive every message on the job queue (or ``queue_url``) with all attributes; delete them too."""
        url = queue_url or self.queue_url
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                if delete:
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            messages.extend(batch)

    def lambda_event(self, message: dict[str, Any], queue_url: str | None = None) -> dict[str, Any]:
        """The SQS event Lambda builds from a received message (one record)."""
        url = queue_url or self.queue_url
        arn = self.queue_arn(url)
        attributes = message.get("Attributes", {})
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                name: attributes[name]
                for name in (
                    "ApproximateReceiveCount",
                    "SentTimestamp",
                    "SenderId",
                    "ApproximateFirstReceiveTimestamp",
                )
                if name in attributes
            },
            "messageAttributes": {
                name: {
                    "stringValue": value["StringValue"],
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value["DataType"],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
            "awsRegion": REGION,
        }
        return {"Records": [record]}

    def enqueue(self, record: dict[str, Any], queue_url: str | None = None) -> dict[str, Any]:
        """Send an events/ file's record to the queue and receive it back as Lambda would hand it over."""
        url = queue_url or self.queue_url
        self.sqs.send_message(
            QueueUrl=url,
            MessageBody=record["body"],
            MessageAttributes={
                name: {"DataType": value["dataType"], "StringValue": value["stringValue"]}
                for name, value in record["messageAttributes"].items()
            },
        )
        [message] = self.receive(url, delete=False)
        return self.lambda_event(message, url)

    def idempotency_items(self) -> list[dict[str, Any]]:
        """Every item of the idempotency table."""
        return list(self.dynamodb.scan(TableName=self.table_name).get("Items", []))

    def set_webhook_secret(self, value: str) -> None:
        """Store a new webhook secret value and drop the cached one (as after the 5-minute cache)."""
        self.secretsmanager.put_secret_value(SecretId=self.webhook_secret_arn, SecretString=value)
        parameters.clear_caches()  # type: ignore[no-untyped-call]


FUNCTIONS = {"receiver": "ReceiverFunction", "worker": "WorkerFunction", "dead_letter": "DeadLetterFunction"}


class _TolerantLoader(yaml.SafeLoader):
    """Reads template.yaml as data: every CloudFormation short tag (``!Ref``…) becomes ``None``."""


_TolerantLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def template_resource(name: str) -> dict[str, Any]:
    """template.yaml's resource ``name`` as data (intrinsics read as ``None``)."""
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_TolerantLoader)
    resource: dict[str, Any] = template["Resources"][name]
    return resource


def template_env(function: str) -> dict[str, str | None]:
    """The environment template.yaml gives ``function`` ("worker" or "WorkerFunction"), Globals merged in.

    Literal values are kept; intrinsics (``!Ref JobQueue``…) read as ``None``.
    """
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_TolerantLoader)
    variables: dict[str, str | None] = {}
    globals_env = template.get("Globals", {}).get("Function", {}).get("Environment", {})
    resource = template["Resources"][FUNCTIONS.get(function, function)]
    own_env = resource["Properties"].get("Environment", {})
    for env in (globals_env, own_env):
        variables.update(env.get("Variables", {}))
    return variables


class StackEnv:
    """The functions' environment variables; ``set`` changes some and makes the runtime re-read them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, aws: AwsStack, values: dict[str, str]) -> None:
        self._monkeypatch = monkeypatch
        self.aws = aws
        self.values = values

    def only(self, function: str) -> None:
        """Set exactly the variables template.yaml gives ``function``, with this stack's values.

        Intrinsic values (``!Ref JobQueue``…) take the moto resource's name; literal values are kept; the
        Powertools settings stay the tests' own. A variable this helper cannot fill fails the test.
        """
        wanted = template_env(function)
        for name in self.values:
            if name not in wanted:
                self._monkeypatch.delenv(name, raising=False)
        for name, value in wanted.items():
            if name.startswith("POWERTOOLS_"):
                continue
            if name in self.values:
                self._monkeypatch.setenv(name, self.values[name])
            elif isinstance(value, str):
                self._monkeypatch.setenv(name, value)
            else:
                raise AssertionError(f"template.yaml gives {function} {name}: teach StackEnv its value")
        runtime.use_runtime(None)

    def set(self, **values: str) -> None:
        """Set environment variables (``ALLOW_UNSIGNED="true"``…); the next invocation reads them.

        Functions loaded before keep the runtime they built; the one built from the new environment (with
        the sample app's jobs) is handed to them, as a new execution environment would build it.
        """
        from flatfile_app_jobs import listener

        for name, value in values.items():
            self._monkeypatch.setenv(name, value)
        runtime.use_runtime(runtime.Runtime.from_env(listener))


def point_logs_at_stdout() -> None:
    """Point the functions' Powertools log handler at the current ``sys.stdout``.

    Powertools binds its handler to ``sys.stdout`` as it is when the service's logger is first built, and
    pytest swaps ``sys.stdout`` between tests and test phases, so capsys would otherwise miss the logs.
    """
    for handler in logging.getLogger(SERVICE).handlers:
        if type(handler) is logging.StreamHandler:
            with handler.lock or contextlib.nullcontext():
                handler.stream = sys.stdout


# -- events -----------------------------------------------------------------------------------------------


def load_event(relative: str) -> dict[str, Any]:
    """A JSON object from a file under ``events/``."""
    value = json.loads((EVENTS / relative).read_text())
    assert isinstance(value, dict)
    return value


def raw_body(apigw_event: dict[str, Any]) -> bytes:
    """The bytes the sender sent (base64-decoded when the event says so)."""
    return request_body(apigw_event)


def signed(
    apigw_event: dict[str, Any], secret: str = WEBHOOK_SECRET, *, timestamp: int | None = None
) -> dict[str, Any]:
    """A copy of an HTTP API event with fresh Standard Webhooks headers over its raw body (the test kit's)."""
    return resign(apigw_event, secret, timestamp=timestamp)


@dataclass
class Answer:
    """A receiver response: status, parsed JSON body, content type."""

    status: int
    body: Any
    content_type: str


def answer_of(response: dict[str, Any]) -> Answer:
    """Read a resolver response (its body must be JSON)."""
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    content_type = str(headers.get("content-type", ""))
    return Answer(int(response["statusCode"]), json.loads(response["body"]), content_type)


def emf_blobs(stdout: str) -> list[dict[str, Any]]:
    """The CloudWatch EMF documents in captured stdout."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith('{"_aws"')]


def metric_names(stdout: str, namespace: str = NAMESPACE) -> list[str]:
    """Names of the metrics published in ``namespace``, in order (repeats kept)."""
    names: list[str] = []
    for blob in emf_blobs(stdout):
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            if directive["Namespace"] == namespace:
                names.extend(metric["Name"] for metric in directive["Metrics"])
    return names
