"""Test kit: a fake Flatfile API on loopback, with fault injection, and ``job:ready`` event builders.

Only the standard library is used, and nothing starts until a ``FakeFlatfile`` is made.

Example:
    >>> from flatfile_jobs.testing import FakeFlatfile, Fault
    >>> with FakeFlatfile(seed=0) as fake:  # doctest: +SKIP
    ...     event = fake.create_job_event("workbook:submitAction")
    ...     fake.add_fault(Fault(path="/jobs/*/complete", status=503, times=1))
    ...     # point the code under test at fake.url with fake.token, then:
    ...     fake.calls(event["context"]["jobId"])
"""

from __future__ import annotations

from flatfile_jobs.testing._events import forwarded_event, job_ready_event
from flatfile_jobs.testing._fake import FakeFlatfile
from flatfile_jobs.testing._faults import Fault, RecordedRequest

__all__ = ["FakeFlatfile", "Fault", "RecordedRequest", "forwarded_event", "job_ready_event"]
