"""``python -m bench``: run every measurement, print the table, write ``bench/results.md``."""

from __future__ import annotations

import os
import sys
import time

from . import _coldstart, _durable, _lifecycle, _memory, _receiver
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
    _step("worker cold start with and without the durable SDK")
    durable = _durable.measure()
    text = render(receiver, cold, lifecycle, memory, seconds=time.monotonic() - started)
    text = text.rstrip("\n") + "\n\n" + _durable.render(durable)
    (BENCH / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
