"""The worker's memory: RSS after 100 and after 1,000 jobs through its ``lambda_handler``, in a fresh process.

The worker process holds only what a warm Lambda instance holds: the fake Flatfile API runs in the parent,
and the idempotency store is DynamoDB's API (moto's server, also in the parent), as in AWS; an in-memory
store would grow by design and be counted against the worker.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

from flatfile_jobs_testing import LocalContext, sqs_event, sqs_record

from ._common import ROOT, python_env, run_python

CHECKPOINTS = (100, 1000)
TABLE = "flatfile-jobs-bench-idempotency"

CHILD = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from bench._memory import child
child(sys.argv[1])
"""


@dataclass
class MemoryResult:
    """RSS (MiB) of the worker process at each checkpoint, and the jobs' final states."""

    rss_mib: dict[int, float]
    baseline_mib: float
    completed: int
    jobs: int

    @property
    def growth_mib(self) -> float:
        return self.rss_mib[CHECKPOINTS[1]] - self.rss_mib[CHECKPOINTS[0]]


def rss_mib() -> float:
    """This process's resident set size now (not the peak), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _dynamodb(endpoint: str) -> Any:  # noqa: ANN401 - a boto3 client
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


def child(config_path: str) -> None:
    """The worker process: run the jobs one invocation each, print RSS at the checkpoints as JSON."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from flatfile_app_jobs import listener
    from flatfile_stack.queues import MemoryJobQueue
    from flatfile_stack.runtime import Runtime, use_runtime
    from flatfile_stack.settings import Settings

    from ._common import load_app, quiet_logs

    with open(config_path) as file:
        config = json.load(file)
    use_runtime(
        Runtime(
            settings=Settings(),
            queue=MemoryJobQueue(),
            webhook_secrets=str,
            api_token=lambda: str(config["token"]),
            persistence=DynamoDBPersistenceLayer(
                table_name=TABLE, boto3_client=_dynamodb(config["endpoint"])
            ),
            listener=listener,
        )
    )
    worker = load_app("worker")
    quiet_logs()
    result_stream, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115 - the metrics' EMF lines
    gc.collect()
    rss = {"baseline": rss_mib()}
    for done, event in enumerate(config["events"], start=1):
        result = worker.lambda_handler(sqs_event(sqs_record(event)), LocalContext("WorkerFunction", 900.0))
        if result["batchItemFailures"]:
            raise RuntimeError(f"job {event['context']['jobId']} failed: {result}")
        if done in CHECKPOINTS:
            gc.collect()
            rss[str(done)] = rss_mib()
    result_stream.write(json.dumps(rss) + "\n")


def measure() -> MemoryResult:
    """Run 1,000 ``space:configure`` jobs through a worker process; read its RSS at 100 and 1,000."""
    import tempfile

    from moto.server import ThreadedMotoServer

    from flatfile_jobs_testing import FakeFlatfile

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        _dynamodb(endpoint).create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        with FakeFlatfile(seed=11) as fake, tempfile.TemporaryDirectory() as folder:
            events = [fake.create_job_event("space:configure") for _ in range(CHECKPOINTS[-1])]
            path = f"{folder}/config.json"
            with open(path, "w") as file:
                json.dump({"token": fake.token, "endpoint": endpoint, "events": events}, file)
            stdout = run_python(CHILD, path, env=python_env(FLATFILE_API_URL=fake.url), timeout=600)
            out = json.loads(stdout.strip().splitlines()[-1])
            completed = sum(
                1 for event in events if fake.jobs[event["context"]["jobId"]]["status"] == "complete"
            )
    finally:
        server.stop()
    return MemoryResult(
        {n: float(out[str(n)]) for n in CHECKPOINTS}, float(out["baseline"]), completed, len(events)
    )
