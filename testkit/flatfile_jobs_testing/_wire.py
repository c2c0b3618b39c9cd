"""The fake Flatfile API's wire rules: error answers, body and query validation, ISO times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = [
    "INVALID_JSON",
    "STATUSES",
    "ApiError",
    "JSONDict",
    "check_fields",
    "object_body",
    "page_param",
    "parse_time",
]

JSONDict = dict[str, Any]

#: Stands for a request body that was not valid JSON.
INVALID_JSON = object()

STATUSES = frozenset(
    {"created", "planning", "scheduled", "ready", "executing", "complete", "failed", "canceled", "waiting"}
)


class ApiError(Exception):
    """An error answer: ``status`` with ``{"errors":[{"message": message}]}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_time(value: str) -> datetime:
    """Parse an ISO time (``Z`` allowed); a naive one is taken as UTC.

    Raises:
        ValueError: When ``value`` is not an ISO time.
    """
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def object_body(body: object) -> JSONDict:
    """Return a request body as a dict (``{}`` when empty); 400 when it is not a JSON object."""
    if body is INVALID_JSON:
        raise ApiError(400, "Invalid JSON body")
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "Body must be a JSON object")
    return body


def check_fields(fields: JSONDict) -> None:
    """Check the job fields a body may carry (progress, info, outcome, status); 400 when wrong."""
    progress = fields.get("progress")
    if "progress" in fields and (
        not isinstance(progress, int) or isinstance(progress, bool) or not 0 <= progress <= 100
    ):
        raise ApiError(400, "progress must be an integer between 0 and 100")
    if fields.get("info") is not None and not isinstance(fields["info"], str):
        raise ApiError(400, "info must be a string")
    if fields.get("outcome") is not None and not isinstance(fields["outcome"], dict):
        raise ApiError(400, "outcome must be an object")
    if "status" in fields and fields["status"] not in STATUSES:
        raise ApiError(400, f"Unknown job status: {fields['status']!r}")


def page_param(query: dict[str, str], name: str, default: int) -> int:
    """Read a positive integer query parameter (``default`` when absent); 400 when not one."""
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        number = int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be a positive integer") from None
    if number < 1:
        raise ApiError(400, f"{name} must be a positive integer")
    return number
