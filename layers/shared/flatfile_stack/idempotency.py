"""Idempotency stores for the worker: DynamoDB in the cloud, in memory for the local run and tests."""

from __future__ import annotations

import copy
import threading
import time

from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer, DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

__all__ = ["MemoryPersistenceLayer", "dynamodb_persistence"]


class MemoryPersistenceLayer(BasePersistenceLayer):
    """A process-local store with DynamoDB's conditions.

    A key can be taken again once its record expired or its in-progress lease (Lambda's remaining time) ran out.
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


def _free(record: DataRecord, now: float) -> bool:
    """Whether a stored record no longer blocks its key (same rule as the DynamoDB condition)."""
    if record.expiry_timestamp is not None and record.expiry_timestamp < int(now):
        return True
    lease = record.in_progress_expiry_timestamp
    return record._status == "INPROGRESS" and lease is not None and lease < int(now * 1000)


def dynamodb_persistence(table_name: str) -> BasePersistenceLayer:
    """The DynamoDB store the template creates (key ``id``, TTL attribute ``expiration``)."""
    return DynamoDBPersistenceLayer(table_name=table_name)
