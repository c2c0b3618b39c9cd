"""The results as one Markdown table plus the details behind it, with the machine it ran on."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from . import _js, _parts, _recovery
from ._coldstart import RUNS, ColdStart
from ._coldworker import ColdWorker
from ._common import ROOT, Row, median
from ._lifecycle import JOBS_PER_ROUND, ROUNDS, WARM_SKIP, LifecycleResult, Side, TickFigures
from ._memory import CHECKPOINTS, MemoryResult
from ._parts import PartsResult
from ._receiver import PROFILED, REQUESTS, ReceiverResult

RECEIVER_GOAL_US = 100.0
COLD_RATIO_GOAL = 1.25
TICK_REQUESTS_GOAL = 5
MEMORY_GROWTH_GOAL_MB = 5.0
_MB_PER_MIB = 1.048576


def machine() -> str:
    """CPU model, cores, OS, Python (and node) versions."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()} ({platform.python_implementation()})"
    )


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs else ""


def _receiver_rows(receiver: ReceiverResult) -> list[Row]:
    return [
        Row(
            "1. Receiver in-process: median per request (signature, routing, enqueue to an in-memory queue: "
            "no SQS call)",
            f"{receiver.median_us:.0f} µs",
            goal=f"≤ {RECEIVER_GOAL_US:.0f} µs",
            met=receiver.median_us <= RECEIVER_GOAL_US,
        ),
        Row("1. Receiver in-process: requests/s on one core", f"{receiver.per_second:,.0f} /s"),
    ]


def _cold_rows(cold: ColdStart, worker: ColdWorker) -> list[Row]:
    ratio = cold.receiver_ms / cold.baseline_ms
    worker_ratio = worker.worker_ms / worker.floor_ms
    rows = [
        Row(
            "2. Receiver cold start: spawn → first response (vs boto3 + SQS client only)",
            f"{cold.receiver_ms:.0f} ms",
            f"{cold.baseline_ms:.0f} ms",
            f"{ratio:.2f}",
            f"ratio ≤ {COLD_RATIO_GOAL}",
            ratio <= COLD_RATIO_GOAL,
        ),
        Row(
            "2. Cold worker: spawn → first ack at Flatfile (vs a script importing boto3 + httpx, one request)",
            f"{worker.worker_ms:.0f} ms",
            f"{worker.floor_ms:.0f} ms",
            f"{worker_ratio:.2f}",
            f"ratio ≤ {COLD_RATIO_GOAL}",
            worker_ratio <= COLD_RATIO_GOAL,
        ),
    ]
    for name, ms in cold.imports_ms.items():
        label = "boto3 alone (for scale)" if name == "boto3 alone" else f"functions/{name}/app.py"
        rows.append(Row(f"2. Cold import: {label}", f"{ms:.0f} ms"))
    return rows


def _side_rows(label: str, side: Side, js: Side | None) -> list[Row]:
    js_calls = js.calls_per_job if js else None
    js_ms = js.median_ms if js else None
    first, js_first = median(side.first_ms), (median(js.first_ms) if js else None)
    return [
        Row(
            f"3. No-op job ({label}): API calls",
            f"{side.calls_per_job:.0f}",
            "" if js_calls is None else f"{js_calls:.0f}",
            "",
            "2 vs 2",
            side.calls_per_job == 2 and js_calls == 2,
        ),
        Row(
            f"3. No-op job ({label}): median wall time per job, warm",
            f"{side.median_ms:.2f} ms",
            "" if js_ms is None else f"{js_ms:.2f} ms",
            "" if js_ms is None else _ratio(side.median_ms, js_ms),
            "ratio ≤ 1.0",
            None if js_ms is None else side.median_ms <= js_ms,
        ),
        Row(
            f"3. No-op job ({label}): `flatfile_jobs.preload()` at init (a worker's init; node loads at require)",
            f"{median(side.preload_ms):.1f} ms" if side.preload_ms else "",
        ),
        Row(
            f"3. No-op job ({label}): the first job in a fresh process, after `preload()`",
            f"{first:.1f} ms",
            "" if js_first is None else f"{js_first:.1f} ms",
            "" if js_first is None else _ratio(first, js_first),
            "ratio ≤ 1.0",
            None if js_first is None else first <= js_first,
        ),
    ]


def _tick_rows(label: str, ours: TickFigures, js: TickFigures | None) -> list[Row]:
    label = f"{label}, default tick_interval 1 s: coalesced"
    return [
        Row(
            f"4. 10,000 ticks ({label}): requests sent",
            f"{ours.requests}",
            "" if js is None else f"{js.requests:,}",
            "",
            f"≤ {TICK_REQUESTS_GOAL}",
            ours.requests <= TICK_REQUESTS_GOAL,
        ),
        Row(
            f"4. 10,000 ticks ({label}): per tick call (coalesced, no I/O, vs the plugin's awaited request)",
            f"{ours.ns_per_tick:,.0f} ns",
            "" if js is None else f"{js.ns_per_tick:,.0f} ns",
        ),
    ]


