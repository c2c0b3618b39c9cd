"""``flatfile-jobs develop``: run this checkout's job handlers against a real Flatfile environment.

The Python answer to ``flatfile develop``: polls ``GET /events?environmentId=…&topic=job:ready&since=…``
(:class:`flatfile_jobs.EventPoller`), runs each event through the listener here, acks it in Flatfile and
never hands an event out twice. Polls back off from ``--interval`` to ``--max-interval`` while idle or
failing; the first Ctrl-C stops after the current job, a second one stops at once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import Any, TextIO

from flatfile_jobs import (
    DispatchError,
    EventPoller,
    FlatfileAPIError,
    FlatfileEvent,
    FlatfileListener,
    JobResult,
)
from flatfile_jobs._config import ApiSettings
from flatfile_jobs._table import load_plugins

from ._common import CliError, Style, scoped_env
from ._logs import LogRoute
from ._progress import symbols
from ._reload import HandlerReloader
from .local import LOCAL_ENV, close_thread_loop

__all__ = ["DevelopLoop", "add_parser", "parse_since", "run"]

MAX_ATTEMPTS = 3
DEFAULT_API_URL = "https://platform.flatfile.com/api"
_SPINNER = "|/-\\"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``develop``."""
    parser = commands.add_parser(
        "develop",
        help="poll a real Flatfile environment for job:ready events and run the handlers here",
        description="Needs FLATFILE_API_KEY (a secret key, sk_...) and FLATFILE_ENVIRONMENT_ID (us_env_...); "
        "FLATFILE_API_URL is optional (default https://platform.flatfile.com/api). Each job:ready event a "
        "handler here wants is run, then acked in Flatfile; others are left for other consumers.",
    )
    parser.add_argument("--environment-id", help="the environment (default $FLATFILE_ENVIRONMENT_ID)")
    parser.add_argument("--api-url", help="the API root (default $FLATFILE_API_URL, else Flatfile's)")
    parser.add_argument(
        "--since", default="10m", help="where to start: an ISO time or 30s/10m/2h ago (default 10m)"
    )
    parser.add_argument(
        "--interval", type=float, default=1.0, help="seconds between polls at first (default 1)"
    )
    parser.add_argument("--max-interval", type=float, default=15.0, help="the longest wait (default 15)")
    parser.add_argument(
        "--max-polls", type=int, help="stop after this many polls (default: run until Ctrl-C)"
    )
    parser.add_argument(
        "--job-timeout", type=float, default=900.0, help="seconds a job may run (default 900)"
    )
    parser.add_argument("--verbose", action="store_true", help="show the handlers' log lines (INFO)")
    parser.add_argument(
        "--no-reload", action="store_true", help="do not reload the job handlers when their files change"
    )
    parser.set_defaults(run=run)


def parse_since(value: str, *, now: float | None = None) -> float:
    """Seconds to look back from ``value``: ``90s``, ``10m``, ``2h``, ``0`` or an ISO time.

    Raises:
        CliError: Neither form.
    """
    now = time.time() if now is None else now
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", value)
    if match:
        return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"--since {value!r}: give an ISO time or a duration like 30s, 10m, 2h") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return max(0.0, now - moment.timestamp())


