"""Simulated work between the sample jobs' steps, so a demo shows progress (0 s unless asked for)."""

from __future__ import annotations

import os
import time

__all__ = ["PACE_ENV", "pause"]

PACE_ENV = "FLATFILE_JOBS_SAMPLE_PACE"


def pause(share: float = 1.0) -> None:
    """Sleep ``share`` × ``FLATFILE_JOBS_SAMPLE_PACE`` seconds (the demo sets it; tests and Lambda leave it unset)."""
    seconds = share * float(os.environ.get(PACE_ENV) or 0)
    if seconds > 0:
        time.sleep(seconds)
