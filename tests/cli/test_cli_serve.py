"""`flatfile-jobs serve`: real HTTP on loopback into the receiver; signed posts run, unsigned ones get 401."""

from __future__ import annotations

import io
import json
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from flatfile_jobs import webhook
from flatfile_jobs_cli.__main__ import build_parser, main
from flatfile_jobs_cli.local import LocalStack, ensure_jobs
from flatfile_jobs_cli.serve import serve
from flatfile_jobs_testing import FakeFlatfile, job_ready_event, signed_headers
from flatfile_stack.dead_letter import DEAD_LETTER_MESSAGE
from flatfile_stack.queues import Delivery

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks test vector's secret


@dataclass
class Served:
    stack: LocalStack
    out: io.StringIO
    stop: threading.Event
    thread: threading.Thread
    result: list[int]

    def post(self, event: dict[str, object], *, sign: bool = True) -> httpx.Response:
        body = json.dumps(event).encode()
        headers = {"content-type": "application/json"}
        if sign:
            headers = signed_headers(body, self.stack.secret)
        return httpx.post(self.stack.webhook_url, content=body, headers=headers)

    def wait_for(self, job_id: str, status: str, timeout: float = 10.0) -> None:
        assert self.stack.fake is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if job_id in self.stack.fake.jobs and self.stack.fake.job(job_id)["status"] == status:
                return
            time.sleep(0.02)
        raise AssertionError(f"{job_id} never became {status}")

    def wait_out(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.out.getvalue():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never printed:\n{self.out.getvalue()}")
            time.sleep(0.02)
        return self.out.getvalue()


@pytest.fixture
def start() -> Iterator[Callable[..., Served]]:
    """``start(*flags)``: serve on a free port in a thread; stopped (and joined) after the test."""
    running: list[Served] = []

    def launch(*flags: str) -> Served:
        args = build_parser().parse_args(["serve", "--port", "0", "--quiet", *flags])
        ready: list[LocalStack] = []
        got = threading.Event()
        out, stop, result = io.StringIO(), threading.Event(), []

        def on_ready(stack: LocalStack) -> None:
            ready.append(stack)
            got.set()

        thread = threading.Thread(
            target=lambda: result.append(serve(args, stop=stop, on_ready=on_ready, out=out))
        )
        thread.start()
        assert got.wait(10), out.getvalue()
        running.append(Served(ready[0], out, stop, thread, result))
        return running[-1]

    yield launch
    for served in running:
        served.stop.set()
        served.thread.join(10)


def test_a_signed_event_is_accepted_and_its_job_completes(start: Callable[..., Served]) -> None:
    """POST a signed job:ready event: 202 from the receiver, and the worker completes the job in the fake."""
    served = start("--secret", SECRET)
    event = job_ready_event("space:configure")
    answer = served.post(event)
    assert answer.status_code == 202
    assert answer.json() == {"status": "accepted", "jobId": event["context"]["jobId"], "eventId": event["id"]}
    served.wait_for(event["context"]["jobId"], "complete")
    assert served.stack.secret == SECRET
    deadline = time.monotonic() + 5
    while "worker  space:configure" not in served.out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    out = served.out.getvalue()
    assert "POST /webhook 202" in out
    assert f"worker  space:configure {event['context']['jobId']}: complete  Job complete" in out


def test_a_real_api_url_is_used_instead_of_the_fake(start: Callable[..., Served], fake: FakeFlatfile) -> None:
    """--api-url/--api-key: no fake is started; the jobs run against the given API (here a fake of the test's)."""
    served = start("--secret", SECRET, "--api-url", fake.url, "--api-key", fake.token)
    assert served.stack.fake is None
    event = fake.create_job_event("workbook:submit")
    body = json.dumps(event).encode()
    headers = signed_headers(body, SECRET)
    assert httpx.post(served.stack.webhook_url, content=body, headers=headers).status_code == 202
    deadline = time.monotonic() + 10
    while fake.job(event["context"]["jobId"])["status"] != "complete" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.job(event["context"]["jobId"])["outcome"]["message"] == "Data submitted successfully."
    assert f"real, {fake.url}" in served.out.getvalue()


def test_an_unsigned_event_is_refused_with_401(start: Callable[..., Served]) -> None:
    """Without a signature the receiver answers 401 and nothing is enqueued."""
    served = start()
    answer = served.post(job_ready_event("space:configure"), sign=False)
    assert answer.status_code == 401
    assert answer.json()["error"] == "WebhookVerificationError"
    assert served.stack.queue.pending() == 0


def test_allow_unsigned_accepts_plain_posts(start: Callable[..., Served]) -> None:
    """--allow-unsigned: a plain POST is accepted (local experiments only)."""
    served = start("--allow-unsigned")
    event = job_ready_event("workbook:submit")
    assert served.post(event, sign=False).status_code == 202
    served.wait_for(event["context"]["jobId"], "complete")
    assert "unsigned requests accepted" in served.out.getvalue()


def test_other_paths_get_the_resolvers_404_and_non_utf8_bodies_arrive_base64(
    start: Callable[..., Served],
) -> None:
    """GET /nope is 404; a non-UTF-8 body reaches the receiver base64-encoded and is refused as bad JSON."""
    served = start("--secret", SECRET)
    assert httpx.get(served.stack.url + "/nope").status_code == 404
    body = b"\xff\xfe not json"
    headers = signed_headers(body, SECRET, msg_id="msg_1")
    answer = httpx.post(served.stack.webhook_url, content=body, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"] == "MalformedJSONError"


def test_the_printed_curl_command_posts_a_valid_signed_event(start: Callable[..., Served]) -> None:
    """The banner's curl example carries a signature that verifies, and posting it runs the job."""
    served = start()
    text = served.out.getvalue()
    assert served.stack.secret in text
    command = text.split("  curl", 1)[1].split("\n\n", 1)[0]
    parts = shlex.split("curl" + command.replace("\\\n", " "))
    headers = dict(parts[i + 1].split(": ", 1) for i, part in enumerate(parts) if part == "-H")
    body = parts[parts.index("--data-binary") + 1].encode()
    webhook.verify([served.stack.secret], body, headers)
    assert httpx.post(served.stack.webhook_url, content=body, headers=headers).status_code == 202


def test_stopping_closes_the_port_and_every_thread(start: Callable[..., Served]) -> None:
    """After stop the server thread returns 0, the port refuses connections, and no thread is left (fixture)."""
    served = start()
    port = served.stack.front.port if served.stack.front else 0
    with httpx.Client() as client:  # a kept-alive connection must not block the shutdown
        assert client.get(served.stack.url + "/nope").status_code == 404
        served.stop.set()
        served.thread.join(10)
    assert served.result == [0]
    assert "Stopped." in served.out.getvalue()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_a_port_in_use_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Serving on a taken port exits 2 naming --port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", "--port", str(taken.getsockname()[1]), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flatfile-jobs: cannot listen on 127.0.0.1:")
    assert "--port" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--api-url", "http://127.0.0.1:9/api"],
            "--api-url needs a key: pass --api-key sk_... or set FLATFILE_API_KEY",
        ),
        (["--api-key", "sk_x"], "--api-key needs --api-url"),
        (["--secret", "not-a-secret"], "invalid webhook secret"),
    ],
)
def test_bad_flags_are_one_line_errors(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Missing or wrong settings exit 2 with one line saying what to set."""
    assert main(["serve", "--port", "0", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_progress_updates_and_the_outcome_are_printed_as_the_fake_receives_them(
    start: Callable[..., Served],
) -> None:
    """One progress line per ack the fake accepted (percent and the info Flatfile shows), then the outcome."""
    served = start("--secret", SECRET)
    event = job_ready_event("file:process", workbook_id="us_wb_p1")
    job_id = event["context"]["jobId"]
    assert served.post(event).status_code == 202
    out = served.wait_out(f"worker  file:process {job_id}: complete")
    assert served.stack.fake is not None
    expected, info = [], ""
    for call, body in served.stack.fake.calls(job_id):
        if call.endswith("/ack"):
            assert isinstance(body, dict)
            info = body.get("info", info)
            expected.append(f"progress file:process {job_id} {body['progress']:>3}%  {info}")
    assert len(expected) >= 2
    assert [line for line in out.splitlines() if line.startswith("progress ")] == expected
    assert (
        f"worker  file:process {job_id}: complete  File processed - Your file was processed successfully.\n"
        "        next: [Review data] opens workbook us_wb_p1\n"
    ) in out


def test_a_duplicate_delivery_says_so_instead_of_a_second_completion(start: Callable[..., Served]) -> None:
    """The same delivery twice: the job runs once, and the second record prints 'duplicate of …, not run'."""
    served = start("--secret", SECRET)
    event = job_ready_event("space:configure")
    job_id = event["context"]["jobId"]
    assert served.post(event).status_code == 202
    served.wait_out(f"worker  space:configure {job_id}: complete")
    assert served.post(event).status_code == 202
    out = served.wait_out(f"worker  space:configure {job_id}: duplicate of {job_id}, not run")
    assert out.count("complete  Job complete") == 1
    assert served.stack.fake is not None
    assert [call for call, _ in served.stack.fake.calls(job_id) if call.endswith("/complete")] == [
        f"POST /jobs/{job_id}/complete"
    ]


def test_a_changed_handler_is_used_by_the_next_job(start: Callable[..., Served], jobs_copy: Path) -> None:
    """Edit a handler's outcome message while serve runs: it says it reloaded and the next job uses the edit."""
    served = start("--secret", SECRET)
    assert str(jobs_copy) in served.out.getvalue()
    assert served.stack.fake is not None
    first = job_ready_event("workbook:submit")
    assert served.post(first).status_code == 202
    served.wait_for(first["context"]["jobId"], "complete")
    handler = jobs_copy / "workbook_submit.py"
    handler.write_text(handler.read_text().replace("Data submitted successfully.", "Sent to the warehouse."))
    second = job_ready_event("workbook:submit")
    assert served.post(second).status_code == 202
    served.wait_for(second["context"]["jobId"], "complete")
    assert (
        served.stack.fake.job(first["context"]["jobId"])["outcome"]["message"]
        == "Data submitted successfully."
    )
    assert served.stack.fake.job(second["context"]["jobId"])["outcome"]["message"] == "Sent to the warehouse."
    assert "Reloaded flatfile_app_jobs (workbook_submit.py changed)" in served.out.getvalue()


def test_a_handler_module_added_while_serving_gets_its_jobs(
    start: Callable[..., Served], add_sheet_export: Callable[[], None]
) -> None:
    """A job no handler wants is ignored; add a module (and register it) and the next one is accepted and run."""
    served = start("--secret", SECRET)
    before = served.post(job_ready_event("sheet:export"))
    assert (before.status_code, before.json()["status"]) == (200, "ignored")
    add_sheet_export()
    event = job_ready_event("sheet:export")
    job_id = event["context"]["jobId"]
    after = served.post(event)
    assert (after.status_code, after.json()["status"]) == (202, "accepted")
    out = served.wait_out(f"worker  sheet:export {job_id}: complete  Export ready - Exported v1.")
    assert "Reloaded flatfile_app_jobs (__init__.py, sheet_export.py changed)" in out
    assert f"progress sheet:export {job_id}  40%  Exporting the sheet..." in out


def test_a_handler_that_fails_to_import_keeps_the_previous_code(
    start: Callable[..., Served], jobs_copy: Path
) -> None:
    """A syntax error is printed and the old handler keeps running jobs; fixing the file reloads it."""
    served = start("--secret", SECRET)
    assert served.stack.fake is not None
    handler = jobs_copy / "workbook_submit.py"
    good = handler.read_text()
    handler.write_text(good.replace("def submit_workbook(", "def submit_workbook(((", 1))
    broken = job_ready_event("workbook:submit")
    assert served.post(broken).status_code == 202
    served.wait_for(broken["context"]["jobId"], "complete")
    out = served.out.getvalue()
    assert "Reload of flatfile_app_jobs failed; the previous handlers stay in use:" in out
    assert "SyntaxError" in out
    assert (
        served.stack.fake.job(broken["context"]["jobId"])["outcome"]["message"]
        == "Data submitted successfully."
    )
    handler.write_text(good.replace("Data submitted successfully.", "Fixed and sent."))
    fixed = job_ready_event("workbook:submit")
    assert served.post(fixed).status_code == 202
    served.wait_for(fixed["context"]["jobId"], "complete")
    assert served.stack.fake.job(fixed["context"]["jobId"])["outcome"]["message"] == "Fixed and sent."


def test_no_reload_keeps_the_handlers_loaded_at_start(start: Callable[..., Served], jobs_copy: Path) -> None:
    """--no-reload: edits are not picked up, and the banner says the handlers are loaded once."""
    served = start("--secret", SECRET, "--no-reload")
    assert served.stack.fake is not None
    handler = jobs_copy / "workbook_submit.py"
    handler.write_text(handler.read_text().replace("Data submitted successfully.", "Sent to the warehouse."))
    event = job_ready_event("workbook:submit")
    assert served.post(event).status_code == 202
    served.wait_for(event["context"]["jobId"], "complete")
    assert (
        served.stack.fake.job(event["context"]["jobId"])["outcome"]["message"]
        == "Data submitted successfully."
    )
    assert "loaded once (--no-reload)" in served.out.getvalue()


def test_a_record_no_handler_runs_fails_until_dead_lettered_and_is_not_called_a_duplicate(
    start: Callable[..., Served],
) -> None:
    """A queued job no handler matches (say, its module was removed) fails its record, is redelivered, then
    dead-lettered, which fails the job in Flatfile: it is never left ready unseen, nor called a duplicate."""
    served = start("--secret", SECRET)
    assert served.stack.fake is not None
    event = job_ready_event("sheet:gone")
    job_id = event["context"]["jobId"]
    ensure_jobs(served.stack.fake, [event])
    served.stack.queue.send(Delivery(event=event, body=json.dumps(event), delivery_id=event["id"]))
    served.wait_for(job_id, "failed", timeout=60)
    out = served.wait_out(f"worker  sheet:gone {job_id}: failed, the queue will redeliver it")
    assert out.count(f"worker  sheet:gone {job_id}: failed") == served.stack.queue.max_receives
    assert served.stack.fake.job(job_id)["outcome"]["message"] == DEAD_LETTER_MESSAGE.format(job_id=job_id)
    assert "duplicate" not in out


def test_a_long_session_prints_no_metrics(
    start: Callable[..., Served], capsys: pytest.CaptureFixture[str]
) -> None:
    """Local runs disable Powertools metrics, whose flush (3.37) then neither prints nor clears them: a worker's
    metrics piled up until a metric's 100th value, which add_metric printed as an EMF line anyway, and the next
    flush found nothing and warned. Now each invocation's metrics are dropped after it: 120 jobs on one worker
    print no EMF line and every job completes."""
    served = start("--secret", SECRET)
    assert served.stack.fake is not None
    events = [job_ready_event("space:configure") for _ in range(120)]
    ensure_jobs(served.stack.fake, events)
    for event in events:
        served.stack.queue.send(Delivery(event=event, body=json.dumps(event), delivery_id=event["id"]))
    for event in events:
        served.wait_for(event["context"]["jobId"], "complete", timeout=60)
    assert "failed" not in served.out.getvalue()
    assert '"_aws"' not in capsys.readouterr().out
