"""FlatfileEvent, a read-only view of a raw event, reading the shapes events arrive in, and checking ids.

Ids are data, not path fragments: every id that may reach a URL is checked against the shape Flatfile's
ids have (``us_jb_…``, ``us_evt_…``, ``us_sh_…``: ASCII letters, digits and underscores) where it enters
(the receiver, the poller, the dead-letter function, a handler reading ``context``), with
:func:`require_flatfile_id`. The API client also percent-encodes every path segment, so even an id that
skipped this check cannot change a URL's meaning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._errors import InvalidEventError

if TYPE_CHECKING:
    from ._api import FlatfileClient
    from ._config import ApiSettings

__all__ = [
    "ACCESS_TOKEN_KEY",
    "FLATFILE_ID",
    "JOB_TOPICS",
    "FlatfileEvent",
    "event_without_token",
    "is_flatfile_id",
    "iso_ms",
    "require_flatfile_id",
    "require_job_ready",
]

ACCESS_TOKEN_KEY = "_accessToken"  # noqa: S105 - a field name
#: The shape of a Flatfile id (``us_jb_…``): no ``/ . ? # %``, space, control or non-ASCII character.
FLATFILE_ID = re.compile(r"[A-Za-z0-9_]{1,128}")
# Context ids checked at the receiver when present: the ones a handler may put in a URL.
_CONTEXT_IDS = ("environmentId", "spaceId", "workbookId", "sheetId", "fileId")


def iso_ms(moment: datetime) -> str:
    """Format a time the way Flatfile does (``createdAt``, ``since``): UTC, milliseconds, ``Z`` suffix.

    Example:
        >>> iso_ms(datetime(2026, 11, 29, 15, 0, 0, 123456, tzinfo=UTC))
        '2026-11-29T15:00:00.123Z'

    Args:
        moment: The time; a naive one is taken as UTC.
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def is_flatfile_id(value: object) -> bool:
    """Whether ``value`` is a string shaped like a Flatfile id (1 to 128 ASCII letters, digits or ``_``)."""
    return isinstance(value, str) and FLATFILE_ID.fullmatch(value) is not None


def require_flatfile_id(value: object, field: str) -> str:
    """Return ``value`` when it is shaped like a Flatfile id, else refuse it naming ``field``.

    Args:
        value: The id as received (any JSON value).
        field: Where it came from, e.g. ``"event.context.jobId"``; the error names it (never the value).

    Raises:
        InvalidEventError: ``value`` is not a string of 1 to 128 ASCII letters, digits or underscores.
    """
    if not is_flatfile_id(value):
        raise InvalidEventError(f"{field} must be a Flatfile id (1 to 128 ASCII letters, digits or _)")
    return str(value)


# The topics a job event may have: a job (or a multi-part job's part) is ready; a split job's parts all ended.
PARTS_COMPLETED = "job:parts-completed"
JOB_TOPICS = ("job:ready", PARTS_COMPLETED)


