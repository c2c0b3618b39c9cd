"""job_table: rows match like the plugins they name, without importing them; a plugin is imported on first use."""

from __future__ import annotations

import importlib
import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flatfile_app_jobs import listener as sample_table
from flatfile_jobs import ConfigurationError, DispatchError, FlatfileListener, JobRoute, job_table
from flatfile_jobs._table import load_plugins
from flatfile_jobs_testing import job_ready_event

_packages = itertools.count(1)

PLUGIN_MODULE = """
from flatfile_jobs import FlatfileEvent, FlatfileListener

IMPORTS = IMPORTS + 1 if "IMPORTS" in globals() else 1


def plugin(listener: FlatfileListener) -> None:
    listener.on("job:ready", {"job": "report:build"}, lambda event: f"built {event.job_id}")
"""


@pytest.fixture
def app_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """``app_package(source)``: a fresh package holding ``handler.py`` = ``source``; returns the package name."""
    created: list[str] = []

    def make(source: str) -> str:
        name = f"table_test_app_{next(_packages)}"
        folder = tmp_path / name
        folder.mkdir()
        (folder / "__init__.py").write_text("")
        (folder / "handler.py").write_text(source)
        created.append(name)
        return name

    monkeypatch.syspath_prepend(str(tmp_path))
    yield make
    for name in [module for module in sys.modules if module.split(".")[0] in created]:
        del sys.modules[name]


def test_matching_imports_no_plugin_and_the_first_dispatch_imports_it_once(
    app_package: Callable[[str], str],
) -> None:
    """matches() leaves the plugin's module unimported; dispatch imports it once and runs its callback."""
    package = app_package(PLUGIN_MODULE)
    listener = job_table(JobRoute("report:build", f"{package}.handler:plugin"))
    event = job_ready_event("report:build", job_id="us_jb_1")
    assert listener.matches(event)
    assert not listener.matches(job_ready_event("report:send"))
    assert f"{package}.handler" not in sys.modules
    assert listener.dispatch(event) == ["built us_jb_1"]
    assert listener.dispatch(job_ready_event("report:build", job_id="us_jb_2")) == ["built us_jb_2"]
    assert sys.modules[f"{package}.handler"].IMPORTS == 1


def test_load_plugins_imports_every_row_now(app_package: Callable[[str], str]) -> None:
    """load_plugins() imports each row's module up front (the local tools' start and reload)."""
    package = app_package(PLUGIN_MODULE)
    listener = job_table(JobRoute("report:build", f"{package}.handler:plugin"))
    load_plugins(listener)
    assert sys.modules[f"{package}.handler"].IMPORTS == 1


def test_a_row_its_plugin_does_not_take_fails_the_dispatch_naming_both(
    app_package: Callable[[str], str],
) -> None:
    """A row routing a job the plugin has no callback for fails loudly (ConfigurationError), it is not skipped."""
    package = app_package(PLUGIN_MODULE)
    listener = job_table(JobRoute("report:*", f"{package}.handler:plugin"))
    assert listener.matches(job_ready_event("report:send"))
    with pytest.raises(DispatchError) as caught:
        listener.dispatch(job_ready_event("report:send"))
    (error,) = caught.value.errors
    assert isinstance(error, ConfigurationError)
    assert "'report:*'" in str(error)
    assert f"{package}.handler:plugin" in str(error)


def test_a_plugin_that_cannot_be_imported_fails_its_jobs_only() -> None:
    """A row naming a missing module fails its own dispatch; matching (the receiver) never touches it."""
    listener = job_table(JobRoute("report:build", "no_such_package_for_table_tests.handler:plugin"))
    assert listener.matches(job_ready_event("report:build"))
    with pytest.raises(DispatchError) as caught:
        listener.dispatch(job_ready_event("report:build"))
    assert isinstance(caught.value.errors[0], ModuleNotFoundError)


@pytest.mark.parametrize("plugin", ["module_only", ":plugin", "module:", ""])
def test_a_route_needs_module_and_attribute(plugin: str) -> None:
    """JobRoute refuses a plugin reference that is not 'package.module:attribute'."""
    with pytest.raises(ValueError, match=r"package\.module:attribute"):
        JobRoute("report:build", plugin)


def test_only_a_multipart_row_takes_parts_completed() -> None:
    """multipart=True adds job:parts-completed for the same job; a plain row takes job:ready only."""
    plain = job_table(JobRoute("report:build", "anywhere.handler:plugin"))
    split = job_table(JobRoute("report:build", "anywhere.handler:plugin", multipart=True))
    done = {**job_ready_event("report:build"), "topic": "job:parts-completed"}
    assert not plain.matches(done)
    assert split.matches(done)


def _sample_events() -> list[dict[str, Any]]:
    """Events around the sample jobs: each job and a stranger, ready or parts-completed, part or not."""
    events: list[dict[str, Any]] = []
    names = ["space:configure", "workbook:submit", "file:process", "data:validate", "workbook:export"]
    names += ["file:extract", "sheet:export", "workbook:*", "space:configure:extra"]
    for name, topic, is_part in itertools.product(
        names, ("job:ready", "job:parts-completed"), (None, True, False)
    ):
        event = job_ready_event(name)
        event["topic"] = topic
        if is_part is not None:
            event["payload"]["isPart"] = is_part
        events.append(event)
    events.append({"topic": "job:ready", "payload": {}})
    events.append({"topic": "job:ready"})
    events.append({"topic": "file:created", "payload": {"job": "space:configure"}})
    return events


def test_the_sample_table_matches_exactly_as_its_plugins_installed_would() -> None:
    """For every event, the table and a listener with each row's plugin installed agree: matches and long_job."""
    modules = ["space_configure", "workbook_submit", "file_process", "data_validate", "workbook_export"]
    modules.append("file_extract")
    eager = FlatfileListener()
    for module in modules:
        eager.use(importlib.import_module(f"flatfile_app_jobs.{module}").plugin)
    for event in _sample_events():
        assert sample_table.matches(event) == eager.matches(event), event
        table_long, eager_long = sample_table.long_job(event), eager.long_job(event)
        assert (table_long is None) == (eager_long is None), event
        if table_long is not None and eager_long is not None:
            assert table_long.handler is eager_long.handler
