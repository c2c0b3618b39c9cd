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
from flatfile_jobs import FlatfileListener, job_handler
from flatfile_jobs_cli._events import FunctionName
from flatfile_jobs_testing import (
    FakeFlatfile,
    Fault,
    LocalContext,
    http_api_event,
    load_function,
    signed_headers,
)
from flatfile_stack.dead_letter import DEAD_LETTER_MAX_RECEIVES
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
    headers = signed_headers(body, secret, msg_id=msg_id or str(event["id"]), timestamp=timestamp)
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


def _record_run(invocations: Invocations, side_effects: str | None, job_id: str) -> None:
    invocations.hit(job_id)
    if side_effects is not None:
        with open(side_effects, "a") as log:
            log.write(job_id + "\n")


def chaos_listener(
    api_url: str,
    invocations: Invocations,
    *,
    sleep: float = 0.0,
    retry_budget: float = 30.0,
    side_effects: str | None = None,
) -> FlatfileListener:
    """Handlers for ``chaos:sync`` (``def``) and ``chaos:async`` (``async def``) that act on :func:`decision`.

    With ``side_effects`` (a file path), each run appends one line (its job id) there: runs in other
    processes are counted too.
    """

    def record_run(job_id: str) -> None:
        _record_run(invocations, side_effects, job_id)

    def act(event: flatfile_jobs.FlatfileEvent) -> dict[str, Any] | None:
        job_id = event.job_id or ""
        verdict = decision(job_id)
        if verdict == "fail":
            raise RuntimeError(planned_failure(job_id))
        return planned_outcome(job_id) if verdict == "outcome" else None

    def sync_handler(event: flatfile_jobs.FlatfileEvent, tick: Callable[..., Any]) -> dict[str, Any] | None:
        record_run(event.job_id or "")
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

        record_run(event.job_id or "")
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


