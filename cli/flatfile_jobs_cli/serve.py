"""``flatfile-jobs serve``: the local stack on a port, for posting your own events (``sam local start-api``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from flatfile_jobs_testing import job_ready_event, signed_headers

from ._common import CliError, Style
from ._progress import TickPrinter, describe_outcome
from .local import LocalOptions, LocalStack
from .sign_events import SECRET_ENV

__all__ = ["add_parser", "curl_example", "run", "serve"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve``."""
    parser = commands.add_parser(
        "serve",
        help="serve POST /webhook locally (receiver, queue and worker) until Ctrl-C",
        description="The stack on this machine: the receiver behind real HTTP, an in-process queue and "
        "worker, and the fake Flatfile API (jobs you post are created there as 'ready'), or a real Flatfile "
        "API with --api-url. Like 'sam local start-api', without Docker.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port (default 8787; 0 picks a free one)")
    parser.add_argument("--api-url", help="a real Flatfile API root (e.g. https://platform.flatfile.com/api)")
    parser.add_argument("--api-key", help="its secret key, sk_... (default $FLATFILE_API_KEY)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--secret", help=f"signing secret whsec_... (default ${SECRET_ENV}, else a new one)")
    group.add_argument("--allow-unsigned", action="store_true", help="accept unsigned requests (local only)")
    parser.add_argument("--workers", type=int, default=1, help="worker environments (default 1)")
    parser.add_argument(
        "--quiet", action="store_true", help="no function log lines, only one line per request"
    )
    parser.add_argument(
        "--no-reload", action="store_true", help="do not reload the job handlers when their files change"
    )
    parser.set_defaults(run=run)


def curl_example(stack: LocalStack) -> str:
    """A ready-to-run curl posting a signed sample event (its signature is good for five minutes)."""
    event = job_ready_event("space:configure", environment_id=stack.options.environment_id)
    body = json.dumps(event, separators=(",", ":"))
    headers = {"content-type": "application/json"}
    if stack.secret:
        headers = signed_headers(body.encode(), stack.secret.split()[0])
    lines = [f"curl -sS {shlex.quote(stack.webhook_url)}"]
    lines += [f"-H {shlex.quote(f'{name}: {value}')}" for name, value in headers.items()]
    lines.append(f"--data-binary {shlex.quote(body)}")
    return " \\\n    ".join(lines)


def _options(
    args: argparse.Namespace,
    on_request: Callable[..., None],
    on_record: Callable[[dict[str, Any], bool], None],
    logs: TextIO | None,
    out: TextIO,
) -> LocalOptions:
    api_key = args.api_key or os.environ.get("FLATFILE_API_KEY") or os.environ.get("FLATFILE_BEARER_TOKEN")
    if args.api_key and not args.api_url:
        raise CliError("--api-key needs --api-url (without it, serve runs the fake Flatfile API)")
    if args.api_url and not api_key:
        raise CliError("--api-url needs a key: pass --api-key sk_... or set FLATFILE_API_KEY")
    return LocalOptions(
        api_url=args.api_url,
        api_key=api_key if args.api_url else None,
        secret=None if args.allow_unsigned else (args.secret or os.environ.get(SECRET_ENV) or None),
        allow_unsigned=args.allow_unsigned,
        host=args.host,
        port=args.port,
        workers=max(1, args.workers),
        log_stream=logs,
        on_request=on_request,
        on_record=on_record,
        reload_to=None if args.no_reload else out,
    )


def _banner(out: TextIO, style: Style, stack: LocalStack) -> None:
    api = f"fake, {stack.fake.url}/v1 (posted jobs are created there as 'ready')" if stack.fake else "real, "
    if not stack.fake:
        api += str(stack.options.api_url)
    secret = stack.secret or "none: unsigned requests accepted (--allow-unsigned)"
    out.write(
        "\n".join(
            [
                style.bold("flatfile-jobs serve") + " - POST job:ready events to the local stack",
                f"  Webhook URL   {style.cyan(stack.webhook_url)}",
                f"  Flatfile API  {api}",
                f"  Secret        {secret}" + (style.dim("  (local throwaway)") if stack.secret else ""),
                f"  Handlers      {_handlers_line(stack)}",
                "",
                "Post a signed sample event (the signature is good for five minutes):",
                "  " + curl_example(stack),
                "",
                "Press Ctrl-C to stop.",
                "",
            ]
        )
    )
    out.flush()


