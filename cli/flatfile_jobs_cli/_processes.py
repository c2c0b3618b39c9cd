"""Worker processes for the local stack: one interpreter per worker, as each Lambda execution environment is.

Worker threads share one interpreter lock, so N threads never use more than one core for the Python work
around each job (HTTP client, Powertools, the lifecycle); in Lambda every environment has its own. With
``LocalOptions(worker_processes=True)`` each worker runs ``functions/worker/app.py`` in a spawned process
of its own. The queue, the idempotency store and the long jobs' starter stay in the stack's process, so
every worker sees the same messages and claims (SQS and DynamoDB are shared in the cloud too): a worker
reaches them over a pipe, one call at a time, through :class:`RemoteQueue`, :class:`RemotePersistenceLayer`
and :class:`RemoteStarter`. The stack's process answers each worker's calls on a thread of its own.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

    from flatfile_stack.idempotency import MemoryPersistenceLayer
    from flatfile_stack.long_jobs import DurableStarter
    from flatfile_stack.queues import MemoryJobQueue

__all__ = [
    "RemotePersistenceLayer",
    "RemoteQueue",
    "RemoteStarter",
    "WorkerConfig",
    "WorkerProcesses",
    "main",
]

# How long a worker's wait for the next record lasts before it asks again (and so notices a stop).
_RECEIVE_SECONDS = 0.25
# How long the stack waits for every worker process to import and load its worker app.
START_TIMEOUT = 120.0
_STOP = "stop"


# The worker process's command: a fresh interpreter (no fork of a process running threads), which never
# imports the stack's ``__main__`` (so no ``if __name__ == "__main__"`` guard is needed where a stack starts).
_COMMAND = "import sys; from flatfile_jobs_cli._processes import main; main(int(sys.argv[1]))"


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker process needs to build its runtime (pickled to it over its pipe)."""

    sys_path: list[str]
    root: Path
    api_url: str
    token: str
    secret: str
    allow_unsigned: bool
    environment_id: str
    worker_timeout: float
    log_level: str
    compact_logs: bool
    send_logs: bool
    long_jobs: bool


class _Hub:
    """A worker's end of its pipe: one call (request and answer) at a time, from any of its threads."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def call(self, method: str, *args: object) -> Any:  # noqa: ANN401 - each method answers its own type
        """Call ``method`` in the stack's process; its exception is raised here."""
        with self._lock:
            self._conn.send((method, args))
            ok, value = self._conn.recv()
        if not ok:
            raise value
        return value


class RemoteQueue:
    """The stack's queue, as the worker's heartbeat and backoff use it (``JobQueue``)."""

    def __init__(self, hub: _Hub) -> None:
        self._hub = hub

    def send(self, delivery: object) -> None:
        """Workers never enqueue (the receiver and poller do)."""
        raise NotImplementedError("a worker process does not send to the queue")

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """``MemoryJobQueue.retry_later`` in the stack's process."""
        self._hub.call("retry_later", receipt_handle, seconds)

    def extend_visibility(self, receipt_handle: str, seconds: float) -> None:
        """``MemoryJobQueue.extend_visibility`` in the stack's process."""
        self._hub.call("extend_visibility", receipt_handle, seconds)


class RemotePersistenceLayer(BasePersistenceLayer):
    """The stack's idempotency store: Powertools' hashing and checks here, the conditional writes there."""

    def __init__(self, hub: _Hub) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._hub = hub

    def _get_record(self, idempotency_key: str) -> DataRecord:
        record: DataRecord = self._hub.call("get_record", idempotency_key)
        return record

    def _put_record(self, data_record: DataRecord) -> None:
        self._hub.call("put_record", data_record)

    def _update_record(self, data_record: DataRecord) -> None:
        self._hub.call("update_record", data_record)

    def _delete_record(self, data_record: DataRecord) -> None:
        self._hub.call("delete_record", data_record)

    def renew_in_progress(self, idempotency_key: str, until_ms: int) -> bool:
        """``MemoryPersistenceLayer.renew_in_progress`` in the stack's process (``LeaseRenewing``)."""
        return bool(self._hub.call("renew_in_progress", idempotency_key, until_ms))


