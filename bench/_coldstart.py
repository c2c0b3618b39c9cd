"""Cold starts: fresh processes from spawn to the receiver's first response, against a boto3-only baseline.

Both sides are ``python -c`` scripts run by this venv's interpreter, so interpreter start-up is in both. The
receiver script does what a cold Lambda does up to its first answer: import ``functions/receiver/app.py``,
build the runtime the way the deployed stack does (the app's ``FunctionRuntime``: the sample jobs' table,
the queue adapter, from the environment), create the boto3 SQS client, and answer one signed request. The SQS ``SendMessage`` is
answered by botocore's ``Stubber`` (no network); the signing secret is handed in instead of fetched from
Secrets Manager (one HTTPS round trip in AWS, cached for 5 minutes after that). The baseline only imports
boto3 and creates an SQS client.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field

from ._common import FUNCTIONS, QUEUE_URL, ROOT, SECRET, http_request, median, python_env, run_python

RUNS = 9

_CLIENT = (
    "boto3.client('sqs', region_name='us-east-1', endpoint_url='https://sqs.us-east-1.amazonaws.com', "
    "aws_access_key_id='bench', aws_secret_access_key='bench')"
)

BASELINE = f"""
import time
import boto3
client = {_CLIENT}
print(time.time_ns())
"""

RECEIVER = f"""
import importlib.util, json, sys, time
spec = importlib.util.spec_from_file_location("receiver_app", {str(FUNCTIONS / "receiver" / "app.py")!r})
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)

import boto3
from botocore.stub import Stubber
from flatfile_stack.queues import SqsJobQueue

client = {_CLIENT}
stubber = Stubber(client)
stubber.add_response("send_message", {{"MessageId": "m-1", "MD5OfMessageBody": "0" * 32}})
stubber.activate()
rt = app.runtime()  # built from the environment, as on Lambda's first invocation
rt.queue = SqsJobQueue({QUEUE_URL!r}, client=client)
rt.webhook_secrets = lambda: {SECRET!r}


class Context:
    function_name = "receiver"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:receiver"
    aws_request_id = "cold"

    def get_remaining_time_in_millis(self):
        return 30000


response = app.lambda_handler(json.loads(sys.argv[1]), Context())
print(time.time_ns(), response["statusCode"])
"""

IMPORT_APP = """
import importlib.util, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print((time.perf_counter() - started) * 1000)
"""

IMPORT_BOTO3 = """
import time
started = time.perf_counter()
import boto3
print((time.perf_counter() - started) * 1000)
"""


@dataclass
class ColdStart:
    """Cold-start figures (milliseconds)."""

    receiver_ms: float
    baseline_ms: float
    status: int
    imports_ms: dict[str, float] = field(default_factory=dict)
    importtime_top: list[tuple[str, int, int]] = field(default_factory=list)


def _spawn_to_first_answer(code: str, *args: str) -> tuple[float, str]:
    started = time.time_ns()
    out = run_python(code, *args, env=python_env(), timeout=120).strip().splitlines()[-1].split()
    return (int(out[0]) - started) / 1e6, " ".join(out[1:])


def measure() -> ColdStart:
    """Median spawn-to-first-response of the receiver vs the baseline (interleaved runs)."""
    from flatfile_jobs_testing import job_ready_event

    request = json.dumps(http_request(job_ready_event("space:configure")))
    receiver, baseline, status = [], [], 0
    run_python(BASELINE)  # warm the OS file cache for both
    _spawn_to_first_answer(RECEIVER, request)
    for _ in range(RUNS):
        ms, answer = _spawn_to_first_answer(RECEIVER, request)
        receiver.append(ms)
        status = int(answer)
        baseline.append(_spawn_to_first_answer(BASELINE)[0])
    result = ColdStart(median(receiver), median(baseline), status)
    result.imports_ms = import_times()
    result.importtime_top = importtime_top(request)
    return result


def import_times() -> dict[str, float]:
    """Median ms to import each ``functions/*/app.py`` in a fresh interpreter (and boto3 alone, for scale)."""
    times: dict[str, float] = {}
    names = [
        name
        for name in ("receiver", "worker", "dead_letter", "poller")
        if (FUNCTIONS / name / "app.py").exists()
    ]
    for name in names:
        path = str(FUNCTIONS / name / "app.py")
        times[name] = median(float(run_python(IMPORT_APP, path)) for _ in range(5))
    times["boto3 alone"] = median(float(run_python(IMPORT_BOTO3)) for _ in range(5))
    return times


_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def importtime_top(request: str, count: int = 10) -> list[tuple[str, int, int]]:
    """The receiver script's ``-X importtime``: the ``count`` top-level imports with the largest cumulative µs."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", RECEIVER, request],
        cwd=ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        match = _LINE.match(line)
        if match and len(match[3]) == 1:  # depth 0: what the script itself (or the app) imported
            rows.append((match[4], int(match[1]), int(match[2])))
    return sorted(rows, key=lambda row: row[2], reverse=True)[:count]