def _handlers_line(stack: LocalStack) -> str:
    if stack.reloader is None:
        return "loaded once (--no-reload)"
    return f"{stack.reloader.folder}, reloaded between jobs when a file changes"


def _status(stack: LocalStack | None, job_id: str) -> str | None:
    """The job's status in the fake Flatfile API (``None`` without the fake or the job)."""
    job = stack.fake.jobs.get(job_id) if stack is not None and stack.fake is not None else None
    return str(job["status"]) if job is not None else None


def _record_line(style: Style, stack: LocalStack | None, record: dict[str, Any], failed: bool) -> str:
    """What the worker did with one record, with the job's outcome (as the user sees it) when the fake API is in use."""
    attributes = record.get("messageAttributes") or {}
    job_id = str((attributes.get("jobId") or {}).get("stringValue", "?"))
    job = str((attributes.get("job") or {}).get("stringValue", "?"))
    if failed:
        return style.red(f"worker  {job} {job_id}: failed, the queue will redeliver it")
    if stack is None or stack.fake is None or job_id not in stack.fake.jobs:
        return f"worker  {job} {job_id}: done"
    state = stack.fake.job(job_id)
    if state["status"] == "ready":
        return style.yellow(f"worker  {job} {job_id}: no handler for {job} ran, the job is still ready")
    summary, more = describe_outcome(state)
    paint = style.green if state["status"] == "complete" else style.red
    lines = [f"worker  {job} {job_id}: {paint(str(state['status']))}  {summary}"]
    return "\n".join(lines + [f"        {line}" for line in more])


class _RecordReporter:
    """One line per record the worker ran; a record that started no run of its job says so (a duplicate).

    A run ends with a complete or fail request to Flatfile: a record after which the fake has seen no more of
    those for its job than were already reported was answered from the idempotency store, or dropped while
    another worker ran the job.
    """

    def __init__(self, out: TextIO, style: Style) -> None:
        self.out = out
        self.style = style
        self.stack: LocalStack | None = None
        self.ticks: TickPrinter | None = None
        self._reported: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, record: dict[str, Any], failed: bool) -> None:
        attributes = record.get("messageAttributes") or {}
        job_id = str((attributes.get("jobId") or {}).get("stringValue", "?"))
        with self._lock:
            line = _record_line(self.style, self.stack, record, failed)
            if self.ticks is not None and not failed and _status(self.stack, job_id) != "ready":
                finishes = self.ticks.finishes(job_id)
                if finishes <= self._reported.get(job_id, 0):
                    job = str((attributes.get("job") or {}).get("stringValue", "?"))
                    line = self.style.dim(f"worker  {job} {job_id}: duplicate of {job_id}, not run")
                self._reported[job_id] = max(finishes, self._reported.get(job_id, 0))
            self.out.write(line + "\n")
            self.out.flush()


def serve(
    args: argparse.Namespace,
    *,
    stop: threading.Event | None = None,
    on_ready: Callable[[LocalStack], None] | None = None,
    out: TextIO | None = None,
) -> int:
    """Run until ``stop`` is set or Ctrl-C; ``on_ready`` gets the running stack (tests)."""
    out = out or sys.stdout
    style = Style(out)
    stop = stop or threading.Event()

    def on_request(method: str, path: str, status: int, ms: float, body: str) -> None:
        paint = style.green if status < 300 else style.red if status >= 400 else style.yellow
        out.write(f"{method} {path} {paint(str(status))} {ms:.0f} ms  {body}\n")
        out.flush()

    reporter = _RecordReporter(out, style)
    options = _options(args, on_request, reporter, None if args.quiet else sys.stderr, out)
    with LocalStack(options) as stack, contextlib.ExitStack() as showing:
        reporter.stack = stack
        if stack.fake is not None:
            reporter.ticks = showing.enter_context(TickPrinter(stack.fake, out))
        _banner(out, style, stack)
        if on_ready is not None:
            on_ready(stack)
        try:
            while not stop.wait(0.2):
                pass
        except KeyboardInterrupt:
            out.write("\nStopping...\n")
    out.write("Stopped.\n")
    return 0


def run(args: argparse.Namespace) -> int:
    """``flatfile-jobs serve``."""
    return serve(args)
