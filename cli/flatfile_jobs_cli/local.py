"""``LocalStack``: the deployed stack's code on this machine, for ``demo``, ``serve``, ``invoke`` and tests.

The Lambda entry files are loaded from ``functions/*/app.py`` and called exactly as Lambda would: the
receiver behind real HTTP on loopback (:mod:`._front` plays API Gateway), an in-process queue with SQS's
record shape and redelivery in place of SQS, worker threads that each load their own copy of the worker
(one Lambda execution environment each), and the dead-letter function for messages received too often.
Flatfile is the test kit's fake API unless a real API URL and key are given. The fake also plays the forwarder
agent: the events it emits on its own (a split job's parts' ``job:ready``, the parent's ``job:parts-completed``)
are signed and posted to the receiver, as the forwarder delivers them in the cloud.

Example:
    >>> with LocalStack(LocalOptions()) as stack:  # doctest: +SKIP
    ...     print(stack.webhook_url, stack.secret)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from flatfile_jobs._table import load_plugins
from flatfile_jobs.webhook import parse_secrets
from flatfile_jobs_testing import FakeFlatfile, http_api_event, signed_headers
from flatfile_stack.idempotency import MemoryPersistenceLayer
from flatfile_stack.queues import Delivery, JobQueue, MemoryJobQueue
from flatfile_stack.runtime import Runtime, use_runtime
from flatfile_stack.settings import Settings

from ._common import CliError, find_root, scoped_env
from ._events import FunctionName
from ._front import HttpFront, RequestLog
from ._lambda import (
    LOCAL_ENV,
    TIMEOUTS,
    LocalContext,
    close_thread_loop,
    function_name,
    load_function,
    new_secret,
)
from ._logs import LogRoute
from ._reload import HandlerReloader

if TYPE_CHECKING:
    import httpx

if TYPE_CHECKING:
    from ._durable import LocalDurableStarter
    from ._processes import WorkerProcesses

__all__ = ["LOCAL_ENV", "LocalContext", "LocalOptions", "LocalStack", "close_thread_loop", "ensure_jobs"]


LOCAL_BACKOFF_SCALE = 1 / 60


@dataclass
class LocalOptions:
    """How to run the local stack.

    Attributes:
        api_url: A real Flatfile API root; ``None`` runs the fake.
        api_key: The key for ``api_url``.
        secret: The webhook signing secret(s); ``None`` generates one unless ``allow_unsigned``.
        allow_unsigned: Accept unsigned requests (and signed ones when a secret is set).
        host: Where the receiver listens.
        port: Its port (``0``: any free port).
        workers: Worker threads (concurrent execution environments); ``0`` leaves the queue alone.
        worker_processes: Run each worker in a process of its own instead of a thread (one interpreter per
            execution environment, as in Lambda: the workers' Python work runs in parallel); the queue,
            idempotency store and long jobs stay in this process. Not with ``reload_to``.
        worker_timeout: The worker's timeout in seconds (its jobs' deadline).
        environment_id: The Flatfile environment the poller reads.
        log_stream: Where the functions' log lines go; ``None`` drops them.
        log_level: Their level.
        compact_logs: One short line per log record instead of Lambda's JSON.
        serve_http: Start the HTTP front.
        on_request: Called for each HTTP request answered.
        on_record: Called after the worker ran a record: the record and whether it failed (to be retried).
        reload_to: Reload the job handlers between jobs when their files change, saying so here.
    """

    api_url: str | None = None
    api_key: str | None = None
    secret: str | None = None
    allow_unsigned: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    workers: int = 1
    worker_processes: bool = False
    worker_timeout: float = TIMEOUTS["worker"]
    environment_id: str = "us_env_local"
    log_stream: TextIO | None = None
    log_level: str = "INFO"
    compact_logs: bool = True
    serve_http: bool = True
    on_request: RequestLog | None = None
    on_record: Callable[[dict[str, Any], bool], None] | None = None
    reload_to: TextIO | None = None


class _JobCreatingQueue:
    """The job queue, creating each enqueued job in the fake (``ready``) when it does not know it yet."""

    def __init__(self, inner: MemoryJobQueue, fake: FakeFlatfile) -> None:
        self.inner = inner
        self.fake = fake

    def send(self, delivery: Delivery) -> None:
        ensure_jobs(self.fake, [delivery.event])
        self.inner.send(delivery)

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        self.inner.retry_later(receipt_handle, seconds)

    def extend_visibility(self, receipt_handle: str, seconds: float) -> None:
        self.inner.extend_visibility(receipt_handle, seconds)


def ensure_jobs(fake: FakeFlatfile, events: list[dict[str, Any]], *, status: str = "ready") -> None:
    """Create in the fake every job these events refer to that it does not have yet."""
    for event in events:
        job_id = (event.get("context") or {}).get("jobId")
        job = (event.get("payload") or {}).get("job")
        if not isinstance(job_id, str) or not isinstance(job, str) or job_id in fake.jobs:
            continue
        env = str((event.get("context") or {}).get("environmentId") or "us_env_local")
        with contextlib.suppress(ValueError):
            fake.add_job(job, job_id=job_id, environment_id=env, status=status)


class LocalStack:
    """The receiver, queue, workers and dead-letter function on this machine (see the module docstring)."""

    def __init__(self, options: LocalOptions, *, root: Path | None = None) -> None:
        self.options = options
        self.root = root or find_root()
        self.fake: FakeFlatfile | None = None
        # SQS's visibility rules in real time, but a failed record's backoff (30 s, 1, 2, 4, 8 min) runs
        # a minute per second here, so a local retry or dead letter takes seconds.
        self.queue = MemoryJobQueue(backoff_scale=LOCAL_BACKOFF_SCALE)
        self.front: HttpFront | None = None
        self.durable: LocalDurableStarter | None = None
        self.secret = options.secret or ("" if options.allow_unsigned else new_secret())
        if self.secret:
            try:
                parse_secrets(self.secret)
            except ValueError as exc:
                raise CliError(f"invalid webhook secret: {exc} (whsec_ followed by base64)") from None
        self._exits = contextlib.ExitStack()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._processes: WorkerProcesses | None = None
        self._receiver: ModuleType | None = None
        self._receiver_lock = threading.Lock()
        self._dead_lock = threading.Lock()
        self._dead_running = 0
        self.dead_lettered: list[dict[str, Any]] = []
        self.reloader: HandlerReloader | None = None
        self.forward_failures = 0
        self._forwarder: httpx.Client | None = None

    # -- life cycle -------------------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _start(self) -> None:
        options = self.options
        self._exits.enter_context(scoped_env(LOCAL_ENV, override=False))
        stream = options.log_stream or self._exits.enter_context(open(os.devnull, "w"))  # noqa: SIM115
        self._exits.enter_context(LogRoute(stream, level=options.log_level, compact=options.compact_logs))
        api_url, token = options.api_url, options.api_key
        if api_url is None:
            self.fake = self._exits.enter_context(FakeFlatfile(seed=None))
            api_url, token = self.fake.url, self.fake.token
        if not token:
            raise CliError("a real Flatfile API needs a key: pass --api-key or set FLATFILE_API_KEY")
        # Long jobs run as durable executions on the SDK's local test runner (waits skipped); imported here,
        # as the runner and the SDK are only needed once a stack starts.
        from ._durable import LocalDurableStarter

        self.durable = LocalDurableStarter(lambda: runtime, on_unfinished=self._dead_letter_execution)
        self._exits.callback(self.durable.close)
        runtime = self._runtime(api_url, token)
        use_runtime(runtime)
        self._exits.callback(use_runtime, None)
        if options.reload_to is not None:
            self.reloader = HandlerReloader(
                options.reload_to, lambda listener: setattr(runtime, "listener", listener)
            )
            self._exits.enter_context(self.reloader)
        self._receiver = load_function(self.root, "receiver")
        if options.worker_processes and options.workers > 0:
            self._start_processes(runtime, api_url, token)
        for index in range(0 if options.worker_processes else max(0, options.workers)):
            thread = threading.Thread(target=self._work, name=f"worker-{index + 1}", daemon=True)
            self._threads.append(thread)
            thread.start()
        if options.serve_http:
            try:
                self.front = HttpFront(
                    self.invoke_receiver, host=options.host, port=options.port, on_request=options.on_request
                )
            except OSError as exc:
                raise CliError(
                    f"cannot listen on {options.host}:{options.port} ({exc.strerror}): pick another --port"
                ) from None
        if self.fake is not None:
            import httpx

            self._forwarder = self._exits.enter_context(httpx.Client(timeout=10.0))
            self.fake.subscribe(self.forward)
            self._exits.callback(self.fake.unsubscribe, self.forward)

    def _start_processes(self, runtime: Runtime, api_url: str, token: str) -> None:
        """Spawn the worker processes and wait until each loaded its app; dead letters run on a thread here."""
        from ._processes import WorkerConfig, WorkerProcesses

        options = self.options
        if options.reload_to is not None:
            raise CliError("worker processes do not reload handlers: run worker threads to reload")
        persistence = runtime.idempotency_store()
        assert isinstance(persistence, MemoryPersistenceLayer)
        config = WorkerConfig(
            sys_path=list(sys.path),
            root=self.root,
            api_url=api_url,
            token=token,
            secret=self.secret,
            allow_unsigned=options.allow_unsigned,
            environment_id=options.environment_id,
            worker_timeout=options.worker_timeout,
            log_level=options.log_level,
            compact_logs=options.compact_logs,
            send_logs=options.log_stream is not None,
            long_jobs=self.durable is not None,
        )
        self._processes = WorkerProcesses(
            config,
            options.workers,
            queue=self.queue,
            persistence=persistence,
            starter=self.durable,
            finish_record=self._record_ran,
            log=self._write_log,
        )
        try:
            self._processes.wait_ready()
        except RuntimeError as exc:
            raise CliError(str(exc)) from None
        thread = threading.Thread(target=self._dead_letter_loop, name="dead-letters", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _write_log(self, text: str) -> None:
        """A worker process's log text, to the log stream."""
        if self.options.log_stream is not None:
            self.options.log_stream.write(text)
            self.options.log_stream.flush()

    def _runtime(self, api_url: str, token: str) -> Runtime:
        from flatfile_app_jobs import listener

        load_plugins(listener)  # every handler module at start, as the reloader does on each reload
        queue: JobQueue = self.queue if self.fake is None else _JobCreatingQueue(self.queue, self.fake)
        secret = self.secret
        return Runtime(
            settings=Settings(
                allow_unsigned=self.options.allow_unsigned, environment_id=self.options.environment_id
            ),
            queue=queue,
            webhook_secrets=lambda: secret,
            api_token=lambda: token,
            api_url=api_url,
            persistence=MemoryPersistenceLayer(),
            listener=listener,
            cursor_stores={},
            starter=self.durable,
        )

    def close(self) -> None:
        """Stop the HTTP front, then the workers, then Flatfile's fake; restore logs and environment."""
        if self.front is not None:
            self.front.close()
            self.front = None
        self._stop.set()
        if self._processes is not None:
            self._processes.close()
            self._processes = None
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self._exits.close()

    # -- addresses --------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The HTTP front's base URL."""
        if self.front is None:
            raise RuntimeError("the HTTP front is not running")
        return self.front.url

    @property
    def worker_pids(self) -> list[int]:
        """The worker processes' ids (``[]`` with worker threads, or once stopped)."""
        return self._processes.pids if self._processes is not None else []

    @property
    def webhook_url(self) -> str:
        """Where to POST deliveries."""
        return self.url + "/webhook"

    # -- running functions ------------------------------------------------------------------------------

    def invoke_receiver(self, event: dict[str, Any]) -> dict[str, Any]:
        """Call the receiver with one HTTP API v2 event (one request at a time, as one Lambda environment)."""
        assert self._receiver is not None
        with self._receiver_lock, self._handlers():
            return dict(
                self._receiver.lambda_handler(event, LocalContext("ReceiverFunction", TIMEOUTS["receiver"]))
            )

    def invoke(self, name: FunctionName, event: dict[str, Any]) -> dict[str, Any]:
        """Run one event through a fresh copy of a function in its own thread (as ``sam local invoke``).

        Raises:
            Exception: Whatever the function raised.
        """
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                module = load_function(self.root, name)
                context = LocalContext(function_name(name), TIMEOUTS[name])
                outcome["answer"] = module.lambda_handler(event, context)
            except BaseException as exc:  # handed to the caller's thread
                outcome["error"] = exc
            finally:
                close_thread_loop()

        thread = threading.Thread(target=run, name=f"invoke-{name}")
        thread.start()
        thread.join()
        self._wait_for_long_jobs()
        if "error" in outcome:
            raise outcome["error"]
        answer = outcome.get("answer")
        return dict(answer) if isinstance(answer, dict) else {"result": answer}

    def _wait_for_long_jobs(self, timeout: float = 60.0) -> None:
        """Wait (a while) for the durable executions a worker started: the local run reports them ended."""
        deadline = time.monotonic() + timeout
        while self.durable is not None and not self.durable.idle() and time.monotonic() < deadline:
            time.sleep(0.02)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is queued, in flight or dead-lettered and unhandled; ``False`` on timeout.

        Idle must be seen twice in a row: a message is briefly in neither list while a worker takes it.
        """
        deadline = time.monotonic() + timeout
        idle_before = False
        while time.monotonic() < deadline:
            with self._dead_lock:
                idle = self.queue.pending() == 0 and not self.queue.dead_letters and not self._dead_running
            idle = idle and (self.durable is None or self.durable.idle())
            if idle and idle_before:
                return True
            idle_before = idle
            time.sleep(0.02)
        return False

    def forward(self, event: dict[str, Any]) -> None:
        """Deliver an event Flatfile emitted to the receiver, signed, as the forwarder agent does.

        Over HTTP when the front runs, else straight to the receiver function; retried like the agent
        (three attempts) when the answer is not 2xx.
        """
        body = json.dumps(event, separators=(",", ":")).encode()
        status = 0
        for _ in range(3):
            headers = {"content-type": "application/json", "user-agent": "flatfile-jobs-local-forwarder"}
            if self.secret:
                headers.update(signed_headers(body, parse_secrets(self.secret)[0]))
            try:
                status = self._post(body, headers)
            except OSError:
                status = 0
            if 200 <= status < 300:
                return
        self.forward_failures += 1
        logging.getLogger(__name__).warning(
            "Could not deliver Flatfile's %s event %s to the receiver (last status %s)",
            event.get("topic"),
            event.get("id"),
            status,
        )

    def _post(self, body: bytes, headers: dict[str, str]) -> int:
        front, client = self.front, self._forwarder
        if front is None or client is None:
            answer = self.invoke_receiver(http_api_event("POST", "/webhook", headers, body))
            return int(answer.get("statusCode", 0))
        import httpx

        try:
            return client.post(front.url + "/webhook", content=body, headers=headers).status_code
        except httpx.HTTPError:
            return 0

    # -- the worker loop --------------------------------------------------------------------------------

    def _work(self) -> None:
        try:
            worker = load_function(self.root, "worker")
            dead_letter = load_function(self.root, "dead_letter")
            while not self._stop.is_set():
                record = self.queue.receive(timeout=0.05)
                if record is not None:
                    self._run_record(worker, record)
                self._run_dead_letters(dead_letter)
        finally:
            close_thread_loop()

    def _run_record(self, worker: ModuleType, record: dict[str, Any]) -> None:
        context = LocalContext("WorkerFunction", self.options.worker_timeout)
        try:
            with self._handlers():
                answer = worker.lambda_handler({"Records": [record]}, context)
            failed = {item.get("itemIdentifier") for item in answer.get("batchItemFailures", [])}
        except Exception:  # the whole batch failed (as when every record fails): SQS redelivers it
            failed = {record["messageId"]}
        self._record_ran(record, record["messageId"] in failed)

    def _record_ran(self, record: dict[str, Any], failed: bool) -> None:
        """A worker ran the record: delete it, or leave it to come back (SQS's event source mapping)."""
        if failed:
            self.queue.release(record["receiptHandle"])
        else:
            self.queue.delete(record["receiptHandle"])
        if self.options.on_record is not None:
            self.options.on_record(record, failed)

    def _dead_letter_loop(self) -> None:
        """With worker processes: the dead-letter function runs here, on messages received too often."""
        try:
            dead_letter = load_function(self.root, "dead_letter")
            while not self._stop.wait(0.05):
                self._run_dead_letters(dead_letter)
        finally:
            close_thread_loop()

    def _handlers(self) -> contextlib.AbstractContextManager[None]:
        """The job handlers held for one job or request (not reloaded meanwhile)."""
        return self.reloader.job() if self.reloader is not None else contextlib.nullcontext()

    def _dead_letter_execution(self, status_change: dict[str, Any]) -> None:
        """A long job's execution that ended unfinished joins the dead letters, as the stack's rule sends it."""
        with self._dead_lock:
            self.queue.dead_letter(json.dumps(status_change, separators=(",", ":")))

    def _run_dead_letters(self, dead_letter: ModuleType) -> None:
        while True:
            with self._dead_lock:
                if not self.queue.dead_letters:
                    return
                record = self.queue.dead_letters.pop(0)
                self._dead_running += 1
            self.dead_lettered.append(record)
            try:
                with contextlib.suppress(Exception):  # its own logs say why; the record stays listed
                    dead_letter.lambda_handler(
                        {"Records": [record]}, LocalContext("DeadLetterFunction", 30.0)
                    )
            finally:
                with self._dead_lock:
                    self._dead_running -= 1
