"""The library's logging in a plain script: what ``debug=True`` prints when nothing configured logging.

Each test runs a real script in a fresh interpreter (logging unconfigured, as in a user's script) against the
test kit's fake Flatfile API, and reads its stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# The README's handler, run by a plain script; {options} and {setup} are filled in per test.
SCRIPT = """
import logging
import sys

from flatfile_jobs import FlatfileEvent, FlatfileListener, Tick, job_handler
from flatfile_jobs_testing import FakeFlatfile, Fault

{setup}


def configure_space(event: FlatfileEvent, tick: Tick) -> None:
    tick(10, "Starting configuration...")
    tick(100, "Configuration complete.")


with FakeFlatfile(token="sk_test_Pl41nScr1ptT0ken") as fake:
    event = fake.create_job_event("space:configure")
    {fault}
    listener = FlatfileListener().use(
        job_handler("space:configure", configure_space, api_url=fake.url, token=fake.token{options})
    )
    print(listener.dispatch(event)[0].status)
"""
TOKEN = "sk_test_Pl41nScr1ptT0ken"
COMPLETE = "[@flatfile/plugin-job-handler]:[INFO] Job complete"


def run_script(
    tmp_path: Path, *, options: str = "", setup: str = "", fault: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run SCRIPT in a fresh python (the project's venv), POWERTOOLS_* unset unless ``env`` sets them."""
    script = tmp_path / "script.py"
    script.write_text(SCRIPT.format(options=options, setup=setup, fault=fault))
    clean = {key: value for key, value in os.environ.items() if not key.startswith("POWERTOOLS_")}
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
        check=False,
    )


def api_call_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "Flatfile API call" in line]


def test_debug_true_prints_the_jobs_lines_to_stderr_in_a_plain_script(tmp_path: Path) -> None:
    """debug=True, no logging configured: received, each API call (method, path, status, ms), Job complete."""
    done = run_script(tmp_path, options=", debug=True, tick_interval=0")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "complete\n"
    lines = done.stderr.splitlines()
    assert "Job received" in lines[0]
    calls = api_call_lines(done.stderr)
    assert len(calls) == 4
    assert all("method=POST" in line and "status=200" in line and " ms=" in line for line in calls)
    assert [line.split("path=")[1].split()[0].rsplit("/", 1)[1] for line in calls] == [
        "ack",
        "ack",
        "ack",
        "complete",
    ]
    assert sum(COMPLETE in line for line in lines) == 1
    assert all(" INFO " in line for line in lines)
    assert TOKEN not in done.stderr


def test_powertools_log_level_debug_turns_the_lines_on_too(tmp_path: Path) -> None:
    """POWERTOOLS_LOG_LEVEL=DEBUG without debug=True prints the same lines."""
    done = run_script(tmp_path, env={"POWERTOOLS_LOG_LEVEL": "DEBUG"})
    assert done.returncode == 0, done.stderr
    assert len(api_call_lines(done.stderr)) == 4  # Accepted, tick 10, tick 100 (flushed), complete
    assert COMPLETE in done.stderr


def test_without_debug_a_plain_script_prints_nothing(tmp_path: Path) -> None:
    """debug off: the job runs silently (stdlib logging's default: warnings and up, none here)."""
    done = run_script(tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "complete\n", "")


def test_an_app_that_configured_logging_gets_each_line_once_in_its_format(tmp_path: Path) -> None:
    """logging.basicConfig in the script: the lines go through the app's handler only, none twice."""
    setup = 'logging.basicConfig(level=logging.INFO, format="APP %(name)s %(message)s", stream=sys.stderr)'
    done = run_script(tmp_path, options=", debug=True", setup=setup)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines.count(f"APP flatfile_jobs {COMPLETE}") == 1
    assert all(line.startswith("APP ") for line in lines)  # the app's format only (httpx logs its own, too)
    assert len(api_call_lines(done.stderr)) == 4


@pytest.mark.parametrize("debug", [True, False])
def test_a_failure_prints_one_message_and_its_traceback_once(tmp_path: Path, debug: bool) -> None:
    """An ack the API refuses: one ERROR line naming it, then Python's traceback of it once (not logged too)."""
    fault = 'fake.add_fault(Fault(path="/jobs/*", status=401))'
    done = run_script(tmp_path, options=f", debug={debug}", fault=fault)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    # The script's uncaught DispatchError, chained from the API error: each exception shown once.
    assert lines.count("flatfile_jobs._errors.FlatfileAPIError: Injected fault") == 1
    assert done.stderr.count("The above exception was the direct cause") == 1
    assert lines[-1].startswith("flatfile_jobs._errors.DispatchError: 1 callback(s) failed")
    [failed] = [line for line in lines if "Listener callback failed" in line]
    # With debug, our console line names the error; without, logging's last resort prints the bare message.
    assert (
        failed.endswith("reason=FlatfileAPIError: Injected fault")
        if debug
        else failed == "Listener callback failed"
    )
    assert lines.index(failed) < lines.index("Traceback (most recent call last):")


def test_the_script_above_is_the_readme_handler() -> None:
    """The handler the scripts run is the README's "Write a job handler" example, typed."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "def configure_space(event: FlatfileEvent, tick: Tick) -> None:" in readme
    assert "from flatfile_jobs import FlatfileEvent, Tick, job_handler" in readme
    assert "def configure_space(event: FlatfileEvent, tick: Tick) -> None:" in SCRIPT
