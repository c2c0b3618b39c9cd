"""Least privilege, checked on what CloudFormation receives: the template as the SAM translator expands it.

SAM adds permissions of its own when it expands a function (an SQS event adds ``AWSLambdaSQSQueueExecutionRole``,
whose actions apply to every queue; ``DynamoDBCrudPolicy`` grants Scan, Query and Batch* as well), so the checks
run on the translator's output. Each function may do exactly what its code and its event source call, each on
the one resource it touches; only CloudWatch Logs' basic execution policy is attached as a managed policy.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"

BASIC_EXECUTION = "service-role/AWSLambdaBasicExecutionRole"
# What an SQS event source itself calls with the function's role (Lambda's SQS docs: execution role permissions).
EVENT_SOURCE_SQS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
# Powertools' DynamoDBPersistenceLayer: get_item, put_item (conditional), update_item, delete_item.
IDEMPOTENCY_DYNAMODB = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
# AWSLambdaBasicDurableExecutionRolePolicy's actions, granted on the durable worker's own versions: an execution
# runs on a published version, which the role cannot name without depending on it (the one wildcard allowed).
DURABLE_EXECUTION = {"lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"}
DURABLE_WORKER_VERSIONS = json.dumps(
    {
        "Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-durable-worker:*"
    }
)
# IAM accepts only "*" as the resource of these; none of them is granted today.
RESOURCE_STAR_ONLY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "cloudwatch:PutMetricData"}


def _grants(actions: set[str], resource: str) -> set[tuple[str, str]]:
    return {(action, resource) for action in actions}


# (action, logical id of the resource) for each function: what its code calls, what its event source calls.
EXPECTED_GRANTS = {
    # SqsJobQueue.send; the webhook secret through Powertools parameters.
    "ReceiverFunction": _grants({"sqs:SendMessage"}, "JobQueue")
    | _grants({"secretsmanager:GetSecretValue"}, "WebhookSigningSecret"),
    # The event source; SqsJobQueue.retry_later (ChangeMessageVisibility); idempotency; the API key;
    # LambdaDurableStarter (Invoke of the durable worker's alias, when long jobs are on).
    "WorkerFunction": _grants(EVENT_SOURCE_SQS | {"sqs:ChangeMessageVisibility"}, "JobQueue")
    | _grants(IDEMPOTENCY_DYNAMODB, "IdempotencyTable")
    | _grants({"secretsmanager:GetSecretValue"}, "FlatfileApiKeySecret")
    | _grants({"lambda:InvokeFunction"}, "DurableWorkerFunctionAliaslive"),
    # The SDK's checkpoints on its own function's versions; the API key; its asynchronous invocations' dead
    # letters (Lambda sends them with the function's role).
    "DurableWorkerFunction": _grants(DURABLE_EXECUTION, DURABLE_WORKER_VERSIONS)
    | _grants({"secretsmanager:GetSecretValue"}, "FlatfileApiKeySecret")
    | _grants({"sqs:SendMessage"}, "DeadLetterQueue"),
    # The event source; job_record_status (get_item: did the run die in progress?); the API key.
    "DeadLetterFunction": _grants(EVENT_SOURCE_SQS, "DeadLetterQueue")
    | _grants({"dynamodb:GetItem"}, "IdempotencyTable")
    | _grants({"secretsmanager:GetSecretValue"}, "FlatfileApiKeySecret"),
    # SqsJobQueue.send; DynamoCursorStore.load/save (get_item, put_item); the API key.
    "PollerFunction": _grants({"sqs:SendMessage"}, "JobQueue")
    | _grants({"dynamodb:GetItem", "dynamodb:PutItem"}, "IdempotencyTable")
    | _grants({"secretsmanager:GetSecretValue"}, "FlatfileApiKeySecret"),
}

Template = dict[str, Any]


def load(path: Path = TEMPLATE_PATH) -> Template:
    """The template as a dict, short tags in their long JSON form (cfn-lint's loader)."""
    # cfn-lint ships no type information; through importlib its API is Any rather than an untyped import.
    decode = importlib.import_module("cfnlint.decode")
    template, matches = decode.decode_str(path.read_text(encoding="utf-8"))
    assert not matches, matches
    plain: Template = json.loads(json.dumps(template))  # plain dicts and lists
    return plain


def expand(template: Template) -> Template:
    """What CloudFormation makes of the template: the SAM translator's output (us-east-1, default parameters)."""
    translator_module = importlib.import_module("samtranslator.translator.translator")
    parser_module = importlib.import_module("samtranslator.parser.parser")
    sam = copy.deepcopy(template)
    # The translator wants S3 locations where `sam build` puts them.
    for resource in sam["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = f"s3://bucket/{props[key].strip('/')}.zip"
    translator = translator_module.Translator(
        managed_policy_map={},
        sam_parser=parser_module.Parser(),
        boto_session=boto3.session.Session(region_name="us-east-1"),
    )
    expanded: Template = translator.translate(sam_template=sam, parameter_values={})
    return expanded


@pytest.fixture(scope="module")
def expanded() -> Template:
    return expand(load())


def resource_name(resource: Any) -> str:
    """The logical id a statement's resource refers to, else its JSON.

    ``!GetAtt X.Arn``, ``!Ref X`` and what SAM's policy templates make of them (``!Sub [".../${name}", {name:
    !Ref X}]``) name ``X``; anything else (a wildcard, a literal ARN) stays as written.
    """
    if isinstance(resource, dict) and set(resource) == {"Fn::GetAtt"}:
        return str(resource["Fn::GetAtt"][0])
    if isinstance(resource, dict) and set(resource) == {"Ref"}:
        return str(resource["Ref"])
    if isinstance(resource, dict) and set(resource) == {"Fn::Sub"} and isinstance(resource["Fn::Sub"], list):
        pattern, variables = resource["Fn::Sub"]
        last = re.fullmatch(r"(?:[^*]*[:/])?\$\{(\w+)\}", pattern)
        if last and set(variables) == {last[1]}:
            return resource_name(variables[last[1]])
    return json.dumps(resource)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The role's statements; a conditional one (``Fn::If``) as it reads when its condition holds."""
    for policy in role["Properties"].get("Policies", []):
        for statement in _as_list(policy["PolicyDocument"]["Statement"]):
            yield statement["Fn::If"][1] if set(statement) == {"Fn::If"} else statement


def function_roles(expanded: Template) -> dict[str, dict[str, Any]]:
    """Each Lambda function's execution role, by the function's logical id."""
    resources = expanded["Resources"]
    found = {}
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Function":
            role = resource["Properties"]["Role"]
            assert set(role) == {"Fn::GetAtt"}, f"{name}: role {role} is not one of the stack's"
            role_name, attribute = role["Fn::GetAtt"]
            assert attribute == "Arn", name
            assert resources[role_name]["Type"] == "AWS::IAM::Role", name
            found[name] = resources[role_name]
    return found


def wildcard_grants(statement: dict[str, Any]) -> list[str]:
    """Why a statement grants more than named actions on named resources (empty when it does not)."""
    problems: list[str] = []
    if statement.get("Effect") != "Allow":
        return problems
    for key in ("NotAction", "NotResource", "NotPrincipal"):
        if key in statement:
            problems.append(f"{key} grants everything but a list")
    actions = _as_list(statement.get("Action", []))
    for action in actions:
        if not isinstance(action, str) or "*" in action or "?" in action:
            problems.append(f"wildcard action {action!r}")
    for resource in _as_list(statement.get("Resource", [])):
        versions_of_one_function = (
            set(actions) <= DURABLE_EXECUTION and json.dumps(resource) == DURABLE_WORKER_VERSIONS
        )
        if (
            "*" in json.dumps(resource)
            and not set(actions) <= RESOURCE_STAR_ONLY
            and not versions_of_one_function
        ):
            problems.append(f"{actions} on wildcard resource {json.dumps(resource)}")
    return problems


def granted(role: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (action, resource_name(resource))
        for statement in statements(role)
        if statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    }


def test_expansion_gives_every_function_a_role(expanded: Template) -> None:
    """The translator accepts the template, and each of the four functions runs with a role of the stack."""
    assert set(function_roles(expanded)) == set(EXPECTED_GRANTS)


def test_no_role_grants_a_wildcard_action_or_resource(expanded: Template) -> None:
    """No statement of any role allows a `*` action or a `*` resource (nor NotAction/NotResource)."""
    roles = {name: res for name, res in expanded["Resources"].items() if res["Type"] == "AWS::IAM::Role"}
    assert roles
    problems = {
        name: [p for s in statements(role) for p in wildcard_grants(s)] for name, role in roles.items()
    }
    assert problems == {name: [] for name in roles}


def test_only_the_logs_basic_execution_policy_is_attached(expanded: Template) -> None:
    """Managed policies (whose statements the template cannot scope) are CloudWatch Logs' basic execution only."""
    roles = {name: res for name, res in expanded["Resources"].items() if res["Type"] == "AWS::IAM::Role"}
    for name, role in roles.items():
        arns = [
            arn["Fn::Sub"] if isinstance(arn, dict) else arn
            for arn in role["Properties"]["ManagedPolicyArns"]
        ]
        assert len(arns) == 1, f"{name}: {arns}"
        assert arns[0].endswith(f":iam::aws:policy/{BASIC_EXECUTION}"), f"{name}: {arns}"


def test_each_function_may_do_exactly_what_its_code_calls(expanded: Template) -> None:
    """The (action, resource) pairs each role grants are exactly those its code and event source use."""
    assert {name: granted(role) for name, role in function_roles(expanded).items()} == EXPECTED_GRANTS


def test_poller_reaches_only_its_cursor_item(expanded: Template) -> None:
    """The poller's DynamoDB grant is limited to the cursor item's key, the one its code reads and writes."""
    poller_module = importlib.import_module("flatfile_stack.poller")
    (dynamodb,) = [
        s
        for s in statements(function_roles(expanded)["PollerFunction"])
        if str(_as_list(s["Action"])[0]).startswith("dynamodb:")
    ]
    keys = dynamodb["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
    expected = [
        {"Fn::Sub": poller_module.cursor_key("${FlatfileEnvironmentId}", topic)}
        for topic in poller_module.POLLED_TOPICS
    ]
    assert keys == expected  # one cursor item per polled topic, and no other


def test_the_checks_catch_what_sam_would_add() -> None:
    """The checks flag the template SAM policy templates and SQS events would give (the former template's)."""
    template = load()
    worker = template["Resources"]["WorkerFunction"]["Properties"]
    worker.pop("Role")
    worker["Policies"] = [
        {"DynamoDBCrudPolicy": {"TableName": {"Ref": "IdempotencyTable"}}},
        {"SQSPollerPolicy": {"QueueName": {"Fn::GetAtt": ["JobQueue", "QueueName"]}}},
    ]
    role = function_roles(expand(template))["WorkerFunction"]
    arns = json.dumps(role["Properties"]["ManagedPolicyArns"])
    assert "AWSLambdaSQSQueueExecutionRole" in arns
    extra = granted(role) - EXPECTED_GRANTS["WorkerFunction"]
    assert ("dynamodb:Scan", "IdempotencyTable") in extra
    assert ("dynamodb:BatchWriteItem", "IdempotencyTable") in extra
    assert wildcard_grants({"Effect": "Allow", "Action": "sqs:*", "Resource": {"Fn::GetAtt": ["Q", "Arn"]}})
    assert wildcard_grants({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"})
    assert wildcard_grants(
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": {"Fn::Sub": "${T.Arn}/index/*"}}
    )
    assert not wildcard_grants({"Effect": "Allow", "Action": "xray:PutTraceSegments", "Resource": "*"})
