"""The fake Flatfile API's in-memory state (jobs, events, sheet records) and its job and event rules."""

from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from flatfile_jobs_testing._events import iso_ms, job_ready_event, split_job
from flatfile_jobs_testing._wire import (
    STATUSES,
    ApiError,
    JSONDict,
    check_fields,
    object_body,
    page_param,
    parse_time,
)

__all__ = ["Store"]

# The name a job created on first reference gets (the API call does not say which job it is).
MISSING_JOB = "unknown:job"
# The statuses a job ends in (the fake models Flatfile on its own: it shares no vocabulary with the client).
ENDED = frozenset({"complete", "failed", "canceled"})
_PATCHABLE = ("status", "progress", "info", "outcome", "metadata", "estimatedCompletionAt", "input")
_SOURCE_KEY = {"workbook": "workbookId", "sheet": "sheetId", "file": "fileId", "document": "documentId"}


class Store:
    """Jobs, events and records behind one lock, with the API's rules for changing them."""

    def __init__(self, seed: int | None, *, on_job_end: Callable[[Store, JSONDict], None]) -> None:
        """Start empty; ``on_job_end(store, job)`` runs (under the lock) when a job completes, fails or is canceled.

        The multi-part rules (``_parts.part_ended``) come in through ``on_job_end``, so this module does not
        import them: ``_parts`` builds on the store, not the other way round.
        """
        self._on_job_end = on_job_end
        self.lock = threading.RLock()
        self.jobs: dict[str, JSONDict] = {}
        self.events: dict[str, JSONDict] = {}
        self.records: dict[str, list[JSONDict]] = {}
        # Each job's event context (to build its parts' and parts-completed events), and the parents whose
        # job:parts-completed was emitted.
        self.contexts: dict[str, JSONDict] = {}
        self.parts_completed: set[str] = set()
        self.canceled_ack = "ok"
        self.create_missing_jobs = False
        self._outbox = threading.local()
        self._seed = seed
        self._rng = random.Random(seed)
        self._event_times: dict[str, datetime] = {}
        self._last_ms = 0

    def reset(self) -> None:
        """Drop jobs, events and records and restart ids from the seed (the clock keeps going)."""
        with self.lock:
            self.jobs.clear()
            self.events.clear()
            self.records.clear()
            self.contexts.clear()
            self.parts_completed.clear()
            self._event_times.clear()
            self._rng = random.Random(self._seed)

    def now(self) -> str:
        """Return a strictly increasing ISO time: wall clock, millisecond precision, ``Z``."""
        with self.lock:
            self._last_ms = max(time.time_ns() // 1_000_000, self._last_ms + 1)
            return iso_ms(datetime.fromtimestamp(self._last_ms / 1000, UTC))

    def emit(self, event: JSONDict) -> None:
        """Queue an event the API emits on its own (parts, parts-completed) for this request to publish."""
        outbox: list[JSONDict] = self._outbox.__dict__.setdefault("events", [])
        outbox.append(copy.deepcopy(event))

    def take_emitted(self) -> list[JSONDict]:
        """The events this thread's request emitted, in order (and forget them)."""
        events: list[JSONDict] = self._outbox.__dict__.pop("events", [])
        return events

    def _new_id(self, prefix: str, taken: dict[str, JSONDict]) -> str:
        while True:
            candidate = f"{prefix}{self._rng.getrandbits(32):08x}"
            if candidate not in taken:
                return candidate

    # -- set-up from tests ------------------------------------------------------------------------------

    def add_job(
        self,
        job: str,
        *,
        status: str,
        job_id: str | None,
        environment_id: str,
        source: str,
        input: JSONDict | None,
        info: str | None,
    ) -> JSONDict:
        """Store a new job and return a copy of it."""
        domain, operation = split_job(job)
        if status not in STATUSES:
            raise ValueError(f"unknown job status {status!r}")
        with self.lock:
            job_id = job_id if job_id is not None else self._new_id("us_jb_", self.jobs)
            stamp = self.now()
            self.jobs[job_id] = {
                "id": job_id,
                "type": domain,
                "operation": operation,
                "source": source,
                "status": status,
                "progress": 0,
                "info": info,
                "outcome": None,
                "input": copy.deepcopy(input) if input is not None else {},
                "environmentId": environment_id,
                "createdAt": stamp,
                "updatedAt": stamp,
                "startedAt": None,
                "finishedAt": None,
                "mode": "foreground",
                "managed": False,
            }
            return copy.deepcopy(self.jobs[job_id])

    def add_event(self, event: JSONDict) -> JSONDict:
        """Store a copy of an event (an id and a ``createdAt`` are added when missing) and return a copy."""
        stored = copy.deepcopy(event)
        with self.lock:
            if stored.get("id") is None:
                stored["id"] = self._new_id("us_evt_", self.events)
            if stored.get("createdAt") is None:
                stored["createdAt"] = self.now()
            moment = parse_time(stored["createdAt"])
            self._last_ms = max(self._last_ms, int(moment.timestamp() * 1000))
            self.events[stored["id"]] = stored
            self._event_times[stored["id"]] = moment
            return copy.deepcopy(stored)

    def create_job_event(
        self,
        job: str,
        *,
        environment_id: str,
        job_id: str | None,
        event_id: str | None,
        status: str,
        input: JSONDict | None,
        context: JSONDict | None,
    ) -> JSONDict:
        """Store a job and a ``job:ready`` event for it; return a copy of the event."""
        domain, _ = split_job(job)
        with self.lock:
            job_id = job_id if job_id is not None else self._new_id("us_jb_", self.jobs)
            event_id = event_id if event_id is not None else self._new_id("us_evt_", self.events)
            event = job_ready_event(
                job, job_id=job_id, event_id=event_id, environment_id=environment_id, input=input
            )
            event["createdAt"] = None
            event["context"].update(context or {})
            event["context"]["jobId"] = job_id
            ctx = event["context"]
            source = ctx.get(_SOURCE_KEY.get(domain, "spaceId")) or ctx.get("spaceId", "")
            self.add_job(
                job,
                status=status,
                job_id=job_id,
                environment_id=environment_id,
                source=source,
                input=input,
                info=None,
            )
            self.contexts[job_id] = copy.deepcopy(ctx)
            return self.add_event(event)

    def cancel_job(self, job_id: str) -> JSONDict:
        """Cancel a job as a user would in Flatfile (``KeyError`` when unknown); return a copy."""
        with self.lock:
            job = self.jobs[job_id]
            job["status"] = "canceled"
            job["updatedAt"] = job["finishedAt"] = self.now()
            self._on_job_end(self, job)
            return copy.deepcopy(job)

    # -- the API ----------------------------------------------------------------------------------------

    def _job(self, job_id: str) -> JSONDict:
        job = self.jobs.get(job_id)
        if job is None and self.create_missing_jobs:  # a stand-alone fake: jobs exist once referred to
            self.add_job(
                MISSING_JOB,
                status="ready",
                job_id=job_id,
                environment_id="",
                source="",
                input=None,
                info=None,
            )
            job = self.jobs[job_id]
        if job is None:
            raise ApiError(404, f"Job {job_id} not found")
        return job

    def _canceled(self, job: JSONDict) -> bool:
        if job["status"] != "canceled":
            return False
        if self.canceled_ack == "error":
            raise ApiError(409, "Job has been canceled")
        return True

    def get_job(self, job_id: str) -> JSONDict:
        """``GET /jobs/{jobId}``."""
        with self.lock:
            return copy.deepcopy(self._job(job_id))

    def ack_job(self, job_id: str, body: object) -> JSONDict:
        """``POST /jobs/{jobId}/ack``: a non-terminal job becomes ``executing``."""
        fields = object_body(body)
        check_fields(fields)
        with self.lock:
            job = self._job(job_id)
            if self._canceled(job):
                return copy.deepcopy(job)
            if job["status"] in ENDED:
                raise ApiError(400, "Job is not executing")
            now = self.now()
            job["status"] = "executing"
            job["startedAt"] = job["startedAt"] or now
            job["updatedAt"] = now
            for key in ("progress", "info", "estimatedCompletionAt"):
                if key in fields:
                    job[key] = fields[key]
            return copy.deepcopy(job)

    def finish_job(self, job_id: str, status: str, body: object) -> JSONDict:
        """``POST /jobs/{jobId}/complete`` (status ``complete``, progress 100) or ``/fail`` (status ``failed``)."""
        fields = object_body(body)
        check_fields(fields)
        with self.lock:
            job = self._job(job_id)
            if self._canceled(job):
                return copy.deepcopy(job)
            if job["status"] in ENDED:
                raise ApiError(400, f"Job is already {job['status']}")
            job["status"] = status
            if (
                status == "complete"
            ):  # the API's complete job reads progress 100 (flatfile-node's Job example)
                job["progress"] = 100
            job["outcome"] = fields.get("outcome", job["outcome"])
            job["info"] = fields.get("info", job["info"])
            job["updatedAt"] = job["finishedAt"] = self.now()
            self._on_job_end(self, job)
            return copy.deepcopy(job)

    def cancel_job_api(self, job_id: str, body: object) -> JSONDict:
        """``POST /jobs/{jobId}/cancel``: a canceled job stays as it is; a finished one is an error."""
        fields = object_body(body)
        check_fields(fields)
        with self.lock:
            job = self._job(job_id)
            if job["status"] in ("complete", "failed"):
                raise ApiError(400, f"Job is already {job['status']}")
            if job["status"] != "canceled":
                job["status"] = "canceled"
                job["info"] = fields.get("info", job["info"])
                job["updatedAt"] = job["finishedAt"] = self.now()
                self._on_job_end(self, job)
            return copy.deepcopy(job)

    def patch_job(self, job_id: str, body: object) -> JSONDict:
        """``PATCH /jobs/{jobId}``: sets the known fields given, ignores others."""
        fields = object_body(body)
        check_fields(fields)
        with self.lock:
            job = self._job(job_id)
            for key in _PATCHABLE:
                if key in fields:
                    job[key] = copy.deepcopy(fields[key])
            job["updatedAt"] = self.now()
            return copy.deepcopy(job)

    def get_event(self, event_id: str) -> JSONDict:
        """``GET /events/{eventId}``."""
        with self.lock:
            event = self.events.get(event_id)
            if event is None:
                raise ApiError(404, f"Event {event_id} not found")
            return copy.deepcopy(event)

    def ack_event(self, event_id: str) -> JSONDict:
        """``POST /events/{eventId}/ack``: marks the event acknowledged (once)."""
        with self.lock:
            event = self.events.get(event_id)
            if event is None:
                raise ApiError(404, f"Event {event_id} not found")
            if event.get("acknowledgedAt") is None:
                event["acknowledgedAt"] = self.now()
            return {"success": True}

    def list_events(self, query: dict[str, str]) -> list[JSONDict]:
        """``GET /events``: filtered, ``since`` inclusive, oldest first, paginated."""
        since: datetime | None = None
        if query.get("since"):
            try:
                since = parse_time(query["since"])
            except ValueError:
                raise ApiError(400, "since must be an ISO 8601 time") from None
        size, number = page_param(query, "pageSize", 100), page_param(query, "pageNumber", 1)
        acknowledged = query.get("includeAcknowledged", "").lower() == "true"
        with self.lock:
            chosen = [
                event
                for event in self.events.values()
                if query.get("environmentId") in (None, "", event.get("context", {}).get("environmentId"))
                and query.get("topic") in (None, "", event.get("topic"))
                and (since is None or self._event_times[event["id"]] >= since)
                and (acknowledged or event.get("acknowledgedAt") is None)
            ]
            chosen.sort(key=lambda event: (self._event_times[event["id"]], event["id"]))
            return copy.deepcopy(chosen[(number - 1) * size : number * size])

    def sheet_records(self, sheet_id: str) -> JSONDict:
        """``GET /sheets/{sheetId}/records``."""
        with self.lock:
            records = copy.deepcopy(self.records.get(sheet_id, []))
        return {
            "success": True,
            "records": records,
            "counts": {"total": len(records), "valid": len(records), "error": 0},
        }
