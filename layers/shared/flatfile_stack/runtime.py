"""The adapters a function uses: the pieces each ``functions/*/app.py`` composes, built from its environment.

Each app module is the composition root: it hands its job listener to a :class:`FunctionRuntime`, which builds
the :class:`Runtime` from the function's environment on first use (cloud, ``sam local``), unless a local run
handed one in with :func:`use_runtime`. The stack's services take the runtime as an argument.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from flatfile_jobs import ApiSettings, ConfigurationError
from flatfile_jobs.webhook import parse_secrets

from .delivery_policy import ReceivePolicy
from .settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer

    from flatfile_jobs import EventPoller, FlatfileListener
    from flatfile_jobs._polling import CursorStore

    from .long_jobs import DurableStarter
    from .queues import JobQueue

__all__ = [
    "FunctionRuntime",
    "Runtime",
    "api_key",
    "in_aws",
    "job_queue",
    "secret_reader",
    "use_runtime",
    "webhook_secrets",
]

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
        listener: The app's job handlers (handed in by the function's ``app.py``).
        api_url: The Flatfile API root the jobs call; ``None``: ``FLATFILE_API_URL``, else Flatfile's.
        persistence: The worker's idempotency store; built from the settings on first use when not given
            (DynamoDB when ``IDEMPOTENCY_TABLE`` is set), so the receiver never imports it.
        starter: Starts long jobs' durable executions; built from ``DURABLE_WORKER_ARN`` when not given.
            ``None`` with no ARN: long jobs are off and run like any job.
        cursor_stores: Where the poller keeps each topic's cursor: ``None`` for DynamoDB
            (``POLLER_STATE_TABLE``); a dict (the local run) keeps them in memory, one per topic, added on first
            use.
        pollers: The poller's :class:`EventPoller` per topic, built on first use and kept across warm
            invocations (not copied by ``dataclasses.replace``).
        job_runner: The worker's idempotent job runner (``flatfile_stack.worker.JobRunner``), built on first use
            by ``worker.runner_for`` and not copied by ``replace``; typed ``object`` so this module does not
            import the worker, which imports it.
    """

    settings: Settings
    queue: JobQueue
    webhook_secrets: Callable[[], str]
    api_token: Callable[[], str]
    listener: FlatfileListener
    api_url: str | None = None
    persistence: BasePersistenceLayer | None = None
    starter: DurableStarter | None = None
    cursor_stores: dict[str, CursorStore] | None = None
    pollers: dict[str, EventPoller] = field(default_factory=dict, init=False, repr=False)
    job_runner: object = field(default=None, init=False, repr=False)

    @classmethod
    def from_env(cls, listener: FlatfileListener) -> Runtime:
        """The runtime of a function running ``listener``'s jobs, from the function's environment.

        Off AWS, what is not configured gets a local stand-in: no queue URL keeps accepted jobs in this
        process's queue, no idempotency table keeps records in memory (:meth:`idempotency_store`), and the API
        key may be given directly in ``FLATFILE_API_KEY``, which a function in AWS refuses.
        """
        settings = Settings.from_env()
        return cls(
            settings=settings,
            queue=job_queue(settings),
            webhook_secrets=webhook_secrets(settings),
            api_token=api_key(settings),
            listener=listener,
        )

    def api_settings(self) -> ApiSettings:
        """How the jobs reach the Flatfile API: the API key read now (cached by Powertools), the API root."""
        return ApiSettings.resolve(api_url=self.api_url, token=self.api_token())

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


def job_queue(settings: Settings) -> JobQueue:
    """SQS at ``JOB_QUEUE_URL``; off AWS with no URL, this process's in-memory queue (logged as such)."""
    from .queues import MemoryJobQueue, SqsJobQueue
    from .settings import JOB_QUEUE_URL

    if settings.job_queue_url or in_aws():
        return SqsJobQueue(settings.job_queue_url)
    from aws_lambda_powertools import Logger

    Logger(child=True).warning(
        f"{JOB_QUEUE_URL} is not set: jobs enqueued here stay in this process (a local stand-in); run "
        "one with 'flatfile-jobs generate-event worker JOB' and 'sam local invoke WorkerFunction -e FILE'"
    )
    return MemoryJobQueue()


def webhook_secrets(settings: Settings) -> Callable[[], str]:
    """Reads the signing secrets named by ``WEBHOOK_SECRET_ID``; none (``""``) when it is not set."""
    from .settings import WEBHOOK_SECRET_ID

    if not settings.webhook_secret_id:
        return str
    return secret_reader(settings.webhook_secret_id, setting=WEBHOOK_SECRET_ID)


def api_key(settings: Settings) -> Callable[[], str]:
    """Reads the Flatfile API key: ``FLATFILE_API_KEY`` when set (local runs), else from Secrets Manager."""
    from .settings import FLATFILE_API_KEY_SECRET_ID

    if os.environ.get(API_KEY_ENV):
        return _plain_api_key
    return secret_reader(settings.api_key_secret_id, setting=FLATFILE_API_KEY_SECRET_ID)


_handed_in: list[Runtime] = []


def use_runtime(runtime: Runtime | None) -> None:
    """Hand ``runtime`` to every function of this process instead of its own (the local run, tests).

    ``None`` takes it back: each function builds its own from its environment again.
    """
    _handed_in[:] = [] if runtime is None else [runtime]


class FunctionRuntime:
    """One function's runtime: the one handed in by :func:`use_runtime`, else its own, built on first use.

    Args:
        listener: The app's job handlers (the app's job table: the receiver imports no handler module).
    """

    def __init__(self, listener: FlatfileListener) -> None:
        self.listener = listener
        self._own: Runtime | None = None

    def __call__(self) -> Runtime:
        """The runtime for this invocation."""
        if _handed_in:
            return _handed_in[-1]
        if self._own is None:
            self._own = Runtime.from_env(self.listener)
        return self._own
