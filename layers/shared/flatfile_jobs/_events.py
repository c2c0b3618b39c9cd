"""FlatfileEvent, a read-only view of a raw event, and reading the shapes events arrive in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._errors import InvalidEventError

if TYPE_CHECKING:
    from ._api import FlatfileClient

__all__ = ["ACCESS_TOKEN_KEY", "JOB_TOPICS", "FlatfileEvent", "raw_event", "require_job_ready"]

ACCESS_TOKEN_KEY = "_accessToken"  # noqa: S105 - a field name
# The topics a job event may have: a job (or a multi-part job's part) is ready; a split job's parts all ended.
JOB_TOPICS = ("job:ready", "job:parts-completed")


@dataclass(frozen=True, slots=True)
class FlatfileEvent:
    """A typed, read-only view of a Flatfile event, handed to callbacks and job handlers.

    Attributes:
        raw: The event as Flatfile sent it (read-only).
        api: The Flatfile API client for this job (async), when the lifecycle runs the handler.

    Example:
        >>> event = FlatfileEvent.of({"id": "us_evt_1", "topic": "job:ready",
        ...     "context": {"jobId": "us_jb_1"}, "payload": {"job": "space:configure"}})
        >>> (event.job_id, event.job, event.domain, event.operation)
        ('us_jb_1', 'space:configure', 'space', 'configure')
    """

    raw: Mapping[str, Any]
    api: FlatfileClient | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, event: Mapping[str, Any], *, api: FlatfileClient | None = None) -> FlatfileEvent:
        """Wrap a raw event dict (it is not copied; treat it as immutable)."""
        return cls(raw=MappingProxyType(dict(event)), api=api)

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

    @property
    def environment_id(self) -> str | None:
        """``context.environmentId``."""
        value = self.context.get("environmentId")
        return str(value) if value else None


def raw_event(delivered: Mapping[str, Any]) -> dict[str, Any]:
    """Return the raw event from a delivery, without ``_accessToken`` (the same dict when it has none).

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

    Raises:
        InvalidEventError: The topic is not one of :data:`JOB_TOPICS` or ``context.jobId`` / ``payload.job``
            is missing (the first problem is named).
    """
    view = FlatfileEvent.of(event)
    if not isinstance(event.get("id"), str) or not event["id"]:
        raise InvalidEventError("event.id must be a non-empty string")
    if view.topic not in JOB_TOPICS:
        expected = " or ".join(repr(topic) for topic in JOB_TOPICS)
        raise InvalidEventError(f"event.topic must be {expected}, got {str(event.get('topic'))[:64]!r}")
    if not isinstance(event.get("context"), Mapping) or not isinstance(view.context.get("jobId"), str):
        raise InvalidEventError("event.context.jobId must be a string")
    if not view.job_id:
        raise InvalidEventError("event.context.jobId must not be empty")
    job = view.payload.get("job")
    if not isinstance(job, str) or ":" not in job:
        raise InvalidEventError("event.payload.job must be a 'domain:operation' string")
    return view
