"""JobCompleteDetails, JobOutcome and the ``next`` variants; turning a handler's return value into a body.

A handler may return ``None`` (the default outcome), one of these dataclasses, or the equivalent dict.
Either way :func:`complete_body` checks it against the API's shape and names the first thing wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from ._errors import InvalidOutcomeError

__all__ = [
    "DEFAULT_COMPLETE_BODY",
    "FileLink",
    "JobCompleteDetails",
    "JobOutcome",
    "Next",
    "NextDownload",
    "NextFiles",
    "NextId",
    "NextRetry",
    "NextSnapshot",
    "NextUrl",
    "NextView",
    "NextWait",
    "complete_body",
]

DEFAULT_COMPLETE_BODY: Mapping[str, Any] = {"outcome": {"message": "Job complete"}}


@dataclass(frozen=True, kw_only=True)
class NextId:
    """Send the user to a Flatfile resource by id."""

    id: str
    label: str | None = None
    path: str | None = None
    query: str | None = None
    type: Literal["id"] = "id"


@dataclass(frozen=True, kw_only=True)
class NextUrl:
    """Send the user to a URL."""

    url: str
    label: str | None = None
    type: Literal["url"] = "url"


@dataclass(frozen=True, kw_only=True)
class NextDownload:
    """Offer a file download."""

    url: str
    label: str | None = None
    file_name: str | None = None
    type: Literal["download"] = "download"


@dataclass(frozen=True, kw_only=True)
class FileLink:
    """One file of a :class:`NextFiles`."""

    file_id: str
    label: str | None = None


@dataclass(frozen=True, kw_only=True)
class NextFiles:
    """Point the user at Flatfile files."""

    files: Sequence[FileLink]
    label: str | None = None
    type: Literal["files"] = "files"


@dataclass(frozen=True, kw_only=True)
class NextWait:
    """Keep the dialog open (optionally with a fade or confetti)."""

    fade: bool | None = None
    confetti: bool | None = None
    type: Literal["wait"] = "wait"


@dataclass(frozen=True, kw_only=True)
class NextSnapshot:
    """Open a sheet snapshot."""

    snapshot_id: str
    sheet_id: str
    type: Literal["snapshot"] = "snapshot"


@dataclass(frozen=True, kw_only=True)
class NextRetry:
    """Offer to run the job again."""

    label: str | None = None
    type: Literal["retry"] = "retry"


@dataclass(frozen=True, kw_only=True)
class NextView:
    """Open a sheet view with some columns hidden."""

    sheet_id: str
    hidden_columns: Sequence[str]
    label: str | None = None
    type: Literal["view"] = "view"


Next: TypeAlias = NextId | NextUrl | NextDownload | NextFiles | NextWait | NextSnapshot | NextRetry | NextView


@dataclass(frozen=True, kw_only=True)
class JobOutcome:
    """What the user sees when the job ends."""

    acknowledge: bool | None = None
    trigger: Mapping[str, Any] | str | None = None
    button_text: str | None = None
    next: Next | None = None
    heading: str | None = None
    message: str | None = None
    hide_default_button: bool | None = None


@dataclass(frozen=True, kw_only=True)
class JobCompleteDetails:
    """The body of ``POST /jobs/{id}/complete`` (and ``/fail``).

    Example:
        >>> complete_body(JobCompleteDetails(outcome=JobOutcome(message="Imported 3 rows",
        ...     next=NextUrl(url="https://example.com", label="Open"))))
        ... # doctest: +NORMALIZE_WHITESPACE
        {'outcome': {'next': {'url': 'https://example.com', 'label': 'Open', 'type': 'url'},
                     'message': 'Imported 3 rows'}}
    """

    outcome: JobOutcome | None = None
    info: str | None = None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _to_wire(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            _camel(f.name): _to_wire(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, list | tuple):
        return [_to_wire(item) for item in value]
    return value


# field -> (accepted types, required); the API's camelCase names.
_Schema: TypeAlias = Mapping[str, tuple[tuple[type, ...], bool]]
_STR, _BOOL, _LIST = (str,), (bool,), (list, tuple)
_NEXT: Mapping[str, _Schema] = {
    "id": {
        "id": (_STR, True),
        "label": (_STR, False),
        "path": (_STR, False),
        "query": ((str, Mapping), False),
    },
    "url": {"url": (_STR, True), "label": (_STR, False)},
    "download": {"url": (_STR, True), "label": (_STR, False), "fileName": (_STR, False)},
    "files": {"files": (_LIST, True), "label": (_STR, False)},
    "wait": {"fade": (_BOOL, False), "confetti": (_BOOL, False)},
    "snapshot": {"snapshotId": (_STR, True), "sheetId": (_STR, True)},
    "retry": {"label": (_STR, False)},
    "view": {"sheetId": (_STR, True), "hiddenColumns": (_LIST, True), "label": (_STR, False)},
}
_OUTCOME: _Schema = {
    "acknowledge": (_BOOL, False),
    "trigger": ((str, Mapping), False),
    "buttonText": (_STR, False),
    "next": ((Mapping,), False),
    "heading": (_STR, False),
    "message": (_STR, False),
    "hideDefaultButton": (_BOOL, False),
}
_DETAILS: _Schema = {"outcome": ((Mapping,), False), "info": (_STR, False)}
_FILE: _Schema = {"fileId": (_STR, True), "label": (_STR, False)}


def _check(value: object, schema: _Schema, where: str, extra: Sequence[str] = ()) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidOutcomeError(f"{where} must be an object, got {type(value).__name__}")
    unknown = sorted(set(value) - set(schema) - set(extra))
    if unknown:
        raise InvalidOutcomeError(f"{where} has unknown field {unknown[0]!r}")
    for name, (types, required) in schema.items():
        if name not in value or value[name] is None:
            if required:
                raise InvalidOutcomeError(f"{where}.{name} is required")
            continue
        item = value[name]
        if not isinstance(item, types) or (types != _BOOL and isinstance(item, bool)):
            expected = " or ".join("object" if t is Mapping else t.__name__ for t in types)
            raise InvalidOutcomeError(f"{where}.{name} must be {expected}, got {type(item).__name__}")
    return value


def _check_next(value: object) -> None:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if not isinstance(kind, str) or kind not in _NEXT:
        raise InvalidOutcomeError(f"outcome.next.type must be one of {', '.join(_NEXT)}, got {kind!r}")
    checked = _check(value, _NEXT[kind], "outcome.next", extra=("type",))
    if kind == "files":
        for index, item in enumerate(checked["files"]):
            _check(item, _FILE, f"outcome.next.files[{index}]")
    if kind == "view" and not all(isinstance(c, str) for c in checked["hiddenColumns"]):
        raise InvalidOutcomeError("outcome.next.hiddenColumns must be a list of strings")


def complete_body(result: object) -> Mapping[str, Any]:
    """The ``/complete`` body for a handler's return value (``None`` gives the default outcome).

    Raises:
        InvalidOutcomeError: ``result`` is not a JobCompleteDetails (or its dict), naming what is wrong.
    """
    if result is None:
        return DEFAULT_COMPLETE_BODY
    if isinstance(result, JobCompleteDetails):
        body = _to_wire(result)
    elif isinstance(result, Mapping):
        body = result
    else:
        raise InvalidOutcomeError(
            f"the handler returned {type(result).__name__}; return None, a JobCompleteDetails or its dict"
        )
    details = _check(body, _DETAILS, "JobCompleteDetails")
    if details.get("outcome") is not None:
        outcome = _check(details["outcome"], _OUTCOME, "outcome")
        if outcome.get("next") is not None:
            _check_next(outcome["next"])
    return details
