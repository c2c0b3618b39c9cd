"""Structure of the SAM stack (template.yaml) and its deploy configuration (samconfig.toml).

The template is read as data (CloudFormation short tags become their long JSON form) and checked for the
properties the design depends on: one signed entry point, at-least-once delivery with bounded retries and a
dead-letter path, a capped worker pool, secrets only by reference, least privilege, and alarms. cfn-lint runs
on it too (the same check as ``make validate``, without the SAM CLI).
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from flatfile_stack.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
SAMCONFIG_PATH = ROOT / "samconfig.toml"

Template = dict[str, Any]

# The one SAM policy template the functions use: exactly secretsmanager:GetSecretValue on the secret it is given.
# (SQSSendMessagePolicy grants sqs:SendMessage*, SQSPollerPolicy and DynamoDBCrudPolicy actions no code calls.)
ALLOWED_POLICY_TEMPLATES = {"AWSSecretsManagerGetSecretValuePolicy"}
# Env var names the library reads a plain token from: the stack must never set them (secrets are read at
# run time from Secrets Manager through *_SECRET_ID instead).
PLAIN_SECRET_ENV_NAMES = {"FLATFILE_API_KEY", "FLATFILE_BEARER_TOKEN", "WEBHOOK_SECRET"}
SECRET_VALUE_PATTERNS = (re.compile(r"^sk_"), re.compile(r"^whsec_"), re.compile(r"\{\{resolve:"))


# ------------------------------------------------------------------------------------------------ loading


class CloudFormationLoader(yaml.SafeLoader):
    """A safe YAML loader that turns ``!Ref x`` and ``!Fn x`` short tags into ``{"Ref": x}``/``{"Fn::Fn": x}``."""


def _construct_short_tag(loader: CloudFormationLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - PyYAML has no other node kinds
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{suffix}", node.start_mark)
    if suffix in {"Ref", "Condition"}:
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _construct_short_tag)


def load_template(path: Path = TEMPLATE_PATH) -> Template:
    loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=CloudFormationLoader)
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: Template) -> dict[str, Any]:
    res = template["Resources"]
    assert isinstance(res, dict)
    return res


# ------------------------------------------------------------------------------------------------ helpers


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def get_att(resource: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [resource, attribute]}


def of_type(resources: dict[str, Any], type_: str) -> dict[str, Any]:
    return {name: res for name, res in resources.items() if res["Type"] == type_}


def functions(resources: dict[str, Any]) -> dict[str, Any]:
    found = of_type(resources, "AWS::Serverless::Function")
    assert found, "no AWS::Serverless::Function in the template"
    return found


def function_env(template: Template, function: dict[str, Any]) -> dict[str, Any]:
    """The function's environment as deployed: Globals merged with its own variables (SAM's merge rule)."""
    merged: dict[str, Any] = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    merged.update(function["Properties"].get("Environment", {}).get("Variables", {}))
    return merged


def function_prop(template: Template, function: dict[str, Any], key: str) -> Any:
    props = function["Properties"]
    return props[key] if key in props else template["Globals"]["Function"].get(key)


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of every mapping in the tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def seconds(template: Template, value: Any) -> int:
    """A timeout as an int; a parameter reference counts at its MaxValue (the worst case)."""
    if isinstance(value, dict):
        param = template["Parameters"][value["Ref"]]
        return int(param["MaxValue"])
    return int(value)


def sqs_events(function: dict[str, Any]) -> dict[str, Any]:
    events = function["Properties"].get("Events", {})
    return {name: ev for name, ev in events.items() if ev["Type"] == "SQS"}


def lint(text: str) -> list[str]:
    """cfn-lint's errors and warnings for a template (the same rules as the CLI's defaults)."""
    # cfn-lint ships no type information; through importlib its API is Any rather than an untyped import.
    api = importlib.import_module("cfnlint.api")
    return [str(match) for match in api.lint(text, regions=["us-east-1"])]


# ------------------------------------------------------------------------------------------------ lint


def test_cfn_lint_reports_nothing() -> None:
    api = importlib.import_module("cfnlint.api")
    matches = [str(m) for m in api.lint_file(TEMPLATE_PATH)]
    assert matches == []


def test_cfn_lint_check_catches_a_broken_template(template: Template) -> None:
    broken = copy.deepcopy(template)
    del broken["Resources"]["DeadLetterQueue"]  # JobQueue's redrive and an alarm now point at nothing
    assert lint(json.dumps(broken))
    assert lint(json.dumps(template)) == []


def test_loader_understands_short_tags() -> None:
    text = "a: !Ref X\nb: !GetAtt Q.Arn\nc: !If [C, [!Ref T], !Ref AWS::NoValue]\nd: !Sub '${X}'\n"
    assert yaml.load(text, Loader=CloudFormationLoader) == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["Q", "Arn"]},
        "c": {"Fn::If": ["C", [{"Ref": "T"}], {"Ref": "AWS::NoValue"}]},
        "d": {"Fn::Sub": "${X}"},
    }


# ------------------------------------------------------------------------------------------------ shape


def test_is_a_sam_template(template: Template) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


def test_parameters_and_safe_defaults(template: Template) -> None:
    params = template["Parameters"]
    assert params["AllowUnsignedRequests"]["Default"] == "false"
    assert sorted(params["AllowUnsignedRequests"]["AllowedValues"]) == ["false", "true"]
    assert params["EnablePoller"]["Default"] == "false"
    assert params["LogLevel"]["Default"] == "INFO"
    assert set(params["LogLevel"]["AllowedValues"]) == {"INFO", "DEBUG"}
    assert params["FlatfileApiUrl"]["Default"] == "https://platform.flatfile.com/api"
    worker_timeout = params["WorkerTimeout"]
    assert (worker_timeout["Type"], worker_timeout["Default"]) == ("Number", 900)
    assert 30 <= worker_timeout["MinValue"] <= worker_timeout["MaxValue"] <= 900  # Lambda's limit
    concurrency = params["WorkerMaxConcurrency"]
    assert concurrency["Type"] == "Number"
    assert concurrency["MinValue"] >= 2  # SQS event source MaximumConcurrency's minimum
    assert concurrency["MinValue"] <= concurrency["Default"] <= concurrency["MaxValue"] <= 1000
    for name in ("AllowedEnvironmentIds", "FlatfileEnvironmentId", "AlarmTopicArn"):
        assert params[name]["Default"] == ""


def test_every_function_runs_python313_with_the_shared_layer(
    template: Template, resources: dict[str, Any]
) -> None:
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13"
    assert globals_["Handler"] == "app.lambda_handler"
    assert ref("SharedLayer") in globals_["Layers"]
    for name, function in functions(resources).items():
        props = function["Properties"]
        assert "Runtime" not in props or props["Runtime"] == "python3.13", name
        assert "Layers" not in props, f"{name} would replace the global layers"
        assert function_prop(template, function, "Architectures") == globals_["Architectures"], name
        code_uri = ROOT / props["CodeUri"]
        assert code_uri.is_dir(), f"{name}: CodeUri {props['CodeUri']} is not a folder of the repository"
        assert code_uri.resolve().parent == ROOT / "functions", name


def build_commands(context_path: str, logical_id: str) -> str:
    """The commands ``sam build`` runs for ``logical_id`` (``make -n build-<logical_id>``, expanded)."""
    done = subprocess.run(
        [
            "make",
            "-n",
            "-f",
            str(ROOT / context_path / "Makefile"),
            f"build-{logical_id}",
            "ARTIFACTS_DIR=/build",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_shared_layer_is_built_by_sam_for_python313(template: Template, resources: dict[str, Any]) -> None:
    layer = resources["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    props = layer["Properties"]
    assert props["ContentUri"] == "layers/shared"
    assert (ROOT / "layers/shared/requirements.txt").is_file()
    assert props["CompatibleRuntimes"] == ["python3.13"]
    architectures = template["Globals"]["Function"]["Architectures"]
    assert props["CompatibleArchitectures"] == architectures
    assert [layer["Metadata"]["BuildArchitecture"]] == architectures
    # The build's Makefile installs the lock for that runtime and architecture (the built layer: test_packaging.py).
    makefile = build_commands(layer["Metadata"]["ContextPath"], "SharedLayer")
    platform = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}[architectures[0]]
    for option in (
        f"--platform {platform}",
        "--python-version 3.13",
        "--require-hashes",
        "-r requirements.txt",
    ):
        assert option in makefile, option


def test_durable_worker_is_built_by_its_makefile_for_python313(
    template: Template, resources: dict[str, Any]
) -> None:
    """The durable worker's build installs its hashed lock for Lambda's runtime and architecture, then compiles."""
    function = resources["DurableWorkerFunction"]
    assert function["Metadata"]["BuildMethod"] == "makefile"
    architectures = template["Globals"]["Function"]["Architectures"]
    assert "Architectures" not in function["Properties"]
    assert [function["Metadata"]["BuildArchitecture"]] == architectures
    folder = ROOT / function["Properties"]["CodeUri"]
    assert (folder / "requirements.txt").is_file()
    # The built function (every module with its bytecode, for /var/task): test_packaging.py.
    makefile = build_commands(function["Metadata"]["ContextPath"], "DurableWorkerFunction")
    platform = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}[architectures[0]]
    for option in (
        f"--platform {platform}",
        "--python-version 3.13",
        "--require-hashes",
        "-r requirements.txt",
        "--invalidation-mode unchecked-hash",
        "-p /var/task",
    ):
        assert option in makefile, option


def test_one_route_post_webhook_to_the_receiver(resources: dict[str, Any]) -> None:
    routes = [
        (name, event["Properties"])
        for name, function in functions(resources).items()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] in {"HttpApi", "Api"}
    ]
    assert len(routes) == 1
    name, props = routes[0]
    assert name == "ReceiverFunction"
    assert (props["Method"], props["Path"], props["ApiId"]) == ("POST", "/webhook", ref("HttpApi"))
    assert resources["ReceiverFunction"]["Properties"]["CodeUri"].rstrip("/") == "functions/receiver"
    assert list(of_type(resources, "AWS::Serverless::HttpApi")) == ["HttpApi"]
    assert not of_type(resources, "AWS::Serverless::Api")
    throttling = resources["HttpApi"]["Properties"]["DefaultRouteSettings"]
    assert throttling["ThrottlingBurstLimit"] > 0
    assert throttling["ThrottlingRateLimit"] > 0


def test_receiver_answers_within_api_gateway_timeout(template: Template, resources: dict[str, Any]) -> None:
    receiver = resources["ReceiverFunction"]
    assert seconds(template, function_prop(template, receiver, "Timeout")) < 30  # HTTP API integration limit


# ------------------------------------------------------------------------------------------------ queues


def test_job_queue_redrives_to_the_dead_letter_queue(resources: dict[str, Any]) -> None:
    redrive = resources["JobQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == get_att("DeadLetterQueue", "Arn")
    assert redrive["maxReceiveCount"] == 5
    assert "RedrivePolicy" not in resources["DeadLetterQueue"]["Properties"]


def test_job_queue_size_limit_is_the_one_the_receiver_checks(resources: dict[str, Any]) -> None:
    """The job queue's MaximumMessageSize is set, and equal to what the receiver refuses (413) above."""
    from flatfile_stack.queues import MAX_MESSAGE_BYTES

    assert resources["JobQueue"]["Properties"]["MaximumMessageSize"] == MAX_MESSAGE_BYTES


