"""ApiSettings (env names, /v1, precedence, secrecy) and FlatfileClient (headers, retries, Retry-After, budget,
encoded path segments, unusable answers, per-attempt deadline and byte cap)."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest

from flatfile_jobs import ConfigurationError, FlatfileAPIError
from flatfile_jobs._api import KEEPALIVE_EXPIRY, FlatfileClient, client_for, tls_context
from flatfile_jobs._config import ApiSettings
from flatfile_jobs_testing import FakeFlatfile, Fault

# -- ApiSettings -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://127.0.0.1:9/api", "http://127.0.0.1:9/api/v1"),
        ("http://127.0.0.1:9/api/", "http://127.0.0.1:9/api/v1"),
        ("http://127.0.0.1:9/api/v1", "http://127.0.0.1:9/api/v1"),
        ("http://127.0.0.1:9/api/v1/", "http://127.0.0.1:9/api/v1"),
        ("https://platform.eu.flatfile.com/api", "https://platform.eu.flatfile.com/api/v1"),
    ],
)
def test_api_url_from_the_environment_gets_v1_once(
    monkeypatch: pytest.MonkeyPatch, url: str, base: str
) -> None:
    """FLATFILE_API_URL has /v1 joined to it, and never twice."""
    monkeypatch.setenv("FLATFILE_API_URL", url)
    monkeypatch.setenv("FLATFILE_BEARER_TOKEN", "sk_env")
    assert ApiSettings.resolve().base_url == base


def test_default_api_url_is_flatfiles_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without FLATFILE_API_URL the API is https://platform.flatfile.com/api/v1."""
    monkeypatch.setenv("FLATFILE_API_KEY", "sk_env")
    assert ApiSettings.resolve().base_url == "https://platform.flatfile.com/api/v1"


def test_bearer_token_is_preferred_over_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """FLATFILE_BEARER_TOKEN wins over FLATFILE_API_KEY; the key is the fallback."""
    monkeypatch.setenv("FLATFILE_API_KEY", "sk_key")
    assert ApiSettings.resolve().token == "sk_key"
    monkeypatch.setenv("FLATFILE_BEARER_TOKEN", "sk_bearer")
    assert ApiSettings.resolve().token == "sk_bearer"


def test_explicit_arguments_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """token=, api_url=, timeout= and retry_budget= beat the environment and the defaults."""
    monkeypatch.setenv("FLATFILE_API_URL", "http://127.0.0.1:1/api")
    monkeypatch.setenv("FLATFILE_BEARER_TOKEN", "sk_env")
    settings = ApiSettings.resolve(
        api_url="http://127.0.0.1:2/x", token="sk_arg", timeout=3.0, retry_budget=4.0
    )
    assert (settings.base_url, settings.token, settings.timeout, settings.retry_budget) == (
        "http://127.0.0.1:2/x/v1",
        "sk_arg",
        3.0,
        4.0,
    )


def test_missing_token_names_both_variables() -> None:
    """No token anywhere is a ConfigurationError naming FLATFILE_BEARER_TOKEN and FLATFILE_API_KEY."""
    with pytest.raises(ConfigurationError) as caught:
        ApiSettings.resolve(api_url="http://127.0.0.1:9/api")
    assert "FLATFILE_BEARER_TOKEN" in str(caught.value)
    assert "FLATFILE_API_KEY" in str(caught.value)


def test_empty_token_variables_count_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty FLATFILE_BEARER_TOKEN falls through to FLATFILE_API_KEY, and both empty is an error."""
    monkeypatch.setenv("FLATFILE_BEARER_TOKEN", "")
    monkeypatch.setenv("FLATFILE_API_KEY", "sk_key")
    assert ApiSettings.resolve().token == "sk_key"
    monkeypatch.setenv("FLATFILE_API_KEY", "")
    with pytest.raises(ConfigurationError):
        ApiSettings.resolve()


def test_settings_can_be_read_from_a_given_mapping() -> None:
    """environ= replaces os.environ (the worker passes what it read from its secrets)."""
    settings = ApiSettings.resolve(
        environ={"FLATFILE_API_KEY": "sk_map", "FLATFILE_API_URL": "http://127.0.0.1:3"}
    )
    assert (settings.base_url, settings.token) == ("http://127.0.0.1:3/v1", "sk_map")


def test_repr_hides_the_token() -> None:
    """repr() and str() of the settings never show the token."""
    settings = ApiSettings.resolve(api_url="http://127.0.0.1:9", token="sk_live_secret_value")
    assert "sk_live_secret_value" not in repr(settings)
    assert "sk_live_secret_value" not in str(settings)
    assert "127.0.0.1" in repr(settings)


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after they are read."""
    settings = ApiSettings.resolve(api_url="http://127.0.0.1:9", token="sk")
    with pytest.raises(AttributeError):
        settings.token = "other"  # type: ignore[misc]


