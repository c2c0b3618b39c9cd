"""Lambda's side of a local run: the template's timeouts, loading ``functions/*/app.py``, ending a thread's loop.

``LocalContext`` and the loader are the test kit's (``flatfile_jobs_testing``); this adds what the CLI knows of
the stack.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from types import ModuleType

from flatfile_jobs_testing import LocalContext
from flatfile_jobs_testing import load_function as load_lambda_function

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


def new_secret() -> str:
    """A fresh throwaway signing secret (``whsec_`` + 24 random bytes, base64)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def load_function(root: Path, name: FunctionName) -> ModuleType:
    """A fresh copy of ``functions/<name>/app.py`` (the test kit's loader), or a clear error.

    Raises:
        CliError: The file is missing.
    """
    try:
        return load_lambda_function(root, name)
    except FileNotFoundError:
        path = root / "functions" / name / "app.py"
        raise CliError(f"cannot load {path}: run flatfile-jobs inside a flatfile-jobs checkout") from None


def close_thread_loop() -> None:
    """Close this thread's flatfile_jobs event loop and its API clients (a thread that ran jobs is ending)."""
    import flatfile_jobs

    flatfile_jobs.shutdown()


def function_name(name: FunctionName) -> str:
    """The template's logical name of a function: ``dead_letter`` -> ``DeadLetterFunction``."""
    return "".join(part.capitalize() for part in name.split("_")) + "Function"
