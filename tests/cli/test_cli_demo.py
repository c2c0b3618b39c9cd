"""`flatfile-jobs demo`: the six sample jobs (one multi-part, one long) end as designed; the board draws live on a TTY, lines otherwise."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from flatfile_jobs_cli.__main__ import main
from flatfile_jobs_cli._progress import Board, JobRow

ROOT = Path(__file__).resolve().parents[2]


def test_demo_exits_0_with_three_complete_and_data_validate_failed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The demo delivers six signed events over HTTP (one a multi-part job, one long), each ends as expected (exit 0)."""
    assert main(["demo", "--pace", "0"]) == 0
    out = capsys.readouterr().out
    assert out.count("202 accepted") == 6
    assert "data:validate fails by design" in out
    for line in (
        "space:configure  complete   Job complete",
        "workbook:submit  complete   Data submitted successfully.",
        "file:process     complete   Your file was processed successfully.",
        "data:validate    failed     Validation failed: No records found to validate.",
        "workbook:export  complete   Workbook exported in 8 parts.",
        "file:extract     complete   Extracted 1200 records from 3 sheets.",
    ):
        assert line in out
    assert "All 6 jobs ended as expected (5 complete, data:validate failed by design)" in out
    assert "\x1b[" not in out  # not a terminal: plain lines, no ANSI


def test_demo_prints_progress_lines_and_keeps_function_logs_in_a_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Piped output shows each progress change as a line, the parts' too; Powertools' JSON lines go to the log file only."""
    assert main(["demo", "--pace", "0.3"]) == 0
    captured = capsys.readouterr()
    assert "Starting configuration..." in captured.out
    for part in range(1, 9):
        assert f"part {part}/8        100%  complete   Part {part} of 8: step 4 of 4" in captured.out
    assert "8 of 8 parts done" in captured.out
    assert '"level"' not in captured.out + captured.err
    log_path = Path(captured.out.rsplit("Function logs (Lambda's JSON lines): ", 1)[1].strip())
    try:
        assert '"message":"Delivery answered"' in log_path.read_text()
    finally:
        log_path.unlink()


def test_a_completed_jobs_final_progress_is_100_as_flatfiles_api_reports_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """workbook:submit ticks up to 75 and file:process to 80, yet a complete job reads 100% (Flatfile's API
    returns progress 100 for a complete job); the failed job keeps the progress it reached."""
    assert main(["demo", "--pace", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    final = {job: next(line for line in reversed(lines) if line.startswith(f"  {job} ") and "%" in line) for job in (
        "workbook:submit", "file:process", "data:validate")}  # fmt: skip
    assert final["workbook:submit"].split()[1:3] == ["100%", "complete"]
    assert final["file:process"].split()[1:3] == ["100%", "complete"]
    assert final["data:validate"].split()[1:3] == ["1%", "failed"]


def test_demo_builds_missing_event_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without events/receiver/*.json the demo builds the five events itself and still passes."""
    (tmp_path / "functions").symlink_to(ROOT / "functions")
    monkeypatch.setenv("FLATFILE_JOBS_ROOT", str(tmp_path))
    assert main(["demo", "--pace", "0", "--workers", "1"]) == 0
    assert capsys.readouterr().out.count("built (no event file)") == 5


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def test_board_redraws_in_place_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a TTY each change redraws the rows: cursor up over the previous drawing, bars in Unicode."""
    monkeypatch.setenv("NO_COLOR", "1")
    stream = Terminal()
    board = Board([JobRow("space:configure", "us_jb_1")], stream, live=True)
    board.start()
    board.update({"us_jb_1": {"status": "executing", "progress": 50, "info": "Halfway there!"}})
    board.update({"us_jb_1": {"status": "executing", "progress": 50, "info": "Halfway there!"}})  # no change
    board.close()
    text = stream.getvalue()
    assert text.count("\x1b[1F") == 1
    assert "██████████░░░░░░░░░░  50%" in text
    assert "Halfway there!" in text
    assert text.startswith("\x1b[?25l")
    assert text.endswith("\x1b[?25h")


def test_board_prints_a_line_per_change_when_piped() -> None:
    """Without a TTY, only changes are printed, one line each."""
    stream = io.StringIO()
    board = Board([JobRow("file:process", "us_jb_2")], stream, live=False)
    board.update({"us_jb_2": {"status": "executing", "progress": 20, "info": "Reading the file..."}})
    board.update({"us_jb_2": {"status": "executing", "progress": 20, "info": "Reading the file..."}})
    board.update({"us_jb_2": {"status": "complete", "progress": 80}})
    assert stream.getvalue().splitlines() == [
        "  file:process    20%  executing  Reading the file...",
        "  file:process    80%  complete   Reading the file...",
    ]
