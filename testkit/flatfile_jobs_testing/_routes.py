"""The fake Flatfile API's routes: which store action answers each method and path, as ``(status, JSON)``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flatfile_jobs_testing import _parts as parts
from flatfile_jobs_testing._store import Store
from flatfile_jobs_testing._wire import ApiError

__all__ = ["errors", "route"]

_Route = Callable[[Store, re.Match[str], dict[str, str], object], object]

_ROUTES: list[tuple[str, re.Pattern[str], _Route]] = [
    ("GET", re.compile(r"/jobs"), lambda s, m, q, b: parts.list_jobs(s, q)),
    ("POST", re.compile(r"/jobs/([^/]+)/split"), lambda s, m, q, b: parts.split(s, m[1], b)),
    ("GET", re.compile(r"/jobs/([^/]+)"), lambda s, m, q, b: s.get_job(m[1])),
    ("PATCH", re.compile(r"/jobs/([^/]+)"), lambda s, m, q, b: s.patch_job(m[1], b)),
    ("POST", re.compile(r"/jobs/([^/]+)/ack"), lambda s, m, q, b: s.ack_job(m[1], b)),
    ("POST", re.compile(r"/jobs/([^/]+)/complete"), lambda s, m, q, b: s.finish_job(m[1], "complete", b)),
    ("POST", re.compile(r"/jobs/([^/]+)/fail"), lambda s, m, q, b: s.finish_job(m[1], "failed", b)),
    ("POST", re.compile(r"/jobs/([^/]+)/cancel"), lambda s, m, q, b: s.cancel_job_api(m[1], b)),
    ("GET", re.compile(r"/events"), lambda s, m, q, b: s.list_events(q)),
    ("GET", re.compile(r"/events/([^/]+)"), lambda s, m, q, b: s.get_event(m[1])),
    ("POST", re.compile(r"/events/([^/]+)/ack"), lambda s, m, q, b: s.ack_event(m[1])),
    ("GET", re.compile(r"/sheets/([^/]+)/records"), lambda s, m, q, b: s.sheet_records(m[1])),
]


def errors(message: str) -> dict[str, Any]:
    """The API's error body: ``{"errors": [{"message": message}]}``."""
    return {"errors": [{"message": message}]}


def route(store: Store, method: str, path: str, query: dict[str, str], body: object) -> tuple[int, object]:
    """Answer an authenticated API request: ``(status, JSON payload)``."""
    for route_method, pattern, action in _ROUTES:
        match = pattern.fullmatch(path)
        if match is not None and method == route_method:
            try:
                answer = action(store, match, query, body)
            except ApiError as exc:
                return exc.status, errors(exc.message)
            return 200, answer.body() if isinstance(answer, parts.Page) else {"data": answer}
    return 404, errors(f"Not found: {method} {path}")