def _parity_rows(label: str, ours: TickFigures, js: TickFigures | None) -> list[Row]:
    label = f"{label}, tick_interval=0: one awaited request per tick, as the plugin"
    return [
        Row(
            f"4. 10,000 ticks ({label}): requests sent",
            f"{ours.requests:,}",
            "" if js is None else f"{js.requests:,}",
            "",
            "= plugin",
            None if js is None else ours.requests == js.requests,
        ),
        Row(
            f"4. 10,000 ticks ({label}): per tick call",
            f"{ours.ns_per_tick:,.0f} ns",
            "" if js is None else f"{js.ns_per_tick:,.0f} ns",
            "" if js is None else _ratio(ours.ns_per_tick, js.ns_per_tick),
        ),
    ]


def _memory_rows(memory: MemoryResult) -> list[Row]:
    first, last = CHECKPOINTS
    growth_mb = memory.growth_mib * _MB_PER_MIB
    return [
        Row(f"5. Worker RSS after {first} jobs", f"{memory.rss_mib[first]:.1f} MiB"),
        Row(f"5. Worker RSS after {last:,} jobs", f"{memory.rss_mib[last]:.1f} MiB"),
        Row(
            f"5. Worker RSS growth, {first} → {last:,} jobs",
            f"{growth_mb:+.2f} MB",
            goal=f"≤ {MEMORY_GROWTH_GOAL_MB:.0f} MB",
            met=growth_mb <= MEMORY_GROWTH_GOAL_MB and memory.completed == memory.jobs,
        ),
    ]


