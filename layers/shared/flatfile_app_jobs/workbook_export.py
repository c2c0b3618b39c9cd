"""``workbook:export``: a multi-part job, split into ``input.parts`` parts (8 when not given).

Each part exports its share of the workbook (simulated) on whichever worker takes it; the parent completes once
every part ended, naming the part count, or fails naming the parts that did not complete.
"""

from __future__ import annotations

from flatfile_jobs import (
    FlatfileEvent,
    JobCompleteDetails,
    JobOutcome,
    JobPart,
    PartResults,
    Tick,
    multipart_job_handler,
)

from ._pace import pause

__all__ = ["DEFAULT_PARTS", "export_part", "finish_export", "plugin", "split_export"]

DEFAULT_PARTS = 8
_STEPS = 4


def split_export(event: FlatfileEvent) -> int:
    """How many parts: ``input.parts`` (a whole number from 1 to 10,000), else 8."""
    input_ = event.payload.get("input")
    parts = input_.get("parts", DEFAULT_PARTS) if isinstance(input_, dict) else DEFAULT_PARTS
    if isinstance(parts, bool) or not isinstance(parts, int) or not 1 <= parts <= 10_000:
        raise ValueError(f"input.parts must be a whole number from 1 to 10000, got {parts!r}")
    return parts


def export_part(part: JobPart, tick: Tick) -> None:
    """Export one share of the workbook (simulated: a paced unit of work in four steps)."""
    number, total = int(part.data.get("part", 0)) + 1, part.data.get("total", "?")
    for step in range(1, _STEPS + 1):
        pause(1 / _STEPS)
        tick(step * 100 // _STEPS, f"Part {number} of {total}: step {step} of {_STEPS}")


def finish_export(event: FlatfileEvent, results: PartResults) -> JobCompleteDetails:
    """Complete the export naming the part count; any part that did not complete fails it, named."""
    if not results.ok:
        raise RuntimeError(results.summary)
    return JobCompleteDetails(
        outcome=JobOutcome(message=f"Workbook exported in {results.total} parts.", acknowledge=True)
    )


plugin = multipart_job_handler(
    "workbook:export", split=split_export, run_part=export_part, finish=finish_export
)