class RemoteStarter:
    """The stack's long-job starter (``DurableStarter``): executions run in the stack's process."""

    def __init__(self, hub: _Hub) -> None:
        self._hub = hub

    def start(self, job_id: str, event: Mapping[str, Any]) -> str:
        """Start ``job_id``'s durable execution; its name."""
        return str(self._hub.call("start_long_job", job_id, dict(event)))


class _LogLines(io.StringIO):
    """A text stream whose writes go to the stack's log stream (nothing is kept here)."""

    def __init__(self, hub: _Hub) -> None:
        super().__init__()
        self._hub = hub

    def write(self, text: str) -> int:
        if text:
            self._hub.call("log", text)
        return len(text)


def main(fd: int) -> None:
    """A worker process: load the worker app, then run the records the stack hands out until told to stop.

    Args:
        fd: This process's end of its pipe to the stack (a connected socket); the first message is its
            :class:`WorkerConfig`.
    """
    conn = Connection(fd)
    config: WorkerConfig = conn.recv()
    sys.path[:] = config.sys_path
    hub = _Hub(conn)
    try:
        worker, exits = _start_worker(hub, config)
    except BaseException:
        hub.call("failed", traceback.format_exc())
        raise
    with exits:
        from ._lambda import LocalContext, close_thread_loop

        hub.call("ready")
        try:
            while (record := hub.call("next", _RECEIVE_SECONDS)) != _STOP:
                if record is None:
                    continue
                context = LocalContext("WorkerFunction", config.worker_timeout)
                try:
                    answer = worker.lambda_handler({"Records": [record]}, context)
                    failed = record["messageId"] in {
                        item.get("itemIdentifier") for item in answer.get("batchItemFailures", [])
                    }
                except Exception:  # the whole batch failed: SQS redelivers it
                    failed = True
                hub.call("done", record, failed)
        finally:
            close_thread_loop()


def _start_worker(hub: _Hub, config: WorkerConfig) -> tuple[Any, contextlib.ExitStack]:
    """This process's runtime (the stack's queue, store and starter over the pipe) and its worker app."""
    from flatfile_app_jobs import listener
    from flatfile_stack.runtime import Runtime, use_runtime
    from flatfile_stack.settings import Settings

    from ._lambda import load_function
    from ._logs import LogRoute

    exits = contextlib.ExitStack()
    stream = _LogLines(hub) if config.send_logs else exits.enter_context(open(os.devnull, "w"))  # noqa: SIM115
    sys.stdout = stream  # nothing a function prints lands in the parent's output unrouted
    exits.enter_context(LogRoute(stream, level=config.log_level, compact=config.compact_logs))
    secret, token = config.secret, config.token
    use_runtime(
        Runtime(
            settings=Settings(allow_unsigned=config.allow_unsigned, environment_id=config.environment_id),
            queue=RemoteQueue(hub),
            webhook_secrets=lambda: secret,
            api_token=lambda: token,
            api_url=config.api_url,
            persistence=RemotePersistenceLayer(hub),
            listener=listener,
            starter=RemoteStarter(hub) if config.long_jobs else None,
        )
    )
    return load_function(config.root, "worker"), exits