async def test_keep_alive_outlasts_gaps_between_warm_invocations() -> None:
    """The client jobs get keeps idle connections >= 60 s (httpx's default 5 s drops them between invocations)."""
    client = client_for(ApiSettings.resolve(api_url="http://127.0.0.1:9", token="sk"))
    try:
        pool = client._http._transport._pool  # type: ignore[attr-defined]  # httpx's transport, httpcore's pool
        assert pool._keepalive_expiry >= 60
        assert pool._keepalive_expiry == KEEPALIVE_EXPIRY
    finally:
        await client.aclose()


async def test_every_client_shares_the_process_tls_context() -> None:
    """Clients for different settings verify with one TLS context (httpx built one per client: ~30 ms each)."""
    first = client_for(ApiSettings.resolve(api_url="https://127.0.0.1:9", token="sk_a"))
    second = client_for(ApiSettings.resolve(api_url="https://127.0.0.1:8", token="sk_b"))
    try:
        assert first is not second
        for client in (first, second):
            pool = client._http._transport._pool  # type: ignore[attr-defined]  # httpx's transport, httpcore's pool
            assert pool._ssl_context is tls_context()
        assert tls_context().verify_mode == ssl.CERT_REQUIRED
        assert tls_context().check_hostname
    finally:
        await first.aclose()
        await second.aclose()


# -- FlatfileClient against the fake ------------------------------------------------------------------------


@pytest.fixture
async def client_factory(fake: FakeFlatfile) -> AsyncIterator[Callable[..., FlatfileClient]]:
    """Build clients pointed at the fake (closed at the end of the test)."""
    made: list[FlatfileClient] = []

    def make(*, budget: float = 2.0, timeout: float = 5.0, token: str | None = None) -> FlatfileClient:
        settings = ApiSettings.resolve(
            api_url=fake.url, token=token or fake.token, retry_budget=budget, timeout=timeout
        )
        made.append(FlatfileClient(settings))
        return made[-1]

    yield make
    for client in made:
        await client.aclose()


async def test_client_sends_bearer_token_and_disable_hooks(
    fake: FakeFlatfile, client_factory: Callable[..., FlatfileClient]
) -> None:
    """Every request carries Authorization: Bearer <token> and X-Disable-Hooks: true, under /v1."""
    job_id = fake.add_job()["id"]
    job = await client_factory().get_job(job_id)
    assert job["id"] == job_id  # the {"data": ...} wrapper is removed
    (request,) = fake.requests
    assert request.headers["authorization"] == f"Bearer {fake.token}"
    assert request.headers["x-disable-hooks"] == "true"
    assert (request.method, request.path) == ("GET", f"/jobs/{job_id}")


async def test_calls_send_their_json_bodies(
    fake: FakeFlatfile, client_factory: Callable[..., FlatfileClient]
) -> None:
    """ack/complete post their bodies as JSON and return the job."""
    job_id = fake.add_job()["id"]
    client = client_factory()
    acked = await client.ack_job(job_id, {"info": "Accepted", "progress": 0})
    done = await client.complete_job(job_id, {"outcome": {"message": "m"}})
    assert (acked["status"], done["status"]) == ("executing", "complete")
    assert fake.calls(job_id) == [
        (f"POST /jobs/{job_id}/ack", {"info": "Accepted", "progress": 0}),
        (f"POST /jobs/{job_id}/complete", {"outcome": {"message": "m"}}),
    ]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_retryable_statuses_are_retried(
    fake: FakeFlatfile, client_factory: Callable[..., FlatfileClient], status: int
) -> None:
    """408, 429 and 5xx are retried until an attempt succeeds."""
    job_id = fake.add_job()["id"]
    fault = fake.add_fault(Fault(path="/jobs/*", method="GET", status=status, times=2))
    job = await client_factory().get_job(job_id)
    assert job["id"] == job_id
    assert fault.hits == 2
    assert len(fake.calls(job_id, include_faults=True)) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_other_client_errors_are_not_retried(
    fake: FakeFlatfile, client_factory: Callable[..., FlatfileClient], status: int
) -> None:
    """Other 4xx fail at once with a FlatfileAPIError carrying status, method, path, job id and message."""
    job_id = fake.add_job()["id"]
    fake.add_fault(Fault(path="/jobs/*/ack", status=status))
    with pytest.raises(FlatfileAPIError) as caught:
        await client_factory().ack_job(job_id, {"progress": 1})
    error = caught.value
    assert (error.status, error.method, error.path, error.job_id) == (
        status,
        "POST",
        f"/jobs/{job_id}/ack",
        job_id,
    )
    assert str(error) == "Injected fault"  # the API's errors[0].message
    assert len(fake.calls(job_id, include_faults=True)) == 1


