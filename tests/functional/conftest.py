"""Fixtures for the functional tests: each function's ``lambda_handler`` run in-process, as Lambda would.

AWS is moto (SQS queue + DLQ, the DynamoDB idempotency table, two Secrets Manager secrets) and Flatfile is
the fake API on loopback; the functions build their adapters from environment variables exactly as in the
cloud (each app's ``FunctionRuntime``: ``Runtime.from_env``). A runtime a test handed in with ``use_runtime``
is taken back, and Powertools' parameter cache cleared, around every test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from flatfile_jobs_cli._events import FunctionName
from flatfile_jobs_testing import FakeFlatfile, LocalContext, load_function
from flatfile_stack import runtime

from ._support import (
    API_TOKEN,
    NAMESPACE,
    REGION,
    ROOT,
    SERVICE,
    TABLE_NAME,
    WEBHOOK_SECRET,
    AwsStack,
    StackEnv,
    point_logs_at_stdout,
)

_CLEARED_ENV = (
    "FLATFILE_API_URL",
    "FLATFILE_BEARER_TOKEN",
    "FLATFILE_API_KEY",
    "FLATFILE_ENVIRONMENT_ID",
    "AGENT_INTERNAL_URL",
    "JOB_QUEUE_URL",
    "WEBHOOK_SECRET_ID",
    "FLATFILE_API_KEY_SECRET_ID",
    "ALLOW_UNSIGNED",
    "ALLOWED_ENVIRONMENT_IDS",
    "IDEMPOTENCY_TABLE",
    "POLLER_STATE_TABLE",
    "DEADLINE_MARGIN_SECONDS",
    "WORKER_MEMORY_MB",
    "WORKER_TIMEOUT_SECONDS",
    "DURABLE_WORKER_ARN",
    "DURABLE_EXECUTION_TIMEOUT_SECONDS",
    "POWERTOOLS_LOGGER_LOG_EVENT",
    "POWERTOOLS_IDEMPOTENCY_DISABLED",
    "FLATFILE_JOBS_SAMPLE_PACE",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
)


def _reset_module_state() -> None:
    runtime.use_runtime(None)
    parameters.clear_caches()  # type: ignore[no-untyped-call]


@pytest.fixture(autouse=True)
def clean_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No setting leaks in from the shell or another test; module state is reset before and after."""
    for name in _CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", SERVICE)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    _reset_module_state()
    yield
    _reset_module_state()
    point_logs_at_stdout()


@pytest.fixture
def lambda_context() -> LocalContext:
    """A Lambda context with 900 s left (``lambda_context.set_remaining(s)`` changes it)."""
    return LocalContext("flatfile-jobs-functional", 900.0)


@pytest.fixture
def load_app() -> Callable[[FunctionName], ModuleType]:
    """``load_app("receiver")`` imports ``functions/receiver/app.py`` by path, under a new module name."""

    def load(name: FunctionName) -> ModuleType:
        module = load_function(ROOT, name)
        point_logs_at_stdout()
        return module

    return load


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeFlatfile]:
    with FakeFlatfile(token=API_TOKEN, seed=0) as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeFlatfile) -> FakeFlatfile:
    """The fake Flatfile API, emptied: no jobs, records, recorded requests or faults."""
    fake_server.reset()
    fake_server.canceled_ack = "ok"
    return fake_server


@pytest.fixture(scope="module")
def aws_stack() -> Iterator[AwsStack]:
    """moto with the table and secrets, built once per module (building boto3 clients is the slow part)."""
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE_NAME,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=TABLE_NAME, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
        )
        secrets = boto3.client("secretsmanager", region_name=REGION)
        webhook_arn = secrets.create_secret(Name="WebhookSigningSecret", SecretString=WEBHOOK_SECRET)["ARN"]
        api_key_arn = secrets.create_secret(Name="FlatfileApiKeySecret", SecretString=API_TOKEN)["ARN"]
        yield AwsStack(
            sqs=sqs,
            dynamodb=dynamodb,
            secretsmanager=secrets,
            table_name=TABLE_NAME,
            webhook_secret_arn=webhook_arn,
            api_key_secret_arn=api_key_arn,
        )


@pytest.fixture
def aws(aws_stack: AwsStack) -> AwsStack:
    """moto with the stack's resources: job queue + DLQ, idempotency table, webhook and API key secrets.

    For each test: new empty queues, no idempotency records, the webhook secret back to its value.
    """
    aws_stack.reset(webhook_secret=WEBHOOK_SECRET)
    return aws_stack


@pytest.fixture
def stack_env(monkeypatch: pytest.MonkeyPatch, aws: AwsStack, fake: FakeFlatfile) -> Iterator[StackEnv]:
    """Every function's env vars, pointing at moto and the fake: the cloud wiring (``Runtime.from_env``) runs.

    ``stack_env.only("receiver")`` narrows them to what template.yaml gives that one function.
    """
    env = StackEnv(
        monkeypatch,
        aws,
        {
            "JOB_QUEUE_URL": aws.queue_url,
            "WEBHOOK_SECRET_ID": aws.webhook_secret_arn,
            "FLATFILE_API_KEY_SECRET_ID": aws.api_key_secret_arn,
            "IDEMPOTENCY_TABLE": aws.table_name,
            "POLLER_STATE_TABLE": aws.table_name,
            "ALLOW_UNSIGNED": "false",
            "ALLOWED_ENVIRONMENT_IDS": "",
            "DEADLINE_MARGIN_SECONDS": "10",
            "WORKER_TIMEOUT_SECONDS": "900",
            "DURABLE_WORKER_ARN": "",
            "FLATFILE_API_URL": fake.url,
        },
    )
    env.set(**env.values)
    yield env
    runtime.use_runtime(None)
