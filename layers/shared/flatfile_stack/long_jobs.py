"""Starting long jobs: the worker hands a long job to the durable worker and returns at once.

The execution is named after the job id, so a redelivered record starts nothing new: Lambda answers a start with
a known name and the same payload with the running execution (and refuses a different payload with
``DurableExecutionAlreadyStartedException``, which means the same thing here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["DurableStarter", "LambdaDurableStarter", "execution_name", "execution_payload"]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class DurableStarter(Protocol):
    """Starts the durable execution of one long job (the cloud's Lambda invoke, or the local test runner)."""

    def start(self, job_id: str, event: Mapping[str, Any]) -> str:
        """Start (or find) the execution named after ``job_id``; returns its name."""
        ...


def execution_name(job_id: str) -> str:
    """The execution's name: the job id itself (Flatfile's ids fit Lambda's ``[A-Za-z0-9_-]{1,64}``).

    Raises:
        ValueError: The id can't name an execution (the record fails, and the dead-letter path fails the job).
    """
    if not _NAME.fullmatch(job_id):
        raise ValueError(f"Job id {job_id!r} can't name a durable execution ([A-Za-z0-9_-], 1-64 characters)")
    return job_id


def execution_payload(event: Mapping[str, Any]) -> str:
    """The execution's input: the same text for the same event (a redelivery is recognised as the same start)."""
    return json.dumps({"event": event}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class LambdaDurableStarter:
    """Starts executions with an asynchronous ``Invoke`` of the durable worker's alias."""

    def __init__(self, function_arn: str, *, client: Any = None) -> None:  # noqa: ANN401 - a boto3 client
        self._function_arn = function_arn
        self._client = client

    def start(self, job_id: str, event: Mapping[str, Any]) -> str:
        """Invoke the alias with ``InvocationType="Event"`` and the job id as ``DurableExecutionName``.

        Raises:
            botocore.exceptions.ClientError: Lambda refused the start (the record fails and is retried).
        """
        from botocore.exceptions import ClientError

        name = execution_name(job_id)
        if self._client is None:
            from .aws import aws_client

            self._client = aws_client("lambda")
        try:
            self._client.invoke(
                FunctionName=self._function_arn,
                InvocationType="Event",
                DurableExecutionName=name,
                Payload=execution_payload(event).encode(),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "DurableExecutionAlreadyStartedException":
                raise
        return name
