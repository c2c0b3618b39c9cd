"""The Flatfile jobs/events client: httpx (async), bounded attempts, retries with stamina.

Every call is retried on connection errors, timeouts, 408, 429 and 5xx with full-jitter exponential
backoff, honouring ``Retry-After``, within a total time budget; other 4xx fail at once. Each attempt has
one deadline (``ApiSettings.timeout``) covering the wait for a connection, the request and the whole body,
and reads at most ``ApiSettings.max_response_bytes``. Every answer the caller cannot use (not JSON, not an
object with ``data``, too large) is a :class:`FlatfileAPIError`. Paths are built from percent-encoded
segments (see ``_paths``), so an id can never add a ``/``, ``..``, ``?`` or ``#`` to a URL. One client per
event loop is reused across warm invocations (see :func:`client_for`).
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json as jsonlib
import random
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import stamina

from ._config import ApiSettings
from ._errors import FlatfileAPIError
from ._log import get_logger, log_context, show_debug_lines
from ._paths import api_path, check_path, shown, shown_path

if TYPE_CHECKING:
    import ssl

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


def _error_message(content: bytes, status: int) -> str:
    try:
        errors = jsonlib.loads(content).get("errors") or []
        message = str(errors[0].get("message") or "")
    except (ValueError, AttributeError, IndexError, TypeError, KeyError, RecursionError):
        message = ""
    return message or f"Flatfile API answered {status}"


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

    def with_debug(self, debug: bool) -> FlatfileClient:
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
    ) -> Any:  # noqa: ANN401 - the API's JSON
        """Call the API and return the response's ``data``; retried as described in the module docstring.

        Args:
            method: The HTTP method.
            path: The path under ``/v1``; build it with ``_paths.api_path`` when it holds ids. A path with a
                query, a fragment, an empty, ``.`` or ``..`` segment is refused before anything is sent.
            json: The JSON body.
            params: The query parameters (encoded by httpx).
            job_id: The job the call is about (logged and kept on errors).
            budget: Seconds all attempts may take; the settings' ``retry_budget`` when ``None``.

        Raises:
            FlatfileAPIError: The call failed for good (``status`` is ``None`` when no response came or the
                path was refused), or the answer is unusable: not JSON, not an object with ``data``, or
                larger than ``max_response_bytes``.
        """
        try:
            check_path(path)
        except ValueError as exc:
            raise FlatfileAPIError(
                f"{method} refused: {exc}", status=None, method=method, path=shown(path), job_id=job_id
            ) from None
        return await self._request(method, path, json=json, params=params, job_id=job_id, budget=budget)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        params: Mapping[str, str] | None = None,
        job_id: str | None = None,
        budget: float | None = None,
        expect: type[Any] | None = None,
        whole: bool = False,
    ) -> Any:  # noqa: ANN401 - the API's JSON
        """:meth:`request` on a path known to be safe; ``data`` must be an ``expect`` when given.

        ``whole=True`` returns the whole JSON object instead (a list's ``pagination`` sits beside ``data``).
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
                    answer = await self._attempt(method, path, json, params, job_id, attempt)
                    body = _body(answer, expect, method, path, job_id)
                    return body if whole else body["data"]
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
        status: int | None = None
        try:
            async with asyncio.timeout(self.settings.timeout):
                async with self._http.stream(method, path, json=json, params=params) as response:
                    status = response.status_code
                    content = await self._read(response)
        except httpx.DecodingError as exc:  # a body its Content-Encoding does not describe: unusable
            self._log_call(method, path, status, started, attempt, job_id)
            message = f"{method} {path}: Flatfile answered {status} with a body that cannot be decoded"
            raise FlatfileAPIError(message, status=status, method=method, path=path, job_id=job_id) from exc
        except (httpx.TransportError, TimeoutError) as exc:
            reason = type(exc).__name__
            if not isinstance(exc, httpx.TransportError):
                reason = f"no whole answer within {self.settings.timeout:g} s"
            error = FlatfileAPIError(
                f"{method} {path} failed: {reason}", status=None, method=method, path=path, job_id=job_id
            )
            self._log_call(method, path, status, started, attempt, job_id)
            raise _RetryableError(error, attempt=attempt, retry_after=None) from exc
        self._log_call(method, path, status, started, attempt, job_id)
        if content is None:
            cap = self.settings.max_response_bytes
            message = f"{method} {path}: the answer is over the {cap} byte limit (max_response_bytes)"
            raise FlatfileAPIError(message, status=status, method=method, path=path, job_id=job_id)
        if 200 <= status < 300:
            return _Answer(status, content)
        error = FlatfileAPIError(
            _error_message(content, status), status=status, method=method, path=path, job_id=job_id
        )
        if status in _RETRYABLE_STATUS:
            retry_after = _retry_after(response.headers.get("retry-after"))
            raise _RetryableError(error, attempt=attempt, retry_after=retry_after)
        raise error

    async def _read(self, response: httpx.Response) -> bytes | None:
        """The whole body, or ``None`` once it is known to be over ``max_response_bytes`` (reading stops)."""
        cap = self.settings.max_response_bytes
        declared = response.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > cap:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

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

    def _path(self, method: str, *segments: str, job_id: str | None = None) -> str:
        """:func:`api_path`, with a refused segment reported as the call's :class:`FlatfileAPIError`."""
        try:
            return api_path(*segments)
        except ValueError as exc:
            raise FlatfileAPIError(
                f"{method} refused: {exc}",
                status=None,
                method=method,
                path=shown_path(segments),
                job_id=job_id,
            ) from None

    async def _job_call(
        self, method: str, job_id: str, *action: str, body: object = None, budget: float | None = None
    ) -> dict[str, Any]:
        path = self._path(method, "jobs", job_id, *action, job_id=job_id)
        data = await self._request(method, path, json=body, job_id=job_id, budget=budget, expect=dict)
        return dict(data)

    async def get_job(self, job_id: str) -> dict[str, Any]:
        """``GET /jobs/{jobId}``."""
        return await self._job_call("GET", job_id)

    async def ack_job(self, job_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /jobs/{jobId}/ack`` (acknowledge or report progress)."""
        return await self._job_call("POST", job_id, "ack", body=body)

    async def complete_job(self, job_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /jobs/{jobId}/complete``."""
        return await self._job_call("POST", job_id, "complete", body=body)

    async def fail_job(
        self, job_id: str, body: Mapping[str, Any], *, budget: float | None = None
    ) -> dict[str, Any]:
        """``POST /jobs/{jobId}/fail``."""
        return await self._job_call("POST", job_id, "fail", body=body, budget=budget)

    async def split_job(
        self, job_id: str, body: Mapping[str, Any], *, budget: float | None = None
    ) -> dict[str, Any]:
        """``POST /jobs/{jobId}/split`` (``{"parts": N | [object, …], "runInParallel"?: bool}``)."""
        return await self._job_call("POST", job_id, "split", body=body, budget=budget)

    async def cancel_job(self, job_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /jobs/{jobId}/cancel``."""
        return await self._job_call("POST", job_id, "cancel", body=body)

    async def list_jobs(self, params: Mapping[str, str]) -> tuple[list[dict[str, Any]], Mapping[str, Any]]:
        """``GET /jobs`` with the given query: one page of jobs and the answer's ``pagination`` (``{}`` if none)."""
        body = await self._request("GET", "/jobs", params=params, expect=list, whole=True)
        jobs = [dict(job) for job in body["data"] if isinstance(job, Mapping)]
        pagination = body.get("pagination")
        return jobs, pagination if isinstance(pagination, Mapping) else {}

    async def list_events(
        self, params: Mapping[str, str], *, budget: float | None = None
    ) -> list[dict[str, Any]]:
        """``GET /events`` with the given query: one page of events."""
        return list(await self._request("GET", "/events", params=params, budget=budget, expect=list))

    async def ack_event(self, event_id: str, *, budget: float | None = None) -> None:
        """``POST /events/{eventId}/ack``."""
        await self._request("POST", self._path("POST", "events", event_id, "ack"), budget=budget)

    async def get_records(self, sheet_id: str) -> list[dict[str, Any]]:
        """``GET /sheets/{sheetId}/records``: the sheet's records."""
        path = self._path("GET", "sheets", sheet_id, "records")
        data = await self._request("GET", path, expect=dict)
        return list(data.get("records") or [])


@dataclass(frozen=True, slots=True)
class _Answer:
    """A 2xx answer's status and whole body."""

    status: int
    content: bytes


def _body(
    answer: _Answer, expect: type[Any] | None, method: str, path: str, job_id: str | None
) -> dict[str, Any]:
    """The answer's JSON object, whose ``data`` is an ``expect`` when given; else a :class:`FlatfileAPIError`.

    Not retried: the call may have taken effect (a garbled ``complete`` answer still completed the job).
    """
    try:
        body = jsonlib.loads(answer.content)
    except (ValueError, RecursionError):
        problem = "a body that is not JSON"
    else:
        if not isinstance(body, dict) or "data" not in body:
            problem = "JSON that is not an object with data"
        elif expect is not None and not isinstance(body["data"], expect):
            problem = "data that is not " + ("an object" if expect is dict else "a list")
        else:
            return body
    message = f"{method} {path}: Flatfile answered {answer.status} with {problem}"
    raise FlatfileAPIError(message, status=answer.status, method=method, path=path, job_id=job_id)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's one TLS context for Flatfile's API, shared by every client.

    httpx builds one per client by default, loading certifi's CA bundle each time (about 30 ms); a process
    has a client per event loop and settings. ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` apply, as in httpx.
    """
    import httpx

    return httpx.create_ssl_context()


def _new_http(settings: ApiSettings) -> httpx.AsyncClient:
    import httpx

    return httpx.AsyncClient(
        base_url=settings.base_url,
        verify=tls_context(),
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
    if debug:
        show_debug_lines()  # a plain script that configured no logging still shows the debug lines
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    client = per_loop.get((settings, debug))
    if client is None:
        other = per_loop.get((settings, not debug))
        client = other.with_debug(debug) if other is not None else FlatfileClient(settings, debug=debug)
        per_loop[(settings, debug)] = client
    return client


async def close_clients(loop: asyncio.AbstractEventLoop) -> None:
    """Close the clients kept for ``loop`` (each connection pool once)."""
    closed: set[int] = set()
    for client in list(_clients.pop(loop, {}).values()):
        if id(client._http) not in closed:
            closed.add(id(client._http))
            await client.aclose()
