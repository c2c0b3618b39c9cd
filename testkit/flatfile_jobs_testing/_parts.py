"""Multi-part jobs in the fake Flatfile API: ``POST /jobs/{id}/split``, ``GET /jobs?parentId=`` and the events.

Splitting creates one part job per part (``parentId``, ``part``, ``partData``, ``partExecution``) and emits a
``job:ready`` for each (``payload.isPart: true``; in order, one after another, when ``runInParallel`` is
false). When the last part ends (complete, failed or canceled) the parent's ``job:parts-completed`` is
emitted once, its payload carrying the counts (``parts: {total, completed, failed, canceled}``). Canceling a
parent does not cancel its parts (whether the real API cascades is not documented).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flatfile_jobs_testing._events import job_ready_event
from flatfile_jobs_testing._store import ENDED, Store
from flatfile_jobs_testing._wire import ApiError, JSONDict, object_body, page_param

__all__ = ["MAX_PARTS", "Page", "list_jobs", "part_ended", "split"]

MAX_PARTS = 10_000


@dataclass(frozen=True)
class Page:
    """A list answer with the API's ``pagination`` beside ``data``."""

    data: list[JSONDict]
    current_page: int
    page_count: int
    total_count: int

    def body(self) -> JSONDict:
        """The response body."""
        pagination = {
            "currentPage": self.current_page,
            "pageCount": self.page_count,
            "totalCount": self.total_count,
        }
        return {"data": self.data, "pagination": pagination}


def _parts_of(body: JSONDict) -> list[Any]:
    parts = body.get("parts")
    if isinstance(parts, int) and not isinstance(parts, bool):
        if not 1 <= parts <= MAX_PARTS:
            raise ApiError(400, f"parts must be between 1 and {MAX_PARTS}")
        return [{"part": index, "total": parts} for index in range(parts)]
    if isinstance(parts, list) and parts:
        if len(parts) > MAX_PARTS:
            raise ApiError(400, f"at most {MAX_PARTS} parts")
        if not all(isinstance(item, dict) for item in parts):
            raise ApiError(400, "each element of parts must be an object")
        return copy.deepcopy(parts)
    raise ApiError(400, "parts must be a positive integer or a non-empty list of objects")


def split(store: Store, job_id: str, body: object) -> JSONDict:
    """``POST /jobs/{jobId}/split``: create the parts, emit their ``job:ready``; return the parent."""
    fields = object_body(body)
    parallel = fields.get("runInParallel", True)
    if not isinstance(parallel, bool):
        raise ApiError(400, "runInParallel must be a boolean")
    datas = _parts_of(fields)
    with store.lock:
        parent = store._job(job_id)
        if parent.get("parentId"):
            raise ApiError(400, "A part cannot be split")
        if parent["status"] in ENDED:
            raise ApiError(400, f"Job is already {parent['status']}")
        if any(job.get("parentId") == job_id for job in store.jobs.values()):
            raise ApiError(400, "Job is already split")
        job_name = f"{parent['type']}:{parent['operation']}"
        execution = "parallel" if parallel else "sequential"
        for index, data in enumerate(datas):
            part = store.add_job(
                job_name,
                status="ready" if parallel or index == 0 else "scheduled",
                job_id=None,
                environment_id=parent["environmentId"],
                source=parent["source"],
                input=parent["input"],
                info=None,
            )
            store.jobs[part["id"]].update(parentId=job_id, part=index, partData=data, partExecution=execution)
            if parallel or index == 0:
                _emit_ready(store, store.jobs[part["id"]])
        parent["updatedAt"] = store.now()
        return copy.deepcopy(parent)


def _context(store: Store, job: JSONDict, job_id: str) -> JSONDict:
    context = copy.deepcopy(store.contexts.get(job_id) or {})
    context.setdefault("environmentId", job["environmentId"])
    context["jobId"] = job["id"]
    return context


def _emit_ready(store: Store, part: JSONDict) -> None:
    event = job_ready_event(
        f"{part['type']}:{part['operation']}", job_id=part["id"], is_part=True, input=part["input"]
    )
    event["id"], event["createdAt"] = None, None
    event["context"] = _context(store, part, str(part["parentId"]))
    store.contexts[part["id"]] = copy.deepcopy(event["context"])
    store.emit(store.add_event(event))


def part_ended(store: Store, part: JSONDict) -> None:
    """Called (under the lock) when a job ended: start the next sequential part, or finish the round."""
    parent_id = part.get("parentId")
    if not parent_id or parent_id in store.parts_completed:
        return
    siblings = sorted(
        (job for job in store.jobs.values() if job.get("parentId") == parent_id), key=lambda j: j["part"]
    )
    waiting = [job for job in siblings if job["status"] == "scheduled"]
    if part.get("partExecution") == "sequential" and waiting and part["status"] != "canceled":
        waiting[0]["status"] = "ready"
        _emit_ready(store, waiting[0])
        return
    if any(job["status"] not in ENDED for job in siblings):
        return
    store.parts_completed.add(parent_id)
    parent = store.jobs.get(parent_id)
    if parent is None:
        return
    counts = {status: sum(job["status"] == status for job in siblings) for status in ENDED}
    event = job_ready_event(f"{parent['type']}:{parent['operation']}", job_id=parent_id)
    event.update(id=None, createdAt=None, topic="job:parts-completed")
    event["context"] = _context(store, parent, parent_id)
    event["payload"]["status"] = parent["status"]
    event["payload"]["parts"] = {
        "total": len(siblings),
        "completed": counts["complete"],
        "failed": counts["failed"],
        "canceled": counts["canceled"],
    }
    store.emit(store.add_event(event))


def list_jobs(store: Store, query: Mapping[str, str]) -> Page:
    """``GET /jobs``: filtered by ``parentId`` / ``environmentId``, parts in order, paginated (20 a page)."""
    size, number = page_param(dict(query), "pageSize", 20), page_param(dict(query), "pageNumber", 1)
    with store.lock:
        chosen = [
            job
            for job in store.jobs.values()
            if query.get("parentId") in (None, "", job.get("parentId"))
            and query.get("environmentId") in (None, "", job.get("environmentId"))
        ]
        chosen.sort(key=lambda job: (job.get("part", -1), job["createdAt"], job["id"]))
        total = len(chosen)
        page = copy.deepcopy(chosen[(number - 1) * size : number * size])
    return Page(page, number, max(1, -(-total // size)), total)
