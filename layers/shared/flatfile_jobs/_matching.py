"""Topic and filter matching with @flatfile/listener's semantics; pure functions.

Topics and string filter values are globs with ``:`` as separator (``*`` one segment, ``**`` any number);
filter keys are globs with ``.`` as separator over the event's flattened dot-paths, and a bare key
(no ``.``, no ``*``) matches any path ending in ``.<key>`` (``job`` hits ``payload.job``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

__all__ = ["flatten", "matches_filter", "matches_flat", "matches_topic", "segment_glob"]


@lru_cache(maxsize=1024)
def _segment_regex(segment: str) -> re.Pattern[str]:
    """Translate one glob segment (``*`` any run, ``?`` one character) to an anchored regex."""
    parts = ("[\\s\\S]*" if ch == "*" else "[\\s\\S]" if ch == "?" else re.escape(ch) for ch in segment)
    return re.compile("".join(parts) + r"\Z")


def _match_segments(pattern: Sequence[str], value: Sequence[str]) -> bool:
    if not pattern:
        return not value
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match_segments(rest, value[i:]) for i in range(len(value) + 1))
    return bool(value) and bool(_segment_regex(head).match(value[0])) and _match_segments(rest, value[1:])


@lru_cache(maxsize=4096)
def segment_glob(pattern: str, value: str, separator: str) -> bool:
    """Whether ``value`` matches ``pattern`` segment by segment (``*`` never crosses ``separator``)."""
    return _match_segments(tuple(pattern.split(separator)), tuple(value.split(separator)))


def matches_topic(query: str | Sequence[str], topic: str) -> bool:
    """Whether ``topic`` matches the topic glob ``query`` (or any of a list of them)."""
    queries = [query] if isinstance(query, str) else list(query)
    return any(segment_glob(q, topic, ":") for q in queries)


_LEAVES = (str, int, float, list, tuple, type(None))


def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to dot-paths; lists and scalars are kept whole as leaves."""
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        path = f"{prefix}{key}"
        # A dict, then the concrete JSON leaf types, before the ABC check (a Python-level call each time).
        if (type(value) is dict or (not isinstance(value, _LEAVES) and isinstance(value, Mapping))) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def _js_string(value: object) -> str:
    """``String(value)`` as JavaScript would write it, for comparing with string globs."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, Mapping):
        return "[object Object]"
    if isinstance(value, list | tuple):
        return ",".join("" if item is None else _js_string(item) for item in value)
    return str(value)


def _strict_equal(expected: object, actual: object) -> bool:
    """JavaScript ``===`` for the JSON scalar types (objects and arrays are never equal by value)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected is actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return expected == actual
    if isinstance(expected, Mapping | list | tuple):
        return False
    return type(expected) is type(actual) and expected == actual


def _value_matches(expected: object, actual: object) -> bool:
    if isinstance(expected, list | tuple):
        return any(_value_matches(item, actual) for item in expected)
    if actual is None:
        return expected is None
    if isinstance(actual, list | tuple):
        return any(_value_matches(expected, item) for item in actual)
    if isinstance(expected, str):
        return segment_glob(expected, _js_string(actual), ":")
    return _strict_equal(expected, actual)


def _key_paths(key: str, paths: Mapping[str, Any]) -> list[str]:
    """The event paths a filter key selects."""
    if "." not in key and "*" not in key:
        # `**.<key>`: `**` may be empty, so the top-level key itself matches too.
        suffix = "." + key
        return [path for path in paths if path == key or path.endswith(suffix)]
    return [path for path in paths if segment_glob(key, path, ".")]


def matches_filter(filter_: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether ``event`` satisfies every key of ``filter_`` (see the module docstring for the rules)."""
    return matches_flat(flatten(filter_), flatten(event))


def matches_flat(flat_filter: Mapping[str, Any], event_paths: Mapping[str, Any]) -> bool:
    """:func:`matches_filter` on already flattened filter and event (flatten each once, match many)."""
    for key, expected in flat_filter.items():
        selected = _key_paths(key, event_paths)
        values = [event_paths[path] for path in selected] or [None]
        if not any(_value_matches(expected, value) for value in values):
            return False
    return True