async def test_connection_resets_are_retried(
    fake: FakeFlatfile, client_factory: Callable[..., FlatfileClient]
) -> None:
    """A connection reset is retried like a 5xx."""
    job_id = fake.add_job()["id"]
    fake.add_fault(Fault(path="/jobs/*", method="GET", reset=True, times=2))
    assert (await client_factory().get_job(job_id))["id"] == job_id
    statuses = [r.status for r in fake.requests]
    assert statuses == [0, 0, 200]


async def test_timeouts_are_retried(
    fake: FakeFlatfile, client_factory: Callable[..., FlatfileClient]
) -> None:
    """A request that exceeds the per-request timeout is retried."""
    job_id = fake.add_job()["id"]
    slow = fake.add_fault(Fault(path="/jobs/*", method="GET", status=None, delay=0.4, times=1))
    started = time.monotonic()
    assert (await client_factory(timeout=0.15, budget=3.0).get_job(job_id))["id"] == job_id
    assert time.monotonic() - started < 1.0
    assert slow.hits == 1
    await asyncio.sleep(0.5)  # let the slow answer finish, so the fake records it too
    assert [r.status for r in fake.requests] == [200, 200]  # the attempt given up on, then the retry


async def test_retry_after_seconds_is_honoured(
    fake: FakeFlatfile, client_factory: Callable[..., FlatfileClient]
) -> None:
    """After a 429 with Retry-After: 0.3 the next attempt waits at least 0.3 s."""
    job_id = fake.add_job()["id"]
    fake.add_fault(Fault(path="/jobs/*", method="GET", status=429, retry_after=0.3, times=1))
    await client_factory().get_job(job_id)
    first, second = fake.requests
    assert second.at - first.at >= 0.3


async def test_retry_after_as_an_http_date_is_honoured() -> None:
    """Retry-After given as an HTTP date is parsed: the retry waits until then."""
    seen: list[float] = []
    retry_at = email.utils.formatdate(time.time() + 2, usegmt=True)

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        if len(seen) == 1:
            return httpx.Response(
                503, headers={"Retry-After": retry_at}, json={"errors": [{"message": "later"}]}
            )
        return httpx.Response(200, json={"data": {"id": "us_jb_1", "status": "ready"}})

    settings = ApiSettings.resolve(api_url="http://127.0.0.1:9", token="sk", retry_budget=5.0)
    http = httpx.AsyncClient(base_url=settings.base_url, transport=httpx.MockTransport(answer))
    async with http:
        job = await FlatfileClient(settings, http=http).get_job("us_jb_1")
    assert job["id"] == "us_jb_1"
    assert len(seen) == 2
    # The date has whole-second precision: the wait is between 1 and 2 s, far above the backoff's 0.25 s cap.
    assert seen[1] - seen[0] >= 0.9


async def test_an_unparseable_retry_after_falls_back_to_backoff() -> None:
    """A garbage Retry-After does not break the retry: backoff is used instead."""
    calls: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "soon-ish"})
        return httpx.Response(200, json={"data": {"id": "us_jb_1"}})

    settings = ApiSettings.resolve(api_url="http://127.0.0.1:9", token="sk", retry_budget=2.0)
    async with httpx.AsyncClient(base_url=settings.base_url, transport=httpx.MockTransport(answer)) as http:
        assert (await FlatfileClient(settings, http=http).get_job("us_jb_1"))["id"] == "us_jb_1"
    assert len(calls) == 2