def _table(rows: list[Row]) -> list[str]:
    header = ["Measure", "flatfile-jobs (Python)", "Reference", "Ratio", "Goal", "Met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return lines


@dataclass
class Run:
    """One bench run: what was measured, where and when, as the table's rows."""

    when: str
    commit: str
    machine: str
    node: str
    seconds: float
    rows: list[Row]
    load: str = ""  # the machine's 15-minute load average when the run ended (it is shared)

    def goals_line(self) -> str:
        """``Goals met: n of m`` and the items not met."""
        goals = [row for row in self.rows if row.met is not None]
        missed = [row.item for row in goals if not row.met]
        return f"Goals met: {len(goals) - len(missed)} of {len(goals)}" + (
            f" (not met: {'; '.join(missed)})" if missed else ""
        )

    def as_json(self) -> dict[str, Any]:
        """The machine-readable record (``bench/results.json``, one line of ``bench/history.jsonl``)."""
        return {**asdict(self), "rows": [asdict(row) for row in self.rows]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        """Read a record written by :meth:`as_json`."""
        return cls(**{**data, "rows": [Row(**row) for row in data["rows"]]})


def table(rows: list[Row]) -> list[str]:
    """The rows as a Markdown table."""
    return _table(rows)


def collect(
    receiver: ReceiverResult,
    cold: ColdStart,
    worker: ColdWorker,
    lifecycle: LifecycleResult,
    memory: MemoryResult,
    *,
    recovery: _recovery.RecoveryResult | None = None,
    parts: PartsResult | None = None,
    seconds: float,
) -> Run:
    """The run's rows and where it ran."""
    rows = [
        *_receiver_rows(receiver),
        *_cold_rows(cold, worker),
        *_side_rows("sync handler", lifecycle.python_sync, lifecycle.js),
        *_side_rows("async handler", lifecycle.python_async, lifecycle.js),
        *_tick_rows("sync handler", lifecycle.ticks_sync, lifecycle.ticks_js),
        *_tick_rows("async handler", lifecycle.ticks_async, lifecycle.ticks_js),
        *_parity_rows("sync handler", lifecycle.parity_sync, lifecycle.ticks_js),
        *_parity_rows("async handler", lifecycle.parity_async, lifecycle.ticks_js),
        *_memory_rows(memory),
        *(_recovery.rows(recovery) if recovery is not None else []),
        *(_parts.rows(parts) if parts is not None else []),
    ]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = f"{os.getloadavg()[2]:.1f} on {os.cpu_count()} cores"
    return Run(when, _commit(), machine(), lifecycle.node or "not available", round(seconds), rows, load)


def render(
    run: Run,
    receiver: ReceiverResult,
    cold: ColdStart,
    worker: ColdWorker,
    lifecycle: LifecycleResult,
    memory: MemoryResult,
    *,
    recovery: _recovery.RecoveryResult | None = None,
    parts: PartsResult | None = None,
) -> str:
    """The whole report as Markdown."""
    lines = [
        "# flatfile-jobs benchmark",
        "",
        f"Machine: {run.machine}; node {run.node}. Commit {run.commit}, {run.when}; "
        f"the run took {run.seconds:.0f} s"
        + (f"; 15-minute load average at the end {run.load}." if run.load else "."),
        "Reference: the real `@flatfile/plugin-job-handler` 0.5.5 with `@flatfile/listener` 1.1.2 and "
        "`@flatfile/api` 1.23.1 from npm, run with node against the same fake Flatfile API on loopback.",
        "",
        *_table(run.rows),
        "",
        run.goals_line(),
        "",
        *_details(receiver, cold, worker, lifecycle, memory),
        *(_recovery.details(recovery) if recovery is not None else []),
        *(["", *_parts.details(parts)] if parts is not None else []),
    ]
    return "\n".join(lines) + "\n"


def _details(
    receiver: ReceiverResult,
    cold: ColdStart,
    worker: ColdWorker,
    lifecycle: LifecycleResult,
    memory: MemoryResult,
) -> list[str]:
    lines = [
        "## How each figure was taken",
        "",
        f"1. {REQUESTS:,} signed `job:ready` deliveries through `functions/receiver/app.py`'s `lambda_handler` "
        "(Powertools Logger + HTTP API resolver, Standard Webhooks check, @flatfile/listener routing, enqueue to a "
        f"MemoryJobQueue: an in-memory queue, no SQS call), one thread, after 500 warm-up requests; log lines are formatted and written to "
        f"/dev/null. Answer: {receiver.status}.",
        f"2. Median of {RUNS} fresh processes each, interleaved, from spawn to the first answer ({cold.status}): "
        "import the receiver app, build the runtime as deployed, create the boto3 SQS client, answer one signed "
        "request (SendMessage answered by botocore's Stubber; the signing secret handed in rather than read from "
        "Secrets Manager). Baseline: a script that imports boto3 and creates an SQS client. "
        "Cold imports: median of 5 fresh processes importing each app.py.",
        f"2. Cold worker: median of {worker.runs} fresh processes each, interleaved with the floor, from just "
        "before the spawn to the job's first `POST /jobs/{id}/ack` arriving at the fake (its arrival stamp, "
        "`time.monotonic`): import `functions/worker/app.py` (Lambda's init), then `lambda_handler` with one SQS "
        "record, everything built from the environment as deployed: the API key read from Secrets Manager and the "
        "job id claimed in DynamoDB (both moto's server on loopback, `AWS_ENDPOINT_URL`). Spawn to the end of init: "
        f"{worker.init_ms:.0f} ms. Floor: a script that imports boto3 and httpx and sends the same ack with "
        "`httpx.post`.",
        f"3. {ROUNDS} rounds × {JOBS_PER_ROUND} no-op jobs per side, alternating; the first {WARM_SKIP} jobs of each "
        "round are left out of the warm median (connection set-up); Python: `listener.dispatch(event)` (its loop and "
        "HTTP client reused, default retries on); JS: `await listener.dispatchEvent(event)` in one node process. "
        "The first job in a fresh process is the first dispatch of each round (median of the rounds), once each side "
        "has loaded its code: node at `require`, Python with `flatfile_jobs.preload()` (imports the lifecycle and "
        "its HTTP stack, starts the thread's event loop, builds the TLS context), as the worker's init does; "
        "its own row shows what that costs. The HTTP client itself is built in the first job on both sides.",
        "4. One job whose handler calls `tick(i // 100)` 10,000 times in a tight loop. Coalesced rows: the default "
        "`tick_interval` (1 s): the first tick is sent, later ones only record the value (no I/O), the last value is "
        "flushed before complete, so the per-call figure is not comparable with the plugin's. Parity rows: "
        "`tick_interval=0`, every tick is one awaited request, as the plugin does (a sync handler waits for each "
        "request too). The JS plugin sends one request per tick, awaited.",
        f"5. {memory.jobs:,} `space:configure` jobs (sample job, 3 ticks) through `functions/worker/app.py` in a "
        "fresh process, one SQS record per invocation, idempotency in DynamoDB (moto's server) and Flatfile "
        f"(the fake) in the parent process; RSS (VmRSS) after `gc.collect()`; {memory.completed:,} jobs completed; "
        f"RSS before the first job {memory.baseline_mib:.1f} MiB.",
        "",
        "### What the JS side needed to run at all",
        "",
        *[f"- {note}" for note in _js.NOTES],
    ]
    if lifecycle.js_error:
        lines.append(f"- **not run here**: {lifecycle.js_error}")
    lines += [
        "",
        f"### Receiver: where the {receiver.median_us:.0f} µs go (each part timed alone, median µs per call)",
        "",
        *[f"- {label}: {us:.1f} µs" for label, us in receiver.stages],
        "",
        f"Top 10 functions by own time ({PROFILED:,} profiled requests; profiling inflates absolute times):",
        "",
        *[f"- {name}: {us:.1f} µs ({share:.0f} %)" for name, us, share in receiver.top],
        "",
        "### `python -X importtime`: top 10 imports of the receiver's cold start (cumulative)",
        "",
        "| module | self µs | cumulative µs |",
        "|---|---|---|",
        *[f"| {name} | {own:,} | {total:,} |" for name, own, total in cold.importtime_top],
    ]
    return lines
