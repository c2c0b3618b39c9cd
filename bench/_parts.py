"""A 64-part ``workbook:export`` job through the local stack with 1, 4 and 16 workers: wall time and speedup.

The whole path runs: a signed parent ``job:ready`` posted to the receiver over HTTP, the queue, the workers
(each loading its own ``functions/worker/app.py``), the fake Flatfile API emitting each part's ``job:ready``
and the parent's ``job:parts-completed``, signed and posted to the receiver as the forwarder would. Flatfile
(the fake and the forwarding) runs in a process of its own, as it is another system in the cloud. Each part
does ~100 ms of simulated work (``time.sleep``).

The goal rows run the workers as threads of the stack's process (how ``demo`` and ``serve`` run them); the
16 workers are then measured once more as processes of their own (``LocalOptions(worker_processes=True)``,
one interpreter each, as Lambda's environments), which lifts the interpreter lock's one-core cap but adds the
cost of separate processes. The CPU each process spends per part is measured for both, so the report shows
what bounds the run on the machine it ran on.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from ._common import Row, median

PARTS = 64
PART_SECONDS = 0.1
WORKERS = (1, 4, 16)
# The worker count measured again with worker processes (a reference row, no goal).
PROCESS_WORKERS = 16
ROUNDS = 5
# Speedup goals (× workers) and the parent's request budget per part.
SPEEDUP_GOALS = {4: 0.7, 16: 0.5}
PARENT_REQUESTS_PER_PART = 3
_TIMEOUT = 120.0


@dataclass
class Run:
    """One worker count's figures (medians over the rounds)."""

    workers: int
    processes: bool = False
    seconds: list[float] = field(default_factory=list)
    parent_requests: list[int] = field(default_factory=list)
    list_requests: list[int] = field(default_factory=list)
    part_requests: list[float] = field(default_factory=list)
    # CPU milliseconds per part, per round: the stack's process (with worker threads, the workers too), the
    # worker processes, Flatfile's process.
    stack_cpu_ms: list[float] = field(default_factory=list)
    workers_cpu_ms: list[float] = field(default_factory=list)
    flatfile_cpu_ms: list[float] = field(default_factory=list)
    outcome: str = ""


@dataclass
class PartsResult:
    """Every worker count's run (worker threads), and the run with worker processes."""

    runs: list[Run]
    processes: Run | None = None

    def baseline(self) -> float:
        """The one-worker median wall time."""
        return median(self.runs[0].seconds)

    def overhead_ms(self) -> float:
        """What a part costs beyond its work, one worker: the median wall time per part minus the part's work."""
        return (self.baseline() / PARTS - PART_SECONDS) * 1000


def _post_event(client: Any, webhook_url: str, secret: str, event: dict[str, Any]) -> int:  # noqa: ANN401
    from flatfile_jobs_testing import signed_headers

    body = json.dumps(event, separators=(",", ":")).encode()
    headers = signed_headers(body, secret)
    return int(client.post(webhook_url, content=body, headers=headers).status_code)


