"""``FakeFlatfile``: a real HTTP stand-in for the Flatfile API on loopback, for tests and local runs."""

from __future__ import annotations

import contextlib
import copy
import hmac
import json
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from flatfile_jobs_testing._faults import Fault, FaultBook, RecordedRequest, RequestLog
from flatfile_jobs_testing._parts import part_ended
from flatfile_jobs_testing._routes import errors, route
from flatfile_jobs_testing._server import FakeHTTPServer, HttpReply, HttpRequest
from flatfile_jobs_testing._store import Store
from flatfile_jobs_testing._wire import INVALID_JSON

__all__ = ["FakeFlatfile"]

CanceledAck = Literal["ok", "error"]
EventSubscriber = Callable[[dict[str, Any]], None]


class FakeFlatfile:
    """The Flatfile jobs, events and records API, in memory, served over HTTP on ``127.0.0.1``.

    It serves ``/v1/jobs…``, ``/v1/events…`` and ``/v1/sheets/{sheetId}/records`` with the real API's
    wrapping (``{"data": …}``, errors as ``{"errors":[{"message": …}]}``), checks the bearer token,
    keeps connections alive, records every request and can inject faults. Ids come from a
    ``random.Random(seed)``, so a seed gives the same ids run after run. The server starts on
    construction, in a daemon thread, on a free port; ``close()`` (or leaving the ``with``) stops it.

    Example:
        >>> with FakeFlatfile() as fake:  # doctest: +SKIP
        ...     event = fake.create_job_event("space:configure")
        ...     job_id = event["context"]["jobId"]
        ...     httpx.post(f"{fake.url}/v1/jobs/{job_id}/ack", json={"progress": 0},
        ...                headers={"Authorization": f"Bearer {fake.token}"})
        ...     assert fake.calls(job_id) == [(f"POST /jobs/{job_id}/ack", {"progress": 0})]

    Attributes:
        url: The API root, e.g. ``"http://127.0.0.1:PORT"`` (what ``FLATFILE_API_URL`` would hold);
            the API itself is under ``url + "/v1"``.
        token: The bearer token every request must carry; anything else gets 401.
    """

    def __init__(
        self,
        *,
        token: str = "sk_test_fake",  # noqa: S107 - the fake's own test token, not a secret
        seed: int | None = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        create_missing_jobs: bool = False,
    ) -> None:
        """Start the server.

        Args:
            token: The bearer token to expect.
            seed: Seeds the ids and the fault draws; ``None`` for a random seed.
            host: The address to listen on (loopback; ``0.0.0.0`` only for ``flatfile-jobs fake-api``).
            port: The port; ``0`` picks a free one.
            create_missing_jobs: A request on an unknown job creates it (``ready``, named ``unknown:job``)
                instead of answering 404: the stand-alone fake, whose jobs nobody adds.
        """
        self.token = token
        self._store = Store(seed, on_job_end=part_ended)
        self._store.create_missing_jobs = create_missing_jobs
        self._faults = FaultBook(seed)
        self._log = RequestLog()
        self._subscribers: list[EventSubscriber] = []
        self._closed = False
        self._server = FakeHTTPServer(self.respond, host, port)
        self.url = f"http://{self._server.server_name}:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-flatfile",
            daemon=True,
        )
        self._thread.start()

    def __enter__(self) -> FakeFlatfile:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server and end its open connections (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join()

    # -- state ------------------------------------------------------------------------------------------

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        """The live jobs by id (the server changes these dicts; read them, or use ``job()`` for a copy)."""
        return self._store.jobs

    def job(self, job_id: str) -> dict[str, Any]:
        """Return a copy of a job's current state.

        Raises:
            KeyError: When there is no such job.
        """
        with self._store.lock:
            return copy.deepcopy(self._store.jobs[job_id])

    @property
    def events(self) -> dict[str, dict[str, Any]]:
        """The live events by id (acknowledged ones carry ``acknowledgedAt``)."""
        return self._store.events

    @property
    def canceled_ack(self) -> CanceledAck:
        """What ack, complete and fail answer on a canceled job.

        ``"ok"``: 200 with the job unchanged (still ``canceled``); ``"error"``: 409
        ``{"errors":[{"message":"Job has been canceled"}]}``. The real API's answer is not documented.
        """
        return "error" if self._store.canceled_ack == "error" else "ok"

    @canceled_ack.setter
    def canceled_ack(self, value: CanceledAck) -> None:
        if value not in ("ok", "error"):
            raise ValueError(f"canceled_ack is 'ok' or 'error', not {value!r}")
        self._store.canceled_ack = value

    def add_job(
        self,
        job: str = "space:configure",
        *,
        status: str = "ready",
        job_id: str | None = None,
        environment_id: str = "us_env_test",
        source: str = "us_sp_test",
        input: dict[str, Any] | None = None,
        info: str | None = None,
    ) -> dict[str, Any]:
        """Add a job (no event).

        Args:
            job: The job name, ``"<domain>:<operation>"``.
            status: Its status, one of Flatfile's job statuses.
            job_id: Its id; a seeded ``us_jb_<8 hex>`` when not given.
            environment_id: Its ``environmentId``.
            source: Its ``source`` (the id of the space, workbook, sheet… it runs on).
            input: Its ``input``; ``{}`` when not given.
            info: Its ``info``.

        Returns:
            A copy of the job as stored.

        Raises:
            ValueError: On a malformed job name or an unknown status.
        """
        return self._store.add_job(
            job,
            status=status,
            job_id=job_id,
            environment_id=environment_id,
            source=source,
            input=input,
            info=info,
        )

    def add_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Store a copy of any event; a seeded ``id`` and the next ``createdAt`` are filled in when missing.

        Returns:
            A copy of the event as stored.

        Raises:
            ValueError: When ``createdAt`` is not an ISO time.
        """
        return self._store.add_event(event)

    def create_job_event(
        self,
        job: str = "space:configure",
        *,
        environment_id: str = "us_env_test",
        job_id: str | None = None,
        event_id: str | None = None,
        status: str = "ready",
        input: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add a job and the ``job:ready`` event announcing it, as Flatfile does when a job is queued.

        Args:
            job: The job name, ``"<domain>:<operation>"``.
            environment_id: The job's and the event's environment.
            job_id: The job's id; a seeded ``us_jb_<8 hex>`` when not given.
            event_id: The event's id; a seeded ``us_evt_<8 hex>`` when not given.
            status: The job's status (the event's ``payload.status`` stays ``"ready"``).
            input: The job's ``input`` and the event's ``payload.input``.
            context: Keys merged into the event's ``context`` (e.g. ``workbookId``); ``jobId`` is kept.

        Returns:
            A copy of the stored event (the shape of ``job_ready_event``).
        """
        return self._store.create_job_event(
            job,
            environment_id=environment_id,
            job_id=job_id,
            event_id=event_id,
            status=status,
            input=input,
            context=context,
        )

    def set_records(self, sheet_id: str, records: list[dict[str, Any]]) -> None:
        """Set what ``GET /sheets/{sheet_id}/records`` returns (a copy of ``records``)."""
        with self._store.lock:
            self._store.records[sheet_id] = copy.deepcopy(records)

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Cancel a job as a user would in Flatfile.

        Returns:
            A copy of the canceled job.

        Raises:
            KeyError: When there is no such job.
        """
        job = self._store.cancel_job(job_id)
        self._publish(self._store.take_emitted())
        return job

    def parts(self, parent_id: str) -> list[dict[str, Any]]:
        """Copies of a split job's parts, in part order."""
        with self._store.lock:
            found = [job for job in self._store.jobs.values() if job.get("parentId") == parent_id]
            return copy.deepcopy(sorted(found, key=lambda job: job["part"]))

    # -- events the API emits on its own ----------------------------------------------------------------

    def subscribe(self, subscriber: EventSubscriber) -> None:
        """Call ``subscriber(event)`` for each event the API emits on its own, as a forwarder agent would.

        Those are the parts' ``job:ready`` (on ``POST /jobs/{id}/split``, or when a sequential part's
        predecessor ends) and the parent's ``job:parts-completed`` (when its last part ends). The call
        happens in the thread of the request that caused the event, before that request is answered, so
        a caller that got its answer knows the events were handed over. A subscriber that raises is
        not retried; the event stays readable with ``GET /events``.
        """
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: EventSubscriber) -> None:
        """Stop calling ``subscriber`` (no error when it was not subscribed)."""
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def _publish(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            for subscriber in list(self._subscribers):
                # Documented: a failing subscriber loses nothing stored (GET /events still has the event).
                with contextlib.suppress(Exception):
                    subscriber(copy.deepcopy(event))

    def reset(self) -> None:
        """Drop jobs, events, records, recorded requests, faults and subscribers; ids restart from the seed."""
        self._subscribers.clear()
        self._store.reset()
        self._faults.clear()
        self._log.clear()

    # -- faults and the record of requests -------------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        """Inject a fault; it applies after those already added. Returns ``fault`` (its ``hits`` count)."""
        return self._faults.add(fault)

    def clear_faults(self) -> None:
        """Remove every fault (the fault draws restart from the seed)."""
        self._faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every answered request so far, in order of arrival (a new list on each read)."""
        return self._log.requests()

    def calls(self, job_id: str | None = None, *, include_faults: bool = False) -> list[tuple[str, object]]:
        """The requests as ``("POST /jobs/us_jb_1/ack", parsed JSON body or None)`` pairs, in order.

        Args:
            job_id: Keep only requests on ``/jobs/{job_id}`` and below.
            include_faults: Keep requests whose answer an injected fault replaced (left out by default).

        Returns:
            A new list of ``(f"{method} {path}", body)`` tuples; paths are without ``/v1``.
        """
        prefix = f"/jobs/{job_id}"
        return [
            (f"{request.method} {request.path}", request.body)
            for request in self.requests
            if (include_faults or not request.fault)
            and (job_id is None or request.path == prefix or request.path.startswith(prefix + "/"))
        ]

    # -- the HTTP front's one entry ---------------------------------------------------------------------

    def respond(self, request: HttpRequest) -> HttpReply:
        """Answer one HTTP request as the API would: faults applied, the request recorded before the reply.

        The fake's HTTP server calls this for every request it reads; events the request makes the API emit
        reach subscribers before the reply is returned.
        """
        split = urlsplit(request.target)
        path = split.path[3:] if split.path == "/v1" or split.path.startswith("/v1/") else split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        body: object = None
        if request.body.strip():
            try:
                body = json.loads(request.body)
            except ValueError:
                body = INVALID_JSON
        slot = self._log.reserve()
        fault = self._faults.pick(request.method, path)
        status, payload = 0, None
        if fault is not None and not fault.after:
            time.sleep(fault.delay)
        if fault is None or fault.after or not fault.replaces_response:
            status, payload = self._answer(request.method, path, query, request.headers, body)
            self._publish(self._store.take_emitted())
        if fault is not None and fault.after:
            time.sleep(fault.delay)
        faulted = fault is not None and fault.replaces_response
        if fault is not None and faulted:
            status = 0 if fault.reset else (fault.status or 0)
        recorded = RecordedRequest(
            method=request.method,
            path=path,
            query=query,
            headers=request.headers,
            body=None if body is INVALID_JSON else body,
            raw=request.body,
            status=status,
            fault=faulted,
            at=request.arrived,
            target=request.target,
        )
        self._log.fill(slot, recorded)  # before answering: a client that got its answer sees the record
        if fault is not None and faulted:
            return _fault_reply(fault)
        return HttpReply(status, json.dumps(payload).encode())

    def _answer(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: object
    ) -> tuple[int, object]:
        expected = f"Bearer {self.token}".encode()
        if not hmac.compare_digest(headers.get("authorization", "").encode(), expected):
            return 401, errors("Unauthorized")
        try:
            return route(self._store, method, path, query, body)
        except Exception as exc:  # a bug in the fake: answer it rather than hang the client
            return 500, errors(f"Fake Flatfile error: {exc!r}")


def _fault_reply(fault: Fault) -> HttpReply:
    if fault.reset or fault.status is None:
        return HttpReply(0, reset=True)
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
    body = fault.body if fault.body is not None else json.dumps(errors("Injected fault")).encode()
    return HttpReply(fault.status, body, headers)
