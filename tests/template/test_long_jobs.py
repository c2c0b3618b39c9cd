"""Long jobs in template.yaml: the durable worker, its alias, the switch, and IAM scoped to the alias."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
Template = dict[str, Any]


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


ALIAS = ref("DurableWorkerFunction.Alias")


@pytest.fixture(scope="module")
def template() -> Template:
    """template.yaml as cfn-lint reads it (short tags such as ``!Ref`` become their long forms)."""
    decode = importlib.import_module("cfnlint.decode")
    loaded, errors = decode.decode_str((ROOT / "template.yaml").read_text(encoding="utf-8"))
    assert not errors
    return dict(loaded)


@pytest.fixture(scope="module")
def resources(template: Template) -> dict[str, Any]:
    return dict(template["Resources"])


def _pins(path: Path) -> set[str]:
    """``name==version`` lines of a requirements file or a hashed lock (hashes and markers left out)."""
    return {
        line.split(";")[0].removesuffix("\\").strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith(("#", " "))
    }


def test_long_jobs_are_a_switch_that_is_off_by_default(template: Template, resources: dict[str, Any]) -> None:
    """EnableLongJobs defaults to "false" and conditions the durable worker and its log group."""
    assert template["Parameters"]["EnableLongJobs"]["Default"] == "false"
    assert template["Parameters"]["EnableLongJobs"]["AllowedValues"] == ["false", "true"]
    assert template["Conditions"]["LongJobsEnabled"] == {"Fn::Equals": [ref("EnableLongJobs"), "true"]}
    assert resources["DurableWorkerFunction"]["Condition"] == "LongJobsEnabled"
    assert resources["DurableWorkerLogGroup"]["Condition"] == "LongJobsEnabled"


def test_durable_worker_has_durable_config_and_an_alias(
    template: Template, resources: dict[str, Any]
) -> None:
    """DurableConfig's execution timeout is the LongJobTimeout parameter (≤ 366 days); AutoPublishAlias is set."""
    props = resources["DurableWorkerFunction"]["Properties"]
    assert props["DurableConfig"]["ExecutionTimeout"] == ref("LongJobTimeout")
    assert 1 <= props["DurableConfig"]["RetentionPeriodInDays"] <= 90
    assert props["AutoPublishAlias"] == "live"
    assert props["Timeout"] == 900
    timeout = template["Parameters"]["LongJobTimeout"]
    assert timeout["MaxValue"] == 366 * 24 * 3600
    from flatfile_stack.durable import LAST_STEP_SECONDS

    assert timeout["MinValue"] > LAST_STEP_SECONDS > props["Timeout"]
    assert props["CodeUri"] == "functions/durable_worker/"


