"""Progress of jobs on a terminal: a live bar per job (plain ANSI), or one line per change when piped."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from flatfile_jobs._job_status import ENDED
from flatfile_jobs_testing._store import MISSING_JOB

from ._common import Style

if TYPE_CHECKING:
    from flatfile_jobs_testing import FakeFlatfile

__all__ = ["FINISHED", "Board", "JobRow", "TickPrinter", "describe_outcome", "symbols"]

FINISHED = ENDED  # a job in one of these statuses shows its outcome
_BAR_WIDTH = 20


def symbols(stream: TextIO) -> dict[str, str]:
    """Bar and mark characters the stream can encode (Unicode when it can, ASCII otherwise)."""
    encoding = (getattr(stream, "encoding", None) or "ascii").lower()
    if "utf" in encoding:
        return {"full": "█", "empty": "░", "ok": "✔", "bad": "✘", "more": "…"}
    return {"full": "#", "empty": "-", "ok": "OK", "bad": "!!", "more": "..."}


@dataclass
class JobRow:
    """One job on the board: its name, id, and the last state read from Flatfile."""

    job: str
    job_id: str
    status: str = "ready"
    progress: int = 0
    info: str = ""

    def read(self, state: dict[str, Any]) -> bool:
        """Take a job's state (``GET /jobs/{id}``'s shape); ``True`` when anything shown changed."""
        before = (self.status, self.progress, self.info)
        self.status = str(state.get("status") or self.status)
        progress = state.get("progress")
        self.progress = int(progress) if isinstance(progress, int | float) else self.progress
        self.info = str(state.get("info") or self.info or "")
        return before != (self.status, self.progress, self.info)

    @property
    def finished(self) -> bool:
        """Whether the job reached complete, failed or canceled."""
        return self.status in FINISHED


class Board:
    """Draw job rows: redrawn in place on a terminal, else a line per change (logs, CI, pipes).

    Args:
        rows: The jobs, in display order.
        stream: Where to write.
        live: Redraw in place (a terminal); ``False`` prints changes line by line.
    """

    def __init__(self, rows: list[JobRow], stream: TextIO, *, live: bool) -> None:
        self.rows = rows
        self.stream = stream
        self.live = live
        self.style = Style(stream)
        self.marks = symbols(stream)
        self._drawn = 0
        self._label = max((len(row.job) for row in rows), default=10) + 2

    def update(self, states: dict[str, dict[str, Any]]) -> None:
        """Read each row's state from ``states`` (by job id) and show what changed."""
        changed = [row for row in self.rows if row.job_id in states and row.read(states[row.job_id])]
        if self.live:
            if changed:
                self._redraw()
        else:
            for row in changed:
                self.stream.write(
                    f"  {row.job:<{self._label}}{row.progress:>4}%  {row.status:<11}{row.info}\n"
                )
            self.stream.flush()

    def start(self) -> None:
        """Show the rows as they are (and hide the cursor while redrawing)."""
        if self.live:
            self.stream.write("\x1b[?25l")
            self._redraw()

    def close(self) -> None:
        """Leave the last drawing in place and show the cursor again."""
        if self.live:
            self.stream.write("\x1b[?25h")
            self.stream.flush()

    def _redraw(self) -> None:
        width = shutil.get_terminal_size((100, 20)).columns
        out = [f"\x1b[{self._drawn}F"] if self._drawn else []
        for row in self.rows:
            out.append("\x1b[2K" + self._line(row, width) + "\n")
        self._drawn = len(self.rows)
        self.stream.write("".join(out))
        self.stream.flush()

    def _line(self, row: JobRow, width: int) -> str:
        filled = max(0, min(_BAR_WIDTH, round(row.progress * _BAR_WIDTH / 100)))
        bar = self.marks["full"] * filled + self.marks["empty"] * (_BAR_WIDTH - filled)
        head = f"  {row.job:<{self._label}}"
        plain = f"{head}{bar} {row.progress:>3}%  {row.status:<11}"
        room = max(0, width - len(plain) - 1)
        more = self.marks["more"]
        info = row.info if len(row.info) <= room else row.info[: max(0, room - len(more))] + more
        return (
            f"{head}{self._paint(row, bar)} {row.progress:>3}%  {self._paint(row, f'{row.status:<11}')}{info}"
        )

    def _paint(self, row: JobRow, text: str) -> str:
        if row.status == "complete":
            return self.style.green(text)
        if row.status in ("failed", "canceled"):
            return self.style.red(text)
        if row.status == "executing":
            return self.style.yellow(text)
        return self.style.dim(text)


