"""The results as one Markdown table plus the details behind it, with the machine it ran on."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime

from . import _js, _parts, _recovery
from ._coldstart import RUNS, ColdStart
from ._common import ROOT, Row
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
            "1. Receiver in-process: median per request (signature, routing, enqueue)",
            f"{receiver.median_us:.0f} µs",
            goal=f"≤ {RECEIVER_GOAL_US:.0f} µs",
            met=receiver.median_us <= RECEIVER_GOAL_US,
        ),
        Row("1. Receiver in-process: requests/s on one core", f"{receiver.per_second:,.0f} /s"),
    ]


def _cold_rows(cold: ColdStart) -> list[Row]:
    ratio = cold.receiver_ms / cold.baseline_ms
    rows = [
        Row(
            "2. Receiver cold start: spawn → first response (vs boto3 + SQS client only)",
            f"{cold.receiver_ms:.0f} ms",
            f"{cold.baseline_ms:.0f} ms",
            f"{ratio:.2f}",
            f"ratio ≤ {COLD_RATIO_GOAL}",
            ratio <= COLD_RATIO_GOAL,
        )
    ]
    for name, ms in cold.imports_ms.items():
        label = "boto3 alone (for scale)" if name == "boto3 alone" else f"functions/{name}/app.py"
        rows.append(Row(f"2. Cold import: {label}", f"{ms:.0f} ms"))
    return rows


def _side_rows(label: str, side: Side, js: Side | None) -> list[Row]:
    js_calls = js.calls_per_job if js else None
    js_ms = js.median_ms if js else None
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
    ]


def _tick_rows(label: str, ours: TickFigures, js: TickFigures | None) -> list[Row]:
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


def render(
    receiver: ReceiverResult,
    cold: ColdStart,
    lifecycle: LifecycleResult,
    memory: MemoryResult,
    *,
    recovery: _recovery.RecoveryResult | None = None,
    parts: PartsResult | None = None,
    seconds: float,
) -> str:
    """The whole report as Markdown."""
    rows = [
        *_receiver_rows(receiver),
        *_cold_rows(cold),
        *_side_rows("sync handler", lifecycle.python_sync, lifecycle.js),
        *_side_rows("async handler", lifecycle.python_async, lifecycle.js),
        *_tick_rows("sync handler", lifecycle.ticks_sync, lifecycle.ticks_js),
        *_tick_rows("async handler", lifecycle.ticks_async, lifecycle.ticks_js),
        *_memory_rows(memory),
        *(_recovery.rows(recovery) if recovery is not None else []),
        *(_parts.rows(parts) if parts is not None else []),
    ]
    goals = [row for row in rows if row.met is not None]
    met = [row for row in goals if row.met]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    node = lifecycle.node or "not available"
    lines = [
        "# flatfile-jobs benchmark",
        "",
        f"Machine: {machine()}; node {node}. Commit {_commit()}, {when}; the run took {seconds:.0f} s.",
        "Reference: the real `@flatfile/plugin-job-handler` 0.5.5 with `@flatfile/listener` 1.1.2 and "
        "`@flatfile/api` 1.23.1 from npm, run with node against the same fake Flatfile API on loopback.",
        "",
        *_table(rows),
        "",
        f"Goals met: {len(met)} of {len(goals)}"
        + (
            ""
            if len(met) == len(goals)
            else f" (not met: {'; '.join(row.item for row in goals if not row.met)})"
        ),
        "",
        *_details(receiver, cold, lifecycle, memory),
        *(_recovery.details(recovery) if recovery is not None else []),
        *(["", *_parts.details(parts)] if parts is not None else []),
    ]
    return "\n".join(lines) + "\n"


def _details(
    receiver: ReceiverResult, cold: ColdStart, lifecycle: LifecycleResult, memory: MemoryResult
) -> list[str]:
    js = lifecycle.js
    lines = [
        "## How each figure was taken",
        "",
        f"1. {REQUESTS:,} signed `job:ready` deliveries through `functions/receiver/app.py`'s `lambda_handler` "
        "(Powertools Logger + HTTP API resolver, Standard Webhooks check, spec §5 routing, enqueue to a "
        f"MemoryJobQueue), one thread, after 500 warm-up requests; log lines are formatted and written to "
        f"/dev/null. Answer: {receiver.status}.",
        f"2. Median of {RUNS} fresh processes each, interleaved, from spawn to the first answer ({cold.status}): "
        "import the receiver app, build the runtime as deployed, create the boto3 SQS client, answer one signed "
        "request (SendMessage answered by botocore's Stubber; the signing secret handed in rather than read from "
        "Secrets Manager). Baseline: a script that imports boto3 and creates an SQS client. "
        "Cold imports: median of 5 fresh processes importing each app.py.",
        f"3. {ROUNDS} rounds × {JOBS_PER_ROUND} no-op jobs per side, alternating; the first {WARM_SKIP} jobs of each "
        "round are left out (connection set-up); Python: `listener.dispatch(event)` (its loop and HTTP client "
        "reused, default retries on); JS: `await listener.dispatchEvent(event)` in one node process. "
        "First job of a round (Python imports its HTTP client on first use, node loads everything before the "
        "first job), median: "
        f"Python sync {_first(lifecycle.python_sync)}, "
        f"async {_first(lifecycle.python_async)}, JS {_first(js) if js else 'n/a'}.",
        "4. One job whose handler calls `tick(i // 100)` 10,000 times in a tight loop (default `tick_interval` "
        "1 s: the first tick is sent, later ones coalesce, the last value is flushed before complete); the JS "
        "plugin sends one request per tick (no coalescing), awaited.",
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


def _first(side: Side) -> str:
    from ._common import median

    return f"{median(side.first_ms):.1f} ms"