@dataclass(frozen=True, slots=True)
class FlatfileEvent:
    """A typed, read-only view of a Flatfile event, handed to callbacks and job handlers.

    Attributes:
        raw: The event as Flatfile sent it (read-only).
        api: The job's async Flatfile API client (:class:`flatfile_jobs.FlatfileClient`) while the lifecycle runs
            the handler; ``None`` for a plain listener callback.
        deadline: When the job must have ended (``time.monotonic()`` seconds), as the caller of
            ``dispatch(event, timeout=…)`` gave it; ``None``: no deadline.
        settings: The API settings the caller of ``dispatch(event, settings=…)`` handed down (a job handler's
            own ``api_url``/``token`` options override them); ``None``: the environment's.

    Example:
        >>> event = FlatfileEvent.of({"id": "us_evt_1", "topic": "job:ready",
        ...     "context": {"jobId": "us_jb_1"}, "payload": {"job": "space:configure"}})
        >>> (event.job_id, event.job, event.domain, event.operation)
        ('us_jb_1', 'space:configure', 'space', 'configure')
    """

    raw: Mapping[str, Any]
    api: FlatfileClient | None = field(default=None, repr=False, compare=False)
    deadline: float | None = field(default=None, repr=False, compare=False)
    settings: ApiSettings | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(
        cls,
        event: Mapping[str, Any],
        *,
        api: FlatfileClient | None = None,
        deadline: float | None = None,
        settings: ApiSettings | None = None,
    ) -> FlatfileEvent:
        """Wrap a raw event dict (it is not copied; treat it as immutable)."""
        return cls(raw=MappingProxyType(dict(event)), api=api, deadline=deadline, settings=settings)

    @property
    def id(self) -> str:
        """The event id (``us_evt_…``)."""
        return str(self.raw.get("id") or "")

    @property
    def topic(self) -> str:
        """The topic, e.g. ``job:ready``."""
        return str(self.raw.get("topic") or "")

    @property
    def context(self) -> Mapping[str, Any]:
        """The ids the event is about (environment, space, workbook, sheet, job, actor)."""
        value = self.raw.get("context")
        return value if isinstance(value, Mapping) else {}

    @property
    def payload(self) -> Mapping[str, Any]:
        """The topic-specific payload; for jobs it holds ``job``, ``operation``, ``input``."""
        value = self.raw.get("payload")
        return value if isinstance(value, Mapping) else {}

    @property
    def job_id(self) -> str | None:
        """``context.jobId`` (``us_jb_…``), when the event is about a job."""
        value = self.context.get("jobId")
        return str(value) if value else None

    @property
    def job(self) -> str | None:
        """``payload.job``: the job name ``"domain:operation"``."""
        value = self.payload.get("job")
        return str(value) if value else None

    @property
    def domain(self) -> str | None:
        """The job's domain (``space``, ``workbook``, ``file``, ``sheet``…)."""
        return self.job.partition(":")[0] if self.job else None

    @property
    def operation(self) -> str | None:
        """The job's operation (the part after ``:``)."""
        return self.job.partition(":")[2] if self.job else None

    def context_id(self, name: str) -> str | None:
        """``context[name]`` checked to be a Flatfile id: safe to put in a URL; ``None`` when absent or empty.

        Example:
            >>> FlatfileEvent.of({"context": {"sheetId": "us_sh_1"}}).context_id("sheetId")
            'us_sh_1'

        Raises:
            InvalidEventError: The value is present but not shaped like a Flatfile id (the message names
                ``event.context.<name>``).
        """
        value = self.context.get(name)
        if value is None or value == "":
            return None
        return require_flatfile_id(value, f"event.context.{name}")

    @property
    def environment_id(self) -> str | None:
        """``context.environmentId``."""
        value = self.context.get("environmentId")
        return str(value) if value else None


def event_without_token(delivered: Mapping[str, Any]) -> dict[str, Any]:
    """The raw event from a delivery, with the agent's ``_accessToken`` dropped (the same dict when it has none).

    Accepts the raw Flatfile event and the shape @flatfile/plugin-webhook-event-forwarder posts (the raw
    event under ``src``, copies at top level, and the agent's token as ``_accessToken``).
    """
    source = delivered.get("src")
    event = source if isinstance(source, Mapping) else delivered
    if ACCESS_TOKEN_KEY not in event and isinstance(event, dict):
        return event
    return {key: value for key, value in event.items() if key != ACCESS_TOKEN_KEY}


def require_job_ready(event: Mapping[str, Any]) -> FlatfileEvent:
    """Check ``event`` is a job event (a topic of :data:`JOB_TOPICS`) with a job id and job name.

    ``id`` and ``context.jobId`` must be Flatfile ids, and so must ``context``'s environment, space,
    workbook, sheet and file ids when present: nothing downstream puts an unchecked id in a URL.

    Raises:
        InvalidEventError: The topic is not one of :data:`JOB_TOPICS`, ``context.jobId`` / ``payload.job`` is
            missing, or an id is not shaped like a Flatfile id (the first problem is named).
    """
    # Read straight from the dict (the receiver runs this per request): the view is built once, at the end.
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise InvalidEventError("event.id must be a non-empty string")
    if str(event.get("topic") or "") not in JOB_TOPICS:
        expected = " or ".join(repr(topic) for topic in JOB_TOPICS)
        raise InvalidEventError(f"event.topic must be {expected}, got {str(event.get('topic'))[:64]!r}")
    context = event.get("context")
    if not isinstance(context, Mapping) or not isinstance(context.get("jobId"), str):
        raise InvalidEventError("event.context.jobId must be a string")
    job_id = context["jobId"]
    if not job_id:
        raise InvalidEventError("event.context.jobId must not be empty")
    require_flatfile_id(event_id, "event.id")
    require_flatfile_id(job_id, "event.context.jobId")
    for name in _CONTEXT_IDS:
        value = context.get(name)
        if value is not None and value != "":
            require_flatfile_id(value, f"event.context.{name}")
    payload = event.get("payload")
    job = payload.get("job") if isinstance(payload, Mapping) else None
    if not isinstance(job, str) or ":" not in job:
        raise InvalidEventError("event.payload.job must be a 'domain:operation' string")
    return FlatfileEvent.of(event)