def _role_statements(resources: dict[str, Any], role: str) -> list[Any]:
    return [s for p in resources[role]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def test_worker_may_invoke_the_alias_only(resources: dict[str, Any]) -> None:
    """The worker's only Lambda permission is InvokeFunction on the durable worker's alias, when long jobs are on."""
    statements = _role_statements(resources, "WorkerRole")
    conditional = [s["Fn::If"] for s in statements if "Fn::If" in s]
    assert conditional == [
        [
            "LongJobsEnabled",
            {"Sid": "StartLongJobs", "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": ALIAS},
            ref("AWS::NoValue"),
        ]
    ]
    assert not [s for s in statements if "Fn::If" not in s and "lambda:" in str(s["Action"])]
    env = resources["WorkerFunction"]["Properties"]["Environment"]["Variables"]
    assert env["DURABLE_WORKER_ARN"] == {"Fn::If": ["LongJobsEnabled", ALIAS, ""]}


def test_durable_execution_policy_is_on_the_durable_worker_only(resources: dict[str, Any]) -> None:
    """Checkpoint and state actions, on the durable worker's own versions; no other role has them."""
    props = resources["DurableWorkerFunction"]["Properties"]
    assert props["Role"] == {"Fn::GetAtt": ["DurableWorkerRole", "Arn"]}
    assert resources["DurableWorkerRole"]["Condition"] == "LongJobsEnabled"
    durable = [s for s in _role_statements(resources, "DurableWorkerRole") if "DurableExecution" in str(s)]
    assert durable == [
        {
            "Sid": "CheckpointOwnExecutions",
            "Effect": "Allow",
            "Action": ["lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"],
            "Resource": {
                "Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
                "${AWS::StackName}-durable-worker:*"
            },
        }
    ]
    assert props["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-durable-worker"}
    for name, resource in resources.items():
        if name != "DurableWorkerRole" and resource["Type"] in {
            "AWS::IAM::Role",
            "AWS::Serverless::Function",
        }:
            assert "DurableExecution" not in str(resource["Properties"]), name


def test_durable_sdk_is_pinned_in_the_durable_worker_and_the_dev_tools_alike() -> None:
    """The beta SDK (and the boto3 it needs) is pinned exactly, in the durable worker only (not the shared layer)."""
    function_pins = _pins(ROOT / "functions/durable_worker/requirements.in")
    assert "aws-durable-execution-sdk-python==3.0.0" in function_pins
    assert {pin.split("==")[0] for pin in function_pins} == {
        "aws-durable-execution-sdk-python",
        "boto3",
        "botocore",
    }
    assert function_pins <= _pins(ROOT / "requirements-dev.txt")  # what the tests ran with
    assert not any("durable" in pin for pin in _pins(ROOT / "layers/shared/requirements.txt"))


DEAD_LETTER_QUEUE_ARN = {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
DURABLE_WORKER_ARN = (
    "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-durable-worker"
)


def test_unfinished_executions_reach_the_dead_letter_queue(resources: dict[str, Any]) -> None:
    """A rule sends the durable worker's TIMED_OUT, STOPPED and FAILED status changes to the dead-letter queue."""
    from flatfile_stack.dead_letter import DURABLE_STATUS_CHANGE

    rule = resources["LongJobEndedRule"]
    assert (rule["Type"], rule["Condition"]) == ("AWS::Events::Rule", "LongJobsEnabled")
    props = rule["Properties"]
    assert props["State"] == "ENABLED"
    assert "EventBusName" not in props  # Lambda sends the status changes to the default bus
    assert props["EventPattern"] == {
        "source": ["aws.lambda"],
        "detail-type": [DURABLE_STATUS_CHANGE],
        "detail": {
            "status": ["TIMED_OUT", "STOPPED", "FAILED"],
            # the function's versions (":3"), or the function itself; not another one named alike
            "functionArn": [
                {"Fn::Sub": DURABLE_WORKER_ARN},
                {"prefix": {"Fn::Sub": DURABLE_WORKER_ARN + ":"}},
            ],
        },
    }
    assert resources["DurableWorkerFunction"]["Properties"]["FunctionName"] == {
        "Fn::Sub": "${AWS::StackName}-durable-worker"
    }
    assert props["Targets"] == [{"Id": "DeadLetterQueue", "Arn": DEAD_LETTER_QUEUE_ARN}]  # no transformation


def test_only_that_rule_may_send_to_the_dead_letter_queue(resources: dict[str, Any]) -> None:
    """The queue policy lets EventBridge send for LongJobEndedRule only, and nothing else; none with long jobs off."""
    policies = {name: r for name, r in resources.items() if r["Type"] == "AWS::SQS::QueuePolicy"}
    assert list(policies) == ["DeadLetterQueuePolicy"]
    policy = policies["DeadLetterQueuePolicy"]
    assert policy["Condition"] == "LongJobsEnabled"
    assert policy["Properties"]["Queues"] == [ref("DeadLetterQueue")]
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Sid": "LongJobEndedRuleSends",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": DEAD_LETTER_QUEUE_ARN,
            "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["LongJobEndedRule", "Arn"]}}},
        }
    ]


def test_durable_worker_dead_letters_its_failed_starts_without_destinations(
    resources: dict[str, Any],
) -> None:
    """The durable worker's asynchronous invocations dead-letter to the same queue; no invocation destinations
    (Lambda durable functions don't support them)."""
    props = resources["DurableWorkerFunction"]["Properties"]
    assert props["DeadLetterQueue"] == {"Type": "SQS", "TargetArn": DEAD_LETTER_QUEUE_ARN}
    assert "EventInvokeConfig" not in props
    assert not [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    sends = [s for s in _role_statements(resources, "DurableWorkerRole") if s["Action"] == "sqs:SendMessage"]
    assert sends == [
        {
            "Sid": "DeadLetterUnstartedLongJobs",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": DEAD_LETTER_QUEUE_ARN,
        }
    ]
