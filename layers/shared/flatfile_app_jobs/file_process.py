"""``file:process``: process an uploaded file and offer a button to the result (a custom outcome)."""

from __future__ import annotations

from flatfile_jobs import AsyncTick, FlatfileEvent, JobCompleteDetails, JobOutcome, NextId, job_handler

from ._pace import pause

__all__ = ["plugin", "process_file"]


async def process_file(event: FlatfileEvent, tick: AsyncTick) -> JobCompleteDetails:
    """Extract the file (simulated) and point the user at the workbook it produced."""
    await tick(20, "Reading the file...")
    pause()
    await tick(80, "Extracting sheets...")
    workbook_id = str(event.context.get("workbookId") or event.context.get("spaceId") or "")
    return JobCompleteDetails(
        outcome=JobOutcome(
            heading="File processed",
            message="Your file was processed successfully.",
            button_text="Review data",
            next=NextId(id=workbook_id, label="Review data", path="workbook"),
        )
    )


plugin = job_handler("file:process", process_file)