async def test_total_budget_bounds_the_retries(
    fake: FakeFlatfile, client_factory: Callable[..., FlatfileClient]
) -> None:
    """A call that always gets 503 gives up within its 1 s budget with FlatfileAPIError(status=503)."""
    job_id = fake.add_job()["id"]
    fake.add_fault(Fault(path="/jobs/*", method="GET", status=503))
    started = time.monotonic()
    with pytest.raises(FlatfileAPIError) as caught:
        await client_factory(budget=1.0).get_job(job_id)
    elapsed = time.monotonic() - started
    assert caught.value.status == 503
    assert elapsed < 2.0
    assert len(fake.requests) >= 2  # it did retry before giving up


async def test_a_retry_after_beyond_the_budget_is_not_waited_for(
    fake: FakeFlatfile, client_factory: Callable[..., FlatfileClient]
) -> None:
    """When Retry-After asks for longer than the budget has left, the call fails now instead of sleeping."""
    job_id = fake.add_job()["id"]
    fake.add_fault(Fault(path="/jobs/*", method="GET", status=429, retry_after=30))
    started = time.monotonic()
    with pytest.raises(FlatfileAPIError) as caught:
        await client_factory(budget=1.0).get_job(job_id)
    assert caught.value.status == 429
    assert time.monotonic() - started < 1.0
    assert len(fake.requests) == 1


async def test_no_answer_at_all_is_an_error_without_status(
    client_factory: Callable[..., FlatfileClient],
) -> None:
    """Nothing listening: connection errors are retried within the budget, then status is None."""
    settings = ApiSettings.resolve(api_url="http://127.0.0.1:9", token="sk", retry_budget=0.5)
    client = FlatfileClient(settings)
    try:
        with pytest.raises(FlatfileAPIError) as caught:
            await client.get_job("us_jb_1")
    finally:
        await client.aclose()
    assert caught.value.status is None
    assert caught.value.path == "/jobs/us_jb_1"


def test_defaults_bound_each_attempt_and_each_answer() -> None:
    """Each attempt has a 10 s deadline and reads at most 10 MiB unless told otherwise; resolve() passes both."""
    settings = ApiSettings.resolve(api_url="http://127.0.0.1:9", token="sk")
    assert (settings.timeout, settings.max_response_bytes) == (10.0, 10 * 1024 * 1024)
    given = ApiSettings.resolve(api_url="http://127.0.0.1:9", token="sk", timeout=2.0, max_response_bytes=5)
    assert (given.timeout, given.max_response_bytes) == (2.0, 5)


# -- ids never change the meaning of a URL -------------------------------------------------------------------

# The table: job ids that, pasted into f"/jobs/{job_id}/ack", sent the API key elsewhere.
HOSTILE_IDS = ["../../events", "x/../../spaces/us_sp_1#", "../sheets/us_sh_1?a=", "us_jb_1/complete"]


JOB_CALLS: dict[str, tuple[str, str, Callable[[FlatfileClient, str], Awaitable[object]]]] = {
    "get": ("GET", "", lambda client, job_id: client.get_job(job_id)),
    "ack": ("POST", "/ack", lambda client, job_id: client.ack_job(job_id, {"progress": 1})),
    "complete": ("POST", "/complete", lambda client, job_id: client.complete_job(job_id, {})),
    "fail": ("POST", "/fail", lambda client, job_id: client.fail_job(job_id, {"info": "x"})),
}


@pytest.mark.parametrize("call", sorted(JOB_CALLS))
@pytest.mark.parametrize("job_id", HOSTILE_IDS)
async def test_a_hostile_job_id_stays_one_segment_under_v1_jobs(
    fake: FakeFlatfile, client_factory: Callable[..., FlatfileClient], job_id: str, call: str
) -> None:
    """Each job call with the issue's job ids reaches only /v1/jobs/<encoded id>[/action] (a 404 there)."""
    method, action, run = JOB_CALLS[call]
    with pytest.raises(FlatfileAPIError) as caught:
        await run(client_factory(), job_id)
    assert caught.value.status == 404
    encoded = quote(job_id, safe="")
    assert [(r.method, r.target) for r in fake.requests] == [(method, f"/v1/jobs/{encoded}{action}")]


