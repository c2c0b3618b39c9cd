"""Environment variable names and the frozen settings read from them, in one place.

Like Flatfile's TypeScript client: ``FLATFILE_API_URL`` (``/v1`` is joined to it), the token from
``FLATFILE_BEARER_TOKEN`` else ``FLATFILE_API_KEY``. Explicit arguments override the settings a caller hands
down (the worker's, with the key it read from Secrets Manager), which override the environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ._errors import ConfigurationError

__all__ = [
    "API_KEY_ENV",
    "API_URL_ENV",
    "BEARER_TOKEN_ENV",
    "DEFAULT_API_URL",
    "ENVIRONMENT_ID_ENV",
    "LOG_LEVEL_ENV",
    "ApiSettings",
    "debug_from_env",
    "handler_settings",
]

API_URL_ENV = "FLATFILE_API_URL"
BEARER_TOKEN_ENV = "FLATFILE_BEARER_TOKEN"  # noqa: S105 - a variable name
API_KEY_ENV = "FLATFILE_API_KEY"
ENVIRONMENT_ID_ENV = "FLATFILE_ENVIRONMENT_ID"
LOG_LEVEL_ENV = "POWERTOOLS_LOG_LEVEL"
DEFAULT_API_URL = "https://platform.flatfile.com/api"
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRY_BUDGET = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """How to reach the Flatfile API. ``repr`` never shows the token.

    Attributes:
        base_url: The API root including ``/v1``.
        token: The bearer token (secret key ``sk_…`` or personal access token).
        timeout: Seconds one attempt may take in all: waiting for a connection, connecting, sending,
            waiting for the answer and reading its whole body (a server trickling bytes cannot stretch it).
        retry_budget: Seconds all attempts of one call may take together, backoff included.
        max_response_bytes: The most bytes read from one response body (after decompression); a larger
            answer fails the call, without a retry.
    """

    base_url: str
    token: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    retry_budget: float = DEFAULT_RETRY_BUDGET
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    @classmethod
    def resolve(
        cls,
        *,
        api_url: str | None = None,
        token: str | None = None,
        environ: Mapping[str, str] | None = None,
        timeout: float | None = None,
        retry_budget: float | None = None,
        max_response_bytes: int | None = None,
        base: ApiSettings | None = None,
    ) -> ApiSettings:
        """Build settings from explicit arguments, then ``base``, then the environment.

        Args:
            api_url: The API root (``/v1`` is joined to it).
            token: The bearer token.
            environ: The environment to read (``os.environ`` when omitted).
            timeout: Seconds one attempt may take.
            retry_budget: Seconds all attempts of one call may take.
            max_response_bytes: The most bytes read from one response body.
            base: Settings handed down by the caller (e.g. ``dispatch(event, settings=…)``); what the other
                arguments leave as ``None`` comes from here before the environment is read.

        Raises:
            ConfigurationError: No token in the arguments, ``base``, ``FLATFILE_BEARER_TOKEN`` or
                ``FLATFILE_API_KEY``.
        """
        if base is not None:
            return cls.resolve(
                api_url=api_url or base.base_url,
                token=token or base.token,
                environ=environ,
                timeout=base.timeout if timeout is None else timeout,
                retry_budget=base.retry_budget if retry_budget is None else retry_budget,
                max_response_bytes=base.max_response_bytes
                if max_response_bytes is None
                else max_response_bytes,
            )
        env = os.environ if environ is None else environ
        resolved_token = token or env.get(BEARER_TOKEN_ENV) or env.get(API_KEY_ENV)
        if not resolved_token:
            raise ConfigurationError(
                f"No Flatfile API token: set {BEARER_TOKEN_ENV} or {API_KEY_ENV} (or pass token=...)"
            )
        root = (api_url or env.get(API_URL_ENV) or DEFAULT_API_URL).rstrip("/")
        base_url = root if root.endswith("/v1") else root + "/v1"
        return cls(
            base_url=base_url,
            token=resolved_token,
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            retry_budget=DEFAULT_RETRY_BUDGET if retry_budget is None else retry_budget,
            max_response_bytes=(
                DEFAULT_MAX_RESPONSE_BYTES if max_response_bytes is None else max_response_bytes
            ),
        )


def debug_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``POWERTOOLS_LOG_LEVEL`` asks for debug logging."""
    env = os.environ if environ is None else environ
    return env.get(LOG_LEVEL_ENV, "").upper() == "DEBUG"


def handler_settings(
    *,
    api_url: str | None,
    token: str | None,
    request_timeout: float | None,
    retry_budget: float | None,
) -> Callable[[ApiSettings | None], ApiSettings]:
    """A handler's API options (``job_handler``'s keywords) as a function of the settings dispatch hands down.

    The handler's own options win, then what dispatch was handed, then the environment (:meth:`ApiSettings.resolve`).
    """

    def settings(base: ApiSettings | None) -> ApiSettings:
        return ApiSettings.resolve(
            api_url=api_url, token=token, timeout=request_timeout, retry_budget=retry_budget, base=base
        )

    return settings
