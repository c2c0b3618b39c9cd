"""flatfile-jobs' test kit: a fake Flatfile API on loopback, event builders, and Lambda's side of a local run.

Installed for development (``pip install flatfile-jobs-testing``), never shipped in the Lambda layer. Only the
standard library and ``flatfile_jobs`` are used, and nothing starts until a ``FakeFlatfile`` is made.

- ``FakeFlatfile``, ``Fault``, ``RecordedRequest``: the Flatfile API in memory over HTTP, with fault injection.
- ``job_ready_event``, ``forwarded_event``: Flatfile events as the API stores them and the forwarder posts them.
- ``webhook_request``, ``signed_headers``, ``resign``, ``http_api_event``, ``request_body``: the receiver's
  API Gateway events, signed as the forwarder signs (the one way the repo signs a delivery).
- ``sqs_record``, ``sqs_event``: the worker's SQS events.
- ``LocalContext``, ``load_function``: a Lambda context, and ``functions/<name>/app.py`` loaded by path.

Example:
    >>> from flatfile_jobs_testing import FakeFlatfile, Fault
    >>> with FakeFlatfile(seed=0) as fake:  # doctest: +SKIP
    ...     event = fake.create_job_event("workbook:submitAction")
    ...     fake.add_fault(Fault(path="/jobs/*/complete", status=503, times=1))
    ...     # point the code under test at fake.url with fake.token, then:
    ...     fake.calls(event["context"]["jobId"])
"""

from __future__ import annotations

from flatfile_jobs_testing._events import forwarded_event, job_ready_event
from flatfile_jobs_testing._fake import FakeFlatfile
from flatfile_jobs_testing._faults import Fault, RecordedRequest
from flatfile_jobs_testing._lambda import LocalContext, load_function
from flatfile_jobs_testing._lambda_events import (
    http_api_event,
    request_body,
    resign,
    signed_headers,
    sqs_event,
    sqs_record,
    webhook_request,
)

__all__ = [
    "FakeFlatfile",
    "Fault",
    "LocalContext",
    "RecordedRequest",
    "forwarded_event",
    "http_api_event",
    "job_ready_event",
    "load_function",
    "request_body",
    "resign",
    "signed_headers",
    "sqs_event",
    "sqs_record",
    "webhook_request",
]
