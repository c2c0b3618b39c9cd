"""The public API's types, checked by mypy --strict (``make typecheck``), never run.

A handler written as the README shows type-checks with no ``Any``; ``assert_type`` pins what the public
calls return; each ``# type: ignore[...]`` is a call mypy must refuse (``warn_unused_ignores`` is on, so an
ignore that stops being needed is itself an error).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, assert_type

from flatfile_jobs import (
    ApiSettings,
    AsyncJobHandler,
    AsyncTick,
    FlatfileClient,
    FlatfileEvent,
    FlatfileListener,
    JobCompleteDetails,
    JobHandler,
    JobOutcome,
    JobPart,
    JobRoute,
    PartResults,
    Plugin,
    Steps,
    StepTick,
    Tick,
    job_handler,
    job_table,
    long_job_handler,
    multipart_job_handler,
)

# -- handlers as the README writes them ---------------------------------------------------------------------


def configure_space(event: FlatfileEvent, tick: Tick) -> None:
    tick(10, "Starting configuration...")
    tick(100, "Configuration complete.")


async def validate_data(event: FlatfileEvent, tick: AsyncTick) -> JobCompleteDetails:
    await tick(1)
    api = event.api
    assert_type(api, FlatfileClient | None)
    records = await api.get_records("us_sh_1") if api is not None else []
    return JobCompleteDetails(outcome=JobOutcome(message=f"{len(records)} records"))


def export_part(part: JobPart, tick: Tick) -> None:
    tick(50, f"Part {part.index}")


def finish_export(event: FlatfileEvent, results: PartResults) -> JobCompleteDetails:
    return JobCompleteDetails(outcome=JobOutcome(message=results.summary))


def read_step(tick: StepTick) -> int:
    tick(10, "Reading...")
    return 3


def extract_file(event: FlatfileEvent, steps: Steps) -> None:
    assert_type(steps.run("read", read_step), int)
    steps.wait("cool-down", seconds=1200)


# -- what the public calls return ---------------------------------------------------------------------------


def ticks(tick: Tick) -> None:
    assert_type(tick(50), dict[str, Any])
    assert_type(tick(50.5, "Halfway there!"), dict[str, Any])
    assert_type(tick(progress=50, info=None), dict[str, Any])


async def async_ticks(tick: AsyncTick) -> None:
    assert_type(await tick(50, "Halfway there!"), dict[str, Any])


assert_type(job_handler("space:configure", configure_space), Plugin)
assert_type(job_handler("data:validate", validate_data, debug=True, tick_interval=0), Plugin)
assert_type(multipart_job_handler("workbook:export", split=lambda event: 8, run_part=export_part), Plugin)
assert_type(
    multipart_job_handler(
        "workbook:export", split=lambda event: 8, run_part=export_part, finish=finish_export
    ),
    Plugin,
)
assert_type(long_job_handler("file:extract", extract_file), Plugin)

listener = FlatfileListener()
assert_type(listener.use(job_handler("space:configure", configure_space)), FlatfileListener)


@listener.job("workbook:submit", debug=True)
def decorated(event: FlatfileEvent, tick: Tick) -> JobCompleteDetails:
    tick(10)
    return JobCompleteDetails(outcome=JobOutcome(message="Submitted."))


@listener.job("data:validate", tick_interval=0)
async def decorated_async(event: FlatfileEvent, tick: AsyncTick) -> JobCompleteDetails:
    await tick(10)
    return JobCompleteDetails(outcome=JobOutcome(message="Valid."))


async def decorated_functions_keep_their_types(event: FlatfileEvent, tick: Tick, atick: AsyncTick) -> None:
    """The decorator hands the function back unchanged: same arguments, same return type."""
    assert_type(decorated(event, tick), JobCompleteDetails)
    assert_type(await decorated_async(event, atick), JobCompleteDetails)


# An app's job table is a listener; dispatch takes its deadline and API settings as arguments.
table = job_table(
    JobRoute("space:configure", "my_app.space_configure:plugin"),
    JobRoute({"job": "workbook:export"}, "my_app.workbook_export:plugin", multipart=True),
)
assert_type(table, FlatfileListener)
assert_type(table.dispatch({}, timeout=30.0, settings=ApiSettings.resolve(token="sk_test")), list[Any])


def deadline_and_settings(event: FlatfileEvent) -> None:
    assert_type(event.deadline, float | None)
    assert_type(event.settings, ApiSettings | None)


# The handler types are what job_handler takes.
sync_handler: JobHandler = configure_space
async_handler: AsyncJobHandler = validate_data

# -- handlers mypy must refuse ------------------------------------------------------------------------------


def returns_a_number(event: FlatfileEvent, tick: Tick) -> int:
    return 1


def awaits_a_sync_tick(event: FlatfileEvent, tick: Tick) -> Awaitable[None]:
    raise NotImplementedError


async def async_with_a_sync_tick(event: FlatfileEvent, tick: Tick) -> None:
    tick(1)


def takes_one_argument(event: FlatfileEvent) -> None:
    pass


job_handler("space:configure", returns_a_number)  # type: ignore[arg-type]
job_handler("space:configure", awaits_a_sync_tick)  # type: ignore[arg-type]
job_handler("space:configure", async_with_a_sync_tick)  # type: ignore[arg-type]
job_handler("space:configure", takes_one_argument)  # type: ignore[arg-type]
listener.job("space:configure", retries=3)  # type: ignore[call-arg]
listener.job("space:configure")(returns_a_number)  # type: ignore[type-var]
multipart_job_handler("workbook:export", split=lambda event: 8, run_part=returns_a_number)  # type: ignore[arg-type]
long_job_handler("file:extract", validate_data)  # type: ignore[arg-type]
JobRoute("space:configure", configure_space)  # type: ignore[arg-type]
table.dispatch({}, settings="sk_test")  # type: ignore[arg-type]


def wrong_tick_use(tick: Tick) -> None:
    tick("50%")  # type: ignore[arg-type]
    tick(50, 7)  # type: ignore[arg-type]
