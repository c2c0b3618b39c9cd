"""`flatfile-jobs develop`: poll the events endpoint, run each job once, ack it, back off, stop cleanly."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from flatfile_jobs import EventPoller, FlatfileListener
from flatfile_jobs_cli.__main__ import main
from flatfile_jobs_cli._common import CliError
from flatfile_jobs_cli.develop import DevelopLoop, parse_since
from flatfile_jobs_testing import FakeFlatfile, Fault

ENV = "us_env_dev"
FAST = ["--interval", "0.01", "--max-interval", "0.04"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def configured(fake: FakeFlatfile, monkeypatch: pytest.MonkeyPatch) -> FakeFlatfile:
    """The environment develop reads, pointing at the fake."""
    monkeypatch.setenv("FLATFILE_API_URL", fake.url)
    monkeypatch.setenv("FLATFILE_API_KEY", fake.token)
    monkeypatch.setenv("FLATFILE_ENVIRONMENT_ID", ENV)
    return fake


def accepted(fake: FakeFlatfile, job_id: str) -> int:
    """How many times the job was acked with "Accepted" (once per run of its handler)."""
    return sum(
        1
        for call, body in fake.calls(job_id)
        if call.endswith("/ack") and body == {"info": "Accepted", "progress": 0}
    )


def event_polls(fake: FakeFlatfile) -> int:
    return sum(1 for r in fake.requests if r.method == "GET" and r.path == "/events" and not r.fault)


def test_two_jobs_run_once_are_acked_and_other_topics_are_left(
    configured: FakeFlatfile, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two job:ready events run once each and are acked; a file:created event is neither run nor acked."""
    fake = configured
    jobs = [fake.create_job_event(job, environment_id=ENV) for job in ("space:configure", "workbook:submit")]
    other = fake.add_event({"topic": "file:created", "context": {"environmentId": ENV}, "payload": {}})
    assert main(["develop", *FAST, "--max-polls", "3"]) == 0
    for event in jobs:
        job_id = event["context"]["jobId"]
        assert fake.job(job_id)["status"] == "complete"
        assert accepted(fake, job_id) == 1
        assert fake.events[event["id"]].get("acknowledgedAt")
    assert not fake.events[other["id"]].get("acknowledgedAt")
    assert event_polls(fake) == 3  # the polls after the first found nothing new
    out = capsys.readouterr().out
    assert "space:configure complete" in out
    assert "Stopped after 3 poll(s); 2 event(s) handled." in out


def test_verbose_shows_the_librarys_lines_on_stderr(
    configured: FakeFlatfile, capsys: pytest.CaptureFixture[str]
) -> None:
    """--verbose: workbook:submit (debug=True) shows its API calls and "Job complete", one compact line each."""
    fake = configured
    event = fake.create_job_event("workbook:submit", environment_id=ENV)
    job_id = event["context"]["jobId"]
    assert main(["develop", *FAST, "--max-polls", "1", "--verbose"]) == 0
    err = capsys.readouterr().err.splitlines()
    calls = [line for line in err if "Flatfile API call" in line and f"job_id={job_id}" in line]
    assert len(calls) == len(fake.calls(job_id)) == 4
    assert all("method=POST" in line and "status=200" in line for line in calls)
    assert sum("[@flatfile/plugin-job-handler]:[INFO] Job complete" in line for line in err) == 1
    assert logging.getLogger("flatfile_jobs").handlers == []  # put back afterwards


def test_a_second_run_handles_nothing(configured: FakeFlatfile, capsys: pytest.CaptureFixture[str]) -> None:
    """Handled events were acked, so a later develop run sees none of them again."""
    event = configured.create_job_event("file:process", environment_id=ENV)
    assert main(["develop", *FAST, "--max-polls", "1"]) == 0
    assert main(["develop", *FAST, "--max-polls", "2"]) == 0
    assert accepted(configured, event["context"]["jobId"]) == 1
    assert capsys.readouterr().out.endswith("Stopped after 2 poll(s); 0 event(s) handled.\n")


def test_a_job_no_handler_wants_is_not_acked(
    configured: FakeFlatfile, capsys: pytest.CaptureFixture[str]
) -> None:
    """job:ready for a job this checkout has no handler for is left unacked for other consumers."""
    event = configured.create_job_event("sheet:elsewhere", environment_id=ENV)
    assert main(["develop", *FAST, "--max-polls", "2"]) == 0
    assert configured.job(event["context"]["jobId"])["status"] == "ready"
    assert not configured.events[event["id"]].get("acknowledgedAt")
    assert "no handler for sheet:elsewhere" in capsys.readouterr().out


