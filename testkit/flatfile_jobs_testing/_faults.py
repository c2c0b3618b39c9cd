"""Fault injection rules and the record of each request the fake Flatfile API answered."""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import dataclass, field

__all__ = ["Fault", "FaultBook", "RecordedRequest", "RequestLog"]


@dataclass(eq=False)
class Fault:
    """A rule that makes the fake Flatfile API misbehave for matching requests.

    The first fault (in the order added) that matches the request, still has ``times`` left and wins
    its draw against ``rate`` (from a ``random.Random(seed)`` of its own, so counts are stable per seed)
    applies; at most one fault applies to a request.

    Example:
        >>> fake.add_fault(Fault(path="/jobs/*/ack", status=429, retry_after=1, times=2))  # doctest: +SKIP

    Attributes:
        path: An ``fnmatch`` glob over the path without ``/v1`` and without the query, e.g.
            ``"/jobs/*/complete"`` (``*`` also crosses ``/``).
        method: An ``fnmatch`` glob over the upper-case HTTP method.
        status: Answer this status with ``{"errors":[{"message":"Injected fault"}]}`` instead of the real
            answer. ``None`` (with ``reset`` false) only delays: the request is then answered normally.
        rate: Probability that a matching request is faulted, 0 to 1.
        times: How many requests this fault may hit at most; ``None`` for no limit.
        retry_after: When set, the fault's answer carries a ``Retry-After`` header with these seconds.
        delay: Seconds to sleep before answering.
        reset: Close the connection abruptly (TCP reset) instead of answering.
        after: Process the request normally (state changes happen), then apply the fault instead of
            sending the real answer: a lost response. Without it, a faulted request changes nothing.
        body: Answer ``status`` with these bytes (``Content-Type: application/json`` whatever they hold)
            instead of the JSON error: a garbled or unexpected answer, e.g. ``Fault(status=200,
            body=b"<html>")``.
        hits: How many requests this fault has applied to so far (maintained by the server).
    """

    path: str = "*"
    method: str = "*"
    status: int | None = 503
    rate: float = 1.0
    times: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    reset: bool = False
    after: bool = False
    body: bytes | None = None
    hits: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, not {self.rate!r}")
        if self.times is not None and self.times < 0:
            raise ValueError(f"times must be >= 0 or None, not {self.times!r}")
        if self.delay < 0:
            raise ValueError(f"delay must be >= 0, not {self.delay!r}")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status, not {self.status!r}")

    @property
    def replaces_response(self) -> bool:
        """Whether the client gets the fault instead of the real answer (not just a delay)."""
        return self.reset or self.status is not None

    def matches(self, method: str, path: str) -> bool:
        """Tell whether this fault's globs match a request.

        Args:
            method: The upper-case HTTP method.
            path: The path without ``/v1`` and without the query.

        Returns:
            True when both globs match.
        """
        return fnmatch.fnmatchcase(method, self.method) and fnmatch.fnmatchcase(path, self.path)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake Flatfile API received, with what it answered.

    Attributes:
        method: The upper-case HTTP method.
        path: The path without ``/v1`` and without the query, e.g. ``/jobs/us_jb_1/ack``.
        query: The query parameters (the last value wins when one repeats).
        headers: The request headers, with lower-case names.
        body: The body parsed as JSON, or ``None`` when empty or not JSON.
        raw: The body's bytes as received.
        status: The status answered; ``0`` when the connection was reset instead.
        fault: Whether an injected fault replaced the real answer.
        at: ``time.monotonic()`` when the request arrived.
        target: The request target exactly as received (``/v1`` and the query included, still
            percent-encoded), e.g. ``/v1/jobs/us_jb_1/ack``.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: object
    raw: bytes
    status: int
    fault: bool
    at: float
    target: str = ""


class FaultBook:
    """The ordered, thread-safe list of faults and the seeded draws that pick one."""

    def __init__(self, seed: int | None) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        """Append a fault (it applies after the ones already added) and return it."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Drop every fault and restart the draws from the seed."""
        with self._lock:
            self._faults.clear()
            self._rng = random.Random(self._seed)

    def pick(self, method: str, path: str) -> Fault | None:
        """Choose the fault for a request and count the hit, or return ``None``.

        A draw is taken only for a matching fault with times left and a rate below 1.
        """
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, path):
                    continue
                if fault.times is not None and fault.hits >= fault.times:
                    continue
                if fault.rate < 1.0 and self._rng.random() >= fault.rate:
                    continue
                fault.hits += 1
                return fault
        return None


class RequestLog:
    """The answered requests in order of arrival: a slot is taken on arrival and filled before answering."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: list[RecordedRequest | None] = []
        self._generation = 0

    def reserve(self) -> tuple[int, int]:
        """Take the next slot (arrival order, even when answers finish out of order)."""
        with self._lock:
            self._slots.append(None)
            return self._generation, len(self._slots) - 1

    def fill(self, slot: tuple[int, int], request: RecordedRequest) -> None:
        """Record ``request`` in its slot, unless the log was cleared since the slot was taken."""
        with self._lock:
            generation, index = slot
            if generation == self._generation:
                self._slots[index] = request

    def clear(self) -> None:
        """Forget every request; slots taken before are dropped when filled."""
        with self._lock:
            self._slots = []
            self._generation += 1

    def requests(self) -> list[RecordedRequest]:
        """The recorded requests (a new list)."""
        with self._lock:
            return [request for request in self._slots if request is not None]
