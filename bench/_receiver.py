"""The receiver in-process: its ``lambda_handler`` with signature check, routing and enqueue, on one core."""

from __future__ import annotations

import cProfile
import json
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from flatfile_jobs_testing import LocalContext

from ._common import SECRET, http_request, load_app, median, quiet_logs

WARMUP = 500
REQUESTS = 5000
PROFILED = 2000


@dataclass
class ReceiverResult:
    """The receiver's in-process figures."""

    median_us: float
    per_second: float
    status: int
    stages: list[tuple[str, float]] = field(default_factory=list)
    top: list[tuple[str, float, float]] = field(default_factory=list)


def measure() -> ReceiverResult:
    """Median µs per request and requests/s (one thread) through the receiver's ``lambda_handler``."""
    from flatfile_app_jobs import listener
    from flatfile_jobs_testing import job_ready_event
    from flatfile_stack.idempotency import MemoryPersistenceLayer
    from flatfile_stack.queues import MemoryJobQueue
    from flatfile_stack.runtime import Runtime, use_runtime
    from flatfile_stack.settings import Settings

    queue = MemoryJobQueue()
    use_runtime(
        Runtime(
            settings=Settings(),
            queue=queue,
            webhook_secrets=lambda: SECRET,
            api_token=lambda: "unused",
            persistence=MemoryPersistenceLayer(),
            listener=listener,
        )
    )
    try:
        app = load_app("receiver")
        quiet_logs()
        request = http_request(job_ready_event("space:configure", workbook_id="us_wb_1"))
        context = LocalContext("ReceiverFunction", 900.0)
        handler = app.lambda_handler
        for _ in range(WARMUP):
            handler(request, context)
        samples = []
        started = time.perf_counter()
        for _ in range(REQUESTS):
            t0 = time.perf_counter_ns()
            response = handler(request, context)
            samples.append(time.perf_counter_ns() - t0)
        elapsed = time.perf_counter() - started
        while queue.receive(timeout=0) is not None:  # drop what was enqueued
            pass
        result = ReceiverResult(median(samples) / 1000, REQUESTS / elapsed, int(response["statusCode"]))
        result.stages = _components(app, request, context)
        result.top = _profile(handler, request, context)
        while queue.receive(timeout=0) is not None:
            pass
        return result
    finally:
        use_runtime(None)


def _components(app: ModuleType, request: dict[str, Any], context: LocalContext) -> list[tuple[str, float]]:
    """Median µs per call of the parts of a request, each timed on its own (no profiler)."""
    from flatfile_jobs import webhook
    from flatfile_stack import receiver

    runtime = app.runtime()
    body, headers = request["body"].encode(), request["headers"]
    secrets = runtime.receive_policy().secrets
    event = json.loads(body)
    extra = {"status": 202, "status_text": "accepted", "jobId": "us_jb_1", "eventId": "us_evt_1"}
    parts: list[tuple[str, Callable[[], object]]] = [
        (
            "Powertools resolver without the Logger decorator (`app.resolve`)",
            lambda: app.app.resolve(request, context),
        ),
        (
            "`flatfile_stack.receiver.accept`: verify, parse, route, enqueue",
            lambda: receiver.accept(body, headers, runtime),
        ),
        (
            "  `webhook.verify` (HMAC-SHA256, constant-time compare)",
            lambda: webhook.verify(secrets, body, headers),
        ),
        ("  `json.loads` of the body", lambda: json.loads(body)),
        (
            "  `listener.matches` (@flatfile/listener filters of the 4 sample jobs)",
            lambda: runtime.listener.matches(event),
        ),
        (
            "one JSON log line (`logger.info` with 4 extra keys)",
            lambda: app.logger.info("Delivery answered", extra=extra),
        ),
    ]
    timings = []
    for label, call in parts:
        for _ in range(200):
            call()
        samples = []
        for _ in range(2000):
            t0 = time.perf_counter_ns()
            call()
            samples.append(time.perf_counter_ns() - t0)
        timings.append((label, median(samples) / 1000))
    # The route logs at DEBUG: at the bench's INFO level no line is written per request, so none is subtracted.
    resolve, accept = timings[0][1], timings[1][1]
    timings.append(
        (
            "→ the resolver's and the route's own share (resolve − accept; no log line at INFO), derived",
            resolve - accept,
        )
    )
    return timings


def _profile(
    handler: object, request: dict[str, object], context: LocalContext
) -> list[tuple[str, float, float]]:
    """cProfile the handler: the top functions by own time (µs per request, share of the total)."""
    assert callable(handler)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(PROFILED):
        handler(request, context)
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    top = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:10]
    rows = [
        (f"{_short(path)}:{line}({func})", entry[2] / PROFILED * 1e6, 100 * entry[2] / total)
        for (path, line, func), entry in top
    ]
    return rows


def _short(path: str) -> str:
    for marker in ("site-packages/", "layers/shared/", "lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path
