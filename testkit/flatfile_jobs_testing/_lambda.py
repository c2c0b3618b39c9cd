"""Lambda's side of a local run: a context object, and ``functions/<name>/app.py`` loaded as Lambda loads it."""

from __future__ import annotations

import functools
import importlib.util
import itertools
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["LocalContext", "load_function"]

_loads = itertools.count(1)


@dataclass
class LocalContext:
    """Lambda's context for one local invocation; the remaining time counts down from ``timeout``.

    Example:
        >>> context = LocalContext("WorkerFunction", 900.0)
        >>> 0 < context.get_remaining_time_in_millis() <= 900_000
        True
    """

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


def load_function(root: Path, name: str) -> ModuleType:
    """A fresh copy of ``root/functions/<name>/app.py``: its own module globals, like a new execution environment.

    Its Powertools ``Metrics`` get metric sets of their own too (Powertools shares them process-wide), so copies
    can run side by side in threads as Lambda environments run side by side in processes, and those sets are
    emptied after each ``lambda_handler`` call, also when metrics are disabled (as local runs do).

    Args:
        root: The SAM app's folder (the one holding ``functions/``).
        name: The function's folder, e.g. ``"receiver"``.

    Returns:
        The executed module; call its ``lambda_handler(event, LocalContext(...))``.

    Raises:
        FileNotFoundError: There is no such file.
    """
    path = root / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"flatfile_jobs_local_{name}_{next(_loads)}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise FileNotFoundError(f"no Lambda function at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _own_metrics_state(module)
    return module


def _own_metrics_state(module: ModuleType) -> None:
    """Give the copy's Powertools ``Metrics`` metric and dimension sets of their own, emptied after each call.

    Powertools keeps them in class-level dicts, shared by every ``Metrics`` in a process. Each Lambda environment
    is a process of its own, so two copies run side by side in threads must not flush (and clear) each other's
    metrics. ``Metrics`` objects of one copy still share one set among themselves, as they would in Lambda.
    With ``POWERTOOLS_METRICS_DISABLED`` (local runs), Powertools 3.37's flush neither prints nor clears them:
    a long session's metrics would pile up until a metric's 100th value, which ``add_metric`` prints as an EMF
    line anyway (and the next flush warns that it found none), so the copy's handler empties them after each call.
    """
    metrics_module = sys.modules.get("aws_lambda_powertools.metrics.metrics")
    if metrics_module is None:
        return
    # A Metrics object and its provider hold the same dicts: each shared dict maps to one new dict.
    renewed: dict[int, dict[str, Any]] = {}

    def renew(name: str, shared: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
        """Metrics and metadata start empty; dimensions start as the default dimensions."""
        own: dict[str, Any] = {} if name in ("metric_set", "metadata_set") else dict(defaults)
        return renewed.setdefault(id(shared), own)

    metrics = [value for value in vars(module).values() if isinstance(value, metrics_module.Metrics)]
    for value in metrics:
        defaults = dict(value.provider.default_dimensions)
        for holder in (value, value.provider):
            for name in ("metric_set", "dimension_set", "metadata_set", "default_dimensions"):
                setattr(holder, name, renew(name, getattr(holder, name), defaults))
    handler = getattr(module, "lambda_handler", None)
    if not metrics or handler is None:
        return

    @functools.wraps(handler)
    def call(event: Any, context: Any) -> Any:  # noqa: ANN401 - the function's own types
        try:
            return handler(event, context)
        finally:
            for value in metrics:
                value.clear_metrics()

    vars(module)["lambda_handler"] = call
