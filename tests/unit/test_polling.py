"""EventPoller and EventCursor: each event handed out once, whatever the API's `since` does, across pollers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from flatfile_jobs import EventCursor, EventPoller, FlatfileAPIError
from flatfile_jobs._api import FlatfileClient
from flatfile_jobs._config import ApiSettings
from flatfile_jobs._event_loops import run_sync
from flatfile_jobs._events import iso_ms
from flatfile_jobs._polling import MemoryCursorStore
from flatfile_jobs.webhook import InvalidEventError
from flatfile_jobs_testing import FakeFlatfile, Fault

ENV = "us_env_test"
T0 = datetime(2026, 1, 15, 10, 0, 0, tzinfo=UTC)


def at(ms: int) -> str:
    """T0 plus ``ms`` milliseconds, as Flatfile writes times."""
    return iso_ms(T0 + timedelta(milliseconds=ms))


def event(event_id: str, ms: int, topic: str = "job:ready", env: str = ENV) -> dict[str, Any]:
    return {"id": event_id, "topic": topic, "createdAt": at(ms), "context": {"environmentId": env}}


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [str(e["id"]) for e in events]


def start(ms: int = -1) -> MemoryCursorStore:
    """A store whose cursor starts just before ``at(ms)`` (nothing marked yet)."""
    return MemoryCursorStore(EventCursor(at(ms)))


@pytest.fixture
def poller_for(fake: FakeFlatfile) -> Callable[..., EventPoller]:
    settings = ApiSettings.resolve(api_url=fake.url, token=fake.token)

    def make(store: MemoryCursorStore | None = None, **options: Any) -> EventPoller:
        return EventPoller(environment_id=ENV, settings=settings, store=store or start(), **options)

    return make


class ListApi:
    """``GET /events`` over a list, with an inclusive or exclusive ``since``, through the real client."""

    def __init__(self, events: list[dict[str, Any]], *, inclusive: bool) -> None:
        self.events = events
        self.inclusive = inclusive
        self.queries: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params)
        self.queries.append(query)
        since = datetime.fromisoformat(query["since"])
        chosen = [
            e
            for e in self.events
            if (
                datetime.fromisoformat(e["createdAt"]) >= since
                if self.inclusive
                else datetime.fromisoformat(e["createdAt"]) > since
            )
        ]
        chosen.sort(key=lambda e: (e["createdAt"], e["id"]))
        size, number = int(query["pageSize"]), int(query["pageNumber"])
        return httpx.Response(200, json={"data": chosen[(number - 1) * size : number * size]})


@pytest.fixture
def list_api() -> Iterator[Callable[..., tuple[ListApi, FlatfileClient]]]:
    clients: list[FlatfileClient] = []

    def make(events: list[dict[str, Any]], *, inclusive: bool) -> tuple[ListApi, FlatfileClient]:
        api = ListApi(events, inclusive=inclusive)
        settings = ApiSettings(base_url="http://flatfile.invalid/v1", token="sk_x")
        http = httpx.AsyncClient(base_url=settings.base_url, transport=httpx.MockTransport(api))
        clients.append(FlatfileClient(settings, http=http))
        return api, clients[-1]

    yield make
    for client in clients:
        run_sync(client.aclose())


# -- EventCursor, pure ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cursor", "candidate", "covered"),
    [
        (EventCursor(at(5)), event("a", 4), True),  # older than since
        (EventCursor(at(5)), event("a", 5), False),  # at since, not seen
        (EventCursor(at(5), frozenset({"a"})), event("a", 5), True),  # at since, seen
        (EventCursor(at(5), frozenset({"a"})), event("b", 5), False),  # same time, another id
        (EventCursor(at(5)), event("a", 6), False),  # newer
        (EventCursor(at(5)), {"id": "a"}, False),  # no createdAt: never claimed as handled
        (EventCursor("2026-01-15T10:00:00.005+00:00"), event("a", 4), True),  # offsets compare as times
    ],
)
def test_cursor_covers_older_events_and_seen_ids_at_its_time(
    cursor: EventCursor, candidate: dict[str, Any], covered: bool
) -> None:
    """covers() is true for events before `since` and for the seen ids at exactly `since`."""
    assert cursor.covers(candidate) is covered


def test_cursor_advance_moves_forward_and_collects_ids_at_one_time() -> None:
    """advance() jumps to a newer time (resetting seen), adds ids at the same time, ignores older events."""
    cursor = EventCursor(at(0))
    cursor = cursor.advance(event("a", 5))
    assert cursor == EventCursor(at(5), frozenset({"a"}))
    cursor = cursor.advance(event("b", 5))
    assert cursor == EventCursor(at(5), frozenset({"a", "b"}))
    assert cursor.advance(event("c", 3)) is cursor
    assert cursor.advance(event("d", 9)) == EventCursor(at(9), frozenset({"d"}))


def test_cursor_round_trips_through_its_dict_form() -> None:
    """to_dict()/from_dict() keep since and seen (seen sorted, so saved items are stable)."""
    cursor = EventCursor(at(1), frozenset({"b", "a"}))
    assert cursor.to_dict() == {"since": at(1), "seen": ["a", "b"]}
    assert EventCursor.from_dict(cursor.to_dict()) == cursor


# -- against the fake (inclusive since) -------------------------------------------------------------------


def test_poll_returns_new_events_oldest_first_and_nothing_once_marked(
    fake: FakeFlatfile, poller_for: Callable[..., EventPoller]
) -> None:
    """Events come oldest first; once marked, the next poll returns none of them."""
    for name, ms in (("c", 30), ("a", 10), ("b", 20)):
        fake.add_event(event(name, ms))
    poller = poller_for()
    events = poller.poll()
    assert ids(events) == ["a", "b", "c"]
    for e in events:
        poller.mark(e)
    assert poller.poll() == []
    assert poller.cursor == EventCursor(at(30), frozenset({"c"}))


def test_poll_asks_for_one_environment_topic_and_since_a_millisecond_early(
    fake: FakeFlatfile, poller_for: Callable[..., EventPoller]
) -> None:
    """The query names the environment and topic, and `since` is the cursor minus 1 ms (so both semantics work)."""
    fake.add_event(event("a", 10))
    fake.add_event(event("other-topic", 11, topic="file:created"))
    fake.add_event(event("other-env", 12, env="us_env_other"))
    assert ids(poller_for(start(5)).poll()) == ["a"]
    query = [r.query for r in fake.requests if r.path == "/events"][-1]
    assert query == {
        "environmentId": ENV,
        "topic": "job:ready",
        "since": at(4),
        "pageSize": "100",
        "pageNumber": "1",
    }


def test_an_event_at_the_cursors_time_that_was_not_seen_is_returned(
    fake: FakeFlatfile, poller_for: Callable[..., EventPoller]
) -> None:
    """A second event with the same createdAt as the last one marked still comes (the ids at that time are kept)."""
    fake.add_event(event("a", 10))
    poller = poller_for()
    [first] = poller.poll()
    poller.mark(first)
    fake.add_event(event("b", 10))
    assert ids(poller.poll()) == ["b"]


def test_an_unmarked_event_comes_back(fake: FakeFlatfile, poller_for: Callable[..., EventPoller]) -> None:
    """Until marked, an event is handed out again (at least once): a crash before mark loses nothing."""
    fake.add_event(event("a", 10))
    poller = poller_for()
    assert ids(poller.poll()) == ["a"]
    assert ids(poller.poll()) == ["a"]


def test_acked_events_are_left_out_by_the_api(
    fake: FakeFlatfile, poller_for: Callable[..., EventPoller]
) -> None:
    """ack() posts /events/{id}/ack; the API then leaves the event out even before it is marked."""
    fake.add_event(event("a", 10))
    poller = poller_for()
    [first] = poller.poll()
    poller.ack(first)
    assert fake.events["a"]["acknowledgedAt"] is not None
    assert poller.poll() == []


def test_paging_reads_every_page_then_stops_at_a_short_one(
    fake: FakeFlatfile, poller_for: Callable[..., EventPoller]
) -> None:
    """With 25 events and pages of 10, three pages are read and all 25 returned in order."""
    for i in range(25):
        fake.add_event(event(f"e{i:02d}", i))
    events = poller_for(page_size=10).poll()
    assert ids(events) == [f"e{i:02d}" for i in range(25)]
    pages = [r.query["pageNumber"] for r in fake.requests if r.path == "/events"]
    assert pages == ["1", "2", "3"]


def test_max_pages_leaves_the_rest_for_the_next_poll(
    fake: FakeFlatfile, poller_for: Callable[..., EventPoller]
) -> None:
    """A poll reads at most max_pages; after marking those, the next poll continues where it stopped."""
    for i in range(25):
        fake.add_event(event(f"e{i:02d}", i))
    poller = poller_for(page_size=10, max_pages=2)
    first = poller.poll()
    assert len(first) == 20
    for e in first:
        poller.mark(e)
    assert ids(poller.poll()) == [f"e{i:02d}" for i in range(20, 25)]


def test_the_cursor_persists_across_pollers_sharing_a_store(
    fake: FakeFlatfile, poller_for: Callable[..., EventPoller]
) -> None:
    """A second poller on the same store (the next Lambda run) gets only what the first did not mark."""
    for name, ms in (("a", 10), ("b", 10), ("c", 20)):
        fake.add_event(event(name, ms))
    store = start()
    first = poller_for(store)
    events = first.poll()
    first.mark(events[0])
    first.mark(events[1])
    second = poller_for(store)
    assert ids(second.poll()) == ["c"]
    assert store.cursor == EventCursor(at(10), frozenset({"a", "b"}))


def test_without_a_saved_cursor_it_starts_lookback_seconds_ago_and_saves_that(
    fake: FakeFlatfile, poller_for: Callable[..., EventPoller]
) -> None:
    """The first poll ever starts `lookback` seconds back (older events are left alone) and saves its start."""
    fake.add_event(event("old", 0))
    fake.add_event(event("recent", 60_000))
    now = (T0 + timedelta(seconds=90)).timestamp()
    store = MemoryCursorStore()
    poller = EventPoller(
        environment_id=ENV,
        settings=ApiSettings.resolve(api_url=fake.url, token=fake.token),
        store=store,
        lookback=60,
        clock=lambda: now,
    )
    assert ids(poller.poll()) == ["recent"]
    assert store.cursor == EventCursor(at(30_000))


def test_events_without_created_at_are_skipped(
    fake: FakeFlatfile, poller_for: Callable[..., EventPoller]
) -> None:
    """An event whose createdAt cannot be read is never handed out (it could not be placed on the cursor)."""
    fake.add_event(event("a", 10))
    fake.events["a"]["createdAt"] = "yesterday"
    fake.add_event(event("b", 20))
    assert ids(poller_for().poll()) == ["b"]


def test_api_errors_surface_as_flatfile_api_error(
    fake: FakeFlatfile, poller_for: Callable[..., EventPoller]
) -> None:
    """A failing GET /events raises FlatfileAPIError (the caller backs off); the cursor does not move."""
    fake.add_fault(Fault(path="/events", status=503, times=1))
    poller = poller_for(request_budget=0)
    with pytest.raises(FlatfileAPIError) as caught:
        poller.poll()
    assert caught.value.status == 503
    assert poller.cursor == EventCursor(at(-1))


def test_a_page_that_is_not_a_list_is_an_api_error_not_an_empty_page(
    fake: FakeFlatfile, poller_for: Callable[..., EventPoller]
) -> None:
    """GET /events answered {"data": {…}} fails the poll (the client's one check), not read as "no events"."""
    fake.add_event(event("a", 10))
    fake.add_fault(Fault(path="/events", status=200, body=b'{"data": {"id": "a"}}', times=1))
    poller = poller_for(request_budget=0)
    with pytest.raises(FlatfileAPIError, match="data that is not a list"):
        poller.poll()
    assert poller.cursor == EventCursor(at(-1))
    assert ids(poller.poll()) == ["a"]


def test_poller_needs_an_environment() -> None:
    """An empty environment id is refused at construction."""
    with pytest.raises(ValueError, match="environment_id"):
        EventPoller(environment_id="")


# -- `since` semantics, through the real client on a scripted transport ---------------------------------


@pytest.mark.parametrize("inclusive", [True, False], ids=["inclusive", "exclusive"])
def test_same_timestamp_events_are_handed_out_once_whatever_since_means(
    list_api: Callable[..., tuple[ListApi, FlatfileClient]], inclusive: bool
) -> None:
    """Inclusive or exclusive `since`: events sharing the cursor's time are neither lost nor repeated."""
    events = [event("a", 10), event("b", 10)]
    api, client = list_api(events, inclusive=inclusive)
    poller = EventPoller(environment_id=ENV, client=client, store=start(5))
    assert ids(poller.poll()) == ["a", "b"]
    poller.mark(events[0])
    assert ids(poller.poll()) == ["b"]
    events.append(event("c", 10))
    assert ids(poller.poll()) == ["b", "c"]
    poller.mark(events[1])
    poller.mark(events[2])
    events.append(event("d", 11))
    assert ids(poller.poll()) == ["d"]
    assert all(q["since"] == at(9) for q in api.queries[-2:])


# -- ids never reach a URL unchecked ---------------------------------------------------------------------

HOSTILE_EVENT_IDS = ["../../events", "x/../../spaces/us_sp_1#", "../sheets/us_sh_1?a=", "us_evt_1/ack", "é"]


@pytest.mark.parametrize("bad", HOSTILE_EVENT_IDS, ids=ascii)
def test_an_event_whose_id_is_not_a_flatfile_id_is_skipped_with_a_warning(
    fake: FakeFlatfile,
    poller_for: Callable[..., EventPoller],
    lib_log: pytest.LogCaptureFixture,
    bad: str,
) -> None:
    """A polled event with a hostile id is never handed out (so never acked); the others are, and acked."""
    fake.add_event(event(bad, 10))
    fake.add_event(event("us_evt_b", 20))
    poller = poller_for()
    events = poller.poll()
    assert ids(events) == ["us_evt_b"]
    poller.ack(events[0])
    assert [request.target.partition("?")[0] for request in fake.requests] == [
        "/v1/events",
        "/v1/events/us_evt_b/ack",
    ]
    warnings = [r for r in lib_log.records if r.getMessage() == "Event whose id is not a Flatfile id skipped"]
    assert [r.levelname for r in warnings] == ["WARNING"]


@pytest.mark.parametrize("bad", [*HOSTILE_EVENT_IDS, "", None, 7], ids=ascii)
def test_ack_refuses_an_event_id_that_is_not_a_flatfile_id(
    fake: FakeFlatfile, poller_for: Callable[..., EventPoller], bad: object
) -> None:
    """ack() of an event whose id is not a Flatfile id raises InvalidEventError naming event.id, sends nothing."""
    with pytest.raises(InvalidEventError, match=r"event\.id"):
        poller_for().ack({"id": bad, "createdAt": at(1)})
    assert fake.requests == []