def test_a_failing_events_endpoint_backs_off_and_recovers(
    configured: FakeFlatfile, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two 503s on GET /events are reported and waited out; the job then runs."""
    event = configured.create_job_event("space:configure", environment_id=ENV)
    configured.add_fault(Fault(path="/events", method="GET", status=503, times=2))
    assert main(["develop", *FAST, "--max-polls", "4"]) == 0
    assert configured.job(event["context"]["jobId"])["status"] == "complete"
    assert capsys.readouterr().out.count("Polling failed (503: Injected fault); retrying in") == 2


def test_max_polls_bounds_the_run(configured: FakeFlatfile) -> None:
    """--max-polls 2 with nothing to do: exactly two polls, then exit 0."""
    assert main(["develop", *FAST, "--max-polls", "2"]) == 0
    assert event_polls(configured) == 2


def test_waits_double_while_idle_up_to_the_cap(fake: FakeFlatfile) -> None:
    """Idle polls wait interval, 2x, 4x… capped at max-interval; a poll that finds work resets the wait."""
    waits: list[float] = []

    class Recorded(DevelopLoop):
        def _wait(self, seconds: float) -> None:
            waits.append(seconds)
            if len(waits) == 3:
                fake.create_job_event("space:configure", environment_id=ENV)

    from flatfile_jobs._config import ApiSettings

    settings = ApiSettings.resolve(api_url=fake.url, token=fake.token)
    poller = EventPoller(environment_id=ENV, settings=settings)
    listener = FlatfileListener()  # nothing handled: the job is passed over, still counted as activity
    Recorded(poller, listener, io.StringIO(), interval=1, max_interval=5, max_polls=9).run()
    assert waits == [1, 2, 4, 1, 2, 4, 5]


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "FLATFILE_API_KEY and FLATFILE_ENVIRONMENT_ID"),
        ({"FLATFILE_API_KEY": "sk_x"}, "needs FLATFILE_ENVIRONMENT_ID:"),
        ({"FLATFILE_ENVIRONMENT_ID": "us_env_x"}, "needs FLATFILE_API_KEY:"),
    ],
)
def test_missing_configuration_names_the_variables(
    env: dict[str, str], missing: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the key or the environment id, develop exits 2 with one line naming what to set."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["develop", "--max-polls", "1"]) == 2
    err = capsys.readouterr().err
    assert missing in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("90", 90.0),
        ("30s", 30.0),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("1970-01-01T00:01:40+00:00", 0.0),
    ],
)
def test_since_takes_durations_and_iso_times(value: str, seconds: float) -> None:
    """--since is a lookback: a duration, or an ISO time turned into seconds before now."""
    assert parse_since(value, now=100.0) == seconds


def test_since_rejects_anything_else() -> None:
    """Anything else is a CliError naming the accepted forms."""
    with pytest.raises(CliError, match="ISO time or a duration"):
        parse_since("yesterday")


def test_ctrl_c_stops_cleanly(configured: FakeFlatfile) -> None:
    """SIGINT while waiting: develop says it is stopping and exits 0 (a real process, a real signal)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "flatfile_jobs_cli",
        "develop",
        "--interval",
        "0.05",
        "--max-interval",
        "0.2",
    ]
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("Press Ctrl-C" in line for line in lines):
            lines.append(process.stdout.readline())
        deadline = time.monotonic() + 10
        while event_polls(configured) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Stopping after the current job" in out
    assert "Stopped after" in out


def test_a_job_whose_ack_fails_is_retried_then_runs(
    configured: FakeFlatfile, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused job ack (the handler never ran) is retried on a later poll; the job then runs once."""
    event = configured.create_job_event("space:configure", environment_id=ENV)
    configured.add_fault(Fault(path="/jobs/*/ack", status=400, times=1))
    assert main(["develop", *FAST, "--max-polls", "3"]) == 0
    assert configured.job(event["context"]["jobId"])["status"] == "complete"
    assert configured.events[event["id"]].get("acknowledgedAt")
    assert "(attempt 1, will retry)" in capsys.readouterr().out


def test_an_event_that_keeps_failing_is_given_up_and_left_unacked(
    configured: FakeFlatfile, capsys: pytest.CaptureFixture[str]
) -> None:
    """After three failed attempts develop moves on; the event stays unacked in Flatfile."""
    event = configured.create_job_event("space:configure", environment_id=ENV)
    configured.add_fault(Fault(path="/jobs/*/ack", status=400))
    assert main(["develop", *FAST, "--max-polls", "5"]) == 0
    assert not configured.events[event["id"]].get("acknowledgedAt")
    out = capsys.readouterr().out
    assert "(giving up after 3 attempts)" in out
    assert "0 event(s) handled" in out


def test_a_handler_added_while_developing_runs_the_next_event(
    configured: FakeFlatfile, add_sheet_export: Callable[[], None]
) -> None:
    """An event no handler wants is left; add and register a handler module, and the next event runs on it."""
    import threading

    from flatfile_jobs_cli import develop
    from flatfile_jobs_cli.__main__ import build_parser

    fake = configured
    first = fake.create_job_event("sheet:export", environment_id=ENV)
    args = build_parser().parse_args(
        ["develop", "--interval", "0.02", "--max-interval", "0.02", "--max-polls", "400"]
    )
    out = io.StringIO()
    runner = threading.Thread(target=develop.run, args=(args,), kwargs={"out": out})
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while "no handler for sheet:export" not in out.getvalue():
            assert time.monotonic() < deadline, out.getvalue()
            time.sleep(0.02)
        add_sheet_export()
        second = fake.create_job_event("sheet:export", environment_id=ENV)
        while fake.job(second["context"]["jobId"])["status"] != "complete":
            assert time.monotonic() < deadline, out.getvalue()
            time.sleep(0.02)
    finally:
        runner.join(30)
    assert fake.job(first["context"]["jobId"])["status"] == "ready"
    assert fake.job(second["context"]["jobId"])["outcome"]["message"] == "Exported v1."
    assert "Reloaded flatfile_app_jobs (__init__.py, sheet_export.py changed)" in out.getvalue()