def _next_action(next_: Mapping[str, Any], button: str | None) -> str:
    """The button the user gets and where it leads (``next``'s type decides)."""
    kind = str(next_.get("type") or "")
    label = str(next_.get("label") or button or kind)
    where = {
        "id": f"opens {next_.get('path') or 'resource'} {next_.get('id', '')}",
        "url": f"opens {next_.get('url', '')}",
        "download": f"downloads {next_.get('fileName') or next_.get('url', '')}",
        "files": f"lists {len(next_.get('files') or [])} file(s)",
        "snapshot": f"opens snapshot {next_.get('snapshotId', '')} of sheet {next_.get('sheetId', '')}",
        "view": f"opens sheet {next_.get('sheetId', '')}",
        "retry": "runs the job again",
        "wait": "waits" + (" (confetti)" if next_.get("confetti") else ""),
    }.get(kind, kind)
    return f"[{label}] {where}".rstrip()


def describe_outcome(job: Mapping[str, Any]) -> tuple[str, list[str]]:
    """A finished job as the user sees it: ``heading - message`` (else ``info``), then the next action.

    Args:
        job: The job as ``GET /jobs/{id}`` returns it.

    Returns:
        The summary and further lines (the button and where it leads), when the outcome has one.
    """
    outcome = job.get("outcome") if isinstance(job.get("outcome"), Mapping) else {}
    assert isinstance(outcome, Mapping)
    heading, message = outcome.get("heading"), outcome.get("message")
    summary = " - ".join(str(part) for part in (heading, message) if part) or str(job.get("info") or "")
    more = []
    next_ = outcome.get("next")
    if isinstance(next_, Mapping):
        more.append("next: " + _next_action(next_, outcome.get("buttonText")))
    elif outcome.get("buttonText"):
        more.append(f"button: [{outcome['buttonText']}]")
    return summary, more


_JOB_CALL = re.compile(r"/jobs/([^/]+)/(ack|complete|fail|cancel)")


class TickPrinter:
    """Print each progress update the fake Flatfile API accepts, per job, as Flatfile shows it.

    Reads the fake's request log (what the worker sent), in a thread while used as a context manager, so the
    ticks appear as they happen; refused requests (faults, 4xx) are not shown, as Flatfile would not show them.

    Args:
        fake: The fake Flatfile API the functions talk to.
        out: Where to print.
        interval: Seconds between reads of the log.
        outcomes: Print each job's outcome too when it completes or fails (when nothing else reports it).
    """

    def __init__(
        self, fake: FakeFlatfile, out: TextIO, *, interval: float = 0.05, outcomes: bool = False
    ) -> None:
        self.fake = fake
        self.out = out
        self.interval = interval
        self.outcomes = outcomes
        self.style = Style(out)
        self._seen: set[int] = set()
        self._shown: dict[str, tuple[int, str]] = {}
        self._finishes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> TickPrinter:
        self._thread = threading.Thread(target=self._run, name="tick-printer", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def finishes(self, job_id: str) -> int:
        """How many accepted complete/fail/cancel requests the job got so far (read the log first)."""
        self.poll()
        with self._lock:
            return self._finishes.get(job_id, 0)

    def poll(self) -> None:
        """Print the progress updates that arrived since the last read."""
        with self._lock:
            for request in self.fake.requests:
                if id(request) in self._seen:
                    continue
                self._seen.add(id(request))
                match = _JOB_CALL.fullmatch(request.path)
                if (
                    match is None
                    or request.method != "POST"
                    or request.fault
                    or not 200 <= request.status < 300
                ):
                    continue
                job_id, action = match[1], match[2]
                if action != "ack":
                    self._finishes[job_id] = self._finishes.get(job_id, 0) + 1
                    if self.outcomes:
                        self._outcome(job_id)
                    continue
                self._tick(job_id, request.body if isinstance(request.body, dict) else {})
            self.out.flush()

    def _name(self, job_id: str) -> str:
        job = self.fake.jobs.get(job_id) or {}
        name = f"{job.get('type')}:{job.get('operation')}"
        return name if job.get("type") and name != MISSING_JOB else "job"

    def _outcome(self, job_id: str) -> None:
        job = self.fake.job(job_id)
        summary, more = describe_outcome(job)
        paint = self.style.green if job["status"] == "complete" else self.style.red
        self.out.write(f"outcome  {self._name(job_id)} {job_id}: {paint(str(job['status']))}  {summary}\n")
        self.out.write("".join(f"         {line}\n" for line in more))

    def _tick(self, job_id: str, body: dict[str, Any]) -> None:
        progress, info = self._shown.get(job_id, (0, ""))
        progress = int(body["progress"]) if isinstance(body.get("progress"), int) else progress
        info = str(body["info"]) if body.get("info") is not None else info
        self._shown[job_id] = (progress, info)
        self.out.write(
            f"progress {self._name(job_id)} {job_id} {self.style.yellow(f'{progress:>3}%')}  {info}\n"
        )
