"""``python -m bench``: run every measurement, print the table, write ``bench/results.md``."""

from __future__ import annotations

import os
import sys
import time

from . import _coldstart, _lifecycle, _memory, _parts, _receiver, _recovery
from ._common import BENCH, ROOT
from ._report import render


def _step(message: str) -> float:
    print(f"bench: {message}…", file=sys.stderr, flush=True)
    return time.monotonic()


def main() -> int:
    """Measure, print and save; the exit code is 0 whether or not every goal was met."""
    os.chdir(ROOT)
    started = _step("receiver in-process")
    receiver = _receiver.measure()
    _step("cold starts and import times (fresh processes)")
    cold = _coldstart.measure()
    _step("no-op jobs and 10,000 ticks, Python and the JS plugin (npm install on first run)")
    lifecycle = _lifecycle.measure()
    _step("worker memory over 1,000 jobs")
    memory = _memory.measure()
    _step("crash recovery on a simulated clock")
    recovery = _recovery.measure()
    _step(
        f"a {_parts.PARTS}-part job through the local stack with {', '.join(map(str, _parts.WORKERS))} workers"
    )
    parts = _parts.measure()
    text = render(
        receiver, cold, lifecycle, memory, recovery=recovery, parts=parts, seconds=time.monotonic() - started
    )
    (BENCH / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
