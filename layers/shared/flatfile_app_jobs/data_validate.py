"""``data:validate``: validate a sheet's records, failing clearly when there are none (the Error Handling seed)."""

from __future__ import annotations

from flatfile_jobs import AsyncTick, FlatfileEvent, JobCompleteDetails, JobOutcome, job_handler

__all__ = ["NO_RECORDS_MESSAGE", "plugin", "validate_data"]

NO_RECORDS_MESSAGE = "Validation failed: No records found to validate."


async def validate_data(event: FlatfileEvent, tick: AsyncTick) -> JobCompleteDetails:
    """Read the sheet's records through the API; raise (failing the job) when there are none.

    A ``context.sheetId`` that is not a Flatfile id fails the job naming the field; it never reaches a URL.
    """
    sheet_id = event.context_id("sheetId")
    await tick(1, "Starting validation...")
    records = await event.api.get_records(sheet_id) if sheet_id and event.api else []
    if not records:
        raise ValueError(NO_RECORDS_MESSAGE)
    await tick(100, f"Validated {len(records)} records.")
    return JobCompleteDetails(
        outcome=JobOutcome(message=f"Validation passed: {len(records)} records checked.")
    )


plugin = job_handler("data:validate", validate_data)
