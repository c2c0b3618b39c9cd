"""Crash recovery: how soon a killed worker's job runs again, and how soon one that always crashes is failed.

Measured on the stack's own queue (``MemoryJobQueue``, SQS's visibility rules) on a simulated clock, with
the worker's heartbeat replayed at its configured period (``Settings``) and the queue configured from
``template.yaml``; "before" is the same queue with the settings this project had before the heartbeat
(visibility 5,400 s, no heartbeat). The crash lands at 20 evenly spread points of a heartbeat period, after
a minute of running; figures are medians. A job's own run time before it crashes is left out (it adds the
same to both sides).
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass

from ._common import ROOT, Row

BEFORE_QUEUE_VISIBILITY = 5400.0
BEFORE_RECEIVES = 5
CRASH_PHASES = 20
RUN_BEFORE_CRASH = 60.0
RETRY_GOAL_SECONDS = 180.0
FAILED_GOAL_SECONDS = 600.0


@dataclass(frozen=True)
class Timeline:
    """The queue and heartbeat settings of one side."""

    queue_visibility: float
    receives: int
    heartbeat: float | None  # seconds between beats; ``None``: no heartbeat
    visibility: float  # how far ahead each beat keeps the message invisible


@dataclass(frozen=True)
class RecoveryResult:
    """Median simulated seconds, before and after."""

    before: Timeline
    after: Timeline
    retry_before: float
    retry_after: float
    failed_before: float
    failed_after: float


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _template_queue() -> tuple[float, int]:
    text = (ROOT / "template.yaml").read_text()
    job_queue = text[text.index("  JobQueue:") : text.index("  DeadLetterQueue:")]
    visibility = re.search(r"VisibilityTimeout: (\d+)", job_queue)
    receives = re.search(r"maxReceiveCount: (\d+)", job_queue)
    if visibility is None or receives is None:
        raise RuntimeError("JobQueue's VisibilityTimeout or maxReceiveCount not found in template.yaml")
    return float(visibility.group(1)), int(receives.group(1))


def _crash_waits(timeline: Timeline, crash_offset: float) -> list[float]:
    """Seconds from each crash to the next receive (the last: to the dead letter), crashing at every receive."""
    from flatfile_stack.queues import Delivery, MemoryJobQueue

    clock = _Clock()
    queue = MemoryJobQueue(
        max_receives=timeline.receives, visibility_timeout=timeline.queue_visibility, clock=clock
    )
    event = {
        "id": "us_evt_1",
        "topic": "job:ready",
        "context": {"jobId": "us_jb_1"},
        "payload": {"job": "b:c"},
    }
    queue.send(Delivery(event=event, body=json.dumps(event), delivery_id="us_evt_1"))
    waits: list[float] = []
    record = queue.receive(timeout=0)
    while record is not None:
        started = clock.now
        if timeline.heartbeat is not None:  # beats at start, then every period until the crash
            beat = 0.0
            while beat <= RUN_BEFORE_CRASH + crash_offset:
                clock.now = started + beat
                queue.extend_visibility(record["receiptHandle"], timeline.visibility)
                beat += timeline.heartbeat
        crashed_at = clock.now = started + RUN_BEFORE_CRASH + crash_offset
        record = None
        while record is None and not queue.dead_letters:
            clock.now += 1.0  # the event source polls about once a second
            record = queue.receive(timeout=0)
        waits.append(clock.now - crashed_at)
    return waits


def _medians(timeline: Timeline) -> tuple[float, float]:
    period = timeline.heartbeat or 1.0
    runs = [_crash_waits(timeline, period * i / CRASH_PHASES) for i in range(CRASH_PHASES)]
    return statistics.median(run[0] for run in runs), statistics.median(sum(run) for run in runs)


def measure() -> RecoveryResult:
    """Both timelines on the simulated clock."""
    from flatfile_stack.settings import Settings

    settings = Settings()
    queue_visibility, receives = _template_queue()
    before = Timeline(BEFORE_QUEUE_VISIBILITY, BEFORE_RECEIVES, None, BEFORE_QUEUE_VISIBILITY)
    after = Timeline(queue_visibility, receives, settings.heartbeat_seconds, settings.visibility_seconds)
    retry_before, failed_before = _medians(before)
    retry_after, failed_after = _medians(after)
    return RecoveryResult(before, after, retry_before, retry_after, failed_before, failed_after)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds:,.0f} s ({seconds / 3600:.1f} h)"
    if seconds >= 120:
        return f"{seconds:,.0f} s ({seconds / 60:.1f} min)"
    return f"{seconds:,.0f} s"


def rows(result: RecoveryResult) -> list[Row]:
    """Crash → retry and first crash → failed, after (ours) against before (reference column)."""
    return [
        Row(
            "6. Crash recovery: worker killed mid-job → job handed out again (simulated clock; reference: "
            "before the heartbeat)",
            _duration(result.retry_after),
            _duration(result.retry_before),
            f"{result.retry_after / result.retry_before:.3f}",
            f"≤ {RETRY_GOAL_SECONDS:.0f} s",
            result.retry_after <= RETRY_GOAL_SECONDS,
        ),
        Row(
            f"6. Crash recovery: job crashing at every attempt, first crash → dead letter "
            f"({result.after.receives} receives; before: {result.before.receives}; run time aside)",
            _duration(result.failed_after),
            _duration(result.failed_before),
            f"{result.failed_after / result.failed_before:.3f}",
            f"≤ {FAILED_GOAL_SECONDS:.0f} s",
            result.failed_after <= FAILED_GOAL_SECONDS,
        ),
    ]


def details(result: RecoveryResult) -> list[str]:
    """How the crash-recovery figures were taken."""
    after, before = result.after, result.before
    return [
        "6. The stack's own queue (`MemoryJobQueue`, SQS's visibility rules) on a simulated clock, the worker's "
        f"heartbeat replayed at its configured period; each attempt runs {RUN_BEFORE_CRASH:.0f} s, then crashes at "
        f"one of {CRASH_PHASES} points of a heartbeat period; medians; the event source polls every second.",
        f"   After: queue visibility {after.queue_visibility:.0f} s and {after.receives} receives (template.yaml), "
        f"heartbeat every {after.heartbeat:.0f} s keeping the message invisible {after.visibility:.0f} s ahead. "
        f"Before: visibility {before.queue_visibility:.0f} s, {before.receives} receives, no heartbeat. "
        "The dead-letter function then fails the job within seconds (not included). "
        "`tests/functional/test_chaos.py` measures the same with a real worker process SIGKILLed mid-job, "
        "on this timeline 100 times faster.",
    ]
