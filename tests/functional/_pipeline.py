"""The whole pipeline in one process: receiver ``lambda_handler`` → MemoryJobQueue → worker ``lambda_handler``.

Self-contained helpers for the chaos, fuzz and security tests (and ``python -m bench``): each function's
``app.py`` is loaded by path as Lambda would load it, the stack's adapters are handed in through
``flatfile_stack.runtime.use_runtime``, and the Flatfile API is the test kit's ``FakeFlatfile`` on loopback.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import flatfile_jobs
from flatfile_jobs import FlatfileListener, job_handler, webhook
from flatfile_jobs import _listener as listener_module
from flatfile_jobs.testing import FakeFlatfile, Fault
from flatfile_jobs_cli._events import FunctionName, http_api_event
from flatfile_jobs_cli._lambda import LocalContext, load_function
from flatfile_stack.idempotency import MemoryPersistenceLayer
from flatfile_stack.queues import MemoryJobQueue
from flatfile_stack.runtime import Runtime, use_runtime
from flatfile_stack.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# The Standard Webhooks test-vector secret and a second one, for rotation.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_" + base64.b64encode(b"rotated-secret-0123456789abcdef!").decode()
# Distinctive values: finding one in a log line cannot be a coincidence.
API_TOKEN = "sk_test_chaos_Q7xN2bV9mK4pL8sR"
ACCESS_TOKEN = "sk_agent_token_Hk3Jd9Wq2Zp5Lm8X"


def load_app(name: FunctionName) -> ModuleType:
    """A fresh ``functions/<name>/app.py`` (each call is a new Lambda instance)."""
    return load_function(ROOT, name)


def http_event(
    body: str | bytes | None,
    headers: Mapping[str, str] | None = None,
    *,
    is_base64: bool = False,
    method: str = "POST",
    path: str = "/webhook",
) -> dict[str, Any]:
    """The CLI's HTTP API (payload v2) event, with the parts a test gives kept as given.

    ``headers`` keep their names' case (default: a JSON content type). A ``str`` body is sent as is, even
    flagged base64 (invalid base64, lone surrogates); ``bytes`` are base64-encoded when ``is_base64``, else
    decoded with ``surrogateescape`` (invalid UTF-8 round-trips). ``isBase64Encoded`` is ``is_base64``.
    """
    headers = {"content-type": "application/json"} if headers is None else dict(headers)
    if isinstance(body, bytes):
        body = base64.b64encode(body).decode() if is_base64 else body.decode("utf-8", "surrogateescape")
    event = http_api_event(method, path, headers, b"")
    event.update(headers=headers, body=body, isBase64Encoded=is_base64)
    return event


def signed_request(
    event: Mapping[str, Any],
    *,
    secret: str = SECRET,
    msg_id: str | None = None,
    timestamp: int | None = None,
    access_token: str | None = None,
    is_base64: bool = False,
) -> dict[str, Any]:
    """A signed delivery of ``event`` (forwarder-shaped with ``_accessToken`` when ``access_token`` is given)."""
    payload: dict[str, Any] = dict(event)
    if access_token is not None:
        payload = {"src": dict(event), **dict(event), "_accessToken": access_token}
    body = json.dumps(payload).encode()
    headers = webhook.sign(secret, body, msg_id=msg_id or str(event["id"]), timestamp=timestamp)
    headers["content-type"] = "application/json"
    return http_event(body, headers, is_base64=is_base64)


def response_json(response: Mapping[str, Any]) -> Any:
    """The receiver's answer body, parsed (it must be JSON)."""
    return json.loads(response["body"])


