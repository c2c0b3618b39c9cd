"""`flatfile-jobs fake-api` and events/env.local.json: the functions as `sam local` runs them, without AWS.

CI has no Docker, so the functions run in-process with exactly the variables events/env.local.json gives
each one (and the two SAM sets in its containers); the only change is the address: the container's
``host.docker.internal`` is this machine's loopback.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from flatfile_jobs import ConfigurationError
from flatfile_jobs_cli.__main__ import build_parser, main
from flatfile_jobs_cli._events import FunctionName, flatfile_event, function_event
from flatfile_jobs_cli._lambda import close_thread_loop, function_name, load_function
from flatfile_jobs_cli.fake_api import fake_api
from flatfile_jobs_testing import FakeFlatfile, LocalContext
from flatfile_stack.queues import MemoryJobQueue

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = ROOT / "events" / "env.local.json"
DOCKER_API_URL = "http://host.docker.internal:8788"


class FakeApi:
    def __init__(self, fake: FakeFlatfile, out: io.StringIO) -> None:
        self.fake = fake
        self.out = out

    def wait_out(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.out.getvalue():
            assert time.monotonic() < deadline, f"{text!r} never printed:\n{self.out.getvalue()}"
            time.sleep(0.02)
        return self.out.getvalue()


@pytest.fixture
def fake_api_running() -> Iterator[FakeApi]:
    """`flatfile-jobs fake-api --port 0` in a thread, stopped after the test."""
    args = build_parser().parse_args(["fake-api", "--port", "0"])
    ready: list[FakeFlatfile] = []
    got, stop, out = threading.Event(), threading.Event(), io.StringIO()

    def on_ready(fake: FakeFlatfile) -> None:
        ready.append(fake)
        got.set()

    thread = threading.Thread(
        target=fake_api, args=(args,), kwargs={"stop": stop, "on_ready": on_ready, "out": out}
    )
    thread.start()
    try:
        assert got.wait(10), out.getvalue()
        yield FakeApi(ready[0], out)
    finally:
        stop.set()
        thread.join(10)


@pytest.fixture
def loaded() -> dict[str, ModuleType]:
    """The function apps ``run_function`` loaded, by name (the last one of each)."""
    return {}


@pytest.fixture
def run_function(
    monkeypatch: pytest.MonkeyPatch, fake_api_running: FakeApi, loaded: dict[str, ModuleType]
) -> Callable[..., dict[str, Any]]:
    """``run_function(name, event, sam_local=True)``: the function with its env.local.json variables."""
    sections = json.loads(ENV_FILE.read_text())

    def run(name: FunctionName, event: dict[str, Any], *, sam_local: bool = True) -> dict[str, Any]:
        logical_id = function_name(name)
        variables = dict(sections[logical_id])
        assert variables["FLATFILE_API_URL"] == DOCKER_API_URL
        local_url = "http://127.0.0.1:" + fake_api_running.fake.url.rsplit(":", 1)[1]
        variables["FLATFILE_API_URL"] = local_url
        for key, value in variables.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", logical_id)  # what Lambda and sam local set
        if sam_local:
            monkeypatch.setenv("AWS_SAM_LOCAL", "true")  # what sam local adds
        else:
            monkeypatch.delenv("AWS_SAM_LOCAL", raising=False)
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                module = loaded[name] = load_function(ROOT, name)  # its runtime: from this environment
                outcome["answer"] = module.lambda_handler(event, LocalContext(logical_id, 60.0))
            finally:
                close_thread_loop()

        thread = threading.Thread(target=call)
        thread.start()
        thread.join(30)
        answer = outcome["answer"]
        assert isinstance(answer, dict)
        return answer

    return run


def test_env_local_json_points_each_function_at_the_fake_and_configures_nothing_else() -> None:
    """The file gives the receiver, worker and dead-letter function the fake's Docker address, no AWS
    resource, and the fake's own key (the worker and dead-letter function only)."""
    sections = json.loads(ENV_FILE.read_text())
    assert set(sections) == {"ReceiverFunction", "WorkerFunction", "DeadLetterFunction"}
    for variables in sections.values():
        assert variables["FLATFILE_API_URL"] == DOCKER_API_URL
        for key in ("JOB_QUEUE_URL", "IDEMPOTENCY_TABLE", "WEBHOOK_SECRET_ID", "FLATFILE_API_KEY_SECRET_ID"):
            assert variables.get(key, "") == ""
    assert sections["WorkerFunction"]["FLATFILE_API_KEY"] == "sk_test_fake"
    assert sections["DeadLetterFunction"]["FLATFILE_API_KEY"] == "sk_test_fake"
    assert "FLATFILE_API_KEY" not in sections["ReceiverFunction"]
    assert sections["ReceiverFunction"]["ALLOW_UNSIGNED"] == "true"