def _round(fake: Any, client: Any, webhook_url: str, secret: str, parts: int) -> dict[str, Any]:  # noqa: ANN401
    """One job of ``parts`` parts, from the parent's POST until the parent ends; what it took."""
    event = fake.create_job_event("workbook:export", environment_id="us_env_local", input={"parts": parts})
    parent_id = str(event["context"]["jobId"])
    cpu = time.process_time()
    started = time.monotonic()
    status = _post_event(client, webhook_url, secret, event)
    if status != 202:
        raise RuntimeError(f"the receiver answered {status}")
    deadline = started + _TIMEOUT
    while (job := fake.job(parent_id))["status"] not in ("complete", "failed", "canceled"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {parts}-part job did not finish within {_TIMEOUT:.0f} s")
        time.sleep(0.01)
    seconds = time.monotonic() - started
    return {
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "outcome": f"{job['status']}: {(job.get('outcome') or {}).get('message')}",
        "parent_requests": len(fake.calls(parent_id)),
        "list_requests": sum(
            1 for r in fake.requests if r.path == "/jobs" and r.query.get("parentId") == parent_id
        ),
        "part_requests": median(len(fake.calls(part["id"])) for part in fake.parts(parent_id)),
    }


def flatfile_process() -> None:
    """The child process playing Flatfile and the forwarder: the fake API, its events posted to the stack.

    Protocol on stdin/stdout, one JSON line each: it prints ``{"url", "token"}``; reads
    ``{"webhook", "secret"}``; then for each ``{"parts": n}`` read runs one job and prints its figures.
    """
    import sys

    import httpx

    from flatfile_jobs_testing import FakeFlatfile

    with FakeFlatfile(seed=None) as fake, httpx.Client(timeout=10.0) as client:
        print(json.dumps({"url": fake.url, "token": fake.token}), flush=True)
        config = json.loads(sys.stdin.readline())
        webhook_url, secret = config["webhook"], config["secret"]

        def forward(event: dict[str, Any]) -> None:
            _post_event(client, webhook_url, secret, event)

        fake.subscribe(forward)
        for line in sys.stdin:
            print(
                json.dumps(_round(fake, client, webhook_url, secret, json.loads(line)["parts"])), flush=True
            )


class _Flatfile:
    """The child process (see :func:`flatfile_process`)."""

    def __init__(self) -> None:
        import subprocess
        import sys

        from ._common import ROOT, python_env

        code = "from bench._parts import flatfile_process; flatfile_process()"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=python_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.address = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the Flatfile process ended early (its stderr says why)")
        value: dict[str, Any] = json.loads(line)
        return value

    def send(self, value: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(value) + "\n")
        self.process.stdin.flush()

    def run(self, parts: int) -> dict[str, Any]:
        self.send({"parts": parts})
        return self._read()

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self.process.wait(timeout=30)


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (Linux ``/proc``; ``nan`` elsewhere)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def measure() -> PartsResult:
    """Run the 64-part job ``ROUNDS`` times per worker count, after a warm-up job of as many parts.

    The warm-up gives every worker process parts to run, so no round pays a worker's first job (its
    imports, its HTTP client): that is the cold start, measured on its own elsewhere in the bench.
    """
    import contextlib
    import io

    from flatfile_jobs_cli._common import scoped_env
    from flatfile_jobs_cli.local import LocalOptions, LocalStack

    from ._common import ROOT

    runs = []
    with (
        scoped_env({"FLATFILE_JOBS_SAMPLE_PACE": str(PART_SECONDS)}),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        for workers, processes in [*((w, False) for w in WORKERS), (PROCESS_WORKERS, True)]:
            run = Run(workers, processes)
            flatfile = _Flatfile()
            try:
                options = LocalOptions(
                    workers=workers,
                    worker_processes=processes,
                    log_level="WARNING",
                    api_url=flatfile.address["url"],
                    api_key=flatfile.address["token"],
                )
                with LocalStack(options, root=ROOT) as stack:
                    flatfile.send({"webhook": stack.webhook_url, "secret": stack.secret})
                    flatfile.run(PARTS)  # warm-up
                    for _ in range(ROUNDS):
                        stack_cpu, workers_cpu = time.process_time(), _cpu_seconds(stack.worker_pids)
                        figures = flatfile.run(PARTS)
                        run.stack_cpu_ms.append((time.process_time() - stack_cpu) * 1000 / PARTS)
                        run.workers_cpu_ms.append(
                            (_cpu_seconds(stack.worker_pids) - workers_cpu) * 1000 / PARTS
                        )
                        run.flatfile_cpu_ms.append(figures["cpu_seconds"] * 1000 / PARTS)
                        run.seconds.append(figures["seconds"])
                        run.parent_requests.append(figures["parent_requests"])
                        run.list_requests.append(figures["list_requests"])
                        run.part_requests.append(figures["part_requests"])
                        run.outcome = figures["outcome"]
            finally:
                flatfile.close()
            runs.append(run)
    return PartsResult([run for run in runs if not run.processes], runs[-1])


def rows(result: PartsResult) -> list[Row]:
    """The table's rows: wall time and speedup per worker count, the parent's requests."""
    base = result.baseline()
    table = []
    for run in result.runs:
        seconds = median(run.seconds)
        speedup = base / seconds
        goal = SPEEDUP_GOALS.get(run.workers)
        table.append(
            Row(
                f"{PARTS}-part job (~{PART_SECONDS * 1000:.0f} ms a part), {run.workers} worker(s): wall time",
                f"{seconds:.2f} s",
                f"1 worker: {base:.2f} s" if run.workers != 1 else "",
                f"{speedup:.2f}" if run.workers != 1 else "",
                f"speedup ≥ {goal * run.workers:.1f} ({goal} × workers)" if goal else "",
                speedup >= goal * run.workers if goal else None,
            )
        )
    table.append(
        Row(
            f"{PARTS}-part job, 1 worker: what a part costs beyond its {PART_SECONDS * 1000:.0f} ms of work",
            f"{result.overhead_ms():.1f} ms",
        )
    )
    if result.processes is not None:
        seconds = median(result.processes.seconds)
        table.append(
            Row(
                f"{PARTS}-part job, {result.processes.workers} worker processes (one interpreter each, as "
                "Lambda): wall time",
                f"{seconds:.2f} s",
                f"1 worker: {base:.2f} s",
                f"{base / seconds:.2f}",
            )
        )
    everyone = [*result.runs, *([result.processes] if result.processes is not None else [])]
    most = max(max(run.parent_requests) for run in everyone)
    budget = PARENT_REQUESTS_PER_PART * PARTS
    table.append(
        Row(
            f"{PARTS}-part job: requests on the parent (`/jobs/{{parent}}…`), most of any run",
            f"{most} ({most / PARTS:.2f} per part)",
            "",
            "",
            f"≤ {budget} (O(parts): {PARENT_REQUESTS_PER_PART} per part)",
            most <= budget,
        )
    )
    return table


def details(result: PartsResult) -> list[str]:
    """How the figures were taken, and the per-run request counts."""
    lines = [
        f"### Multi-part jobs: {PARTS} parts with {', '.join(map(str, WORKERS))} workers",
        "",
        f"A `workbook:export` job split into {PARTS} parts, each part sleeping {PART_SECONDS * 1000:.0f} ms in "
        "four steps (four ticks, `tick_interval` 1 s), through `flatfile_jobs_cli.local.LocalStack`: the signed "
        "parent posted to the receiver over HTTP, the stack's queue and idempotency store, N workers (one worker "
        "app each, as N Lambda environments): threads of the stack's process, then "
        f"{PROCESS_WORKERS} processes of their own (`worker_processes`); in another process, the fake "
        "Flatfile API emitting the parts' `job:ready` and the parent's `job:parts-completed`, each signed and "
        "posted to the receiver like the forwarder. Wall time: from the parent's POST until the parent is "
        f"complete; median of {ROUNDS} rounds after a warm-up job of {PARTS} parts. CPU per part: user + system "
        "time of each process over a round, divided by the parts (medians over the rounds).",
        "",
        "| workers | wall time (median) | rounds | parent requests | `GET /jobs?parentId=` | requests per part "
        "| CPU per part: stack | worker processes | Flatfile |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in [*result.runs, *([result.processes] if result.processes is not None else [])]:
        lines.append(
            f"| {run.workers} {'processes' if run.processes else 'threads'} | {median(run.seconds):.2f} s | "
            + ", ".join(f"{s:.2f}" for s in run.seconds)
            + f" | {', '.join(map(str, run.parent_requests))} | {', '.join(map(str, run.list_requests))} | "
            f"{median(run.part_requests):.0f} | {median(run.stack_cpu_ms):.1f} ms | "
            f"{f'{median(run.workers_cpu_ms):.1f} ms' if run.processes else '(in the stack)'} | "
            f"{median(run.flatfile_cpu_ms):.1f} ms |"
        )
    lines += [
        "",
        f"One worker: {result.overhead_ms():.1f} ms per part beyond its {PART_SECONDS * 1000:.0f} ms of work "
        "(median wall time / parts − work).",
        "",
        f"Outcome of the last round: {result.runs[-1].outcome}",
    ]
    return lines
