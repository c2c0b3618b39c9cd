"""A no-op job and 10,000 ticks against the fake Flatfile API on loopback: this library vs the JS plugin.

Both sides run in processes of their own (Python like node), so neither shares a GIL or a core with the
fake API, which serves both from this process.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _js
from ._common import ROOT, median, run_python

JOBS_PER_ROUND = 150
ROUNDS = 3
WARM_SKIP = 10  # the first jobs of each process open connections and warm caches
TICKS = 10_000


@dataclass
class Side:
    """One implementation's no-op figures."""

    times_ms: list[float] = field(default_factory=list)
    first_ms: list[float] = field(default_factory=list)
    preload_ms: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return median(self.times_ms)

    @property
    def calls_per_job(self) -> float:
        return median(self.calls)


@dataclass
class TickFigures:
    """Requests sent and ns per tick call for 10,000 ticks in one job."""

    requests: int
    ns_per_tick: float


@dataclass
class LifecycleResult:
    """Everything the lifecycle section measured."""

    python_sync: Side
    python_async: Side
    js: Side | None
    ticks_sync: TickFigures
    ticks_async: TickFigures
    ticks_js: TickFigures | None
    parity_sync: TickFigures
    parity_async: TickFigures
    node: str = ""
    js_error: str = ""


def _record(
    side: Side,
    fake: Any,  # noqa: ANN401
    events: list[dict[str, Any]],
    times: list[float],
    preload_ms: float | None = None,
) -> None:
    side.first_ms.append(times[0])
    if preload_ms is not None:
        side.preload_ms.append(preload_ms)
    side.times_ms.extend(times[WARM_SKIP:])
    side.calls.extend(len(fake.calls(event["context"]["jobId"])) for event in events)


def _noop(event: Any, tick: Any) -> None:  # noqa: ANN401
    return None


async def _anoop(event: Any, tick: Any) -> None:  # noqa: ANN401
    return None


def _ticking(spent: list[int], *, asynchronous: bool) -> Callable[..., Any]:
    def sync_handler(event: Any, tick: Any) -> None:  # noqa: ANN401
        started = time.perf_counter_ns()
        for i in range(TICKS):
            tick(i // 100)
        spent.append(time.perf_counter_ns() - started)

    async def async_handler(event: Any, tick: Any) -> None:  # noqa: ANN401
        started = time.perf_counter_ns()
        for i in range(TICKS):
            await tick(i // 100)
        spent.append(time.perf_counter_ns() - started)

    return async_handler if asynchronous else sync_handler


def child(mode: str, events_path: str, api_url: str, token: str) -> None:
    """The Python side, in a process of its own like node: dispatch the events, print the timings as JSON.

    ``mode`` is ``sync`` or ``async`` (no-op handlers), ``ticks-sync`` / ``ticks-async`` (default
    ``tick_interval``: ticks coalesce) or ``parity-sync`` / ``parity-async`` (``tick_interval=0``: one awaited
    request per tick, as the plugin).
    """
    from flatfile_jobs import FlatfileListener, job_handler

    with open(events_path) as file:
        events = json.load(file)
    spent: list[int] = []
    options: dict[str, Any] = {"api_url": api_url, "token": token}
    if mode.startswith(("ticks", "parity")):
        job, handler = "bench:ticks", _ticking(spent, asynchronous=mode.endswith("async"))
        if mode.startswith("parity"):
            options["tick_interval"] = 0
    else:
        job, handler = "bench:noop", _anoop if mode == "async" else _noop
    listener = FlatfileListener().use(job_handler(job, handler, **options))
    preload_ms = None
    if mode in ("sync", "async"):  # what a worker's init does (node loads everything at require)
        import flatfile_jobs

        started = time.perf_counter()
        flatfile_jobs.preload()
        preload_ms = (time.perf_counter() - started) * 1000
    times = []
    for event in events:
        started = time.perf_counter()
        listener.dispatch(event)
        times.append((time.perf_counter() - started) * 1000)
    figures = {"times": times, "tickNs": [ns / TICKS for ns in spent], "preloadMs": preload_ms}
    sys.stdout.write(json.dumps(figures) + "\n")


_CHILD = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from bench._lifecycle import child
child(*sys.argv[1:])
"""


def _python(mode: str, events: list[dict[str, Any]], fake: Any) -> dict[str, Any]:  # noqa: ANN401
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/events.json"
        with open(path, "w") as file:
            json.dump(events, file)
        out = run_python(_CHILD, mode, path, fake.url, fake.token, timeout=900)  # parity: 10,000 requests
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _tick_requests(fake: Any, event: dict[str, Any]) -> int:  # noqa: ANN401
    job_id = event["context"]["jobId"]
    return sum(
        1
        for call, body in fake.calls(job_id)
        if call.endswith("/ack") and body != {"info": "Accepted", "progress": 0}
    )


def _ticks(fake: Any, mode: str) -> TickFigures:  # noqa: ANN401
    event = fake.create_job_event("bench:ticks")
    out = _python(mode, [event], fake)
    return TickFigures(_tick_requests(fake, event), float(out["tickNs"][0]))


def measure() -> LifecycleResult:
    """Run both sides against one fake Flatfile API, alternating rounds."""
    from flatfile_jobs_testing import FakeFlatfile

    sync_side, async_side, js_side = Side(), Side(), Side()
    node, js_error = "", ""
    try:
        node = _js.ensure_installed()
    except _js.JsUnavailable as exc:
        js_error = str(exc)
    with FakeFlatfile(seed=7) as fake:
        for _ in range(ROUNDS):
            for mode, side in (("sync", sync_side), ("async", async_side)):
                events = [fake.create_job_event("bench:noop") for _ in range(JOBS_PER_ROUND)]
                out = _python(mode, events, fake)
                _record(side, fake, events, out["times"], out["preloadMs"])
            if not js_error:
                events = [fake.create_job_event("bench:noop") for _ in range(JOBS_PER_ROUND)]
                try:
                    out = _js.run("noop", events, api_url=fake.url, token=fake.token)
                except _js.JsUnavailable as exc:
                    js_error = str(exc)
                else:
                    _record(js_side, fake, events, out["times"])
        ticks_sync, ticks_async = _ticks(fake, "ticks-sync"), _ticks(fake, "ticks-async")
        parity_sync, parity_async = _ticks(fake, "parity-sync"), _ticks(fake, "parity-async")
        ticks_js = None
        if not js_error:
            event = fake.create_job_event("bench:ticks")
            try:
                out = _js.run("ticks", [event], api_url=fake.url, token=fake.token)
                ticks_js = TickFigures(_tick_requests(fake, event), float(out["tickNs"][0]))
            except _js.JsUnavailable as exc:
                js_error = str(exc)
    return LifecycleResult(
        sync_side,
        async_side,
        js_side if js_side.times_ms else None,
        ticks_sync,
        ticks_async,
        ticks_js,
        parity_sync,
        parity_async,
        node,
        js_error,
    )
