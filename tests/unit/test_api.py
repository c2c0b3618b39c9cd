"""ApiSettings (env names, /v1, precedence, secrecy) and FlatfileClient (headers, retries, Retry-After, budget)."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from flatfile_jobs import ConfigurationError, FlatfileAPIError
from flatfile_jobs._api import KEEPALIVE_EXPIRY, FlatfileClient, client_for
from flatfile_jobs._config import ApiSettings
from flatfile_jobs.testing import FakeFlatfile, Fault

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
