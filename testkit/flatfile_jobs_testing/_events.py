"""Builders for ``job:ready`` events as Flatfile stores them and as the webhook forwarder posts them."""

from __future__ import annotations

import copy
import secrets
from datetime import UTC, datetime
from typing import Any

__all__ = ["forwarded_event", "iso_ms", "job_ready_event", "split_job"]


def iso_ms(moment: datetime) -> str:
    """Format a time the way Flatfile does: UTC, millisecond precision, ``Z`` suffix.

    Args:
        moment: The time; a naive one is taken as UTC.

    Returns:
        A string such as ``"2026-11-29T15:00:00.123Z"``.
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def split_job(job: str) -> tuple[str, str]:
    """Split a job name ``"<domain>:<operation>"`` into its domain and operation.

    Raises:
        ValueError: When the name has no ``:`` or an empty domain or operation.
    """
    domain, sep, operation = job.partition(":")
    if not sep or not domain or not operation:
        raise ValueError(f"a job name is '<domain>:<operation>', not {job!r}")
    return domain, operation


def job_ready_event(
    job: str = "space:configure",
    *,
    job_id: str | None = None,
    event_id: str | None = None,
    environment_id: str = "us_env_test",
    space_id: str = "us_sp_test",
    account_id: str = "us_acc_test",
    workbook_id: str | None = None,
    sheet_id: str | None = None,
    actor_id: str | None = "us_usr_test",
    is_part: bool = False,
    input: dict[str, Any] | None = None,
    created_at: str | None = None,
) -> dict[str, Any]:
    """Build a ``job:ready`` event in the shape the Flatfile API stores it.

    Example:
        >>> event = job_ready_event("workbook:submitAction", workbook_id="us_wb_1")
        >>> event["payload"]["job"], event["context"]["workbookId"]
        ('workbook:submitAction', 'us_wb_1')

    Args:
        job: The job name, ``"<domain>:<operation>"``.
        job_id: The job's id; a random ``us_jb_…`` when not given.
        event_id: The event's id; a random ``us_evt_…`` when not given.
        environment_id: ``context.environmentId``.
        space_id: ``context.spaceId``.
        account_id: ``context.accountId``.
        workbook_id: ``context.workbookId``, left out when ``None``.
        sheet_id: ``context.sheetId``, left out when ``None``.
        actor_id: ``context.actorId``, left out when ``None``.
        is_part: ``payload.isPart`` (a part of a multi-part job).
        input: ``payload.input``; ``{}`` when not given.
        created_at: ``createdAt``; now (millisecond precision, ``Z``) when not given.

    Returns:
        A new event dict.

    Raises:
        ValueError: When ``job`` is not ``"<domain>:<operation>"``.
    """
    domain, operation = split_job(job)
    job_id = job_id if job_id is not None else f"us_jb_{secrets.token_hex(4)}"
    context: dict[str, Any] = {"accountId": account_id, "environmentId": environment_id, "spaceId": space_id}
    if workbook_id is not None:
        context["workbookId"] = workbook_id
    if sheet_id is not None:
        context["sheetId"] = sheet_id
    context["jobId"] = job_id
    if actor_id is not None:
        context["actorId"] = actor_id
    return {
        "id": event_id if event_id is not None else f"us_evt_{secrets.token_hex(4)}",
        "topic": "job:ready",
        "domain": "job",
        "createdAt": created_at if created_at is not None else iso_ms(datetime.now(UTC)),
        "context": context,
        "payload": {
            "job": job,
            "domain": domain,
            "operation": operation,
            "status": "ready",
            "info": None,
            "isPart": is_part,
            "input": copy.deepcopy(input) if input is not None else {},
        },
        "callbackUrl": "",
        "dataUrl": "",
        "namespaces": [],
        "origin": {"id": job_id},
        "target": "",
    }


def forwarded_event(
    event: dict[str, Any],
    *,
    access_token: str = "sk_agent_token",  # noqa: S107 - a placeholder for tests, not a secret
) -> dict[str, Any]:
    """Wrap an event the way ``@flatfile/plugin-webhook-event-forwarder`` posts it.

    The forwarder serializes the listener's event object: the raw event under ``src``, copies of its
    top-level keys beside it, and the agent's bearer token as ``_accessToken`` (a secret a receiver must
    never log, store or pass on).

    Example:
        >>> body = forwarded_event(job_ready_event(), access_token="sk_x")
        >>> body["src"]["topic"], body["topic"], body["_accessToken"]
        ('job:ready', 'job:ready', 'sk_x')

    Args:
        event: The event as the API stores it (left unchanged).
        access_token: The value of ``_accessToken``.

    Returns:
        A new dict; ``src`` and the top-level copies are independent deep copies.
    """
    body: dict[str, Any] = {"src": copy.deepcopy(event)}
    for key, value in event.items():
        if key not in ("src", "_accessToken"):
            body[key] = copy.deepcopy(value)
    body["_accessToken"] = access_token
    return body