def test_job_queue_visibility_is_the_least_the_event_source_accepts(
    template: Template, resources: dict[str, Any]
) -> None:
    """The queue's visibility timeout is the worker's longest timeout: what the event source mapping needs."""
    worker = resources["WorkerFunction"]
    assert worker["Properties"]["Timeout"] == ref("WorkerTimeout")
    max_timeout = template["Parameters"]["WorkerTimeout"]["MaxValue"]
    assert resources["JobQueue"]["Properties"]["VisibilityTimeout"] == max_timeout


def test_heartbeat_lease_and_visibility_fit_together(template: Template, resources: dict[str, Any]) -> None:
    """The worker's heartbeat settings and the template's queue agree (README "Design notes and limits").

    A beat renews the lease, then the visibility: with the lease shorter than the visibility (by more than a
    beat, for clock skew and a slow call), a dead worker's message comes back after its lease lapsed, so
    the retry runs the job instead of dropping it as a duplicate; each lives through two missed beats; a
    crashed job is retried within 2 minutes, and one that always crashes is failed within 10.
    """
    settings = Settings()
    beat, lease, visibility = settings.heartbeat_seconds, settings.lease_seconds, settings.visibility_seconds
    assert beat > 0
    assert 3 * beat <= lease
    assert lease + beat <= visibility
    assert visibility == int(visibility)  # SQS takes whole seconds
    queue_visibility = resources["JobQueue"]["Properties"]["VisibilityTimeout"]
    assert visibility < queue_visibility  # the heartbeat shortens the queue's window, never lengthens it
    assert visibility <= 120  # crash to retry
    receives = resources["JobQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    assert (receives - 1) * visibility <= 10 * 60  # always crashing to dead letter, run time aside
    # The dead-letter function names the worker's limits in the crash message: the same values.
    env = function_env(template, resources["DeadLetterFunction"])
    assert env["WORKER_MEMORY_MB"] == str(resources["WorkerFunction"]["Properties"]["MemorySize"])
    assert env["WORKER_TIMEOUT_SECONDS"] == resources["WorkerFunction"]["Properties"]["Timeout"]
    assert (
        env["IDEMPOTENCY_TABLE"] == function_env(template, resources["WorkerFunction"])["IDEMPOTENCY_TABLE"]
    )


def test_every_consumed_queue_outlasts_its_function(template: Template, resources: dict[str, Any]) -> None:
    """Every queue outlasts its consumer (the mapping's rule); the DLQ, with no heartbeat, six times over."""
    consumers = 0
    for name, function in functions(resources).items():
        timeout = seconds(template, function_prop(template, function, "Timeout"))
        for event in sqs_events(function).values():
            queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
            visibility = resources[queue]["Properties"].get("VisibilityTimeout", 30)
            factor = 1 if queue == "JobQueue" else 6
            assert visibility >= factor * timeout, (
                f"{queue} visibility {visibility} < {factor} x {name} timeout {timeout}"
            )
            consumers += 1
    assert consumers == 2


def test_queues_are_encrypted_and_the_dlq_keeps_messages_14_days(resources: dict[str, Any]) -> None:
    for name in ("JobQueue", "DeadLetterQueue"):
        assert resources[name]["Properties"]["SqsManagedSseEnabled"] is True, name
    assert resources["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    job_retention = resources["JobQueue"]["Properties"]["MessageRetentionPeriod"]
    assert job_retention < resources["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"]


def test_worker_takes_one_job_at_a_time_with_partial_failures(resources: dict[str, Any]) -> None:
    events = sqs_events(resources["WorkerFunction"])
    assert len(events) == 1
    (props,) = (event["Properties"] for event in events.values())
    assert props["Queue"] == get_att("JobQueue", "Arn")
    assert props["BatchSize"] == 1
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"]["MaximumConcurrency"] == ref("WorkerMaxConcurrency")


def test_dead_letter_function_drains_the_dlq(template: Template, resources: dict[str, Any]) -> None:
    events = sqs_events(resources["DeadLetterFunction"])
    assert len(events) == 1
    (props,) = (event["Properties"] for event in events.values())
    assert props["Queue"] == get_att("DeadLetterQueue", "Arn")
    assert 1 <= props["BatchSize"] <= 10
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert function_env(template, resources["DeadLetterFunction"])["FLATFILE_API_KEY_SECRET_ID"] == ref(
        "FlatfileApiKeySecret"
    )


# ------------------------------------------------------------------------------------------------ env


def test_functions_get_the_env_their_code_reads(template: Template, resources: dict[str, Any]) -> None:
    expected = {
        "ReceiverFunction": {
            "JOB_QUEUE_URL": ref("JobQueue"),
            "WEBHOOK_SECRET_ID": ref("WebhookSigningSecret"),
            "ALLOW_UNSIGNED": ref("AllowUnsignedRequests"),
            "ALLOWED_ENVIRONMENT_IDS": ref("AllowedEnvironmentIds"),
            "POWERTOOLS_SERVICE_NAME": "flatfile-jobs-receiver",
        },
        "WorkerFunction": {
            "IDEMPOTENCY_TABLE": ref("IdempotencyTable"),
            "JOB_QUEUE_URL": ref("JobQueue"),
            "FLATFILE_API_KEY_SECRET_ID": ref("FlatfileApiKeySecret"),
            "POWERTOOLS_SERVICE_NAME": "flatfile-jobs-worker",
            "DURABLE_WORKER_ARN": {"Fn::If": ["LongJobsEnabled", ref("DurableWorkerFunction.Alias"), ""]},
        },
        "DurableWorkerFunction": {
            "FLATFILE_API_KEY_SECRET_ID": ref("FlatfileApiKeySecret"),
            "DURABLE_EXECUTION_TIMEOUT_SECONDS": ref("LongJobTimeout"),
            "POWERTOOLS_SERVICE_NAME": "flatfile-jobs-durable-worker",
        },
        "DeadLetterFunction": {
            "FLATFILE_API_KEY_SECRET_ID": ref("FlatfileApiKeySecret"),
            "IDEMPOTENCY_TABLE": ref("IdempotencyTable"),
            "WORKER_MEMORY_MB": "1024",
            "WORKER_TIMEOUT_SECONDS": ref("WorkerTimeout"),
            "POWERTOOLS_SERVICE_NAME": "flatfile-jobs-dead-letter",
        },
        "PollerFunction": {
            "FLATFILE_API_KEY_SECRET_ID": ref("FlatfileApiKeySecret"),
            "FLATFILE_ENVIRONMENT_ID": ref("FlatfileEnvironmentId"),
            "JOB_QUEUE_URL": ref("JobQueue"),
            "POLLER_STATE_TABLE": ref("IdempotencyTable"),
            "POWERTOOLS_SERVICE_NAME": "flatfile-jobs-poller",
        },
    }
    assert set(functions(resources)) == set(expected)
    for name, variables in expected.items():
        env = function_env(template, resources[name])
        assert {key: env.get(key) for key in variables} == variables, name
        assert env["POWERTOOLS_LOG_LEVEL"] == ref("LogLevel"), name
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "FlatfileJobs", name
        assert env["FLATFILE_API_URL"] == ref("FlatfileApiUrl"), name
    margin = function_env(template, resources["WorkerFunction"])["DEADLINE_MARGIN_SECONDS"]
    assert isinstance(margin, str)
    assert 0 < int(margin) < template["Parameters"]["WorkerTimeout"]["MinValue"]


def test_no_env_var_holds_a_secret_value(template: Template, resources: dict[str, Any]) -> None:
    secrets = set(of_type(resources, "AWS::SecretsManager::Secret"))
    assert secrets == {"WebhookSigningSecret", "FlatfileApiKeySecret"}
    secret_ids = 0
    for name, function in functions(resources).items():
        for key, value in function_env(template, function).items():
            # FLATFILE_API_KEY is declared empty so `sam local --env-vars` can set it; a function in AWS refuses a value.
            if key == "FLATFILE_API_KEY":
                assert value == "", f"{name}.{key} must stay empty in the template (local runs only)"
                continue
            assert key not in PLAIN_SECRET_ENV_NAMES, f"{name}.{key} would hold a plain secret"
            if key.endswith("_SECRET_ID"):
                secret_ids += 1
                assert isinstance(value, dict), f"{name}.{key} must reference a secret, not hold one"
                target = value.get("Ref") or value.get("Fn::GetAtt", [None])[0]
                assert target in secrets, f"{name}.{key} must reference a secret, not hold one"
            elif isinstance(value, str):
                assert not any(p.search(value) for p in SECRET_VALUE_PATTERNS), f"{name}.{key}"
            else:
                text = json.dumps(value)
                assert not any(secret in text for secret in secrets), (
                    f"{name}.{key}: only *_SECRET_ID names a secret"
                )
    assert secret_ids == 5  # receiver, worker, durable worker, dead-letter, poller


def test_secrets_are_generated_or_placeholders(resources: dict[str, Any]) -> None:
    generate = resources["WebhookSigningSecret"]["Properties"]["GenerateSecretString"]
    assert generate["PasswordLength"] == 32  # 32 base64 characters: a valid whsec_ key of 24 bytes
    assert generate["ExcludePunctuation"] is True
    assert "SecretString" not in resources["WebhookSigningSecret"]["Properties"]
    api_key = resources["FlatfileApiKeySecret"]["Properties"]
    assert not api_key["SecretString"].startswith("sk_")
    assert "put-secret-value" in api_key["Description"]


# ------------------------------------------------------------------------------------------------ IAM


def test_no_iam_statement_grants_a_wildcard_action(template: Template) -> None:
    actions = [
        action
        for key, value in walk(template["Resources"])
        if key in {"Action", "NotAction"}
        for action in (value if isinstance(value, list) else [value])
    ]
    assert actions
    assert all(isinstance(a, str) and a != "*" and not a.endswith(":*") for a in actions), actions


def test_functions_use_no_broad_policy_template(resources: dict[str, Any]) -> None:
    """Policies are statements or exact policy templates; the expanded roles are checked in test_permissions."""
    for name, function in functions(resources).items():
        props = function["Properties"]
        assert ("Role" in props) != ("Policies" in props), f"{name}: SAM ignores Policies next to a Role"
        for policy in props.get("Policies", []):
            assert isinstance(policy, dict), f"{name}: managed policy {policy}"
            assert set(policy) <= ALLOWED_POLICY_TEMPLATES | {"Version", "Statement"}, name


# ------------------------------------------------------------------------------------------------ state


def test_idempotency_table_matches_powertools_defaults(resources: dict[str, Any]) -> None:
    table = resources["IdempotencyTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_poller_is_conditional_and_off_by_default(template: Template, resources: dict[str, Any]) -> None:
    poller = resources["PollerFunction"]
    assert poller["Condition"] == "PollerEnabled"
    assert template["Conditions"]["PollerEnabled"] == {"Fn::Equals": [ref("EnablePoller"), "true"]}
    assert template["Parameters"]["EnablePoller"]["Default"] == "false"
    props = poller["Properties"]
    assert props["ReservedConcurrentExecutions"] == 1
    (event,) = props["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == "rate(1 minute)"
    # Whatever refers to the poller exists only when it does.
    for name, resource in resources.items():
        if name != "PollerFunction" and "PollerFunction" in json.dumps(resource):
            assert resource.get("Condition") == "PollerEnabled", name
    rule = template["Rules"]["PollerNeedsEnvironment"]
    assert rule["RuleCondition"] == template["Conditions"]["PollerEnabled"]


def test_every_function_logs_to_a_log_group_with_retention(resources: dict[str, Any]) -> None:
    for name, function in functions(resources).items():
        group_ref = function["Properties"]["LoggingConfig"]["LogGroup"]
        group = resources[group_ref["Ref"]]
        assert group["Type"] == "AWS::Logs::LogGroup", name
        assert group["Properties"]["RetentionInDays"] > 0, name
        assert group.get("Condition") == function.get("Condition"), name


# ------------------------------------------------------------------------------------------------ alarms


def _alarm_on(resources: dict[str, Any], namespace: str, metric: str) -> list[dict[str, Any]]:
    return [
        alarm["Properties"]
        for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if (alarm["Properties"]["Namespace"], alarm["Properties"]["MetricName"]) == (namespace, metric)
    ]


def test_alarms_watch_the_failure_paths(template: Template, resources: dict[str, Any]) -> None:
    (dlq,) = _alarm_on(resources, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": get_att("DeadLetterQueue", "QueueName")}]
    assert (dlq["ComparisonOperator"], dlq["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)

    (age,) = _alarm_on(resources, "AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert age["Dimensions"] == [{"Name": "QueueName", "Value": get_att("JobQueue", "QueueName")}]
    assert (age["ComparisonOperator"], age["Threshold"]) == ("GreaterThanThreshold", 1800)

    (dead_lettered,) = _alarm_on(resources, "FlatfileJobs", "JobsDeadLettered")
    service = function_env(template, resources["DeadLetterFunction"])["POWERTOOLS_SERVICE_NAME"]
    assert dead_lettered["Dimensions"] == [{"Name": "service", "Value": service}]
    assert (dead_lettered["ComparisonOperator"], dead_lettered["Threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
    )

    for metric, function in (
        ("RecordsFailed", "WorkerFunction"),
        ("DeadLettersDropped", "DeadLetterFunction"),
    ):
        (alarm,) = _alarm_on(resources, "FlatfileJobs", metric)
        service = function_env(template, resources[function])["POWERTOOLS_SERVICE_NAME"]
        assert alarm["Dimensions"] == [{"Name": "service", "Value": service}], metric
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)

    errors = _alarm_on(resources, "AWS/Lambda", "Errors")
    watched = {alarm["Dimensions"][0]["Value"]["Ref"] for alarm in errors}
    assert {"ReceiverFunction", "WorkerFunction", "DeadLetterFunction", "PollerFunction"} <= watched
    # A failed poll publishes no metric of ours (it raises): Lambda's Errors is its count, alarmed with the poller.
    [poller_alarm] = [
        alarm
        for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Dimensions") == [{"Name": "FunctionName", "Value": ref("PollerFunction")}]
    ]
    assert poller_alarm.get("Condition") == resources["PollerFunction"]["Condition"] == "PollerEnabled"

    # The receiver's 503 is an answer, not a Lambda error: a metric filter on its log group counts it.
    (unavailable,) = _alarm_on(resources, "FlatfileJobs", "DeliveriesUnavailable")
    assert (unavailable["ComparisonOperator"], unavailable["Threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
    )
    (metric_filter,) = of_type(resources, "AWS::Logs::MetricFilter").values()
    assert metric_filter["Properties"]["LogGroupName"] == ref("ReceiverLogGroup")
    [transformation] = metric_filter["Properties"]["MetricTransformations"]
    assert (transformation["MetricNamespace"], transformation["MetricName"]) == (
        "FlatfileJobs",
        "DeliveriesUnavailable",
    )


def test_alarms_notify_the_topic_only_when_given(template: Template, resources: dict[str, Any]) -> None:
    assert template["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [ref("AlarmTopicArn"), ""]}]
    }
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 4
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == {
            "Fn::If": ["HasAlarmTopic", [ref("AlarmTopicArn")], ref("AWS::NoValue")]
        }, name
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", name


# ------------------------------------------------------------------------------------------------ outputs


def test_outputs_name_resources_never_secret_values(template: Template, resources: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert {
        "WebhookUrl",
        "JobQueueUrl",
        "DeadLetterQueueUrl",
        "WebhookSecretArn",
        "FlatfileApiKeySecretArn",
        "IdempotencyTableName",
    } <= set(outputs)
    url = outputs["WebhookUrl"]["Value"]["Fn::Sub"]
    assert url.startswith("https://${HttpApi}.execute-api.")
    assert url.endswith("/webhook")
    secrets = set(of_type(resources, "AWS::SecretsManager::Secret"))
    for name, output in outputs.items():
        value = output["Value"]
        text = json.dumps(value)
        assert "resolve:secretsmanager" not in text, name
        assert "SecretString" not in text, name
        if any(secret in text for secret in secrets):
            assert isinstance(value, dict), name
            assert set(value) == {"Ref"}, f"{name} must give the secret's ARN only"
    assert outputs["WebhookSecretArn"]["Value"] == ref("WebhookSigningSecret")
    assert outputs["FlatfileApiKeySecretArn"]["Value"] == ref("FlatfileApiKeySecret")


# ------------------------------------------------------------------------------------------------ samconfig


def _parse_overrides(text: str) -> dict[str, str]:
    pairs = re.findall(r'(\w+)="([^"]*)"', text)
    assert " ".join(f'{k}="{v}"' for k, v in pairs) == text.strip(), "unparsed parameter_overrides"
    return dict(pairs)


def test_samconfig_deploys_this_template_with_its_defaults(template: Template) -> None:
    config = tomllib.loads(SAMCONFIG_PATH.read_text(encoding="utf-8"))
    assert config["version"] == 0.1
    default = config["default"]
    assert default["global"]["parameters"]["stack_name"] == "flatfile-jobs"
    assert default["build"]["parameters"] == {"cached": True, "parallel": True}
    assert default["validate"]["parameters"]["lint"] is True
    deploy = default["deploy"]["parameters"]
    assert deploy["resolve_s3"] is True
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["confirm_changeset"] is True
    assert deploy["region"]
    overrides = _parse_overrides(deploy["parameter_overrides"])
    params = template["Parameters"]
    assert set(overrides) == set(params)
    assert overrides == {name: str(param["Default"]) for name, param in params.items()}


def test_http_api_writes_json_access_logs(resources: dict[str, Any]) -> None:
    """Every request leaves an access-log line (the receiver logs accepted deliveries only at DEBUG)."""
    settings = resources["HttpApi"]["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == get_att("HttpApiAccessLogGroup", "Arn")
    line = json.loads(settings["Format"])
    assert {"requestId", "status", "integrationLatency", "integrationError"} <= set(line)
    assert resources["HttpApiAccessLogGroup"]["Properties"]["RetentionInDays"] > 0
