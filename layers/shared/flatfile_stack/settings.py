"""The stack's environment variable names and their parsing, in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Settings"]

JOB_QUEUE_URL = "JOB_QUEUE_URL"
WEBHOOK_SECRET_ID = "WEBHOOK_SECRET_ID"  # noqa: S105 - a variable name
FLATFILE_API_KEY_SECRET_ID = "FLATFILE_API_KEY_SECRET_ID"  # noqa: S105 - a variable name
ALLOW_UNSIGNED = "ALLOW_UNSIGNED"
ALLOWED_ENVIRONMENT_IDS = "ALLOWED_ENVIRONMENT_IDS"
IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE"
POLLER_STATE_TABLE = "POLLER_STATE_TABLE"
DEADLINE_MARGIN_SECONDS = "DEADLINE_MARGIN_SECONDS"
FLATFILE_ENVIRONMENT_ID = "FLATFILE_ENVIRONMENT_ID"
WORKER_MEMORY_MB = "WORKER_MEMORY_MB"
WORKER_TIMEOUT_SECONDS = "WORKER_TIMEOUT_SECONDS"
DURABLE_WORKER_ARN = "DURABLE_WORKER_ARN"
DURABLE_EXECUTION_TIMEOUT_SECONDS = "DURABLE_EXECUTION_TIMEOUT_SECONDS"


@dataclass(frozen=True, slots=True)
class Settings:
    """The deployed stack's settings: names of resources and secrets, never secret values.

    The heartbeat's three durations are design constants (README "Design notes and limits"); tests and the
    local run shrink them. ``worker_memory_mb`` and ``worker_timeout`` are the worker's limits, which the
    dead-letter function names when a job's worker kept stopping without reporting.
    """

    job_queue_url: str = ""
    webhook_secret_id: str = ""
    api_key_secret_id: str = ""
    allow_unsigned: bool = False
    allowed_environments: frozenset[str] = frozenset()
    idempotency_table: str = ""
    poller_state_table: str = ""
    deadline_margin: float = 10.0
    environment_id: str = ""
    heartbeat_seconds: float = 20.0
    lease_seconds: float = 60.0
    visibility_seconds: float = 90.0
    worker_memory_mb: int = 0
    worker_timeout: int = 0
    durable_worker_arn: str = ""
    durable_execution_timeout: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings the template sets on each function."""
        env = os.environ if environ is None else environ
        allowed = env.get(ALLOWED_ENVIRONMENT_IDS, "")
        return cls(
            job_queue_url=env.get(JOB_QUEUE_URL, ""),
            webhook_secret_id=env.get(WEBHOOK_SECRET_ID, ""),
            api_key_secret_id=env.get(FLATFILE_API_KEY_SECRET_ID, ""),
            allow_unsigned=env.get(ALLOW_UNSIGNED, "false").strip().lower() == "true",
            allowed_environments=frozenset(part.strip() for part in allowed.split(",") if part.strip()),
            idempotency_table=env.get(IDEMPOTENCY_TABLE, ""),
            poller_state_table=env.get(POLLER_STATE_TABLE, ""),
            deadline_margin=float(env.get(DEADLINE_MARGIN_SECONDS, "10") or 10),
            environment_id=env.get(FLATFILE_ENVIRONMENT_ID, ""),
            worker_memory_mb=int(env.get(WORKER_MEMORY_MB, "0") or 0),
            worker_timeout=int(env.get(WORKER_TIMEOUT_SECONDS, "0") or 0),
            durable_worker_arn=env.get(DURABLE_WORKER_ARN, ""),
            durable_execution_timeout=float(env.get(DURABLE_EXECUTION_TIMEOUT_SECONDS, "0") or 0),
        )
