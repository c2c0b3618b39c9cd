"""``python -m bench``: run every measurement, print the table, record the run, regenerate the README's table.

Writes ``bench/results.md`` (the report), ``bench/results.json`` (the run, machine-readable), appends the run to
``bench/history.jsonl`` and rewrites the table between the markers in README.md (``bench/readme.py``).
"""

from __future__ import annotations

import json
import os
import sys
import time

from . import (
    _coldstart,
    _coldworker,
    _durable,
    _heavy,
    _layer,
    _lifecycle,
    _memory,
    _parts,
    _receiver,
    _recovery,
    readme,
)
from ._common import ROOT
from ._report import collect, render


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
    _step("cold worker: spawn to the first ack at Flatfile (fresh processes, moto's server)")
    worker = _coldworker.measure()
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
    _step("worker cold start with and without the durable SDK")
    durable = _durable.measure()
    _step("receiver cold start with a handler module that takes 200 ms to import")
    heavy = _heavy.measure()
    _step("cold starts from the built layer (make build-SharedLayer), with and without its bytecode")
    layer = _layer.measure()
    run = collect(
        receiver,
        cold,
        worker,
        lifecycle,
        memory,
        recovery=recovery,
        parts=parts,
        seconds=time.monotonic() - started,
    )
    text = render(run, receiver, cold, worker, lifecycle, memory, recovery=recovery, parts=parts)
    text = text.rstrip("\n") + "\n\n" + _durable.render(durable) + "\n" + _heavy.render(heavy)
    text += "\n" + _layer.render(layer)
    (readme.RESULTS.parent / "results.md").write_text(text)
    readme.RESULTS.write_text(json.dumps(run.as_json(), ensure_ascii=False, indent=2) + "\n")
    with readme.HISTORY.open("a") as history:
        history.write(json.dumps(run.as_json(), ensure_ascii=False) + "\n")
    readme.update()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
