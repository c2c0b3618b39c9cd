"""URL paths from ids: every segment percent-encoded whole, dot and empty segments refused.

Ids are data, not path fragments: ``api_path("jobs", job_id, "ack")`` keeps whatever ``job_id`` holds inside
its own segment, so no id can add a ``/``, ``..``, ``?`` or ``#`` to a URL, and :func:`check_path` refuses a
hand-written path that could leave the API's tree.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

__all__ = ["api_path", "check_path", "shown", "shown_path"]

# A path the client sends: "/"-separated, non-empty segments of RFC 3986 path characters (no ?, #, space).
_SAFE_PATH = re.compile(r"(?:/[A-Za-z0-9\-._~!$&'()*+,;=:@%]+)+")
_DOT_SEGMENTS = frozenset({".", ".."})


def api_path(*segments: str) -> str:
    """A path from its segments, each percent-encoded whole: ``api_path("jobs", "a/b")`` is ``/jobs/a%2Fb``.

    Only unreserved characters (letters, digits, ``-._~``) stay as they are, so no segment can add a
    ``/``, ``?``, ``#`` or ``%`` of its own; ``.``, ``..`` and empty segments are refused, as is text
    that is not valid Unicode.

    Raises:
        ValueError: A segment is not a string, is empty, ``.`` or ``..``, or holds a lone surrogate.
    """
    encoded = []
    for segment in segments:
        if not isinstance(segment, str) or segment in _DOT_SEGMENTS or not segment:
            raise ValueError(f"{shown(segment)} cannot be a URL path segment")
        try:
            encoded.append(quote(segment, safe=""))
        except UnicodeEncodeError:
            raise ValueError(f"{shown(segment)} is not valid Unicode") from None
    return "/" + "/".join(encoded)


def check_path(path: str) -> None:
    """Refuse a hand-written path that could leave the API's tree or carry a query or fragment.

    Raises:
        ValueError: ``path`` is not ``/``-separated non-empty segments of path characters, or one of
            them is (or percent-decodes to) ``.`` or ``..``.
    """
    if not isinstance(path, str) or not _SAFE_PATH.fullmatch(path):
        raise ValueError(f"{shown(path)} is not a path of non-empty, percent-encoded segments")
    if any(unquote(segment) in _DOT_SEGMENTS for segment in path.split("/")):
        raise ValueError(f"{shown(path)} has a '.' or '..' segment")


def shown(value: object) -> str:
    """``value`` for an error message: ASCII only, cut short (it may come from a sender)."""
    text = ascii(value)
    return text if len(text) <= 80 else text[:77] + "..."


def shown_path(segments: tuple[object, ...]) -> str:
    """Segments that :func:`api_path` refused, joined for an error's ``path`` (escaped, never sent)."""
    return "/" + "/".join(
        quote(segment, safe="", errors="backslashreplace") if isinstance(segment, str) else "?"
        for segment in segments
    )
