"""The local stack with worker processes: each worker its own interpreter, sharing the stack's queue and store."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from flatfile_jobs_cli._common import CliError
from flatfile_jobs_cli.local import LocalOptions, LocalStack
from flatfile_jobs_testing import FakeFlatfile, signed_headers

ROOT = Path(__file__).resolve().parents[2]


def _post(stack: LocalStack, event: dict[str, Any]) -> int:
    body = json.dumps(event).encode()
    headers = signed_headers(body, stack.secret, msg_id=str(event["id"]))
    return httpx.post(stack.webhook_url, content=body, headers=headers).status_code


def _wait_status(fake: FakeFlatfile, job_id: str, status: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (job := fake.job(job_id))["status"] != status:
        assert time.monotonic() < deadline, f"{job_id} is {job['status']}, never {status}"
        time.sleep(0.02)
    return job


def _posts(fake: FakeFlatfile, job_id: str, action: str) -> int:
    return sum(1 for call, _ in fake.calls(job_id) if call == f"POST /jobs/{job_id}/{action}")


def _accepts(fake: FakeFlatfile, job_id: str) -> int:
    """The lifecycle's first ack (its later acks are ticks): one per run of the job."""
    bodies = [body for call, body in fake.calls(job_id) if call == f"POST /jobs/{job_id}/ack"]
    return sum(1 for body in bodies if isinstance(body, dict) and body.get("info") == "Accepted")


def test_a_multipart_job_runs_every_part_once_on_worker_processes() -> None:
    """Six parts through receiver → queue → three worker processes (no worker thread here): each part once, parent once."""
    options = LocalOptions(workers=3, worker_processes=True, log_level="WARNING")
    with LocalStack(options, root=ROOT) as stack:
        fake = stack.fake
        assert fake is not None
        pids = stack.worker_pids
        assert len(set(pids)) == 3
        assert os.getpid() not in pids
        assert not [t for t in threading.enumerate() if t.name.startswith("worker-") and t.name[7:].isdigit()]
        event = fake.create_job_event("workbook:export", environment_id="us_env_local", input={"parts": 6})
        parent_id = str(event["context"]["jobId"])
        assert _post(stack, event) == 202
        parent = _wait_status(fake, parent_id, "complete")
        parts = fake.parts(parent_id)
        assert stack.drain()
    assert (parent.get("outcome") or {}).get("message") == "Workbook exported in 6 parts."
    assert len(parts) == 6
    assert [_posts(fake, part["id"], "complete") for part in parts] == [1] * 6
    assert _posts(fake, parent_id, "complete") == 1
    assert stack.worker_pids == []


def test_a_duplicate_delivery_runs_once_across_worker_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same job:ready twice, taken at once by two worker processes: the shared idempotency store lets one run."""
    monkeypatch.setenv("FLATFILE_JOBS_SAMPLE_PACE", "0.5")  # the first run still holds its claim
    options = LocalOptions(workers=2, worker_processes=True, log_level="WARNING")
    with LocalStack(options, root=ROOT) as stack:
        fake = stack.fake
        assert fake is not None
        event = fake.create_job_event("space:configure", environment_id="us_env_local")
        job_id = str(event["context"]["jobId"])
        assert _post(stack, event) == 202
        assert _post(stack, event) == 202
        _wait_status(fake, job_id, "complete")
        assert stack.drain()
    assert _accepts(fake, job_id) == 1
    assert _posts(fake, job_id, "complete") == 1


def test_worker_process_logs_reach_the_stack_log_stream() -> None:
    """A worker process's log lines (its API calls at DEBUG) are written to the stack's log stream."""
    out = io.StringIO()
    options = LocalOptions(workers=1, worker_processes=True, log_stream=out, log_level="DEBUG")
    with LocalStack(options, root=ROOT) as stack:
        fake = stack.fake
        assert fake is not None
        event = fake.create_job_event("space:configure", environment_id="us_env_local")
        job_id = str(event["context"]["jobId"])
        assert _post(stack, event) == 202
        _wait_status(fake, job_id, "complete")
        assert stack.drain()
    received = [line for line in out.getvalue().splitlines() if f"path=/jobs/{job_id}/complete" in line]
    assert len(received) == 1
    assert "Flatfile API call" in received[0]


def test_a_worker_process_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    """A checkout with no worker function: starting fails with the worker process's own error, nothing left running."""
    shutil.copytree(ROOT / "functions" / "receiver", tmp_path / "functions" / "receiver")
    options = LocalOptions(workers=2, worker_processes=True, log_level="WARNING")
    with pytest.raises(CliError, match=r"(?s)a worker process failed to start.*cannot load .*worker/app\.py"):
        LocalStack(options, root=tmp_path).__enter__()


def test_worker_processes_do_not_reload_handlers() -> None:
    """Reloading handlers needs the workers in this process: asking for both is a one-line error."""
    options = LocalOptions(workers=1, worker_processes=True, reload_to=io.StringIO())
    with pytest.raises(CliError, match="worker processes do not reload handlers"):
        LocalStack(options, root=ROOT).__enter__()


def test_dead_letters_run_in_the_stack_process_with_worker_processes() -> None:
    """A message received too often goes to the dead-letter function, which fails its job (no worker thread runs it)."""
    options = LocalOptions(workers=1, worker_processes=True, log_level="WARNING")
    with LocalStack(options, root=ROOT) as stack:
        fake = stack.fake
        assert fake is not None
        stack.queue.max_receives = 0  # the redrive policy takes every message at its first receive
        event = fake.create_job_event("space:configure", environment_id="us_env_local")
        job_id = str(event["context"]["jobId"])
        assert _post(stack, event) == 202
        _wait_status(fake, job_id, "failed")
        assert stack.drain()
    assert [record["messageAttributes"]["jobId"]["stringValue"] for record in stack.dead_lettered] == [job_id]
    assert _accepts(fake, job_id) == 0
    assert _posts(fake, job_id, "fail") == 1
