"""Fixtures for the command-line tests: a clean environment and library state, the checkout, a fake API."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flatfile_jobs_testing import FakeFlatfile
from flatfile_stack.runtime import use_runtime

ROOT = Path(__file__).resolve().parents[2]
_ENV = (
    "FLATFILE_API_URL",
    "FLATFILE_API_KEY",
    "FLATFILE_BEARER_TOKEN",
    "FLATFILE_ENVIRONMENT_ID",
    "FLATFILE_JOBS_ROOT",
    "FLATFILE_JOBS_SAMPLE_PACE",
    "WEBHOOK_SECRET",
    "POWERTOOLS_LOG_LEVEL",
    "NO_COLOR",
)


@pytest.fixture(autouse=True)
def clean_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No Flatfile settings from the shell or other tests; a runtime a local stack handed in is taken back."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(ROOT)
    threads = set(threading.enumerate())
    try:
        yield
    finally:
        use_runtime(None)
    for thread in threading.enumerate():
        if thread not in threads:
            thread.join(2.0)  # the fake API's request threads end just after it closes their sockets
    leaked = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def fake() -> Iterator[FakeFlatfile]:
    """A fake Flatfile API of this test's own."""
    with FakeFlatfile(seed=7) as server:
        yield server


SHEET_EXPORT = """
from flatfile_jobs import JobCompleteDetails, JobOutcome, job_handler


def export(event, tick):
    tick(40, "Exporting the sheet...")
    return JobCompleteDetails(outcome=JobOutcome(heading="Export ready", message="Exported v1."))


plugin = job_handler("sheet:export", export)
"""
REGISTER_SHEET_EXPORT = (
    "\nfrom . import sheet_export as _sheet_export\n\nlistener.use(_sheet_export.plugin)\n"
)


@pytest.fixture
def jobs_copy(tmp_path: Path) -> Iterator[Path]:
    """A copy of the app's job package that this test may edit, imported instead of the real one.

    The copy's folder goes first on ``sys.path`` and ``flatfile_app_jobs`` leaves ``sys.modules``; both are put
    back after.
    """
    import shutil
    import sys

    folder = tmp_path / "handlers"
    package = folder / "flatfile_app_jobs"
    shutil.copytree(
        ROOT / "layers" / "shared" / "flatfile_app_jobs",
        package,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    saved = {
        name: module
        for name, module in sys.modules.items()
        if name == "flatfile_app_jobs" or name.startswith("flatfile_app_jobs.")
    }
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(folder))
    try:
        yield package
    finally:
        sys.path.remove(str(folder))
        for name in [
            name
            for name in sys.modules
            if name == "flatfile_app_jobs" or name.startswith("flatfile_app_jobs.")
        ]:
            del sys.modules[name]
        sys.modules.update(saved)


@pytest.fixture
def add_sheet_export(jobs_copy: Path) -> Callable[[], None]:
    """``add_sheet_export()``: write a ``sheet:export`` handler module into the copy and register it."""

    def add() -> None:
        (jobs_copy / "sheet_export.py").write_text(SHEET_EXPORT)
        with (jobs_copy / "__init__.py").open("a") as init:
            init.write(REGISTER_SHEET_EXPORT)

    return add