class SimulatedClock:
    """The queue's clock in simulated seconds: it moves only when :meth:`advance` is called (thread-safe)."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        with self._lock:
            self._now += seconds


@dataclass
class DrainStats:
    """What draining the queue took."""

    worker_calls: int = 0
    batch_failures: int = 0
    invocation_errors: int = 0
    dead_letters: int = 0
    dead_letter_calls: int = 0
    dead_letter_failures: int = 0
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    # (simulated time, ApproximateReceiveCount, job id) of every record handed to a worker
    receives: list[tuple[float, int, str]] = field(default_factory=list)
    dead_lettered_jobs: list[str] = field(default_factory=list)


@dataclass
class Pipeline:
    """Receiver, worker and dead-letter apps wired to a MemoryJobQueue (on a simulated clock), a
    MemoryPersistenceLayer and a fake Flatfile."""

    fake: FakeFlatfile
    listener: FlatfileListener
    queue: MemoryJobQueue
    persistence: MemoryPersistenceLayer
    runtime: Runtime
    receiver: ModuleType
    worker: ModuleType
    clock: SimulatedClock

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
        """Act as Lambda's event source mappings until nothing is left: worker instances take visible
        records (a failed one is left to its visibility, as in SQS); dead letters go to the dead-letter
        function (a failing one is tried again, up to its bound); when every worker is idle and every
        message invisible, the simulated clock jumps to the next message's visibility."""
        drainer = _Drainer(self, time.monotonic() + max_seconds)
        apps = [self.worker] + [load_app("worker") for _ in range(workers - 1)]
        threads = [
            threading.Thread(target=drainer.consume, args=(app,), name=f"worker-{i}")
            for i, app in enumerate(apps)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return drainer.stats

    def _run_dead_letters(self, app: ModuleType, stats: DrainStats) -> None:
        """The dead-letter function on each new dead letter, tried again while it reports a failure."""
        while self.queue.dead_letters:
            record = self.queue.dead_letters.pop(0)
            stats.dead_letters += 1
            stats.dead_lettered_jobs.append(_job_of(record))
            for attempt in range(1, DEAD_LETTER_MAX_RECEIVES + 1):
                record["attributes"]["ApproximateReceiveCount"] = str(attempt)
                answer = app.lambda_handler({"Records": [record]}, LocalContext("DeadLetterFunction", 60.0))
                stats.dead_letter_calls += 1
                if not answer["batchItemFailures"]:
                    break
                stats.dead_letter_failures += 1


class _Drained(Exception):
    """Nothing is left to run."""


class _Drainer:
    """The state the worker threads of one :meth:`Pipeline.drain` share."""

    def __init__(self, pipe: Pipeline, stop_at: float) -> None:
        self.pipe, self.stop_at = pipe, stop_at
        self.stats = DrainStats()
        self.lock = threading.Lock()
        self.busy = 0
        self.dead_letter_app = load_app("dead_letter")

    def take(self) -> dict[str, Any] | None:
        """A visible record, or ``None`` after moving time on (raises :class:`_Drained` when all is done)."""
        pipe = self.pipe
        with self.lock:
            record = pipe.queue.receive(timeout=0)
            if record is not None:
                self.busy += 1
                count = int(record["attributes"]["ApproximateReceiveCount"])
                self.stats.receives.append((pipe.clock(), count, _job_of(record)))
                return record
            if self.busy == 0:
                pipe._run_dead_letters(self.dead_letter_app, self.stats)
                wait = pipe.queue.next_visible_in()
                if wait is None:
                    raise _Drained
                pipe.clock.advance(wait)
        time.sleep(0.001)
        return None

    def consume(self, app: ModuleType) -> None:
        """One worker instance's loop: run each record, delete it or leave it to its visibility."""
        while time.monotonic() < self.stop_at:
            try:
                record = self.take()
            except _Drained:
                return
            if record is None:
                continue
            try:
                result = self.pipe.run_record(record, worker=app)
            except Exception:  # Powertools raises when every record of the batch failed
                failed, errored = True, True
            else:
                failed, errored = bool(result["batchItemFailures"]), False
            if failed:
                self.pipe.queue.release(record["receiptHandle"])
            else:
                self.pipe.queue.delete(record["receiptHandle"])
            with self.lock:
                self.busy -= 1
                self.stats.worker_calls += 1
                self.stats.batch_failures += failed
                self.stats.invocation_errors += errored


def _job_of(record: Mapping[str, Any]) -> str:
    return str(record["messageAttributes"]["jobId"]["stringValue"])


def make_pipeline(
    fake: FakeFlatfile,
    listener: FlatfileListener,
    *,
    secrets: str = SECRET,
    deadline_margin: float = 10.0,
    max_receives: int = 10,
    **settings: Any,
) -> Pipeline:
    """Install a runtime for ``listener`` and load fresh receiver and worker apps.

    The queue runs on a :class:`SimulatedClock`; ``settings`` are more :class:`Settings` fields.
    """
    clock = SimulatedClock()
    queue = MemoryJobQueue(max_receives=max_receives, clock=clock)
    persistence = MemoryPersistenceLayer()
    runtime = Runtime(
        settings=Settings(deadline_margin=deadline_margin, **settings),
        queue=queue,
        webhook_secrets=lambda: secrets,
        api_token=lambda: fake.token,
        api_url=fake.url,
        persistence=persistence,
        listener=listener,
    )
    use_runtime(runtime)
    return Pipeline(
        fake, listener, queue, persistence, runtime, load_app("receiver"), load_app("worker"), clock
    )


@contextlib.contextmanager
def isolated_stack() -> Iterator[None]:
    """Undo what a pipeline changes process-wide: the runtime it handed to the functions."""
    try:
        yield
    finally:
        use_runtime(None)


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
    """The worker's DynamoDB idempotency store (with lease renewal), on moto's server at ``endpoint``."""
    from flatfile_stack.idempotency import dynamodb_persistence

    return dynamodb_persistence(IDEMPOTENCY_TABLE, boto3_client=dynamodb_client(endpoint))


# Production's heartbeat (20 s), lease (60 s) and message visibility (90 s) and the queue's visibility
# timeout (900 s), 100 times faster: the process tests run in real time and report simulated time.
TIME_SCALE = 100.0
SCALED: dict[str, Any] = {"heartbeat_seconds": 0.2, "lease_seconds": 0.6, "visibility_seconds": 0.9}
SCALED_QUEUE_VISIBILITY = 9.0


class _PipeQueue:
    """The child's job queue: each visibility change is a JSON line to the parent, which owns the queue."""

    def __init__(self, out: Any) -> None:
        self._out = out
        self._lock = threading.Lock()

    def send(self, delivery: Any) -> None:
        raise NotImplementedError

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        self._write({"op": "retry_later", "receipt": receipt_handle, "seconds": seconds})

    def extend_visibility(self, receipt_handle: str, seconds: float) -> None:
        self._write({"op": "extend_visibility", "receipt": receipt_handle, "seconds": seconds})

    def _write(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._out.write(json.dumps(message) + "\n")
            self._out.flush()


def child_worker(config_json: str) -> None:
    """A worker process (one Lambda sandbox): runs each SQS record read from stdin, reports on stdout.

    Its logs go to stderr; its queue calls and its answers are JSON lines on the original stdout.
    """
    import os

    config = json.loads(config_json)
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    listener = (
        sleepy_listener(config["api_url"], 60.0)
        if config["listener"] == "sleepy"
        else chaos_listener(
            config["api_url"], Invocations(), sleep=config["sleep"], side_effects=config["side_effects"]
        )
    )
    use_runtime(
        Runtime(
            settings=Settings(deadline_margin=0.0, **SCALED),
            queue=_PipeQueue(protocol),
            webhook_secrets=str,
            api_token=lambda: str(config["token"]),
            persistence=dynamodb_store(config["endpoint"]),
            listener=listener,
        )
    )
    worker = load_app("worker")
    queue = _PipeQueue(protocol)
    queue._write({"op": "ready", "receipt": ""})
    for line in sys.stdin:
        record = json.loads(line)
        answer = worker.lambda_handler({"Records": [record]}, LocalContext("WorkerFunction", 60.0))
        queue._write({"op": "done", "receipt": record["receiptHandle"], "answer": answer})


class WorkerProcess:
    """A worker in its own process, fed records by the test (the event source mapping), killable.

    The child's visibility changes are applied to ``queue`` as they arrive; its answer deletes the record
    or leaves it to its visibility (a failure), as Lambda's event source mapping does.
    """

    def __init__(self, queue: MemoryJobQueue, config: dict[str, Any]) -> None:
        import subprocess
        import tempfile

        self.queue = queue
        self.ready = threading.Event()
        self.done = threading.Event()
        self.answers: list[dict[str, Any]] = []
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        code = (
            f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
            "from tests.functional._pipeline import child_worker; child_worker(sys.argv[1])"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def run(self, record: Mapping[str, Any]) -> None:
        """Hand the child one record (it answers through :attr:`done`)."""
        assert self.process.stdin is not None
        self.done.clear()
        self.process.stdin.write(json.dumps(dict(record)) + "\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        """SIGKILL, as the platform stops a sandbox that ran out of memory."""
        self.process.kill()
        self.process.wait(timeout=10)
        self._reader.join(timeout=10)

    def close(self) -> None:
        """Stop the child (killed if still running) and free its pipes."""
        if self.process.poll() is None:
            self.kill()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self.stderr.close()

    def log(self) -> str:
        """What the child wrote to stderr (its logs)."""
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            receipt = message["receipt"]
            if message["op"] == "ready":
                self.ready.set()
                continue
            with contextlib.suppress(ValueError):  # a stale receipt handle, as SQS refuses it
                if message["op"] == "retry_later":
                    self.queue.retry_later(receipt, message["seconds"])
                elif message["op"] == "extend_visibility":
                    self.queue.extend_visibility(receipt, message["seconds"])
                elif message["answer"]["batchItemFailures"]:
                    self.queue.release(receipt)
                else:
                    self.queue.delete(receipt)
            if message["op"] == "done":
                self.answers.append(message["answer"])
                self.done.set()


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
