"""Long jobs on this machine: the SDK's local test runner runs each durable execution in-process.

The runner replays the durable worker's handler exactly as Lambda would, skipping wait time, so a job that waits
an hour completes in seconds. Like Lambda, a start with a known execution name starts nothing new; like Lambda,
an execution that ends ``FAILED``, ``TIMED_OUT`` or ``STOPPED`` is reported as a ``Durable Execution Status
Change`` event (to ``on_unfinished``: the local stack hands it to the dead-letter function, as the stack's rule
does).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_durable_execution_sdk_python_testing import DurableFunctionTestResult, DurableFunctionTestRunner

from flatfile_jobs._durable import close_long_job_loop
from flatfile_stack import durable
from flatfile_stack.long_jobs import execution_name, execution_payload

if TYPE_CHECKING:
    from flatfile_stack.runtime import Runtime

__all__ = ["LocalDurableStarter", "status_change_event"]

# The local run's stand-in for the stack's DurableExecutionTimeout (the runner's own default is 5 minutes).
LOCAL_EXECUTION_TIMEOUT = 3600
LOCAL_FUNCTION_ARN = "arn:aws:lambda:local:000000000000:function:flatfile-jobs-durable-worker"
# How an execution ends without the durable worker having completed or failed its job.
UNFINISHED = frozenset({"FAILED", "TIMED_OUT", "STOPPED"})


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status_change_event(name: str, status: str, *, started: datetime, ended: datetime) -> dict[str, Any]:
    """Lambda's EventBridge event for the durable worker's execution ``name`` that ended ``status``."""
    return {
        "version": "0",
        "id": f"local-{name}-{status.lower()}",
        "detail-type": "Durable Execution Status Change",
        "source": "aws.lambda",
        "account": "000000000000",
        "time": _timestamp(ended).split(".")[0] + "Z",
        "region": "local",
        "resources": [],
        "detail": {
            "durableExecutionArn": f"{LOCAL_FUNCTION_ARN}:$LATEST/durable-execution/{name}/local",
            "durableExecutionName": name,
            "functionArn": f"{LOCAL_FUNCTION_ARN}:$LATEST",
            "status": status,
            "startTimestamp": _timestamp(started),
            "endTimestamp": _timestamp(ended),
        },
    }


class LocalDurableStarter:
    """A ``DurableStarter`` on ``DurableFunctionTestRunner``: executions run on the runner's threads.

    Args:
        runtime: The durable worker's runtime for each execution (the local stack's).
        execution_timeout: Seconds an execution may run.
        on_unfinished: Called with Lambda's status change event for an execution that ends FAILED, TIMED_OUT or
            STOPPED (the local stack hands it to the dead-letter function, as the stack's rule does).
    """

    def __init__(
        self,
        runtime: Callable[[], Runtime],
        *,
        execution_timeout: int = LOCAL_EXECUTION_TIMEOUT,
        on_unfinished: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._handler = durable.handler_for(runtime)
        self._lock = threading.Lock()
        self._runner: DurableFunctionTestRunner | None = None
        self._timeout = execution_timeout
        self._on_unfinished = on_unfinished
        self._started: dict[str, datetime] = {}
        self.executions: dict[str, str] = {}
        self._ended: dict[str, threading.Event] = {}
        self._results: dict[str, DurableFunctionTestResult | Exception] = {}
        self.starts = 0

    def start(self, job_id: str, event: Mapping[str, Any]) -> str:
        """Start the job's execution unless one with its name exists; returns the name."""
        name = execution_name(job_id)
        with self._lock:
            self.starts += 1
            if name not in self.executions:
                if self._runner is None:
                    self._runner = DurableFunctionTestRunner(handler=self._handler, poll_interval=0.05)
                arn = self._runner.run_async(
                    input=execution_payload(event),
                    execution_timeout=self._timeout,
                    function_name="DurableWorkerFunction",
                    execution_name=name,
                )
                self.executions[name] = arn
                self._started[name] = datetime.now(UTC)
                self._ended[name] = threading.Event()
                # One waiter per execution: the runner forgets a completion once someone has waited for it.
                threading.Thread(target=self._wait, args=(self._runner, name, arn), daemon=True).start()
        return name

    def _wait(self, runner: DurableFunctionTestRunner, name: str, arn: str) -> None:
        try:
            result = self._results[name] = runner.wait_for_result(arn, timeout=self._timeout + 60)
            status = getattr(result.execution_status, "value", None)
            if self._on_unfinished is not None and status in UNFINISHED:
                # Reported before the execution counts as ended: whoever waits for it then sees its dead letter.
                event = status_change_event(
                    name, str(status), started=self._started[name], ended=datetime.now(UTC)
                )
                self._on_unfinished(event)
        except Exception as exc:  # handed to whoever asks for the result
            self._results[name] = exc
        finally:
            self._ended[name].set()

    def result(self, name: str, *, timeout: float = 60) -> DurableFunctionTestResult:
        """Wait for the named execution to end and return the runner's record of it.

        Raises:
            KeyError: No execution has that name.
            TimeoutError: It did not end within ``timeout`` seconds.
        """
        if not self._ended[name].wait(timeout):
            raise TimeoutError(f"durable execution {name} still running after {timeout} s")
        outcome = self._results[name]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def idle(self) -> bool:
        """Whether every execution started so far has ended."""
        with self._lock:
            ended = list(self._ended.values())
        return all(event.is_set() for event in ended)

    def close(self) -> None:
        """Stop the runner's threads and close the long jobs' event loop."""
        with self._lock:
            runner, self._runner = self._runner, None
        if runner is not None:
            # The runner stops its scheduler's event loop but leaves it open (aws-durable-execution-sdk-python-
            # testing 1.4.0): close it once it has stopped, or it is reported as a leaked loop and socket.
            loop = getattr(getattr(runner, "_scheduler", None), "_loop", None)
            runner.close()  # type: ignore[no-untyped-call]  # unannotated in the testing package
            if isinstance(loop, asyncio.AbstractEventLoop):
                deadline = time.monotonic() + 5
                while loop.is_running() and time.monotonic() < deadline:
                    time.sleep(0.005)
                if not loop.is_running():
                    loop.close()
        close_long_job_loop()