class WorkerProcesses:
    """The stack's side: spawn the worker processes, answer their calls, stop them.

    Args:
        config: Each worker's configuration.
        count: How many worker processes.
        queue: The stack's queue.
        persistence: The stack's idempotency store.
        starter: The stack's long-job starter (``None``: long jobs run like any job).
        finish_record: Called with each record a worker ran and whether it failed (delete or release it).
        log: Writes a worker's log text to the stack's log stream.
    """

    def __init__(
        self,
        config: WorkerConfig,
        count: int,
        *,
        queue: MemoryJobQueue,
        persistence: MemoryPersistenceLayer,
        starter: DurableStarter | None,
        finish_record: Callable[[dict[str, Any], bool], None],
        log: Callable[[str], None],
    ) -> None:
        self.queue = queue
        self.persistence = persistence
        self.starter = starter
        self._calls: dict[str, Callable[..., object]] = {
            "next": self._next,
            "done": finish_record,
            "extend_visibility": queue.extend_visibility,
            "retry_later": queue.retry_later,
            "get_record": persistence._get_record,
            "put_record": persistence._put_record,
            "update_record": persistence._update_record,
            "delete_record": persistence._delete_record,
            "renew_in_progress": persistence.renew_in_progress,
            "start_long_job": self._start_long_job,
            "log": log,
            "ready": self._started_one,
            "failed": self._started_one,
        }
        self._stop = threading.Event()
        self._started = threading.Condition()
        self._ready = 0
        self._failure: str | None = None
        self._processes: list[subprocess.Popen[bytes]] = []
        self._threads: list[threading.Thread] = []
        self._conns: list[Connection] = []
        for index in range(count):
            ours, theirs = socket.socketpair()
            with theirs:
                # This interpreter, a fixed command and a file descriptor number: no outside input.
                command = [sys.executable, "-c", _COMMAND, str(theirs.fileno())]
                self._processes.append(subprocess.Popen(command, pass_fds=[theirs.fileno()]))  # noqa: S603
            conn = Connection(ours.detach())
            conn.send(config)
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), name=f"worker-{index + 1}-calls")
            self._threads.append(thread)
            thread.start()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until every worker loaded its app.

        Raises:
            RuntimeError: A worker failed to start (its traceback), or not all started within ``timeout``.
        """
        with self._started:
            self._started.wait_for(
                lambda: (
                    self._failure is not None
                    or self._ready == len(self._processes)
                    or any(p.poll() is not None for p in self._processes)
                ),
                timeout,
            )
            if self._failure is not None:
                raise RuntimeError(f"a worker process failed to start:\n{self._failure}")
            if self._ready != len(self._processes):
                raise RuntimeError(f"{self._ready} of {len(self._processes)} worker processes started")

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids (while they run)."""
        return [process.pid for process in self._processes if process.poll() is None]

    def close(self) -> None:
        """Let each worker finish its record, then stop it; end the threads answering them."""
        self._stop.set()
        for process in self._processes:
            process.wait()
        for conn in self._conns:
            conn.close()
        for thread in self._threads:
            thread.join()

    def _serve(self, conn: Connection) -> None:
        """Answer one worker's calls until its pipe closes."""
        while True:
            try:
                method, args = conn.recv()
            except (EOFError, OSError):
                with self._started:  # a worker that died while starting ends the wait for it
                    self._started.notify_all()
                return
            try:
                answer: tuple[bool, object] = (True, self._answer(method, args))
            except Exception as exc:
                answer = (False, exc)
            try:
                conn.send(answer)
            except (BrokenPipeError, OSError):
                return

    def _next(self, timeout: float) -> dict[str, Any] | str | None:
        return _STOP if self._stop.is_set() else self.queue.receive(timeout=timeout)

    def _start_long_job(self, job_id: str, event: Mapping[str, Any]) -> str:
        if self.starter is None:
            raise RuntimeError("long jobs are off in this stack")
        return self.starter.start(job_id, event)

    def _started_one(self, failure: str | None = None) -> None:
        with self._started:
            if failure is None:
                self._ready += 1
            else:
                self._failure = failure
            self._started.notify_all()

    def _answer(self, method: str, args: tuple[Any, ...]) -> object:
        call = self._calls.get(method)
        if call is None:
            raise ValueError(f"unknown call {method!r}")
        return call(*args)
