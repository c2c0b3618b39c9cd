"""The README's benchmark table is generated from the recorded run, never typed (``bench/readme.py``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # ``bench`` is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from bench._common import Row  # noqa: E402
from bench._parts import PartsResult  # noqa: E402
from bench._parts import Run as PartsRun  # noqa: E402
from bench._parts import rows as parts_rows  # noqa: E402
from bench._report import Run  # noqa: E402
from bench.readme import END, RESULTS, START, block, load_history  # noqa: E402


def _run(when: str, ratio: str) -> Run:
    rows = [Row("3. No-op job: median wall time", "2.00 ms", "2.50 ms", ratio, "ratio ≤ 1.0", True)]
    return Run(when, "abc1234", "a machine", "v20", 60, rows)


def test_readme_table_is_the_recorded_run() -> None:
    """The text between the README's markers is exactly what bench/results.json and the history generate."""
    readme = (ROOT / "README.md").read_text()
    generated = readme[readme.index(START) : readme.index(END) + len(END)]
    latest = Run.from_json(json.loads(RESULTS.read_text()))
    assert generated == block(latest, load_history())
    assert latest.goals_line() in generated


def test_ranges_come_from_the_recorded_runs() -> None:
    """With two recorded runs a ratio row gets its min–max; with one run no range is quoted."""
    first, second = _run("2026-12-01 10:00 UTC", "0.80"), _run("2026-12-02 10:00 UTC", "1.04")
    assert "0.80–1.04 (2 runs)" in block(second, [first, second])
    assert "runs kept" not in block(second, [second])
    assert Run.from_json(json.loads(json.dumps(second.as_json()))) == second


def test_worded_ratios_are_left_out_of_the_ranges() -> None:
    """A ratio cell in words ("3.8× faster") is shown in the table but quoted in no range (and crashes nothing)."""
    first, second = _run("2026-12-01 10:00 UTC", "3.1× faster"), _run("2026-12-02 10:00 UTC", "3.8× faster")
    generated = block(second, [first, second])
    assert "| 3.8× faster |" in generated
    assert "runs kept" not in generated


def test_multipart_rows_ratios_are_numbers_the_ranges_can_read() -> None:
    """The multi-part rows' ratio cells are plain numbers, so the README's ranges over recorded runs can be built."""
    runs = [
        PartsRun(workers, seconds=[seconds], parent_requests=[80])
        for workers, seconds in ((1, 7.8), (4, 2.1), (16, 0.95))
    ]
    result = PartsResult(runs)
    table = parts_rows(result)
    assert [row.ratio for row in table if row.ratio] == ["3.71", "8.21"]
    assert result.overhead_ms() == pytest.approx(21.875)
    first, second = _run("2026-12-01 10:00 UTC", "0.80"), _run("2026-12-02 10:00 UTC", "1.04")
    first.rows += table
    second.rows += table
    assert "16 worker(s): wall time: 8.21–8.21 (2 runs)" in block(second, [first, second])