@pytest.mark.parametrize("job_id", ["", ".", "..", "x\udfff"])
async def test_a_job_id_that_cannot_be_a_segment_sends_nothing(
    fake: FakeFlatfile, client_factory: Callable[..., FlatfileClient], job_id: str
) -> None:
    """An empty, '.', '..' or broken job id is refused (FlatfileAPIError without status) before any request."""
    with pytest.raises(FlatfileAPIError) as caught:
        await client_factory().ack_job(job_id, {"progress": 1})
    assert (caught.value.status, caught.value.method, caught.value.job_id) == (None, "POST", job_id)
    assert "refused" in str(caught.value)
    assert fake.requests == []


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
async def test_event_and_sheet_ids_are_encoded_too(
    fake: FakeFlatfile, client_factory: Callable[..., FlatfileClient], hostile: str
) -> None:
    """ack_event and get_records keep a hostile id inside its own segment as well."""
    client = client_factory()
    with pytest.raises(FlatfileAPIError):
        await client.ack_event(hostile)
    assert await client.get_records(hostile) == []  # the fake has no such sheet
    encoded = quote(hostile, safe="")
    assert [r.target for r in fake.requests] == [
        f"/v1/events/{encoded}/ack",
        f"/v1/sheets/{encoded}/records",
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/../../events",
        "/jobs/x/./ack",
        "/jobs/%2e%2E/ack",
        "/jobs/us_jb_1?a=1",
        "/jobs/us_jb_1#x",
        "/jobs//ack",
        "//127.0.0.1:9/v1/jobs",
        "jobs/us_jb_1",
        "/jobs/a b",
        "/jobs/é",
        "",
    ],
)
async def test_request_refuses_a_path_that_could_change_its_meaning(
    fake: FakeFlatfile, client_factory: Callable[..., FlatfileClient], path: str
) -> None:
    """request() refuses dot, empty, query, fragment and non-ASCII paths before sending anything."""
    with pytest.raises(FlatfileAPIError) as caught:
        await client_factory(budget=0.2).request("GET", path)
    assert caught.value.status is None
    assert "refused" in str(caught.value)
    assert fake.requests == []


# -- every unusable answer is a FlatfileAPIError --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>OK</html>", "not JSON"),
        (b"", "not JSON"),
        (b"\xff\xfe{", "not JSON"),
        (b"[1, 2]", "not an object with data"),
        (b'"ok"', "not an object with data"),
        (b'{"errors": []}', "not an object with data"),
        (b'{"data": null}', "data that is not an object"),
        (b'{"data": [1]}', "data that is not an object"),
    ],
)
async def test_a_2xx_the_caller_cannot_use_is_an_api_error_not_retried(
    fake: FakeFlatfile, client_factory: Callable[..., FlatfileClient], body: bytes, problem: str
) -> None:
    """A 200 whose body is not JSON, or not {"data": <object>}, is a FlatfileAPIError (status, method, path)."""
    job_id = fake.add_job()["id"]
    fake.add_fault(Fault(path="/jobs/*/complete", status=200, body=body))
    with pytest.raises(FlatfileAPIError) as caught:
        await client_factory().complete_job(job_id, {})
    error = caught.value
    assert (error.status, error.method, error.path, error.job_id) == (
        200,
        "POST",
        f"/jobs/{job_id}/complete",
        job_id,
    )
    assert problem in str(error)
    assert len(fake.requests) == 1  # the call may have taken effect: never repeated blindly


async def test_a_list_call_answered_with_an_object_is_an_api_error(
    fake: FakeFlatfile, client_factory: Callable[..., FlatfileClient]
) -> None:
    """GET /events answered {"data": {}} is a FlatfileAPIError, not a list of the object's keys."""
    fake.add_fault(Fault(path="/events", status=200, body=b'{"data": {"a": 1}}'))
    with pytest.raises(FlatfileAPIError, match="data that is not a list"):
        await client_factory().list_events({"environmentId": "us_env_1"})


async def test_a_body_its_content_encoding_does_not_describe_is_an_api_error() -> None:
    """A 200 saying gzip but sending something else is a FlatfileAPIError(200), not httpx's DecodingError."""

    async def answer(writer: asyncio.StreamWriter, state: RawServer) -> None:
        body = b"not gzip at all"
        head = f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n"
        await _write(writer, state, head.encode() + body)

    async with raw_server(answer) as server:
        client = FlatfileClient(ApiSettings.resolve(api_url=server.url, token="sk", retry_budget=2.0))
        try:
            with pytest.raises(FlatfileAPIError, match="cannot be decoded") as caught:
                await client.get_job("us_jb_1")
        finally:
            await client.aclose()
    assert (caught.value.status, caught.value.path) == (200, "/jobs/us_jb_1")
    assert server.connections == 1


