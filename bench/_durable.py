"""Long jobs' cost at cold start: the worker with and without the durable SDK imported, and the durable worker.

Each figure is the median time, in a fresh interpreter, from before the first import to the end of importing
``functions/<name>/app.py`` (runs interleaved so machine load hits every variant alike). "worker + SDK" imports
``aws_durable_execution_sdk_python`` first and then the worker: what the worker would pay if the SDK sat on its
import path. The report also says which entry points' import paths load the SDK at all (they must not).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._common import FUNCTIONS, median, run_python

RUNS = 7

_IMPORT = """
import importlib.util, sys, time
started = time.perf_counter()
if sys.argv[2] == "sdk":
    import aws_durable_execution_sdk_python
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = (time.perf_counter() - started) * 1000
print(elapsed, int("aws_durable_execution_sdk_python" in sys.modules))
"""


@dataclass
class DurableResult:
    """Import times (ms) and whether each entry point loads the SDK."""

    worker_ms: float
    worker_with_sdk_ms: float
    durable_worker_ms: float
    loads_sdk: dict[str, bool]

    @property
    def sdk_share(self) -> float:
        """How much slower the worker's import would be with the SDK on its path (ratio)."""
        return self.worker_with_sdk_ms / self.worker_ms


def _once(name: str, variant: str) -> tuple[float, bool]:
    ms, loaded = run_python(_IMPORT, str(FUNCTIONS / name / "app.py"), variant).split()
    return float(ms), loaded == "1"


def measure() -> DurableResult:
    """Interleaved fresh-process imports of the worker, the worker after the SDK, and the durable worker."""
    plain, with_sdk, durable = [], [], []
    loads: dict[str, bool] = {}
    _once("worker", "plain")  # warm the OS file cache
    for _ in range(RUNS):
        ms, loads["worker"] = _once("worker", "plain")
        plain.append(ms)
        with_sdk.append(_once("worker", "sdk")[0])
        ms, loads["durable_worker"] = _once("durable_worker", "plain")
        durable.append(ms)
    loads["receiver"] = _once("receiver", "plain")[1]
    return DurableResult(median(plain), median(with_sdk), median(durable), loads)


def render(result: DurableResult) -> str:
    """The long-jobs section of bench/results.md."""
    never = [name for name in ("receiver", "worker") if not result.loads_sdk[name]]
    return "\n".join(
        [
            "## Long jobs: the durable SDK at cold start",
            "",
            "Median import of each function's `app.py` in a fresh interpreter (ms); ratio against the worker.",
            "",
            "| entry point | import (ms) | vs worker |",
            "|---|---:|---:|",
            f"| worker (as deployed: no SDK) | {result.worker_ms:.0f} | 1.00x |",
            f"| worker + `aws_durable_execution_sdk_python` | {result.worker_with_sdk_ms:.0f} | "
            f"{result.sdk_share:.2f}x |",
            f"| durable worker | {result.durable_worker_ms:.0f} | "
            f"{result.durable_worker_ms / result.worker_ms:.2f}x |",
            "",
            f"Import paths without the SDK: {', '.join(never) or 'none'} "
            f"(the durable worker loads it: {'yes' if result.loads_sdk['durable_worker'] else 'no'}).",
            "",
        ]
    )
