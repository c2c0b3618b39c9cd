"""`flatfile-jobs sign-events DIR`: receiver events re-signed in place, verifiable with webhook.verify."""

from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path

import pytest

from flatfile_jobs import webhook
from flatfile_jobs_cli.__main__ import main
from flatfile_jobs_testing import http_api_event, job_ready_event, request_body

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks test vector's secret


@pytest.fixture
def events(tmp_path: Path) -> Path:
    """An events folder: a plain, a base64 and a forwarder-shaped receiver event, plus a worker event."""
    receiver = tmp_path / "events" / "receiver"
    receiver.mkdir(parents=True)
    plain = job_ready_event("space:configure", event_id="us_evt_plain")
    body = json.dumps(plain).encode()
    old = {"content-type": "application/json", "Webhook-Signature": "v1,stale", "webhook-timestamp": "1"}
    (receiver / "plain.json").write_text(json.dumps(http_api_event("POST", "/webhook", old, body)))
    encoded = http_api_event("POST", "/webhook", {"content-type": "application/json"}, body)
    encoded.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
    (receiver / "encoded.json").write_text(json.dumps(encoded))
    forwarded = json.dumps(
        {"src": job_ready_event(event_id="us_evt_fwd"), "_accessToken": "sk_agent"}
    ).encode()
    (receiver / "forwarded.json").write_text(json.dumps(http_api_event("POST", "/webhook", {}, forwarded)))
    (tmp_path / "events" / "worker").mkdir()
    (tmp_path / "events" / "worker" / "batch.json").write_text('{"Records": []}')
    return tmp_path / "events"


def verified_id(path: Path) -> str:
    event = json.loads(path.read_text())
    return webhook.verify([SECRET], request_body(event), event["headers"])


def test_every_receiver_event_gets_a_fresh_verifiable_signature(
    events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Signatures verify over the exact body (base64 decoded), webhook-id is the event id, the timestamp is now."""
    assert main(["sign-events", str(events), "--secret", SECRET]) == 0
    receiver = events / "receiver"
    assert verified_id(receiver / "plain.json") == "us_evt_plain"
    assert verified_id(receiver / "encoded.json") == "us_evt_plain"
    assert verified_id(receiver / "forwarded.json") == "us_evt_fwd"
    headers = json.loads((receiver / "plain.json").read_text())["headers"]
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert "Webhook-Signature" not in headers  # stale copies in another case are replaced, not duplicated
    assert (events / "worker" / "batch.json").read_text() == '{"Records": []}'
    assert "3 event(s) signed" in capsys.readouterr().out


def test_the_secret_can_come_from_webhook_secret(events: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --secret, $WEBHOOK_SECRET is used."""
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    assert main(["sign-events", str(events)]) == 0
    assert verified_id(events / "receiver" / "plain.json") == "us_evt_plain"


def test_the_repos_receiver_events_can_be_signed(tmp_path: Path) -> None:
    """The checked-in events/receiver files are all HTTP API v2 events that sign and verify."""
    shutil.copytree(ROOT / "events" / "receiver", tmp_path / "receiver")
    assert main(["sign-events", str(tmp_path), "--secret", SECRET]) == 0
    for path in (tmp_path / "receiver").glob("*.json"):
        verified_id(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no signing secret: pass --secret whsec_... or set WEBHOOK_SECRET"),
        (["--secret", "whsec_***"], "invalid signing secret"),
    ],
)
def test_secret_problems_are_one_line_errors(
    events: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No secret or a malformed one: exit 2, one line naming what to set, files untouched."""
    before = (events / "receiver" / "plain.json").read_text()
    assert main(["sign-events", str(events), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert (events / "receiver" / "plain.json").read_text() == before


def test_a_folder_without_receiver_events_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pointing at the wrong folder exits 2 and says which folder was expected."""
    assert main(["sign-events", str(tmp_path), "--secret", SECRET]) == 2
    assert f"no {tmp_path / 'receiver'} folder" in capsys.readouterr().err
