"""The receiver's cold start does not grow with the handlers: a handler whose module takes 200 ms to import.

Three bench-only apps, each a ``flatfile_app_jobs`` package written to a temporary folder that goes first on the
child's ``PYTHONPATH`` (so ``functions/receiver/app.py`` imports it instead of the sample jobs), each with one
``space:configure`` handler in ``flatfile_app_jobs.handler``:

- light: the handler module imports nothing slow;
- heavy: the handler module sleeps 0.2 s at import (standing in for pandas or a vendor SDK);
- heavy, listener importing it: the same module, installed the way apps were wired before the job table
  (``__init__`` imports every handler module), to show what the table saves.

Each run is ``bench/_coldstart.py``'s receiver script in a fresh interpreter, timed inside it from before it
imports ``functions/receiver/app.py`` to the answer to one signed ``space:configure`` request (202): import the
app, build the runtime, answer. Interpreter start-up, the same for all three, is left out (on a shared machine it
is most of the noise). The child also says whether it imported the handler module. Runs are interleaved; the
figures are medians.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ._coldstart import RECEIVER
from ._common import http_request, median, python_env, run_python

RUNS = 15
HEAVY_IMPORT_SECONDS = 0.2
GOAL_MS = 5.0

_TABLE = """
from flatfile_jobs import JobRoute, job_table

listener = job_table(JobRoute("space:configure", "flatfile_app_jobs.handler:plugin"))
"""

_EAGER = """
from flatfile_jobs import FlatfileListener

from . import handler

listener = FlatfileListener().use(handler.plugin)
"""

_HANDLER = """
import time

from flatfile_jobs import FlatfileEvent, Tick, job_handler

time.sleep({seconds})  # what importing a heavy library costs


def configure_space(event: FlatfileEvent, tick: Tick) -> None:
    tick(50, "Halfway")


plugin = job_handler("space:configure", configure_space)
"""

# Timed inside the child, from before the app's import to the answer: the interpreter's own start-up (the same
# for every variant, and the noisiest part on a shared machine) is left out.
_SCRIPT = "import time\n_started = time.perf_counter()\n" + RECEIVER.replace(
    'print(time.time_ns(), response["statusCode"])',
    "print((time.perf_counter() - _started) * 1000, response['statusCode'],"
    ' int("flatfile_app_jobs.handler" in sys.modules))',
)
assert _SCRIPT != RECEIVER, "bench/_coldstart.py's receiver script no longer ends as expected"

VARIANTS = {
    "light": (_TABLE, 0.0),
    "heavy": (_TABLE, HEAVY_IMPORT_SECONDS),
    "heavy, listener importing it": (_EAGER, HEAVY_IMPORT_SECONDS),
}


@dataclass
class HeavyHandlerResult:
    """Median receiver cold start (ms) per variant, and whether the receiver imported the handler module."""

    cold_ms: dict[str, float]
    imported_handler: dict[str, bool]
    fastest_ms: dict[str, float]

    @property
    def added_ms(self) -> float:
        """What the heavy handler adds to the receiver's cold start (heavy - light)."""
        return self.cold_ms["heavy"] - self.cold_ms["light"]


def _write_app(folder: Path, init: str, seconds: float) -> None:
    package = folder / "flatfile_app_jobs"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(init)
    (package / "handler.py").write_text(_HANDLER.format(seconds=seconds))


def _once(folder: Path, request: str) -> tuple[float, int, bool]:
    env = python_env()
    env["PYTHONPATH"] = str(folder) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    out = run_python(_SCRIPT, request, env=env).strip().splitlines()[-1].split()
    return float(out[0]), int(out[1]), out[2] == "1"


def measure() -> HeavyHandlerResult:
    """Interleaved cold starts of the receiver with each bench app."""
    from flatfile_jobs_testing import job_ready_event

    request = json.dumps(http_request(job_ready_event("space:configure")))
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    imported: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="flatfile-jobs-bench-") as tmp:
        folders = {}
        for index, (name, (init, seconds)) in enumerate(VARIANTS.items()):
            folders[name] = Path(tmp) / f"app{index}"
            _write_app(folders[name], init, seconds)
        for folder in folders.values():  # warm the OS file cache and the folders' bytecode
            _once(folder, request)
        for _ in range(RUNS):
            for name, folder in folders.items():
                ms, status, handler_imported = _once(folder, request)
                if status != 202:
                    raise RuntimeError(f"the receiver answered {status} with the {name!r} app, not 202")
                samples[name].append(ms)
                imported[name] = handler_imported
    return HeavyHandlerResult(
        {name: median(values) for name, values in samples.items()},
        imported,
        {name: min(values) for name, values in samples.items()},
    )


def render(result: HeavyHandlerResult) -> str:
    """The heavy-handler section of bench/results.md."""
    light = result.cold_ms["light"]
    met = "yes" if abs(result.added_ms) <= GOAL_MS else "no"
    fastest = result.fastest_ms["light"]
    rows = [
        f"| {name} | {ms:.0f} | {ms - light:+.1f} | {result.fastest_ms[name]:.0f} | "
        f"{result.fastest_ms[name] - fastest:+.1f} | {'yes' if result.imported_handler[name] else 'no'} |"
        for name, ms in result.cold_ms.items()
    ]
    return "\n".join(
        [
            "## Receiver cold start with a handler whose module takes 200 ms to import",
            "",
            f"Median of {RUNS} fresh processes per app, interleaved: the receiver script of row 2 timed inside the "
            "process, from importing `functions/receiver/app.py` to its first answer (202). The apps differ only in "
            "their one handler module (see bench/_heavy.py).",
            "",
            "| app | import → first answer, median (ms) | vs light | fastest (ms) | vs light | "
            "receiver imported the handler module |",
            "|---|---:|---:|---:|---:|---|",
            *rows,
            "",
            f"Heavy handler adds {result.added_ms:+.1f} ms to the receiver's cold start (goal: within {GOAL_MS:.0f} ms: "
            f"{met}). The fastest run of each is shown too: on a loaded machine the spread between runs is "
            "larger than the difference measured, and load only ever adds time.",
            "",
        ]
    )
