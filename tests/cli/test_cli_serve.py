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

import httpx
import pytest

from flatfile_jobs import webhook
from flatfile_jobs.testing import FakeFlatfile, job_ready_event
from flatfile_jobs_cli.__main__ import build_parser, main
from flatfile_jobs_cli.local import LocalStack
from flatfile_jobs_cli.serve import serve

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
            headers.update(webhook.sign(self.stack.secret, body, msg_id=str(event["id"])))
        return httpx.post(self.stack.webhook_url, content=body, headers=headers)

    def wait_for(self, job_id: str, status: str, timeout: float = 10.0) -> None:
        assert self.stack.fake is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if job_id in self.stack.fake.jobs and self.stack.fake.job(job_id)["status"] == status:
                return
            time.sleep(0.02)
        raise AssertionError(f"{job_id} never became {status}")


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
    headers = {"content-type": "application/json", **webhook.sign(SECRET, body, msg_id=event["id"])}
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
    headers = {"content-type": "application/json", **webhook.sign(SECRET, body, msg_id="msg_1")}
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
