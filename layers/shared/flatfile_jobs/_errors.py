"""One exception tree for flatfile_jobs.

::

    FlatfileJobsError
    ├── ConfigurationError          a setting is missing or invalid (names what to set)
    ├── FlatfileAPIError            an API call failed for good (status, method, path, job_id)
    ├── JobCanceled                 the job was canceled in Flatfile; raised by ``tick`` inside the handler
    ├── JobTimeoutError             the lifecycle's deadline passed; raised inside a still-running handler
    ├── StepFailedError             a long job's step failed after its attempts (its message fails the job)
    ├── InvalidOutcomeError         a handler returned something that is not a JobCompleteDetails
    ├── DispatchError               a listener callback failed (``errors`` holds every failure)
    └── DeliveryError               a webhook delivery is refused (the receiver maps each to an HTTP status)
        ├── MalformedJSONError
        ├── WebhookVerificationError
        ├── ForbiddenEnvironmentError
        ├── PayloadTooLargeError
        ├── UnsupportedMediaTypeError
        └── InvalidEventError

A job handler's own exception is never wrapped: its message is what fails the job.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DeliveryError",
    "DispatchError",
    "FlatfileAPIError",
    "FlatfileJobsError",
    "ForbiddenEnvironmentError",
    "InvalidEventError",
    "InvalidOutcomeError",
    "JobCanceled",
    "JobTimeoutError",
    "MalformedJSONError",
    "PayloadTooLargeError",
    "StepFailedError",
    "UnsupportedMediaTypeError",
    "WebhookVerificationError",
]


class FlatfileJobsError(Exception):
    """Base of every error this library raises."""


class ConfigurationError(FlatfileJobsError):
    """A required setting is missing or invalid; the message names what to set."""


class FlatfileAPIError(FlatfileJobsError):
    """A Flatfile API call failed after retries (or was not retryable).

    Attributes:
        status: The HTTP status, or ``None`` when no response arrived (connection error, timeout).
        method: The HTTP method of the call.
        path: The API path, e.g. ``/jobs/us_jb_1/ack``.
        job_id: The job the call was about, when there was one.
    """

    def __init__(
        self, message: str, *, status: int | None, method: str, path: str, job_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path
        self.job_id = job_id


class JobCanceled(FlatfileJobsError):
    """The job was canceled in Flatfile; the lifecycle neither completes nor fails it."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"Job {job_id} was canceled")
        self.job_id = job_id


class JobTimeoutError(FlatfileJobsError):
    """The lifecycle's deadline passed while the handler was still running."""

    def __init__(self, job_id: str = "", seconds: float = 0.0) -> None:
        # Defaults let it be raised into a handler's thread, which can only pass the class.
        super().__init__(f"Job timed out after {seconds:.0f} s")
        self.job_id = job_id
        self.seconds = seconds


class StepFailedError(FlatfileJobsError):
    """A long job's step failed after its attempts; its message is the step's own error message.

    Attributes:
        step: The step's name.
        error_type: The name of the exception class the step raised last.
    """

    def __init__(self, step: str, message: str, *, error_type: str = "") -> None:
        super().__init__(message)
        self.step = step
        self.error_type = error_type


class InvalidOutcomeError(FlatfileJobsError, ValueError):
    """A handler returned a value that is not a valid JobCompleteDetails."""


class DispatchError(FlatfileJobsError):
    """One or more listener callbacks raised; the event should be retried.

    Attributes:
        errors: Every exception the callbacks raised, in registration order.
    """

    def __init__(self, errors: list[BaseException]) -> None:
        super().__init__(f"{len(errors)} callback(s) failed: {errors[0]!r}")
        self.errors = errors


class DeliveryError(FlatfileJobsError):
    """A webhook delivery was refused; the message is safe to return to the sender."""


class MalformedJSONError(DeliveryError):
    """The body is not JSON (or not UTF-8)."""


class WebhookVerificationError(DeliveryError):
    """The Standard Webhooks signature is missing, malformed, stale or wrong."""


class ForbiddenEnvironmentError(DeliveryError):
    """The event comes from a Flatfile environment that is not on the allow-list."""


class PayloadTooLargeError(DeliveryError):
    """The body is larger than the receiver accepts."""


class UnsupportedMediaTypeError(DeliveryError):
    """The request's content type is not JSON."""


class InvalidEventError(DeliveryError):
    """The JSON is valid but is not a job:ready event of the expected shape."""
