"""ReceiverFunction: the URL Flatfile's forwarder posts to. Check, enqueue, answer: never runs a job.

The composition root: the app's job table (no handler module is imported to match a job) and the adapters
built from this function's environment on first use.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from flatfile_app_jobs import listener
from flatfile_jobs import webhook
from flatfile_stack import receiver
from flatfile_stack.queues import QueueUnavailableError
from flatfile_stack.runtime import FunctionRuntime

logger = Logger()
runtime = FunctionRuntime(listener)
app = APIGatewayHttpResolver()

# Every way a delivery is refused, and its status: the one place errors become HTTP statuses.
STATUS_BY_ERROR: dict[type[webhook.DeliveryError], int] = {
    webhook.MalformedJSONError: 400,
    webhook.WebhookVerificationError: 401,
    webhook.ForbiddenEnvironmentError: 403,
    webhook.PayloadTooLargeError: 413,
    webhook.UnsupportedMediaTypeError: 415,
    webhook.InvalidEventError: 422,
}
# The one 5xx: what the receiver depends on failed (not the delivery); the sender retries after this long.
RETRY_AFTER_SECONDS = 5


def _json(status: int, body: dict[str, Any]) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


@app.post("/webhook")
def webhook_delivery() -> Response[Any]:
    """Accept one job:ready delivery: 202 when enqueued, 200 when no handler wants it."""
    event = app.current_event
    body = receiver.raw_body(event.get("body"), is_base64_encoded=bool(event.get("isBase64Encoded")))
    # The raw headers (HTTP API lowercases their names; the lookups are case-insensitive anyway): `event.headers`
    # would build a case-insensitive copy per access.
    status, answer = receiver.accept(body, event.get("headers") or {}, runtime())
    logger.debug("Delivery answered", extra={**answer, "http_status": status})
    return _json(status, answer)


@app.exception_handler(webhook.DeliveryError)  # type: ignore[untyped-decorator]
def refused(error: webhook.DeliveryError) -> Response[Any]:
    """A refused delivery: its status and a JSON error the sender can read."""
    status = STATUS_BY_ERROR.get(type(error), 400)
    logger.warning("Delivery refused", extra={"http_status": status, "reason": str(error)})
    return _json(status, {"error": type(error).__name__, "message": str(error)})


@app.exception_handler([QueueUnavailableError, receiver.SecretUnavailableError])  # type: ignore[untyped-decorator]
def unavailable(error: Exception) -> Response[Any]:
    """The queue or the signing secret failed: 503 with ``Retry-After`` so the sender tries again."""
    logger.error("Delivery not accepted: a dependency failed", exc_info=error, extra={"http_status": 503})
    return Response(
        status_code=503,
        content_type=content_types.APPLICATION_JSON,
        body={"error": "ServiceUnavailable", "message": f"{error}; retry later"},
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


# log_event=False: the request carries _accessToken and signatures; POWERTOOLS_LOGGER_LOG_EVENT must not log it.
@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Route the HTTP API (payload v2) request."""
    return app.resolve(event, context)
