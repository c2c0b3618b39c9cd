"""The Flatfile jobs/events client: httpx (async), explicit timeouts, retries with stamina.

Every call is retried on connection errors, timeouts, 408, 429 and 5xx with full-jitter exponential
backoff, honouring ``Retry-After``, within a total time budget; other 4xx fail at once. One client per
event loop is reused across warm invocations (see :func:`client_for`).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import stamina

from ._config import ApiSettings
from ._errors import FlatfileAPIError
from ._log import get_logger, log_context

if TYPE_CHECKING:
    import httpx

__all__ = ["FlatfileClient", "client_for", "close_clients"]

_RETRYABLE_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))
_BACKOFF_BASE = 0.25
_BACKOFF_CAP = 8.0
KEEPALIVE_EXPIRY = 300.0


class _RetryableError(FlatfileAPIError):
    """An attempt failed in a way worth retrying; carries what the backoff needs."""

    def __init__(self, error: FlatfileAPIError, *, attempt: int, retry_after: float | None) -> None:
        super().__init__(str(error), status=error.status, method=error.method, path=error.path)
        self.error = error
        self.attempt = attempt
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _error_message(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        message = str(errors[0].get("message") or "")
    except (ValueError, AttributeError, IndexError, TypeError):
        message = ""
    return message or f"Flatfile API answered {response.status_code}"


class FlatfileClient:
    """Async client for the Flatfile endpoints the lifecycle uses.

    Args:
        settings: Base URL, token, timeout and retry budget.
        http: An ``httpx.AsyncClient`` to use (tests, custom transports); one is built when omitted.
        debug: Log every call (method, path, status, ms) at INFO instead of DEBUG.
    """

    def __init__(
        self, settings: ApiSettings, *, http: httpx.AsyncClient | None = None, debug: bool = False
    ) -> None:
        self.settings = settings
        self.debug = debug
        self._http = http or _new_http(settings)
        self._log = get_logger()

    def debugging(self, debug: bool) -> FlatfileClient:
        """This client (same connection pool) with call logging at INFO (``True``) or DEBUG (``False``)."""
        if debug == self.debug:
            return self
        return FlatfileClient(self.settings, http=self._http, debug=debug)

    async def aclose(self) -> None:
        """Close the underlying connection pool."""
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        params: Mapping[str, str] | None = None,
        job_id: str | None = None,
        budget: float | None = None,
        whole: bool = False,
    ) -> Any:  # noqa: ANN401 - the API's JSON
        """Call the API and return the response's ``data``; retried as described in the module docstring.

        ``whole=True`` returns the whole JSON body instead (a list's ``pagination`` sits beside ``data``).

        Raises:
            FlatfileAPIError: The call failed for good (``status`` is ``None`` when no response came).
        """
        started = time.monotonic()
        budget = self.settings.retry_budget if budget is None else budget

        def backoff(exc: Exception) -> bool | float:
            if not isinstance(exc, _RetryableError):
                return False
            delay = exc.retry_after
            if delay is None:
                delay = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (exc.attempt - 1)))
            remaining = budget - (time.monotonic() - started)
            return delay if delay < remaining else False

        attempt = 0
        try:
            async for retrying in stamina.retry_context(on=backoff, attempts=None, timeout=budget):
                with retrying:
                    attempt += 1
                    body = await self._attempt(method, path, json, params, job_id, attempt)
                    return body if whole or not isinstance(body, Mapping) else body.get("data")
        except _RetryableError as exc:
            raise exc.error from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self,
        method: str,
        path: str,
        json: object,
        params: Mapping[str, str] | None,
        job_id: str | None,
        attempt: int,
    ) -> Any:  # noqa: ANN401 - the API's JSON
        import httpx

        started = time.perf_counter()
        try:
            response = await self._http.request(method, path, json=json, params=params)
        except httpx.TransportError as exc:
            error = FlatfileAPIError(
                f"{method} {path} failed: {type(exc).__name__}",
                status=None,
                method=method,
                path=path,
                job_id=job_id,
            )
            self._log_call(method, path, None, started, attempt, job_id)
            raise _RetryableError(error, attempt=attempt, retry_after=None) from exc
        self._log_call(method, path, response.status_code, started, attempt, job_id)
        if response.is_success:
            return response.json()
        error = FlatfileAPIError(
            _error_message(response), status=response.status_code, method=method, path=path, job_id=job_id
        )
        if response.status_code in _RETRYABLE_STATUS:
            retry_after = _retry_after(response.headers.get("retry-after"))
            raise _RetryableError(error, attempt=attempt, retry_after=retry_after)
        raise error

    def _log_call(
        self, method: str, path: str, status: int | None, started: float, attempt: int, job_id: str | None
    ) -> None:
        ms = round((time.perf_counter() - started) * 1000, 2)
        extra = {
            **log_context.get(),
            "method": method,
            "path": path,
            "status": status,
            "ms": ms,
            "attempt": attempt,
            "job_id": job_id,
        }
        if self.debug:
            self._log.info("Flatfile API call", extra=extra)
        else:
            self._log.debug("Flatfile API call", extra=extra)

    async def get_job(self, job_id: str) -> dict[str, Any]:
        """``GET /jobs/{jobId}``."""
        return dict(await self.request("GET", f"/jobs/{job_id}", job_id=job_id))

    async def ack_job(self, job_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /jobs/{jobId}/ack`` (acknowledge or report progress)."""
        return dict(await self.request("POST", f"/jobs/{job_id}/ack", json=body, job_id=job_id))

    async def complete_job(self, job_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /jobs/{jobId}/complete``."""
        return dict(await self.request("POST", f"/jobs/{job_id}/complete", json=body, job_id=job_id))

    async def fail_job(
        self, job_id: str, body: Mapping[str, Any], *, budget: float | None = None
    ) -> dict[str, Any]:
        """``POST /jobs/{jobId}/fail``."""
        return dict(
            await self.request("POST", f"/jobs/{job_id}/fail", json=body, job_id=job_id, budget=budget)
        )

    async def split_job(
        self, job_id: str, body: Mapping[str, Any], *, budget: float | None = None
    ) -> dict[str, Any]:
        """``POST /jobs/{jobId}/split`` (``{"parts": N | [object, …], "runInParallel"?: bool}``)."""
        path = f"/jobs/{_segment(job_id)}/split"
        return dict(await self.request("POST", path, json=body, job_id=job_id, budget=budget))

    async def cancel_job(self, job_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /jobs/{jobId}/cancel``."""
        path = f"/jobs/{_segment(job_id)}/cancel"
        return dict(await self.request("POST", path, json=body, job_id=job_id))

    async def list_jobs(self, params: Mapping[str, str]) -> tuple[list[dict[str, Any]], Mapping[str, Any]]:
        """``GET /jobs`` with the given query: one page of jobs and the answer's ``pagination`` (``{}`` if none)."""
        body = await self.request("GET", "/jobs", params=params, whole=True)
        data = body.get("data") if isinstance(body, Mapping) else None
        pagination = body.get("pagination") if isinstance(body, Mapping) else None
        jobs = [dict(job) for job in data if isinstance(job, Mapping)] if isinstance(data, list) else []
        return jobs, pagination if isinstance(pagination, Mapping) else {}

    async def list_events(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET /events`` with the given query."""
        return list(await self.request("GET", "/events", params=params))

    async def ack_event(self, event_id: str) -> None:
        """``POST /events/{eventId}/ack``."""
        await self.request("POST", f"/events/{event_id}/ack")

    async def get_records(self, sheet_id: str) -> list[dict[str, Any]]:
        """``GET /sheets/{sheetId}/records``: the sheet's records."""
        data = await self.request("GET", f"/sheets/{sheet_id}/records")
        return list(data.get("records") or []) if isinstance(data, Mapping) else []


def _segment(value: str) -> str:
    """``value`` as one URL path segment: a ``/``, ``?``, ``#`` or ``..`` in an id cannot change the URL."""
    from urllib.parse import quote

    return quote(value, safe="") if value not in (".", "..") else quote(value, safe="").replace(".", "%2E")


def _new_http(settings: ApiSettings) -> httpx.AsyncClient:
    import httpx

    return httpx.AsyncClient(
        base_url=settings.base_url,
        headers={"Authorization": f"Bearer {settings.token}", "X-Disable-Hooks": "true"},
        timeout=httpx.Timeout(settings.timeout),
        limits=httpx.Limits(
            max_connections=20, max_keepalive_connections=10, keepalive_expiry=KEEPALIVE_EXPIRY
        ),
    )


_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[ApiSettings, bool], FlatfileClient]
] = weakref.WeakKeyDictionary()


def client_for(settings: ApiSettings, *, debug: bool = False) -> FlatfileClient:
    """The client for ``settings`` on the running event loop, built on first use and then reused.

    httpx's async connections belong to one event loop, so clients are kept per loop; the lifecycle runs
    every job on one long-lived loop per thread, which makes this one client per process in Lambda. The
    debug and quiet variants share one connection pool and are each built once.
    """
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    client = per_loop.get((settings, debug))
    if client is None:
        other = per_loop.get((settings, not debug))
        client = other.debugging(debug) if other is not None else FlatfileClient(settings, debug=debug)
        per_loop[(settings, debug)] = client
    return client


async def close_clients(loop: asyncio.AbstractEventLoop) -> None:
    """Close the clients kept for ``loop`` (each connection pool once)."""
    closed: set[int] = set()
    for client in list(_clients.pop(loop, {}).values()):
        if id(client._http) not in closed:
            closed.add(id(client._http))
            await client.aclose()
