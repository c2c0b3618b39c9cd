"""Polling Flatfile for events: ``GET /events`` with a cursor that hands each event out once.

The cursor is the ``createdAt`` of the newest event marked handled plus the ids marked at exactly that
time. Each poll asks for ``since`` one millisecond before the cursor, so it works whether the API's ``since``
is inclusive or exclusive, drops what the cursor already covers, pages through ``pageSize``/``pageNumber``
and returns the rest oldest first. The caller handles an event, acks it if it wants to, then marks it;
:meth:`EventPoller.mark` saves the cursor, so with a persistent :class:`CursorStore` an event marked is never
handed out again, across runs and processes. An event not yet marked comes back on the next poll (at least
once). The API leaves acknowledged events out, so other consumers' handled events never show up either.

An event whose id is not shaped like a Flatfile id (see :func:`~flatfile_jobs._events.is_flatfile_id`) is
skipped with a warning and never acked: its id must not reach a URL.

Limits: an event stored with a ``createdAt`` older than one already marked (a late write) is not seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from ._events import is_flatfile_id, iso_ms, require_flatfile_id
from ._log import get_logger

if TYPE_CHECKING:
    from ._api import FlatfileClient
    from ._config import ApiSettings

__all__ = ["CursorStore", "EventCursor", "EventPoller", "MemoryCursorStore"]

DEFAULT_LOOKBACK_SECONDS = 600.0
_ONE_MS = timedelta(milliseconds=1)


def _parse(value: object) -> datetime | None:
    """An ISO time (``Z`` allowed, naive taken as UTC), or ``None`` when ``value`` is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _order(event: Mapping[str, Any]) -> tuple[datetime, str]:
    return (_parse(event.get("createdAt")) or datetime.min.replace(tzinfo=UTC), str(event.get("id")))


