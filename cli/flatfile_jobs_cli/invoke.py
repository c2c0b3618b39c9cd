"""``flatfile-jobs invoke EVENT_FILE``: one event through one function, like ``sam local invoke``.

The response goes to stdout (pipe it to ``jq``), the function's log lines and a short account of what it did
to stderr. Against the fake Flatfile API the jobs the event refers to are created first, ``ready``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from flatfile_jobs_testing import FakeFlatfile, resign

from ._common import CliError, Style
from ._events import (
    FUNCTIONS,
    SAMPLE_JOBS,
    FunctionName,
    detect_function,
    events_in,
    function_event,
    is_raw,
    read_event,
)
from ._progress import TickPrinter, describe_outcome
from .local import LocalOptions, LocalStack, ensure_jobs
from .sign_events import SECRET_ENV

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``invoke``."""
    parser = commands.add_parser(
        "invoke",
        help="run one event file through its function and print the response",
        description="Load functions/<function>/app.py and call its lambda_handler with the event, like "
        "'sam local invoke' without Docker. The function is read from the file's folder "
        "(events/<function>/) or the event's shape. Receiver events are re-signed with a fresh timestamp. "
        "A raw Flatfile event (events/raw/, 'generate-event raw') is wrapped as the function's event "
        "(--function, default worker).",
    )
    parser.add_argument("event_file", type=Path, metavar="EVENT_FILE", help="a JSON event (see events/)")
    parser.add_argument("--function", choices=FUNCTIONS, help="the function to run (default: detected)")
    parser.add_argument("--api-url", help="a real Flatfile API root instead of the fake")
    parser.add_argument("--api-key", help="its secret key, sk_... (default $FLATFILE_API_KEY)")
    parser.add_argument(
        "--secret", help=f"signing secret for receiver events (default ${SECRET_ENV}, else new)"
    )
    parser.add_argument("--environment-id", default="us_env_local", help="the poller's environment")
    parser.set_defaults(run=run)


def _options(args: argparse.Namespace) -> LocalOptions:
    key = args.api_key or os.environ.get("FLATFILE_API_KEY") or os.environ.get("FLATFILE_BEARER_TOKEN")
    if args.api_url and not key:
        raise CliError("--api-url needs a key: pass --api-key sk_... or set FLATFILE_API_KEY")
    return LocalOptions(
        api_url=args.api_url,
        api_key=key if args.api_url else None,
        secret=args.secret or os.environ.get(SECRET_ENV) or None,
        workers=0,
        serve_http=False,
        environment_id=args.environment_id,
        log_stream=sys.stderr,
        log_level=os.environ.get("POWERTOOLS_LOG_LEVEL") or "DEBUG",
        compact_logs=False,
    )


def _prepare(
    stack: LocalStack, function: FunctionName, event: dict[str, Any], raw: dict[str, Any] | None
) -> dict[str, Any]:
    """Create what the event refers to in the fake; re-sign receiver events. Returns the event to send."""
    if stack.fake is not None:
        ensure_jobs(stack.fake, events_in(event, function))
        if function == "poller" and raw is not None:
            stack.fake.add_event({**raw, "createdAt": None})  # created now: inside the poller's window
        elif function == "poller":
            for job in SAMPLE_JOBS:
                stack.fake.create_job_event(job, environment_id=stack.options.environment_id)
    if function == "receiver" and stack.secret:
        return resign(event, stack.secret.split()[0])
    return event


def _report(
    err: TextIO, style: Style, stack: LocalStack, function: FunctionName, event: dict[str, Any]
) -> None:
    """What the invocation left behind: messages enqueued, and the jobs' states in the fake."""
    if function in ("receiver", "poller"):
        queued = []
        while (record := stack.queue.receive(timeout=0)) is not None:
            attributes = record["messageAttributes"]
            queued.append(f"  {attributes['jobId']['stringValue']}  {attributes['job']['stringValue']}")
        err.write(style.bold(f"Enqueued for the worker: {len(queued)} message(s)") + "\n")
        err.write("".join(line + "\n" for line in queued))
    if stack.fake is not None and function in ("worker", "dead_letter"):
        _job_states(err, stack.fake, events_in(event, function))
    err.flush()


def _job_states(err: TextIO, fake: FakeFlatfile, events: list[dict[str, Any]]) -> None:
    for flatfile_event in events:
        job_id = str((flatfile_event.get("context") or {}).get("jobId"))
        if job_id in fake.jobs:
            job = fake.job(job_id)
            summary, more = describe_outcome(job)
            err.write(f"Job {job_id} in the fake Flatfile API: {job['status']}  {summary}\n")
            if job["status"] == "ready":
                name = (flatfile_event.get("payload") or {}).get("job")
                err.write(
                    f"  no handler ran: is {name} registered on the listener in flatfile_app_jobs/__init__.py?\n"
                )
            err.write("".join(f"  {line}\n" for line in more))


def run(args: argparse.Namespace) -> int:
    """Invoke the function; 0 when it returned, 1 when it raised (its error printed as Lambda would)."""
    event = read_event(args.event_file)
    err, style = sys.stderr, Style(sys.stderr)
    raw = event if is_raw(event) else None
    function: FunctionName
    if raw is not None:
        function = args.function or "worker"
        event = function_event(function, raw)
        err.write(
            style.dim(f"{args.event_file} is a raw Flatfile event: wrapped as the {function}'s event") + "\n"
        )
    else:
        function = args.function or detect_function(args.event_file, event)
    with LocalStack(_options(args)) as stack:
        payload = _prepare(stack, function, event, raw)
        err.write(style.dim(f"Invoking functions/{function}/app.py with {args.event_file}") + "\n")
        err.flush()
        try:
            with TickPrinter(stack.fake, err) if stack.fake is not None else contextlib.nullcontext():
                answer = stack.invoke(function, payload)
        except Exception as exc:
            sys.stdout.write(json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}) + "\n")
            return 1
        sys.stdout.write(json.dumps(answer, indent=2) + "\n")
        sys.stdout.flush()
        _report(err, style, stack, function, event)
    return 0