class Invocations:
    """Counts how often each job's handler ran (thread-safe)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def hit(self, job_id: str) -> None:
        with self._lock:
            self._counts[job_id] += 1

    def count(self, job_id: str) -> int:
        with self._lock:
            return self._counts[job_id]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def decision(job_id: str) -> str:
    """What a chaos handler decides for a job, deterministically: ``"fail"``, ``"outcome"`` or ``"complete"``."""
    bucket = int(hashlib.sha256(job_id.encode()).hexdigest(), 16) % 10
    return "fail" if bucket < 3 else "outcome" if bucket < 5 else "complete"


def planned_failure(job_id: str) -> str:
    """The message a chaos handler fails its job with."""
    return f"Planned failure for {job_id}"


def planned_outcome(job_id: str) -> dict[str, Any]:
    """The complete body a chaos handler returns when it decides ``"outcome"``."""
    return {"outcome": {"message": f"Custom outcome for {job_id}", "acknowledge": True}}


def chaos_listener(
    api_url: str, invocations: Invocations, *, sleep: float = 0.0, retry_budget: float = 30.0
) -> FlatfileListener:
    """Handlers for ``chaos:sync`` (``def``) and ``chaos:async`` (``async def``) that act on :func:`decision`."""

    def act(event: flatfile_jobs.FlatfileEvent) -> dict[str, Any] | None:
        job_id = event.job_id or ""
        verdict = decision(job_id)
        if verdict == "fail":
            raise RuntimeError(planned_failure(job_id))
        return planned_outcome(job_id) if verdict == "outcome" else None

    def sync_handler(event: flatfile_jobs.FlatfileEvent, tick: Callable[..., Any]) -> dict[str, Any] | None:
        invocations.hit(event.job_id or "")
        tick(10, "Starting")
        if sleep:
            time.sleep(sleep)
        for step in range(20, 101, 20):
            tick(step)
        return act(event)

    async def async_handler(
        event: flatfile_jobs.FlatfileEvent, tick: Callable[..., Any]
    ) -> dict[str, Any] | None:
        import asyncio

        invocations.hit(event.job_id or "")
        await tick(10, "Starting")
        if sleep:
            await asyncio.sleep(sleep)
        for step in range(20, 101, 20):
            await tick(step)
        return act(event)

    options: dict[str, Any] = {"api_url": api_url, "tick_interval": 0.01, "retry_budget": retry_budget}
    listener = FlatfileListener()
    listener.use(job_handler("chaos:sync", sync_handler, **options))
    listener.use(job_handler("chaos:async", async_handler, **options))
    return listener


def chaos_faults(fake: FakeFlatfile) -> list[Fault]:
    """On every endpoint: 5 % connection resets (half before, half after the request took effect) and
    20 % errors with a small ``Retry-After`` (5 % 500, 5 % 503, 10 % 429).

    The fake applies the first fault that wins its draw, so each rate below is conditional on the ones
    before it not firing; the overall shares are the ones named above.
    """
    plan: list[tuple[float, dict[str, Any]]] = [
        (0.025, {"status": None, "reset": True}),
        (0.025, {"status": None, "reset": True, "after": True}),
        (0.05, {"status": 500, "retry_after": 0.01}),
        (0.05, {"status": 503, "retry_after": 0.03}),
        (0.10, {"status": 429, "retry_after": 0.05}),
    ]
    faults, left = [], 1.0
    for share, options in plan:
        faults.append(fake.add_fault(Fault(path="*", method="*", rate=share / left, **options)))
        left -= share
    return faults


@dataclass
class DrainStats:
    """What draining the queue took."""

    worker_calls: int = 0
    batch_failures: int = 0
    invocation_errors: int = 0
    dead_letters: int = 0
    outcomes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Pipeline:
    """Receiver and worker apps wired to a MemoryJobQueue, a MemoryPersistenceLayer and a fake Flatfile."""

    fake: FakeFlatfile
    listener: FlatfileListener
    queue: MemoryJobQueue
    persistence: MemoryPersistenceLayer
    runtime: Runtime
    receiver: ModuleType
    worker: ModuleType

    def deliver(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Hand one HTTP API event to the receiver; return its response."""
        response: dict[str, Any] = self.receiver.lambda_handler(
            dict(request), LocalContext("ReceiverFunction", 30.0)
        )
        return response

    def deliver_event(self, event: Mapping[str, Any], **options: Any) -> dict[str, Any]:
        """Sign and deliver one job:ready event."""
        return self.deliver(signed_request(event, **options))

    def run_record(
        self, record: Mapping[str, Any], *, worker: ModuleType | None = None, remaining: float = 900.0
    ) -> Any:
        """Hand one SQS record to a worker app (this pipeline's unless another instance is given)."""
        app = worker or self.worker
        return app.lambda_handler({"Records": [dict(record)]}, LocalContext("WorkerFunction", remaining))

    def drain(self, *, workers: int = 1, max_seconds: float = 600.0) -> DrainStats:
        """Run worker instances until the queue is empty; failed records are released for redelivery."""
        stats = DrainStats()
        lock = threading.Lock()
        apps = [self.worker] + [load_app("worker") for _ in range(workers - 1)]
        stop_at = time.monotonic() + max_seconds

        def consume(app: ModuleType) -> None:
            while time.monotonic() < stop_at:
                record = self.queue.receive(timeout=0.05)
                if record is None:
                    if self.queue.pending() == 0:
                        return
                    continue
                try:
                    result = self.run_record(record, worker=app)
                except Exception:  # Powertools raises when every record of the batch failed
                    failed, errored = True, True
                else:
                    failed, errored = bool(result["batchItemFailures"]), False
                if failed:
                    self.queue.release(record["receiptHandle"])
                else:
                    self.queue.delete(record["receiptHandle"])
                with lock:
                    stats.worker_calls += 1
                    stats.batch_failures += failed
                    stats.invocation_errors += errored

        threads = [
            threading.Thread(target=consume, args=(app,), name=f"worker-{i}") for i, app in enumerate(apps)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats.dead_letters = len(self.queue.dead_letters)
        return stats


def make_pipeline(
    fake: FakeFlatfile,
    listener: FlatfileListener,
    *,
    secrets: str = SECRET,
    deadline_margin: float = 10.0,
    max_receives: int = 10,
) -> Pipeline:
    """Install a runtime for ``listener`` and load fresh receiver and worker apps."""
    queue = MemoryJobQueue(max_receives=max_receives)
    persistence = MemoryPersistenceLayer()
    runtime = Runtime(
        settings=Settings(deadline_margin=deadline_margin),
        queue=queue,
        webhook_secrets=lambda: secrets,
        api_token=lambda: fake.token,
        persistence=persistence,
        listener=listener,
    )
    use_runtime(runtime)
    return Pipeline(fake, listener, queue, persistence, runtime, load_app("receiver"), load_app("worker"))


@contextlib.contextmanager
def isolated_stack() -> Iterator[None]:
    """Undo what a pipeline changes process-wide: the installed runtime and ``flatfile_jobs.configure``."""
    saved = dict(listener_module._configured)
    try:
        yield
    finally:
        use_runtime(None)
        listener_module._configured.clear()
        listener_module._configured.update(saved)


class LogTap(logging.Handler):
    """Collects every log record of every logger, rendered with all its attributes (extras included)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.name} {record.levelname} {record.getMessage()} {record.__dict__!r}"
        if record.exc_info:
            text += " " + logging.Formatter().formatException(record.exc_info)
        with self._lock2:
            self.lines.append(text)


@contextlib.contextmanager
def tap_all_logs() -> Iterator[LogTap]:
    """Capture every log record of the process, at DEBUG, while the ``with`` lasts.

    Every logger is set to DEBUG; a :class:`LogTap` is attached to the root logger and to every logger that
    does not propagate (Powertools' service loggers); stream handlers write to the current ``sys.stdout``
    (Powertools binds the one of the moment a Logger is first built, which pytest may have swapped since),
    so ``capfd`` sees the JSON lines too. Everything is put back afterwards.
    """
    tap = LogTap()
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    levels = [(logger, logger.level) for logger in loggers]
    streams: list[tuple[logging.StreamHandler[Any], Any]] = []
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        if logger is logging.getLogger() or not logger.propagate:
            logger.addHandler(tap)
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler:
                streams.append((handler, handler.stream))
                handler.setStream(sys.stdout)
    try:
        yield tap
    finally:
        for logger, level in levels:
            logger.removeHandler(tap)
            logger.setLevel(level)
        for handler, stream in streams:
            handler.setStream(stream)


# -- a worker process killed mid-job (see test_chaos) ----------------------------------------------------

IDEMPOTENCY_TABLE = "idempotency"


def sleepy_listener(api_url: str, seconds: float) -> FlatfileListener:
    """``kill:me`` ticks 50 "Running" (so a test can see it started), sleeps ``seconds`` and completes."""

    def handler(event: flatfile_jobs.FlatfileEvent, tick: Callable[..., Any]) -> None:
        tick(50, "Running")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.01)

    return FlatfileListener().use(job_handler("kill:me", handler, api_url=api_url, tick_interval=0))


def dynamodb_client(endpoint: str) -> Any:
    """A boto3 DynamoDB client for moto's server at ``endpoint`` (dummy credentials)."""
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def dynamodb_store(endpoint: str) -> Any:
    """The worker's DynamoDB idempotency store, on moto's server at ``endpoint``."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(table_name=IDEMPOTENCY_TABLE, boto3_client=dynamodb_client(endpoint))


def child_worker(config_json: str) -> None:
    """Entry point of a worker process that a test kills mid-job (``python -c``; the config as JSON)."""
    config = json.loads(config_json)
    use_runtime(
        Runtime(
            settings=Settings(deadline_margin=0.0),
            queue=MemoryJobQueue(),
            webhook_secrets=str,
            api_token=lambda: str(config["token"]),
            persistence=dynamodb_store(config["endpoint"]),
            listener=sleepy_listener(config["api_url"], 60.0),
        )
    )
    worker = load_app("worker")
    worker.lambda_handler(
        {"Records": [config["record"]]}, LocalContext("WorkerFunction", float(config["remaining"]))
    )


# -- the receiver alone (fuzzing, signatures) ----------------------------------------------------------


@dataclass
class ReceiverUnderTest:
    """A receiver app wired to its own MemoryJobQueue; ``call`` never lets a response go unchecked."""

    app: ModuleType
    queue: MemoryJobQueue

    def call(self, request: Mapping[str, Any]) -> tuple[int, Any]:
        """Run the receiver; return ``(status, parsed JSON body)`` after checking the answer is JSON."""
        response = self.app.lambda_handler(dict(request), LocalContext("ReceiverFunction", 30.0))
        headers = {str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()}
        assert headers.get("content-type", "").startswith("application/json"), response
        return int(response["statusCode"]), json.loads(response["body"])

    def drain(self) -> list[dict[str, Any]]:
        """Take every enqueued message off the queue (their bodies parsed)."""
        taken = []
        while (record := self.queue.receive(timeout=0)) is not None:
            self.queue.delete(record["receiptHandle"])
            taken.append(json.loads(record["body"]))
        return taken


def receiver_under_test(
    listener: FlatfileListener, *, secrets: str = SECRET, **settings: Any
) -> ReceiverUnderTest:
    """Install a runtime with ``listener`` and ``secrets`` (and ``Settings(**settings)``); load a receiver app."""
    queue = MemoryJobQueue()
    use_runtime(
        Runtime(
            settings=Settings(**settings),
            queue=queue,
            webhook_secrets=lambda: secrets,
            api_token=lambda: API_TOKEN,
            persistence=MemoryPersistenceLayer(),
            listener=listener,
        )
    )
    return ReceiverUnderTest(load_app("receiver"), queue)
