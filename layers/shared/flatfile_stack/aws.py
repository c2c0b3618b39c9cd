"""boto3 clients for the stack's adapters, all on boto3's default session.

A boto3 session loads botocore's shared data (endpoints, partitions, retry and default configuration) once;
every further client on it loads only its own service model. Powertools builds a new session per utility
unless it is handed a client, which made a cold worker load that data three times (Secrets Manager,
DynamoDB, SQS): about 300 ms of a cold start. A session is not thread-safe (the worker's heartbeat thread
builds the SQS client while the job reads the API key), so clients are created under a lock; the clients
themselves are thread-safe.

Every client is bounded: botocore's defaults (60 s to connect, 60 s to read, up to 5 legacy-mode attempts)
would let one unreachable dependency hold the receiver past its 10 s timeout, so API Gateway would answer a
bare 500 instead of the receiver's own 503 with ``Retry-After``. With :data:`CONNECT_TIMEOUT`,
:data:`READ_TIMEOUT` and :data:`MAX_ATTEMPTS` (standard retry mode, whose backoff before the one retry is at
most 1 s) a call gives up after :func:`worst_case_seconds`, inside the receiver's timeout. The calls are small
(SendMessage, GetSecretValue, a DynamoDB item, ChangeMessageVisibility), normally tens of milliseconds.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["CONNECT_TIMEOUT", "MAX_ATTEMPTS", "READ_TIMEOUT", "aws_client", "worst_case_seconds"]

CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 3.0
MAX_ATTEMPTS = 2
# Standard retry mode sleeps a random 0..1 s before the first retry (base 1 s, doubled per attempt, jittered).
_FIRST_RETRY_BACKOFF_MAX = 1.0

_creating = threading.Lock()


def worst_case_seconds() -> float:
    """The longest one AWS call of the stack can take before it raises: every attempt times out."""
    backoff = sum(_FIRST_RETRY_BACKOFF_MAX * 2.0**attempt for attempt in range(MAX_ATTEMPTS - 1))
    return MAX_ATTEMPTS * (CONNECT_TIMEOUT + READ_TIMEOUT) + backoff


def aws_client(service_name: str) -> Any:  # noqa: ANN401 - a boto3 client
    """A new boto3 client for ``service_name`` on the default session (region, endpoint, credentials from env)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
    )
    with _creating:
        return boto3.client(service_name, config=config)
