"""Idempotency stores for the worker: DynamoDB in the cloud, in memory for the local run and tests.

Records are keyed on the job id alone (``job#<hash of the id>``): the event itself is never copied or hashed,
so its size and depth do not matter. A running job holds its record ``INPROGRESS`` under a short lease that
its heartbeat renews (:func:`renew_lease`); a run that dies stops renewing, and the lease lapses soon after.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any, Protocol, runtime_checkable

from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

__all__ = [
    "JOB_KEY_PREFIX",
    "LeaseRenewing",
    "LeasedDynamoDBPersistenceLayer",
    "MemoryPersistenceLayer",
    "dynamodb_persistence",
    "job_config",
    "job_key",
    "job_record_status",
    "renew_lease",
]

# The key's prefix instead of Powertools' "<function name>.<module>.<function>": the dead-letter function
# (another Lambda) finds a job's record by its id.
JOB_KEY_PREFIX = "job"
# A finished job's record is kept a day: a later duplicate is answered from it without running anything.
RECORD_TTL_SECONDS = 24 * 3600
_IN_PROGRESS = "INPROGRESS"


def job_config(**options: Any) -> IdempotencyConfig:  # noqa: ANN401 - IdempotencyConfig's options
    """The idempotency settings of job records: keyed on ``job_id``, kept a day."""
    return IdempotencyConfig(event_key_jmespath="job_id", expires_after_seconds=RECORD_TTL_SECONDS, **options)


@runtime_checkable
class LeaseRenewing(Protocol):
    """A store that can move an in-progress record's lease (both stores below)."""

    def renew_in_progress(self, idempotency_key: str, until_ms: int) -> bool:
        """Set the lease of ``idempotency_key`` to ``until_ms`` if it is still in progress; ``True`` if so."""


def job_key(persistence: BasePersistenceLayer, job_id: str) -> str:
    """The record key of ``job_id`` in a store configured by the worker or :func:`job_record_status`."""
    # Powertools' own key derivation (prefix, jmespath, hash), so the key always matches what it stored.
    key = persistence._get_hashed_idempotency_key({"job_id": job_id})
    assert key is not None  # a job id is never empty
    return key


def renew_lease(persistence: BasePersistenceLayer, job_id: str, seconds: float) -> bool:
    """Extend a running job's in-progress lease to ``seconds`` from now; ``False`` if it is not in progress.

    Raises:
        TypeError: The store cannot renew leases (not one of this module's stores).
    """
    if not isinstance(persistence, LeaseRenewing):
        raise TypeError(f"{type(persistence).__name__} cannot renew in-progress leases")
    until_ms = int((time.time() + seconds) * 1000)
    return persistence.renew_in_progress(job_key(persistence, job_id), until_ms)


def job_record_status(persistence: BasePersistenceLayer, job_id: str) -> str | None:
    """The status of ``job_id``'s record (``INPROGRESS``, ``COMPLETED``), ``None`` when there is none.

    A run that raised deleted its record; a run that died without reporting left it ``INPROGRESS``.
    """
    persistence.configure(job_config(), key_prefix=JOB_KEY_PREFIX)
    try:
        record = persistence._get_record(job_key(persistence, job_id))
    except IdempotencyItemNotFoundError:
        return None
    return str(record.status)


class MemoryPersistenceLayer(BasePersistenceLayer):
    """A process-local store with DynamoDB's conditions.

    A key can be taken again once its record expired or its in-progress lease ran out.
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._records: dict[str, DataRecord] = {}
        self._lock = threading.Lock()

    def _get_record(self, idempotency_key: str) -> DataRecord:
        with self._lock:
            record = self._records.get(idempotency_key)
        if record is None:
            raise IdempotencyItemNotFoundError
        return copy.copy(record)

    def _put_record(self, data_record: DataRecord) -> None:
        now = time.time()
        with self._lock:
            existing = self._records.get(data_record.idempotency_key)
            if existing is not None and not _free(existing, now):
                raise IdempotencyItemAlreadyExistsError(old_data_record=copy.copy(existing))
            self._records[data_record.idempotency_key] = copy.copy(data_record)

    def _update_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._records[data_record.idempotency_key] = copy.copy(data_record)

    def _delete_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._records.pop(data_record.idempotency_key, None)

    def renew_in_progress(self, idempotency_key: str, until_ms: int) -> bool:
        """Move the lease of an in-progress record (a conditional update, as in DynamoDB)."""
        with self._lock:
            record = self._records.get(idempotency_key)
            if record is None or record._status != _IN_PROGRESS:
                return False
            record.in_progress_expiry_timestamp = until_ms
            return True


def _free(record: DataRecord, now: float) -> bool:
    """Whether a stored record no longer blocks its key (same rule as the DynamoDB condition)."""
    if record.expiry_timestamp is not None and record.expiry_timestamp < int(now):
        return True
    lease = record.in_progress_expiry_timestamp
    return record._status == _IN_PROGRESS and lease is not None and lease < int(now * 1000)


class LeasedDynamoDBPersistenceLayer(DynamoDBPersistenceLayer):
    """Powertools' DynamoDB store plus lease renewal (one conditional ``UpdateItem``)."""

    def renew_in_progress(self, idempotency_key: str, until_ms: int) -> bool:
        """``SET in_progress_expiration`` on condition that the record is still ``INPROGRESS``."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._get_key(idempotency_key),
                UpdateExpression="SET #lease = :until",
                ConditionExpression="#status = :in_progress",
                ExpressionAttributeNames={
                    "#lease": self.in_progress_expiry_attr,
                    "#status": self.status_attr,
                },
                ExpressionAttributeValues={
                    ":until": {"N": str(until_ms)},
                    ":in_progress": {"S": _IN_PROGRESS},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def dynamodb_persistence(table_name: str, *, boto3_client: Any = None) -> BasePersistenceLayer:  # noqa: ANN401
    """The DynamoDB store the template creates (key ``id``, TTL attribute ``expiration``).

    Without ``boto3_client`` its client is built on boto3's default session, shared with the other adapters
    (Powertools would otherwise open a session of its own: see :mod:`flatfile_stack.aws`).
    """
    if boto3_client is None:
        from .aws import aws_client

        boto3_client = aws_client("dynamodb")
    return LeasedDynamoDBPersistenceLayer(table_name=table_name, boto3_client=boto3_client)