@dataclass(frozen=True, slots=True)
class EventCursor:
    """Where a poller is: events up to ``since`` are handled, and so are the ``seen`` ids at ``since``.

    Attributes:
        since: ISO time: the ``createdAt`` of the newest event marked (or the start of the window).
        seen: Ids of the events marked whose ``createdAt`` is exactly ``since``.

    Example:
        >>> cursor = EventCursor("2026-01-15T10:00:00.000Z")
        >>> event = {"id": "us_evt_1", "createdAt": "2026-01-15T10:00:00.000Z"}
        >>> cursor.covers(event), cursor.advance(event).covers(event)
        (False, True)
    """

    since: str
    seen: frozenset[str] = field(default=frozenset())

    def covers(self, event: Mapping[str, Any]) -> bool:
        """Whether ``event`` is already handled: older than ``since``, or at ``since`` and seen."""
        moment, since = _parse(event.get("createdAt")), _parse(self.since)
        if moment is None or since is None:
            return False
        return moment < since or (moment == since and str(event.get("id")) in self.seen)

    def advance(self, event: Mapping[str, Any]) -> EventCursor:
        """The cursor once ``event`` is handled (unchanged for an event it already covers)."""
        created, moment, since = event.get("createdAt"), _parse(event.get("createdAt")), _parse(self.since)
        if moment is None or since is None or moment < since:
            return self
        if moment > since:
            return EventCursor(str(created), frozenset({str(event.get("id"))}))
        return EventCursor(self.since, self.seen | {str(event.get("id"))})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``seen`` sorted), as stores save it."""
        return {"since": self.since, "seen": sorted(self.seen)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventCursor:
        """Read the form :meth:`to_dict` wrote."""
        return cls(str(data["since"]), frozenset(str(item) for item in data.get("seen") or ()))


class CursorStore(Protocol):
    """Where a poller keeps its cursor between polls (in memory here; DynamoDB in the stack)."""

    def load(self) -> EventCursor | None:
        """The saved cursor, or ``None`` before the first save."""

    def save(self, cursor: EventCursor) -> None:
        """Save ``cursor`` (called after every event marked)."""


class MemoryCursorStore:
    """A cursor kept in this process (``flatfile-jobs develop``; tests)."""

    def __init__(self, cursor: EventCursor | None = None) -> None:
        self.cursor = cursor

    def load(self) -> EventCursor | None:
        """The cursor last saved."""
        return self.cursor

    def save(self, cursor: EventCursor) -> None:
        """Keep ``cursor``."""
        self.cursor = cursor


class EventPoller:
    """Reads new events of one environment and topic from ``GET /events``, each once (see the module).

    Args:
        environment_id: The Flatfile environment (``us_env_…``).
        topic: The event topic to ask for.
        store: Where the cursor lives; in memory when omitted.
        settings: API settings, read at each call (a caller may replace them, e.g. with a rotated key); the
            environment's when omitted.
        client: A client to use instead of the one for ``settings`` (tests).
        page_size: Events per page.
        max_pages: Most pages read per poll; the rest comes on the next poll.
        lookback: Seconds before the first poll to start from when the store has no cursor yet.
        request_budget: Seconds each API call may take with its retries (the client's default when ``None``;
            ``0`` fails at the first error, for callers that back off on their own).
        clock: Unix seconds now (tests).

    Example:
        >>> poller = EventPoller(environment_id="us_env_1")
        >>> for event in poller.poll():  # doctest: +SKIP
        ...     if listener.matches(event):
        ...         listener.dispatch(event)
        ...         poller.ack(event)
        ...     poller.mark(event)
    """

    def __init__(
        self,
        *,
        environment_id: str,
        topic: str = "job:ready",
        store: CursorStore | None = None,
        settings: ApiSettings | None = None,
        client: FlatfileClient | None = None,
        page_size: int = 100,
        max_pages: int = 10,
        lookback: float = DEFAULT_LOOKBACK_SECONDS,
        request_budget: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not environment_id:
            raise ValueError("EventPoller needs an environment_id (us_env_…)")
        if page_size < 1 or max_pages < 1:
            raise ValueError("page_size and max_pages must be >= 1")
        self.environment_id = environment_id
        self.topic = topic
        self.store: CursorStore = store if store is not None else MemoryCursorStore()
        self.page_size = page_size
        self.max_pages = max_pages
        self.lookback = lookback
        self.request_budget = request_budget
        self.settings = settings
        self._client = client
        self._clock = clock
        self._cursor: EventCursor | None = None

    @property
    def cursor(self) -> EventCursor:
        """The current cursor (loaded, or started ``lookback`` seconds back, on first use)."""
        if self._cursor is None:
            self._cursor = self.store.load()
        if self._cursor is None:
            start = datetime.fromtimestamp(self._clock() - self.lookback, UTC)
            self._cursor = EventCursor(iso_ms(start))
            self.store.save(self._cursor)
        return self._cursor

    def _api(self) -> FlatfileClient:
        if self._client is not None:
            return self._client
        from ._api import client_for
        from ._config import ApiSettings

        return client_for(self.settings or ApiSettings.resolve())

    async def apoll(self) -> list[dict[str, Any]]:
        """The events after the cursor, oldest first (the cursor is re-read from the store first).

        Raises:
            FlatfileAPIError: ``GET /events`` failed (after the client's retries within the budget).
        """
        self._cursor = None
        cursor = self.cursor
        since = _parse(cursor.since) or datetime.now(UTC)
        found: dict[str, dict[str, Any]] = {}
        for number in range(1, self.max_pages + 1):
            page = await self._page(iso_ms(since - _ONE_MS), number)
            for event in page:
                if isinstance(event, dict) and event.get("id") and self._wanted(event, cursor):
                    found.setdefault(str(event["id"]), event)
            if len(page) < self.page_size:
                break
        return sorted(found.values(), key=_order)

    def _wanted(self, event: Mapping[str, Any], cursor: EventCursor) -> bool:
        if not is_flatfile_id(event.get("id")):
            get_logger().warning(
                "Event whose id is not a Flatfile id skipped", extra={"event_id": ascii(event.get("id"))[:80]}
            )
            return False
        if _parse(event.get("createdAt")) is None:
            get_logger().warning("Event without a createdAt skipped", extra={"event_id": event.get("id")})
            return False
        return not cursor.covers(event)

    async def _page(self, since: str, number: int) -> list[dict[str, Any]]:
        params = {
            "environmentId": self.environment_id,
            "topic": self.topic,
            "since": since,
            "pageSize": str(self.page_size),
            "pageNumber": str(number),
        }
        return await self._api().list_events(params, budget=self._budget())

    async def aack(self, event: Mapping[str, Any]) -> None:
        """``POST /events/{id}/ack``: tell Flatfile the event is handled.

        Raises:
            InvalidEventError: The event's id is not a Flatfile id (nothing is sent).
            FlatfileAPIError: The ack failed.
        """
        event_id = require_flatfile_id(event.get("id"), "event.id")
        await self._api().ack_event(event_id, budget=self._budget())

    def _budget(self) -> float | None:
        # A zero budget would make stamina warn; a millisecond allows the one attempt and no retry.
        return None if self.request_budget is None else max(self.request_budget, 0.001)

    def poll(self) -> list[dict[str, Any]]:
        """Synchronous :meth:`apoll`."""
        from ._event_loops import run_sync

        return run_sync(self.apoll())

    def ack(self, event: Mapping[str, Any]) -> None:
        """Synchronous :meth:`aack`."""
        from ._event_loops import run_sync

        run_sync(self.aack(event))

    def mark(self, event: Mapping[str, Any]) -> None:
        """Move the cursor past ``event`` and save it: it will not be handed out again."""
        advanced = self.cursor.advance(event)
        if advanced != self._cursor:
            self._cursor = advanced
            self.store.save(advanced)
