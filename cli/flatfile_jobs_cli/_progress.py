"""Progress of jobs on a terminal: a live bar per job (plain ANSI), or one line per change when piped."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any, TextIO

from ._common import Style

__all__ = ["FINISHED", "Board", "JobRow", "symbols"]

FINISHED = frozenset({"complete", "failed", "canceled"})
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
