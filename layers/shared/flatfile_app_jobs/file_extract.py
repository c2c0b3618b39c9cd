"""``file:extract``: a long job — three steps with 20-minute pauses between them (a partner's API cools down).

With long jobs on, each step is checkpointed and the pauses cost no compute; locally the SDK's test runner skips
them, so the job completes in seconds. With long jobs off it runs inline and the worker's timeout ends it.
"""

from __future__ import annotations

from flatfile_jobs import FlatfileEvent, JobCompleteDetails, JobOutcome, Steps, StepTick, long_job_handler

__all__ = ["COOL_DOWN_SECONDS", "extract_file", "plugin"]

COOL_DOWN_SECONDS = 20 * 60


def _read(tick: StepTick) -> int:
    tick(10, "Reading the file...")
    return 3


def _extract(tick: StepTick) -> int:
    tick(40, "Extracting sheets...")
    return 1200


def _load(tick: StepTick) -> None:
    tick(80, "Loading records...")


def extract_file(event: FlatfileEvent, steps: Steps) -> JobCompleteDetails:
    """Read, extract and load the file in three checkpointed steps, pausing between them."""
    sheets = steps.run("read", _read)
    steps.wait("cool-down-1", seconds=COOL_DOWN_SECONDS)
    records = steps.run("extract", _extract)
    steps.wait("cool-down-2", seconds=COOL_DOWN_SECONDS)
    steps.run("load", _load)
    return JobCompleteDetails(
        outcome=JobOutcome(message=f"Extracted {records} records from {sheets} sheets.")
    )


plugin = long_job_handler("file:extract", extract_file)
