"""The handler reloader: a reload waits for running jobs, jobs wait for a reload, a bad import changes nothing."""

from __future__ import annotations

import io
import sys
import threading
import time
from pathlib import Path

from flatfile_jobs import FlatfileListener
from flatfile_jobs_cli._reload import HandlerReloader


def test_a_reload_waits_until_the_running_job_ends(jobs_copy: Path) -> None:
    """A change seen while a job runs is imported only after that job ends (no half-old, half-new run)."""
    swapped: list[FlatfileListener] = []
    reloader = HandlerReloader(io.StringIO(), swapped.append, interval=60)
    old_module = sys.modules["flatfile_app_jobs.space_configure"]
    checked: list[bool] = []
    with reloader.job():
        (jobs_copy / "space_configure.py").write_text(
            (jobs_copy / "space_configure.py").read_text().replace("Halfway there!", "Half done.")
        )
        checker = threading.Thread(target=lambda: checked.append(reloader.check()))
        checker.start()
        time.sleep(0.3)
        assert checker.is_alive()
        assert swapped == []
        assert sys.modules["flatfile_app_jobs.space_configure"] is old_module
    checker.join(5)
    assert checked == [True]
    assert len(swapped) == 1
    assert sys.modules["flatfile_app_jobs.space_configure"] is not old_module
    assert "Half done." in Path(str(sys.modules["flatfile_app_jobs.space_configure"].__file__)).read_text()


def test_a_job_started_during_a_reload_waits_for_it(jobs_copy: Path) -> None:
    """While a reload is importing, a job asking for the handlers starts only once the new ones are in place."""
    order: list[str] = []
    importing = threading.Event()
    release = threading.Event()

    def on_reload(listener: FlatfileListener) -> None:
        importing.set()
        release.wait(5)
        order.append("swapped")

    reloader = HandlerReloader(io.StringIO(), on_reload, interval=60)
    (jobs_copy / "file_process.py").write_text((jobs_copy / "file_process.py").read_text() + "\n# edited\n")
    reloading = threading.Thread(target=reloader.check)
    reloading.start()
    assert importing.wait(5)

    def run_job() -> None:
        with reloader.job():
            order.append("job")

    job = threading.Thread(target=run_job)
    job.start()
    time.sleep(0.2)
    assert order == []
    release.set()
    reloading.join(5)
    job.join(5)
    assert order == ["swapped", "job"]


def test_a_failed_import_is_not_retried_until_the_files_change_again(jobs_copy: Path) -> None:
    """A module that raises on import keeps the old modules in sys.modules, prints the error once, and the
    next change is tried again."""
    out = io.StringIO()
    swapped: list[FlatfileListener] = []
    reloader = HandlerReloader(out, swapped.append, interval=60)
    before = {name: module for name, module in sys.modules.items() if name.startswith("flatfile_app_jobs")}
    handler = jobs_copy / "data_validate.py"
    good = handler.read_text()
    handler.write_text(good + "\nraise RuntimeError('broken on purpose')\n")
    assert reloader.check() is False
    assert reloader.check() is False
    assert out.getvalue().count("RuntimeError: broken on purpose") == 1
    assert {
        name: module for name, module in sys.modules.items() if name.startswith("flatfile_app_jobs")
    } == before
    assert swapped == []
    handler.write_text(good)
    assert reloader.check() is True
    assert len(swapped) == 1
    assert "Reloaded flatfile_app_jobs (data_validate.py changed)" in out.getvalue()
