"""Lambda's side of a local run: contexts, loading ``functions/*/app.py``, ending a thread's event loop."""

from __future__ import annotations

import base64
import importlib.util
import itertools
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from ._common import CliError
from ._events import FunctionName

__all__ = [
    "LOCAL_ENV",
    "TIMEOUTS",
    "LocalContext",
    "close_thread_loop",
    "function_name",
    "load_function",
    "new_secret",
]

# Function timeouts as the template sets them (WorkerTimeout's default for the worker).
TIMEOUTS: dict[FunctionName, float] = {"receiver": 30.0, "worker": 900.0, "dead_letter": 30.0, "poller": 60.0}
LOCAL_ENV = {
    "POWERTOOLS_SERVICE_NAME": "flatfile-jobs",
    "POWERTOOLS_METRICS_NAMESPACE": "FlatfileJobs",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_loads = itertools.count(1)


def new_secret() -> str:
    """A fresh throwaway signing secret (``whsec_`` + 24 random bytes, base64)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass
class LocalContext:
    """Lambda's context for one local invocation; the remaining time counts down from ``timeout``."""

    function_name: str
    timeout: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        """A local-looking ARN."""
        return f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before this invocation's timeout."""
        return max(0, int((self.started + self.timeout - time.monotonic()) * 1000))

    def set_remaining(self, seconds: float) -> None:
        """Make this invocation end ``seconds`` from now (its ``timeout`` grows or shrinks to match)."""
        self.timeout = time.monotonic() - self.started + seconds


def load_function(root: Path, name: FunctionName) -> ModuleType:
    """A fresh copy of ``functions/<name>/app.py`` (its own module globals: one execution environment).

    Raises:
        CliError: The file is missing.
    """
    path = root / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"flatfile_jobs_local_{name}_{next(_loads)}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise CliError(f"cannot load {path}: run flatfile-jobs inside a flatfile-jobs checkout")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def close_thread_loop() -> None:
    """Close this thread's flatfile_jobs event loop and its API clients (a thread that ran jobs is ending)."""
    import flatfile_jobs

    flatfile_jobs.shutdown()


def function_name(name: FunctionName) -> str:
    """The template's logical name of a function: ``dead_letter`` -> ``DeadLetterFunction``."""
    return "".join(part.capitalize() for part in name.split("_")) + "Function"