@dataclass
class DevelopLoop:
    """Poll, handle, ack, mark; back off while idle or failing; stop on ``stop`` or after ``max_polls``."""

    poller: EventPoller
    listener: FlatfileListener
    out: TextIO
    interval: float = 1.0
    max_interval: float = 15.0
    max_polls: int | None = None
    job_timeout: float = 900.0
    stop: threading.Event = field(default_factory=threading.Event)
    reloader: HandlerReloader | None = None
    handled: int = 0
    polls: int = 0
    _failures: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.style = Style(self.out)
        self.marks = symbols(self.out)

    def run(self) -> None:
        """Poll until stopped; each wait doubles while nothing arrives or polls fail, capped at max_interval."""
        wait = self.interval
        while not self.stop.is_set() and (self.max_polls is None or self.polls < self.max_polls):
            self.polls += 1
            try:
                events = self.poller.poll()
                busy = self._handle_all(events)
            except FlatfileAPIError as exc:
                status = exc.status or "no response"
                self._say(self.style.yellow(f"Polling failed ({status}: {exc}); retrying in {wait:g} s"))
                busy = False
            if busy:
                wait = self.interval
                continue
            if self.max_polls is not None and self.polls >= self.max_polls:
                break
            self._wait(wait)
            wait = min(self.max_interval, wait * 2)

    def _handle_all(self, events: list[dict[str, Any]]) -> bool:
        """Handle events in order; ``True`` (poll again at once) when all were handled."""
        for event in events:
            if self.stop.is_set() or not self._handle(event):
                return False
        return bool(events)

    def _handle(self, event: dict[str, Any]) -> bool:
        """Run one event (on the handlers as they are now); ``False`` when it should be tried again later."""
        if self.reloader is None:
            return self._handle_now(event)
        with self.reloader.job():
            return self._handle_now(event)

    def _handle_now(self, event: dict[str, Any]) -> bool:
        view = FlatfileEvent.of(event)
        name = f"{view.job or view.topic} {self.style.dim(view.job_id or view.id)}"
        if not self.listener.matches(event):
            self._say(self.style.dim(f"{self.marks['more']} no handler for {name}: left for other consumers"))
            self.poller.mark(event)
            return True
        self._say(f"{self.style.bold('>')} {name}  (event {view.id})")
        try:
            results = self.listener.dispatch(event, timeout=self.job_timeout, settings=self.poller.settings)
        except DispatchError as exc:
            return self._dispatch_failed(event, name, exc)
        for result in results:
            if isinstance(result, JobResult):
                self._say_result(result)
        self._ack(event)
        self.poller.mark(event)
        self.handled += 1
        return True

    def use_listener(self, listener: FlatfileListener) -> None:
        """Run the next events on ``listener`` (the handlers were reloaded)."""
        self.listener = listener

    def _dispatch_failed(self, event: dict[str, Any], name: str, exc: DispatchError) -> bool:
        attempts = self._failures[str(event["id"])] = self._failures.get(str(event["id"]), 0) + 1
        if attempts < MAX_ATTEMPTS:
            self._say(
                self.style.red(
                    f"{self.marks['bad']} {name}: {exc.errors[0]} (attempt {attempts}, will retry)"
                )
            )
            return False
        self._say(
            self.style.red(
                f"{self.marks['bad']} {name}: {exc.errors[0]} (giving up after {attempts} attempts)"
            )
        )
        self.poller.mark(event)
        return True

    def _ack(self, event: dict[str, Any]) -> None:
        try:
            self.poller.ack(event)
        except FlatfileAPIError as exc:
            self._say(
                self.style.yellow(f"  could not ack event {event['id']} ({exc}); it will not run again here")
            )

    def _say_result(self, result: JobResult) -> None:
        good = result.status == "complete"
        mark = self.style.green(self.marks["ok"]) if good else self.style.red(self.marks["bad"])
        detail = f": {result.message}" if result.message else ""
        self._say(f"{mark} {result.job} {result.status} in {result.seconds:.1f} s{detail}")

    def _say(self, line: str) -> None:
        if self.style.tty:
            self.out.write("\r\x1b[2K")
        self.out.write(line + "\n")
        self.out.flush()

    def _wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (cut short by ``stop``), with a spinner and countdown on a terminal."""
        end = time.monotonic() + seconds
        if not self.style.tty:
            self.stop.wait(seconds)
            return
        for tick in range(1_000_000):
            left = end - time.monotonic()
            if left <= 0 or self.stop.wait(min(0.1, left)):
                break
            status = f"{_SPINNER[tick % 4]} waiting for job:ready events in {self.poller.environment_id}"
            self.out.write(
                f"\r\x1b[2K{self.style.dim(f'{status} · next poll in {left:.0f} s · {self.handled} handled')}"
            )
            self.out.flush()
        self.out.write("\r\x1b[2K")


def _settings(args: argparse.Namespace) -> tuple[str, str, str]:
    """The API root, key and environment id, or a one-line error naming what is missing."""
    missing = []
    token = os.environ.get("FLATFILE_API_KEY") or os.environ.get("FLATFILE_BEARER_TOKEN")
    environment_id = args.environment_id or os.environ.get("FLATFILE_ENVIRONMENT_ID")
    if not token:
        missing.append("FLATFILE_API_KEY")
    if not environment_id:
        missing.append("FLATFILE_ENVIRONMENT_ID")
    if missing:
        what = "it" if len(missing) == 1 else "them"
        raise CliError(
            f"develop needs {' and '.join(missing)}: set {what} in the environment (see develop --help)"
        )
    api_url = args.api_url or os.environ.get("FLATFILE_API_URL") or DEFAULT_API_URL
    return api_url, str(token), str(environment_id)


def _on_sigint(stop: threading.Event, out: TextIO) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        out.write("\nStopping after the current job (Ctrl-C again to quit now)...\n")
        out.flush()

    return handler


def run(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """``flatfile-jobs develop``."""
    from flatfile_app_jobs import listener

    load_plugins(listener)  # every handler module at start, as the reloader does on each reload
    out = out or sys.stdout
    api_url, token, environment_id = _settings(args)
    lookback = parse_since(args.since)
    settings = ApiSettings.resolve(api_url=api_url, token=token)
    poller = EventPoller(
        environment_id=environment_id, lookback=lookback, request_budget=0, settings=settings
    )
    loop = DevelopLoop(
        poller, listener, out, args.interval, args.max_interval, args.max_polls, args.job_timeout
    )
    style = loop.style
    loop.reloader = None if args.no_reload else HandlerReloader(out, loop.use_listener)
    handlers = f"{loop.reloader.folder}, reloaded when a file changes" if loop.reloader else "loaded once"
    out.write(
        f"{style.bold('flatfile-jobs develop')} - this checkout's job handlers, events from Flatfile\n"
        f"  Environment  {environment_id}   API {style.cyan(api_url)}\n"
        f"  Polling      GET /events?topic=job:ready, from {poller.cursor.since}, every "
        f"{args.interval:g}-{args.max_interval:g} s\n"
        f"  Handlers     {handlers}\n"
        "Press Ctrl-C to stop.\n"
    )
    out.flush()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _on_sigint(loop.stop, out)) if main_thread else None
    level = "INFO" if args.verbose else "WARNING"
    try:
        with (
            scoped_env(LOCAL_ENV, override=False),
            LogRoute(sys.stderr, level=level),
            loop.reloader or contextlib.nullcontext(),
        ):
            loop.run()
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
        close_thread_loop()
    out.write(f"Stopped after {loop.polls} poll(s); {loop.handled} event(s) handled.\n")
    return 0
