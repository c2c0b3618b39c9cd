"""What a multi-part job's roles see: a part (:class:`JobPart`), every part's result (:class:`PartResults`).

Also the split's request body and reading a parent's parts with ``GET /jobs?parentId=`` (every page).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._events import FlatfileEvent

if TYPE_CHECKING:
    from ._api import FlatfileClient

__all__ = [
    "MAX_PARTS",
    "JobPart",
    "PartResult",
    "PartResults",
    "has_parts",
    "read_parts",
    "split_body",
]

MAX_PARTS = 10_000
_PAGE_SIZE = 100
_MAX_PAGES = 1_000
_NAMED_FAILURES = 5


@dataclass(frozen=True, slots=True)
class JobPart:
    """One part of a multi-part job, as ``run_part`` receives it.

    Attributes:
        event: The part's own ``job:ready`` event (``event.api`` is the API client).
        job_id: The part's job id (``us_jb_…``); it has its own lifecycle.
        parent_id: The parent job's id.
        data: The part's ``partData``: ``{"part": i, "total": n}`` for a count split, else the list element.
        index: The part's position (``part``, 0-based), when Flatfile gives it.
    """

    event: FlatfileEvent
    job_id: str
    parent_id: str | None
    data: Mapping[str, Any]
    index: int | None


@dataclass(frozen=True, slots=True)
class PartResult:
    """How one part ended, as read from ``GET /jobs?parentId=``.

    Attributes:
        job_id: The part's job id.
        index: Its position (``part``), when known.
        status: Its Flatfile status (``complete``, ``failed``, ``canceled``…).
        data: Its ``partData``.
        message: Its outcome's message, else its ``info``.
    """

    job_id: str
    index: int | None
    status: str
    data: Mapping[str, Any]
    message: str | None

    @classmethod
    def of(cls, job: Mapping[str, Any]) -> PartResult:
        """Read a part from a job as the API returns it."""
        outcome = job.get("outcome")
        message = outcome.get("message") if isinstance(outcome, Mapping) else None
        message = message if isinstance(message, str) and message else job.get("info")
        index = job.get("part")
        data = job.get("partData")
        return cls(
            job_id=str(job.get("id") or ""),
            index=index if isinstance(index, int) and not isinstance(index, bool) else None,
            status=str(job.get("status") or ""),
            data=data if isinstance(data, Mapping) else {},
            message=message if isinstance(message, str) else None,
        )

    @property
    def label(self) -> str:
        """``part 3 (us_jb_…)``, for messages."""
        return f"part {self.index} ({self.job_id})" if self.index is not None else f"part {self.job_id}"


@dataclass(frozen=True, slots=True)
class PartResults:
    """Every part of a parent job, in part order, as ``finish`` receives them.

    Attributes:
        parent_id: The parent job's id.
        parts: The parts.
    """

    parent_id: str
    parts: tuple[PartResult, ...]

    @property
    def total(self) -> int:
        """How many parts there are."""
        return len(self.parts)

    @property
    def completed(self) -> tuple[PartResult, ...]:
        """The parts that completed."""
        return tuple(part for part in self.parts if part.status == "complete")

    @property
    def unsuccessful(self) -> tuple[PartResult, ...]:
        """The parts that did not complete (failed, canceled, or not ended)."""
        return tuple(part for part in self.parts if part.status != "complete")

    @property
    def ok(self) -> bool:
        """Whether there are parts and every one completed."""
        return bool(self.parts) and not self.unsuccessful

    @property
    def summary(self) -> str:
        """``"8 parts complete"``, or what went wrong, naming the first few parts that did not complete."""
        if not self.parts:
            return f"No parts found for job {self.parent_id}"
        bad = self.unsuccessful
        if not bad:
            return f"{self.total} part{'s' if self.total != 1 else ''} complete"
        named = [
            f"{part.label} {part.status}" + (f": {part.message}" if part.message else "")
            for part in bad[:_NAMED_FAILURES]
        ]
        more = f"; and {len(bad) - _NAMED_FAILURES} more" if len(bad) > _NAMED_FAILURES else ""
        return f"{len(bad)} of {self.total} parts did not complete: " + "; ".join(named) + more


async def read_parts(client: FlatfileClient, parent_id: str) -> PartResults:
    """Every part of ``parent_id`` from ``GET /jobs?parentId=`` (all pages), in part order.

    Stops at an empty page, at ``pagination.pageCount``, or (without pagination) at a short page; jobs whose
    ``parentId`` is not the parent's are left out, so an API that ignored the filter cannot mix jobs in.

    Raises:
        FlatfileAPIError: A page could not be read.
    """
    found: dict[str, Mapping[str, Any]] = {}
    for number in range(1, _MAX_PAGES + 1):
        params = {"parentId": parent_id, "pageSize": str(_PAGE_SIZE), "pageNumber": str(number)}
        page, pagination = await client.list_jobs(params)
        fresh = [job for job in page if job.get("parentId") == parent_id and str(job.get("id")) not in found]
        for job in fresh:
            found[str(job.get("id"))] = job
        pages = pagination.get("pageCount")
        if not page or not fresh:
            break
        if isinstance(pages, int) and not isinstance(pages, bool):
            if number >= pages:
                break
        elif len(page) < _PAGE_SIZE:
            break
    parts = sorted((PartResult.of(job) for job in found.values()), key=_part_order)
    return PartResults(parent_id, tuple(parts))


def _part_order(part: PartResult) -> tuple[int, str]:
    return (part.index if part.index is not None else MAX_PARTS + 1, part.job_id)


def split_body(value: object, run_in_parallel: bool | None) -> dict[str, Any]:
    """The ``/split`` body for what ``split`` returned.

    Raises:
        ValueError: ``value`` is not a part count (1 to 10,000) or a non-empty list of part inputs (objects).
    """
    parts: object
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_PARTS:
            raise ValueError(f"split() returned {value}; a part count is 1 to {MAX_PARTS}")
        parts = value
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        if not value or len(value) > MAX_PARTS:
            raise ValueError(f"split() returned {len(value)} part inputs; give 1 to {MAX_PARTS}")
        if not all(isinstance(item, Mapping) for item in value):
            raise ValueError("split() returned a list whose elements are not all objects (dicts)")
        parts = [dict(item) for item in value]
    else:
        raise ValueError(f"split() returned {type(value).__name__}; return a part count or a list of dicts")
    body: dict[str, Any] = {"parts": parts}
    if run_in_parallel is not None:
        body["runInParallel"] = run_in_parallel
    return body


async def has_parts(client: FlatfileClient, parent_id: str) -> bool:
    """Whether ``parent_id`` has been split (one ``GET /jobs?parentId=`` of one job)."""
    page, _ = await client.list_jobs({"parentId": parent_id, "pageSize": "1", "pageNumber": "1"})
    return any(job.get("parentId") == parent_id for job in page)
