"""``flatfile-jobs demo``: the sample jobs through the whole local pipeline, shown live.

The four single jobs, and ``workbook:export``: a multi-part job whose parts run on the workers and whose
parent the fake's ``job:parts-completed`` brings back.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from flatfile_jobs_testing import FakeFlatfile, job_ready_event, request_body, signed_headers

from ._common import Style, find_root, scoped_env
from ._events import SAMPLE_JOBS, read_event, sample_file
from ._progress import Board, JobRow, symbols
from .local import LocalOptions, LocalStack

__all__ = ["Sample", "add_parser", "run"]

PACE_ENV = "FLATFILE_JOBS_SAMPLE_PACE"
DEFAULT_PACE = 0.8
DEMO_TIMEOUT = 45.0
_SKIP_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding"})
MULTIPART_JOB = "workbook:export"
MULTIPART_PARTS = 8


@dataclass
class Sample:
    """One sample delivery: the job, how it should end, the body to POST and the headers to send with it."""

    job: str
    expected: str
    event: dict[str, Any]
    body: bytes
    headers: dict[str, str]
    source: str


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``demo``."""
    parser = commands.add_parser(
        "demo",
        help="run the sample jobs (one of them multi-part) through the local pipeline and show them",
        description="Start the fake Flatfile API, the receiver over HTTP and the worker loop on this machine, "
        "POST the signed sample events from events/receiver/ and a multi-part workbook:export job, and show "
        "each job's (and each part's) progress and outcome. "
        "data:validate fails by design (its sheet has no records). Exit 0 when every job ends as expected.",
    )
    parser.add_argument(
        "--pace",
        type=float,
        default=DEFAULT_PACE,
        help=f"seconds of simulated work between the sample jobs' steps (default {DEFAULT_PACE}; 0 for none)",
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="worker environments running at once (default 4)"
    )
    parser.add_argument("--verbose", action="store_true", help="print the functions' log lines to stderr")
    parser.set_defaults(run=run)


def load_samples(root: Path, secret: str) -> list[Sample]:
    """The sample receiver events (``events/receiver/<job>.json``; built when a file is missing), re-signed now."""
    samples = []
    for job, expected in SAMPLE_JOBS.items():
        path = sample_file(root, job)
        if path.is_file():
            file_event = read_event(path)
            body = request_body(file_event)
            headers = {
                k.lower(): str(v)
                for k, v in (file_event.get("headers") or {}).items()
                if k.lower() not in _SKIP_HEADERS and not k.lower().startswith("webhook-")
            }
            source = str(path.relative_to(root))
        else:
            sheet = "us_sh_demo_empty" if job == "data:validate" else None
            body = json.dumps(job_ready_event(job, environment_id="us_env_local", sheet_id=sheet)).encode()
            headers, source = {"content-type": "application/json"}, "built (no event file)"
        event = json.loads(body)
        event = event.get("src", event)
        headers.update(signed_headers(body, secret))
        samples.append(Sample(job, expected, event, body, headers, source))
    return samples


def multipart_sample(secret: str) -> Sample:
    """The ``workbook:export`` delivery: a parent that splits into 8 parts, signed now."""
    event = job_ready_event(MULTIPART_JOB, environment_id="us_env_local", input={"parts": MULTIPART_PARTS})
    body = json.dumps(event).encode()
    headers = signed_headers(body, secret)
    return Sample(MULTIPART_JOB, "complete", event, body, headers, f"built: {MULTIPART_PARTS} parts")


