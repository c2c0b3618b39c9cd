"""``workbook:submit``: hand the workbook's data to your system, with the plugin's debug logging on."""

from __future__ import annotations

from flatfile_jobs import FlatfileEvent, JobCompleteDetails, JobOutcome, Tick, job_handler

from ._pace import pause

__all__ = ["plugin", "submit_workbook"]


def submit_workbook(event: FlatfileEvent, tick: Tick) -> JobCompleteDetails:
    """Send the workbook downstream (simulated)."""
    tick(25, "Preparing submission...")
    pause()
    tick(75, "Sending data to the destination...")
    pause()
    return JobCompleteDetails(outcome=JobOutcome(acknowledge=True, message="Data submitted successfully."))


plugin = job_handler("workbook:submit", submit_workbook, debug=True)
