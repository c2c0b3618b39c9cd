"""A cold worker as a Lambda user feels it: process start → the job's first ack arriving at Flatfile.

The worker script does what a cold WorkerFunction does up to its first request to Flatfile: import
``functions/worker/app.py`` (Lambda's init), then invoke ``lambda_handler`` with one SQS record. Everything is
built from the environment as deployed (the app's ``FunctionRuntime``): the API key is read from
Secrets Manager and the job id claimed in DynamoDB, both moto's server on loopback (``AWS_ENDPOINT_URL``), and
the ack goes to the fake Flatfile API in this process, which stamps each request's arrival.

The floor is the least any Python worker does: a script that imports boto3 and httpx and sends one request
(the same ack) to the fake. Both are ``python -c`` scripts of this venv's interpreter, runs interleaved; the
time is from just before the spawn to the ack's arrival (``time.monotonic``, one clock for both processes).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from ._common import FUNCTIONS, ROOT, median, python_env

RUNS = 7
TABLE = "flatfile-jobs-bench-cold-idempotency"
SECRET_NAME = "flatfile-jobs-bench-api-key"

WORKER = f"""
import importlib.util, json, sys, time
spec = importlib.util.spec_from_file_location("worker_app", {str(FUNCTIONS / "worker" / "app.py")!r})
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
print("initialized", time.monotonic(), flush=True)


class Context:
    function_name = "worker"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:worker"
    aws_request_id = "cold"

    def get_remaining_time_in_millis(self):
        return 900000


result = app.lambda_handler(json.loads(sys.argv[1]), Context())
assert result == {{"batchItemFailures": []}}, result
"""

FLOOR = """
import sys
import boto3
import httpx

httpx.post(sys.argv[1], json={"info": "Accepted", "progress": 0}, headers={"Authorization": "Bearer " + sys.argv[2]})
"""


@dataclass
class ColdWorker:
    """Median ms from spawn to the first ack at Flatfile: the worker and the floor script."""

    worker_ms: float
    floor_ms: float
    init_ms: float
    runs: int


def _sqs_event(event: dict[str, Any]) -> dict[str, Any]:
    from flatfile_jobs_testing import sqs_event, sqs_record

    return sqs_event(sqs_record(event))


def _first_ack_ms(
    fake: Any,  # noqa: ANN401
    job_id: str,
    code: str,
    args: list[str],
    env: dict[str, str],
) -> tuple[float, float]:
    """Ms from spawn to the job's first ack at the fake, and to the end of init (``nan`` if not printed)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold worker run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    arrivals = [r.at for r in fake.requests if r.path == f"/jobs/{job_id}/ack"]
    if not arrivals:
        raise RuntimeError(f"no ack reached the fake for {job_id}")
    init = [float(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("initialized ")]
    return (min(arrivals) - started) * 1000, (init[0] - started) * 1000 if init else float("nan")


def measure() -> ColdWorker:
    """Interleaved runs of the cold worker and the floor script; medians."""
    import boto3
    from moto.server import ThreadedMotoServer

    from flatfile_jobs_testing import FakeFlatfile

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        aws = {"endpoint_url": endpoint, "region_name": "us-east-1"}
        aws |= {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
        boto3.client("dynamodb", **aws).create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        with FakeFlatfile(seed=13) as fake:
            secret_arn = boto3.client("secretsmanager", **aws).create_secret(
                Name=SECRET_NAME, SecretString=fake.token
            )["ARN"]
            env = python_env(
                AWS_ENDPOINT_URL=endpoint,
                IDEMPOTENCY_TABLE=TABLE,
                FLATFILE_API_KEY_SECRET_ID=secret_arn,
                FLATFILE_API_URL=fake.url,
            )
            worker_ms, floor_ms, init_ms = [], [], []
            for run in range(RUNS + 1):  # the first pair warms the OS file cache and is left out
                event = fake.create_job_event("space:configure")
                job_id = event["context"]["jobId"]
                ms, init = _first_ack_ms(fake, job_id, WORKER, [json.dumps(_sqs_event(event))], env)
                if fake.job(job_id)["status"] != "complete":
                    raise RuntimeError(f"the cold worker did not complete {job_id}")
                floor_job = fake.add_job("space:configure")["id"]
                ack_url = f"{fake.url}/v1/jobs/{floor_job}/ack"
                floor, _ = _first_ack_ms(fake, floor_job, FLOOR, [ack_url, fake.token], env)
                if run:
                    worker_ms.append(ms)
                    floor_ms.append(floor)
                    init_ms.append(init)
    finally:
        server.stop()
    return ColdWorker(median(worker_ms), median(floor_ms), median(init_ms), RUNS)
