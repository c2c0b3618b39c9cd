"""What every measurement shares: paths, loading a function's app, signed requests, child interpreters."""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from flatfile_jobs_cli._events import FunctionName
from flatfile_jobs_testing import load_function, webhook_request

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
FUNCTIONS = ROOT / "functions"
# The Standard Webhooks test-vector secret: the bench signs with it like the forwarder would.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/000000000000/flatfile-jobs-JobQueue"
# What a function's process gets in AWS (no real credentials: nothing here talks to AWS).
LAMBDA_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "flatfile-jobs",
    "POWERTOOLS_METRICS_NAMESPACE": "FlatfileJobs",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "JOB_QUEUE_URL": QUEUE_URL,
}


def load_app(name: FunctionName) -> ModuleType:
    """Import ``functions/<name>/app.py`` by path, as a new module."""
    return load_function(ROOT, name)


def http_request(event: Mapping[str, Any], *, secret: str = SECRET) -> dict[str, Any]:
    """A signed HTTP API (payload v2) request carrying ``event``, as the forwarder would post it."""
    return webhook_request(dict(event), secret=secret, headers={"user-agent": "flatfile-forwarder"})


def quiet_logs() -> None:
    """Send every log handler's output to /dev/null (the cost of formatting each line is still paid)."""
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values())]
    for logger in loggers:
        if isinstance(logger, logging.Logger):
            for handler in logger.handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(sink)


def median(values: Iterable[float]) -> float:
    """The median (``nan`` for no values)."""
    data = list(values)
    return statistics.median(data) if data else float("nan")


def python_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python: this one, plus Lambda-like settings and ``extra``."""
    env = {**os.environ, **LAMBDA_ENV, **extra}
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def run_python(code: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
    """Run ``code`` in a fresh interpreter (this venv's) from the repository root; return its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=dict(env or python_env()),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child python failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


@dataclass
class Row:
    """One line of the results table."""

    item: str
    ours: str
    theirs: str = ""
    ratio: str = ""
    goal: str = ""
    met: bool | None = None

    def cells(self) -> list[str]:
        verdict = "" if self.met is None else ("yes" if self.met else "**no**")
        return [self.item, self.ours, self.theirs, self.ratio, self.goal, verdict]