def prepare_fake(fake: FakeFlatfile, samples: list[Sample]) -> None:
    """Put each sample's job in the fake, ``ready``; data:validate's sheet gets no records."""
    for sample in samples:
        context = sample.event["context"]
        fake.add_job(
            sample.job, job_id=context["jobId"], environment_id=context.get("environmentId", "us_env")
        )
        if context.get("sheetId"):
            fake.set_records(str(context["sheetId"]), [])


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when every job ended as expected, 1 otherwise."""
    out: TextIO = sys.stdout
    style = Style(out)
    root = find_root()
    descriptor, log_name = tempfile.mkstemp(prefix="flatfile-jobs-demo-", suffix=".log")
    with os.fdopen(descriptor, "w", encoding="utf-8") as log:
        options = LocalOptions(
            workers=max(1, args.workers),
            log_stream=sys.stderr if args.verbose else log,
            # The file gets everything (each accepted delivery and API call); the terminal the INFO lines.
            log_level="INFO" if args.verbose else "DEBUG",
            compact_logs=args.verbose,
        )
        with scoped_env({PACE_ENV: str(max(0.0, args.pace))}), LocalStack(options, root=root) as stack:
            assert stack.fake is not None
            samples = [*load_samples(root, stack.secret), multipart_sample(stack.secret)]
            prepare_fake(stack.fake, samples)
            _header(out, style, stack, samples)
            started = time.monotonic()
            rows = _deliver(out, style, stack, samples)
            _watch(out, stack.fake, rows, live=style.tty and not args.verbose)
            ok = _results(out, style, samples, stack.fake, time.monotonic() - started)
    if not args.verbose:
        out.write(style.dim(f"Function logs (Lambda's JSON lines): {log_name}") + "\n")
    return 0 if ok else 1


def _header(out: TextIO, style: Style, stack: LocalStack, samples: list[Sample]) -> None:
    assert stack.fake is not None
    lines = [
        style.bold("flatfile-jobs demo") + " - the stack's own code, running on this machine",
        f"  Flatfile API    fake, {style.cyan(stack.fake.url + '/v1')} ({len(samples)} jobs ready)",
        f"  Receiver        {style.cyan(stack.webhook_url)} (HTTP API v2 events, signed deliveries)",
        f"  Queue, workers  in-process queue with SQS records, {stack.options.workers} worker environment(s)",
        "  " + style.yellow("Note") + "            data:validate fails by design: its sheet has no records.",
        f"  Multi-part      {MULTIPART_JOB} splits into {MULTIPART_PARTS} parts: each part's job:ready and the "
        "parent's job:parts-completed come back signed through the receiver.",
        "  "
        + style.yellow("Long job")
        + "        file:extract waits 2 x 20 min between its 3 steps: a durable"
        " execution on the SDK's local test runner, which skips the waits.",
        "",
        f"Delivering {len(samples)} signed job:ready events:",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


def _deliver(out: TextIO, style: Style, stack: LocalStack, samples: list[Sample]) -> list[JobRow]:
    width = max(len(s.job) for s in samples) + 2
    with httpx.Client(timeout=10.0) as client:
        for sample in samples:
            answer = client.post(stack.webhook_url, content=sample.body, headers=sample.headers)
            status = answer.json().get("status", "") if answer.is_success else answer.text
            paint = style.green if answer.status_code == 202 else style.red
            out.write(
                f"  POST /webhook  {sample.job:<{width}}{paint(str(answer.status_code))} {status}  "
                + style.dim(sample.source)
                + "\n"
            )
    out.write("\nRunning (progress as the worker reports it to Flatfile):\n")
    out.flush()
    return [JobRow(s.job, str(s.event["context"]["jobId"])) for s in samples]


def _watch(out: TextIO, fake: FakeFlatfile, rows: list[JobRow], *, live: bool) -> None:
    board = Board(rows, out, live=live)
    board.start()
    deadline = time.monotonic() + DEMO_TIMEOUT
    try:
        while True:
            _show_parts(fake, rows)
            board.update({row.job_id: fake.job(row.job_id) for row in rows})
            if all(row.finished for row in rows) or time.monotonic() > deadline:
                return
            time.sleep(0.1)
    finally:
        board.close()


def _show_parts(fake: FakeFlatfile, rows: list[JobRow]) -> None:
    """Once a multi-part parent is split, list its parts under it (they are in Flatfile from then on)."""
    for position, row in enumerate(list(rows)):
        if row.job != MULTIPART_JOB or any(other.job.startswith("  part") for other in rows):
            continue
        parts = fake.parts(row.job_id)
        new = [JobRow(f"  part {p['part'] + 1}/{len(parts)}", str(p["id"])) for p in parts]
        rows[position + 1 : position + 1] = new


def _results(out: TextIO, style: Style, samples: list[Sample], fake: FakeFlatfile, seconds: float) -> bool:
    marks = symbols(out)
    width = max(len(s.job) for s in samples) + 2
    out.write("\nResults:\n")
    good = 0
    for sample in samples:
        job = fake.job(str(sample.event["context"]["jobId"]))
        status = str(job["status"])
        message = str((job.get("outcome") or {}).get("message") or job.get("info") or "")
        as_expected = status == sample.expected
        good += as_expected
        mark = style.green(marks["ok"]) if as_expected else style.red(marks["bad"])
        note = style.dim("  (expected: fails by design)") if as_expected and status == "failed" else ""
        if not as_expected:
            note = style.red(f"  (expected {sample.expected})")
        out.write(f"  {mark} {sample.job:<{width}}{status:<11}{message}{note}\n")
    if good == len(samples):
        complete = sum(s.expected == "complete" for s in samples)
        out.write(
            style.green(f"All {len(samples)} jobs ended as expected")
            + f" ({complete} complete, data:validate failed by design) in {seconds:.1f} s.\n"
        )
    else:
        out.write(style.red(f"{len(samples) - good} of {len(samples)} jobs did not end as expected.") + "\n")
    out.flush()
    return good == len(samples)
