"""boto3 clients for the stack's adapters, all on boto3's default session.

A boto3 session loads botocore's shared data (endpoints, partitions, retry and default configuration) once;
every further client on it loads only its own service model. Powertools builds a new session per utility
unless it is handed a client, which made a cold worker load that data three times (Secrets Manager,
DynamoDB, SQS): about 300 ms of a cold start. A session is not thread-safe (the worker's heartbeat thread
builds the SQS client while the job reads the API key), so clients are created under a lock; the clients
themselves are thread-safe.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["aws_client"]

_creating = threading.Lock()


def aws_client(service_name: str) -> Any:  # noqa: ANN401 - a boto3 client
    """A new boto3 client for ``service_name`` on the default session (region, endpoint, credentials from env)."""
    import boto3

    with _creating:
        return boto3.client(service_name)
