"""The `flatfile-jobs` command: --help everywhere, usage errors, finding the checkout, the local stack's hygiene."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from flatfile_jobs_cli.__main__ import main
from flatfile_jobs_cli._common import CliError, find_root
from flatfile_jobs_cli.local import LocalOptions, LocalStack
from flatfile_jobs_testing import Fault, job_ready_event, signed_headers

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["demo", "serve", "invoke", "develop", "sign-events", "generate-event", "fake-api"]


@pytest.mark.parametrize("argv", [[], *([command] for command in COMMANDS)], ids=["top", *COMMANDS])
def test_help_is_available_everywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`flatfile-jobs [COMMAND] --help` prints usage and exits 0."""
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    assert "usage: flatfile-jobs" in capsys.readouterr().out


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    """No command: argparse's usage error, exit 2."""
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err


def test_the_console_script_runs() -> None:
    """`python -m flatfile_jobs_cli --help` works from a fresh process (the entry point's module)."""
    done = subprocess.run(
        [sys.executable, "-m", "flatfile_jobs_cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0
    for command in COMMANDS:
        assert command in done.stdout


def test_the_checkout_is_found_from_a_subfolder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from anywhere inside the checkout, the functions are found at its root."""
    assert find_root(ROOT / "layers" / "shared") == ROOT


def test_a_wrong_root_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """FLATFILE_JOBS_ROOT pointing elsewhere: exit 2 naming the variable and the missing file."""
    monkeypatch.setenv("FLATFILE_JOBS_ROOT", str(tmp_path))
    assert main(["demo", "--pace", "0"]) == 2
    err = capsys.readouterr().err
    assert "FLATFILE_JOBS_ROOT" in err
    assert "functions/receiver/app.py" in err
    with pytest.raises(CliError):
        find_root()


def test_a_job_that_keeps_failing_is_dead_lettered_and_failed_in_flatfile() -> None:
    """A record failing on every receive goes to the dead letters; the dead-letter function fails the job."""
    with LocalStack(LocalOptions(workers=1)) as stack:
        assert stack.fake is not None
        stack.fake.add_fault(Fault(path="/jobs/*/ack", status=400))  # not retried by the client: fails fast
        event = job_ready_event("space:configure", job_id="us_jb_dl1")
        body = json.dumps(event).encode()
        headers = signed_headers(body, stack.secret)
        assert httpx.post(stack.webhook_url, content=body, headers=headers).status_code == 202
        assert stack.drain(20)
        job = stack.fake.job("us_jb_dl1")
        assert job["status"] == "failed"
        assert "could not be processed" in job["outcome"]["message"]
        assert len(stack.dead_lettered) == 1
