"""``workbook:submit``: hand the workbook's data to your system, with the plugin's debug logging on."""

from __future__ import annotations

from typing import Any

from flatfile_jobs import FlatfileEvent, JobCompleteDetails, JobOutcome, job_handler

from ._pace import pause

__all__ = ["plugin", "submit_workbook"]


def submit_workbook(event: FlatfileEvent, tick: Any) -> JobCompleteDetails:  # noqa: ANN401 - the lifecycle's tick
    """Send the workbook downstream (simulated)."""
    tick(25, "Preparing submission...")
    pause()
    tick(75, "Sending data to the destination...")
    pause()
    return JobCompleteDetails(outcome=JobOutcome(acknowledge=True, message="Data submitted successfully."))


plugin = job_handler("workbook:submit", submit_workbook, debug=True)