# -- bounded waits and reads ---------------------------------------------------------------------------------


@dataclass
class RawServer:
    """A loopback HTTP server answering every request with a script (one connection at a time is enough)."""

    url: str
    connections: int = 0
    sent: int = 0


@contextlib.asynccontextmanager
async def raw_server(
    answer: Callable[[asyncio.StreamWriter, RawServer], Awaitable[None]],
) -> AsyncIterator[RawServer]:
    """Serve ``answer`` on 127.0.0.1 after reading each request's head; the connection is closed after."""
    state = RawServer(url="")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            await answer(writer, state)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


async def _write(writer: asyncio.StreamWriter, state: RawServer, data: bytes) -> None:
    writer.write(data)
    await writer.drain()
    state.sent += len(data)


async def trickle_body(writer: asyncio.StreamWriter, state: RawServer) -> None:
    """A 200 whose 1,000-byte body comes one byte every 0.1 s: every single read is quick."""
    await _write(
        writer, state, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    for _ in range(1000):
        await _write(writer, state, b" ")
        await asyncio.sleep(0.1)


async def trickle_head(writer: asyncio.StreamWriter, state: RawServer) -> None:
    """The status line and headers themselves one byte every 0.1 s."""
    for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 1000:
        await _write(writer, state, bytes([byte]))
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("answer", [trickle_body, trickle_head], ids=["body", "head"])
async def test_a_trickling_server_cannot_hold_a_call_past_its_timeout(
    answer: Callable[[asyncio.StreamWriter, RawServer], Awaitable[None]],
) -> None:
    """Bytes every 0.1 s against a 0.5 s timeout: each attempt ends at 0.5 s, the call within its budget."""
    async with raw_server(answer) as server:
        settings = ApiSettings.resolve(api_url=server.url, token="sk", timeout=0.5, retry_budget=0.8)
        client = FlatfileClient(settings)
        started = time.monotonic()
        try:
            with pytest.raises(FlatfileAPIError) as caught:
                await asyncio.wait_for(client.get_job("us_jb_1"), timeout=10)
        finally:
            elapsed = time.monotonic() - started
            await client.aclose()
    assert caught.value.status is None
    assert "0.5 s" in str(caught.value)
    assert elapsed < 0.8 + 0.5 + 0.5  # the budget, one last attempt's deadline, slack
    assert server.connections in (1, 2)  # attempts, each cut at its deadline


def huge_answer(*, declared: bool) -> Callable[[asyncio.StreamWriter, RawServer], Awaitable[None]]:
    """A 200 with a 32 MiB body, its length declared up front or sent chunked (no length)."""

    async def answer(writer: asyncio.StreamWriter, state: RawServer) -> None:
        chunk = b"[" + b"0," * (64 * 1024) + b"0]"
        total = 32 * 1024 * 1024 // len(chunk)
        if declared:
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {total * len(chunk)}\r\n\r\n".encode()
            await _write(writer, state, head)
            for _ in range(total):
                await _write(writer, state, chunk)
        else:
            await _write(writer, state, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(total):
                await _write(writer, state, f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await _write(writer, state, b"0\r\n\r\n")

    return answer


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_an_answer_over_the_byte_cap_fails_without_reading_it_all(declared: bool) -> None:
    """A 32 MiB answer against a 64 KiB cap: FlatfileAPIError naming the cap, one attempt, reading stops."""
    async with raw_server(huge_answer(declared=declared)) as server:
        settings = ApiSettings.resolve(
            api_url=server.url, token="sk", timeout=5.0, retry_budget=5.0, max_response_bytes=64 * 1024
        )
        client = FlatfileClient(settings)
        try:
            with pytest.raises(FlatfileAPIError) as caught:
                await asyncio.wait_for(client.get_job("us_jb_1"), timeout=20)
        finally:
            await client.aclose()
        await asyncio.sleep(0.2)  # let the server notice the closed connection
    assert caught.value.status == 200
    assert "65536 byte limit" in str(caught.value)
    assert server.connections == 1  # not retried
    # The server got no further than what fills the socket buffers once the client stopped reading.
    assert server.sent < 16 * 1024 * 1024
