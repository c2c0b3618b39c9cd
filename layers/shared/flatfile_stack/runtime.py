"""The adapters one process uses, built once from the environment (cloud) or handed in (local run)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from flatfile_jobs import ConfigurationError
from flatfile_jobs.webhook import ReceivePolicy, parse_secrets

from .settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer

    from flatfile_jobs import FlatfileListener

    from .long_jobs import DurableStarter
    from .queues import JobQueue

__all__ = ["Runtime", "get_runtime", "in_aws", "secret_reader", "use_runtime"]

SECRET_MAX_AGE = 300
API_KEY_ENV = "FLATFILE_API_KEY"
# What template.yaml puts in the API key secret until the user stores the real key.
API_KEY_PLACEHOLDER = "REPLACE_WITH_FLATFILE_SECRET_KEY"


@dataclass
class Runtime:
    """Everything the functions need besides the event: built lazily, reused across warm invocations.

    Attributes:
        settings: The stack's settings.
        queue: Where the receiver puts accepted jobs (and the poller, too).
        webhook_secrets: Returns the signing secret list (space/comma separated); ``""`` when none.
        api_token: Returns the Flatfile API key.
        listener: The app's job handlers.
        persistence: The worker's idempotency store; built from the settings on first use when not given
            (DynamoDB when ``IDEMPOTENCY_TABLE`` is set), so the receiver never imports it.
        starter: Starts long jobs' durable executions; built from ``DURABLE_WORKER_ARN`` when not given.
            ``None`` with no ARN: long jobs are off and run like any job.
    """

    settings: Settings
    queue: JobQueue
    webhook_secrets: Callable[[], str]
    api_token: Callable[[], str]
    listener: FlatfileListener
    persistence: BasePersistenceLayer | None = None
    extras: dict[str, object] = field(default_factory=dict)
    starter: DurableStarter | None = None

    def durable_starter(self) -> DurableStarter | None:
        """The long jobs' starter, ``None`` when long jobs are off (built once, on first use)."""
        if self.starter is None and self.settings.durable_worker_arn:
            from .long_jobs import LambdaDurableStarter

            self.starter = LambdaDurableStarter(self.settings.durable_worker_arn)
        return self.starter

    def idempotency_store(self) -> BasePersistenceLayer:
        """The worker's idempotency store (built once, on first use)."""
        if self.persistence is None:
            from .idempotency import MemoryPersistenceLayer, dynamodb_persistence

            table = self.settings.idempotency_table
            self.persistence = dynamodb_persistence(table) if table else MemoryPersistenceLayer()
        return self.persistence

    def receive_policy(self) -> ReceivePolicy:
        """The receiver's policy from the current secret (cached by value, so rotation takes effect)."""
        return _policy(
            self.webhook_secrets(), self.settings.allow_unsigned, self.settings.allowed_environments
        )


@lru_cache(maxsize=4)
def _policy(secret_value: str, allow_unsigned: bool, allowed: frozenset[str]) -> ReceivePolicy:
    secrets = parse_secrets(secret_value) if secret_value.strip() else ()
    return ReceivePolicy(secrets=secrets, allow_unsigned=allow_unsigned, allowed_environments=allowed)


def secret_reader(secret_id: str, *, setting: str) -> Callable[[], str]:
    """A function reading ``secret_id`` from Secrets Manager through Powertools parameters (cached 5 min)."""

    def read() -> str:
        if not secret_id:
            raise ConfigurationError(f"{setting} is not set: give the function the secret's ARN")
        from aws_lambda_powertools.utilities import parameters
        from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

        from .aws import aws_client
        from .log_redaction import hide_secret_values_from_botocore

        hide_secret_values_from_botocore()
        if "secrets" not in DEFAULT_PROVIDERS:
            # get_secret's provider (its 5-minute cache, dropped by parameters.clear_caches()), with a client on
            # the session the other adapters share instead of a session of its own (see flatfile_stack.aws).
            DEFAULT_PROVIDERS["secrets"] = parameters.SecretsProvider(
                boto3_client=aws_client("secretsmanager")
            )
        value = str(parameters.get_secret(secret_id, max_age=SECRET_MAX_AGE)).strip()
        if not value or value == API_KEY_PLACEHOLDER:
            # The exact command, with this secret's ARN (not a secret itself): the on-call engineer pastes it.
            example = "sk_..." if value == API_KEY_PLACEHOLDER else "<value>"
            raise ConfigurationError(
                f"The secret named by {setting} holds no value yet: store it with "
                f"aws secretsmanager put-secret-value --secret-id {secret_id} --secret-string {example}"
            )
        return value

    return read


def in_aws() -> bool:
    """Whether this is a function running in AWS Lambda (``sam local`` sets ``AWS_SAM_LOCAL`` as well)."""
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and not os.environ.get("AWS_SAM_LOCAL")


def _plain_api_key() -> str:
    """``FLATFILE_API_KEY`` given directly: a local run's key (``sam local``, tests), refused in AWS."""
    if in_aws():
        raise ConfigurationError(
            f"{API_KEY_ENV} is for local runs only: in AWS, store the key in Secrets Manager and set "
            "FLATFILE_API_KEY_SECRET_ID (and leave FLATFILE_API_KEY empty)"
        )
    return os.environ[API_KEY_ENV]


def _from_env() -> Runtime:
    """The runtime from the function's environment; off AWS, what is not configured gets a local stand-in.

    Locally (``sam local``, no AWS account): no queue URL keeps accepted jobs in this process's queue, no
    idempotency table keeps records in memory (:meth:`Runtime.idempotency_store`), and the API key may be given
    directly in ``FLATFILE_API_KEY``, which a function in AWS refuses.
    """
    from jobs import listener

    from .queues import MemoryJobQueue, SqsJobQueue
    from .settings import FLATFILE_API_KEY_SECRET_ID, JOB_QUEUE_URL, WEBHOOK_SECRET_ID

    settings = Settings.from_env()
    webhook_secrets = secret_reader(settings.webhook_secret_id, setting=WEBHOOK_SECRET_ID)
    queue: JobQueue = SqsJobQueue(settings.job_queue_url)
    if not settings.job_queue_url and not in_aws():
        from aws_lambda_powertools import Logger

        Logger(child=True).warning(
            f"{JOB_QUEUE_URL} is not set: jobs enqueued here stay in this process (a local stand-in); run "
            "one with 'flatfile-jobs generate-event worker JOB' and 'sam local invoke WorkerFunction -e FILE'"
        )
        queue = MemoryJobQueue()
    return Runtime(
        settings=settings,
        queue=queue,
        webhook_secrets=webhook_secrets if settings.webhook_secret_id else str,
        api_token=_plain_api_key
        if os.environ.get(API_KEY_ENV)
        else secret_reader(settings.api_key_secret_id, setting=FLATFILE_API_KEY_SECRET_ID),
        listener=listener,
    )


@cache
def _default() -> Runtime:
    return _from_env()


_override: list[Runtime] = []


def get_runtime() -> Runtime:
    """The runtime handed in by :func:`use_runtime`, else the one built from the environment."""
    return _override[-1] if _override else _default()


def use_runtime(runtime: Runtime | None) -> None:
    """Make the functions use ``runtime`` (the local run and tests); ``None`` goes back to the environment."""
    _override.clear()
    if runtime is not None:
        _override.append(runtime)
    _default.cache_clear()