def test_receiver_then_worker_run_a_job_against_the_fake_api(
    run_function: Callable[..., dict[str, Any]], fake_api_running: FakeApi, loaded: dict[str, ModuleType]
) -> None:
    """The receiver accepts an unsigned request into the local queue; the worker runs that record against
    the fake (the job created there on first use), which prints each tick and the outcome."""
    event = flatfile_event("space:configure", context={"jobId": "us_jb_sam1"})
    answer = run_function("receiver", function_event("receiver", event))
    assert answer["statusCode"] == 202
    queue = loaded["receiver"].runtime().queue
    assert isinstance(queue, MemoryJobQueue)
    record = queue.receive(timeout=0)
    assert record is not None
    assert json.loads(record["body"]) == event
    assert run_function("worker", {"Records": [record]}) == {"batchItemFailures": []}
    fake = fake_api_running.fake
    assert fake.job("us_jb_sam1")["status"] == "complete"
    calls = fake.calls("us_jb_sam1")
    assert calls[0] == ("POST /jobs/us_jb_sam1/ack", {"info": "Accepted", "progress": 0})
    assert calls[-1] == ("POST /jobs/us_jb_sam1/complete", {"outcome": {"message": "Job complete"}})
    assert all(request.headers["authorization"] == "Bearer sk_test_fake" for request in fake.requests)
    out = fake_api_running.wait_out("outcome  job us_jb_sam1: complete  Job complete")
    assert "progress job us_jb_sam1   0%  Accepted" in out


def test_a_duplicate_record_is_answered_from_the_in_memory_idempotency_store(
    run_function: Callable[..., dict[str, Any]], fake_api_running: FakeApi
) -> None:
    """No IDEMPOTENCY_TABLE: the worker keeps its records in memory, so a second record for the job does not
    run it again."""
    event = function_event("worker", flatfile_event("workbook:submit", context={"jobId": "us_jb_sam2"}))
    assert run_function("worker", event) == {"batchItemFailures": []}
    assert run_function("worker", event) == {"batchItemFailures": []}
    completes = [call for call, _ in fake_api_running.fake.calls("us_jb_sam2") if call.endswith("/complete")]
    assert completes == ["POST /jobs/us_jb_sam2/complete"]


def test_the_dead_letter_function_fails_the_job_in_the_fake(
    run_function: Callable[..., dict[str, Any]], fake_api_running: FakeApi
) -> None:
    """A dead-letter record fails its job in the fake Flatfile API with the key from the env file."""
    event = function_event("dead_letter", flatfile_event("file:process", context={"jobId": "us_jb_sam3"}))
    assert run_function("dead_letter", event) == {"batchItemFailures": []}
    assert fake_api_running.fake.job("us_jb_sam3")["status"] == "failed"


@pytest.mark.filterwarnings("ignore:No application metrics to publish")  # a failed record adds none
def test_a_plain_api_key_is_refused_when_the_function_runs_in_aws(
    run_function: Callable[..., dict[str, Any]],
    fake_api_running: FakeApi,
    monkeypatch: pytest.MonkeyPatch,
    loaded: dict[str, ModuleType],
) -> None:
    """AWS_LAMBDA_FUNCTION_NAME without AWS_SAM_LOCAL (a deployed function): FLATFILE_API_KEY is refused, the
    record fails (to be retried, then dead-lettered) and Flatfile gets no request."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):  # the failed record's SQS call stops here, offline
        monkeypatch.delenv(name, raising=False)
    event = function_event("worker", flatfile_event("space:configure", context={"jobId": "us_jb_aws1"}))
    answer = run_function("worker", event, sam_local=False)
    assert answer["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    assert fake_api_running.fake.calls("us_jb_aws1") == []
    with pytest.raises(ConfigurationError, match="FLATFILE_API_KEY is for local runs only"):
        loaded["worker"].runtime().api_token()


def test_fake_api_on_a_port_in_use_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A taken port exits 2 naming --port."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["fake-api", "--port", str(taken.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flatfile-jobs: cannot listen on 127.0.0.1:")
    assert "--port" in err


def test_fake_api_banner_names_both_addresses(fake_api_running: FakeApi) -> None:
    """The banner gives the URL for this machine and says how containers reach it."""
    out = fake_api_running.out.getvalue()
    port = fake_api_running.fake.url.rsplit(":", 1)[1]
    assert f"http://127.0.0.1:{port}" in out
    assert "FLATFILE_API_KEY  sk_test_fake" in out
    assert f"http://127.0.0.1:{port} (this machine; pass --host 0.0.0.0 to let Docker containers in)" in out
