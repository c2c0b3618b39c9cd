"""Cold starts from the built layer, with and without its bytecode.

The other cold rows import the source tree and ``.venv``, where Python has cached every module's bytecode. On
Lambda the layer is read-only at ``/opt``, so a module without a ``.pyc`` in the layer is compiled on every cold
start. This builds the layer the way ``sam build`` does (``scripts/lambda-build/Makefile``'s ``build-SharedLayer`` in ``layers/shared``, with
``ARTIFACTS_DIR`` a temporary folder) and makes two copies of it: one without our packages' bytecode and one
without any. Each run puts one of the three first on ``PYTHONPATH`` with ``PYTHONDONTWRITEBYTECODE=1`` (nothing
compiled is kept, as on Lambda) and runs, in a fresh interpreter, the receiver's cold script of row 2 (spawn →
first answer) or an import of ``functions/worker/app.py``. Runs are interleaved; the figures are medians.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ._coldstart import IMPORT_APP, RECEIVER
from ._common import FUNCTIONS, ROOT, http_request, median, python_env, run_python

RUNS = 9
LAYER_PACKAGES = ("flatfile_jobs", "flatfile_stack", "flatfile_app_jobs")
VARIANTS = ("with .pyc (as built)", "dependencies' .pyc only", "no .pyc")

_WHERE = """
import sys
import aws_lambda_powertools, flatfile_jobs, httpx
print(all(module.__file__.startswith(sys.argv[1]) for module in (aws_lambda_powertools, flatfile_jobs, httpx)))
"""


@dataclass
class LayerResult:
    """Medians (ms) per variant: the receiver's spawn → first answer, and importing the worker's app."""

    receiver_ms: dict[str, float]
    worker_import_ms: dict[str, float]
    modules: int


def build_layer(artifacts: Path) -> Path:
    """``make build-SharedLayer`` as ``sam build`` runs it; the layer's ``python`` folder."""
    subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(ROOT / "layers/shared"),
            "-f",
            str(ROOT / "scripts/lambda-build/Makefile"),
            "build-SharedLayer",
        ],
        env={**python_env(), "ARTIFACTS_DIR": str(artifacts), "PYTHON": sys.executable},
        check=True,
        capture_output=True,
        timeout=600,
    )
    return artifacts / "python"


def _without_bytecode(layer: Path, copy: Path, packages: tuple[str, ...] | None) -> Path:
    """A copy of ``layer`` without the bytecode of ``packages`` (of everything when None)."""
    shutil.copytree(layer, copy)
    roots = [copy / name for name in packages] if packages is not None else [copy]
    for root in roots:
        for cache in list(root.rglob("__pycache__")):
            shutil.rmtree(cache)
    return copy


def _env(layer: Path) -> dict[str, str]:
    return python_env(PYTHONPATH=str(layer), PYTHONDONTWRITEBYTECODE="1")


def _receiver_ms(layer: Path, request: str) -> float:
    started = time.time_ns()
    out = run_python(RECEIVER, request, env=_env(layer)).strip().splitlines()[-1].split()
    if out[1] != "202":
        raise RuntimeError(f"the receiver answered {out[1]} from {layer}, not 202")
    return (int(out[0]) - started) / 1e6


def measure() -> LayerResult:
    """Build the layer, then interleaved cold runs from it with all, some and none of its bytecode."""
    from flatfile_jobs_testing import job_ready_event

    request = json.dumps(http_request(job_ready_event("space:configure")))
    worker_app = str(FUNCTIONS / "worker" / "app.py")
    with tempfile.TemporaryDirectory(prefix="flatfile-jobs-bench-layer-") as tmp:
        built = build_layer(Path(tmp) / "artifacts")
        layers = dict(
            zip(
                VARIANTS,
                (
                    built,
                    _without_bytecode(built, Path(tmp) / "deps-only", LAYER_PACKAGES),
                    _without_bytecode(built, Path(tmp) / "none", None),
                ),
                strict=True,
            )
        )
        for name, layer in layers.items():
            if run_python(_WHERE, str(layer), env=_env(layer)).strip() != "True":
                raise RuntimeError(f"the {name!r} run does not import the layer's packages from {layer}")
        receiver: dict[str, list[float]] = {name: [] for name in VARIANTS}
        worker: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for run in range(RUNS + 1):  # the first round warms the OS file cache and is left out
            for name, layer in layers.items():
                ms = _receiver_ms(layer, request)
                imported = float(run_python(IMPORT_APP, worker_app, env=_env(layer)))
                if run:
                    receiver[name].append(ms)
                    worker[name].append(imported)
        modules = sum(1 for _ in built.rglob("*.py"))
    return LayerResult(
        {name: median(values) for name, values in receiver.items()},
        {name: median(values) for name, values in worker.items()},
        modules,
    )


def render(result: LayerResult) -> str:
    """The built layer's section of bench/results.md."""
    first = VARIANTS[0]
    rows = [
        f"| {name} | {result.receiver_ms[name]:.0f} | {result.receiver_ms[name] - result.receiver_ms[first]:+.0f} | "
        f"{result.worker_import_ms[name]:.0f} | "
        f"{result.worker_import_ms[name] - result.worker_import_ms[first]:+.0f} |"
        for name in VARIANTS
    ]
    return "\n".join(
        [
            "## Cold starts from the built layer, with and without its bytecode",
            "",
            f"The layer as `sam build` makes it ({result.modules} modules, each with unchecked-hash CPython 3.13 "
            f"bytecode), first on `PYTHONPATH`, `PYTHONDONTWRITEBYTECODE=1` as on Lambda's read-only `/opt`; "
            f"medians of {RUNS} fresh processes per variant, interleaved (see bench/_layer.py).",
            "",
            "| layer | receiver: spawn → first answer (ms) | vs as built | import functions/worker/app.py (ms) | "
            "vs as built |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
        ]
    )
