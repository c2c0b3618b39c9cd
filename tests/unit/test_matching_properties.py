"""Properties of the @flatfile/listener matcher (``flatfile_jobs._matching``) on generated topics, events, filters."""

from __future__ import annotations

import copy
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flatfile_jobs._matching import flatten, matches_filter, matches_topic

settings.register_profile(
    "flatfile-jobs-properties",
    max_examples=int(os.environ.get("FLATFILE_JOBS_PROPERTY_EXAMPLES", "100")),
    deadline=None,
)
PROPERTIES = settings.get_profile("flatfile-jobs-properties")

# Names and segments without glob characters, separators or dots.
NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789_-", min_size=1, max_size=8)
TOPIC = st.lists(NAME, min_size=1, max_size=4).map(":".join)
SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
LEAF = SCALAR | st.lists(SCALAR, min_size=1, max_size=3)
# Events as Flatfile sends them: nested objects with plain keys; no empty objects (an empty object is compared
# with ===, like any object, so it never matches; no event field is an empty object anyway).
EVENT = st.dictionaries(
    NAME,
    st.recursive(
        LEAF, lambda children: st.dictionaries(NAME, children, min_size=1, max_size=4), max_leaves=6
    ),
    min_size=1,
    max_size=4,
)
ABSENT = "absent-value-7f3c9e"  # no glob characters; generated events never contain it


def _leaf_paths(event: dict[str, Any]) -> list[str]:
    return sorted(flatten(event))


# -- topics ---------------------------------------------------------------------------------------------


@PROPERTIES
@given(topic=TOPIC)
def test_double_star_matches_any_topic(topic: str) -> None:
    """`**` matches every topic."""
    assert matches_topic("**", topic)


@PROPERTIES
@given(topic=TOPIC)
def test_a_literal_topic_matches_itself(topic: str) -> None:
    """A topic without glob characters matches exactly itself."""
    assert matches_topic(topic, topic)


@PROPERTIES
@given(topic=TOPIC, stars=st.integers(1, 5))
def test_star_never_crosses_a_colon(topic: str, stars: int) -> None:
    """`*:*:…` (n stars) matches a topic exactly when it has n segments: `*` is one segment, never across `:`."""
    assert matches_topic(":".join(["*"] * stars), topic) is (topic.count(":") + 1 == stars)


@PROPERTIES
@given(head=NAME, rest=st.lists(NAME, max_size=3))
def test_trailing_double_star_matches_zero_or_more_segments(head: str, rest: list[str]) -> None:
    """`job:**` matches `job` and anything under it."""
    assert matches_topic(f"{head}:**", ":".join([head, *rest]))


@PROPERTIES
@given(
    topic=TOPIC, queries=st.lists(TOPIC | st.sampled_from(["*", "**", "*:*", "job:*", "*:ready"]), max_size=4)
)
def test_a_list_of_topics_matches_if_any_does(topic: str, queries: list[str]) -> None:
    """A list query matches iff one of its topics does (an empty list matches nothing)."""
    assert matches_topic(queries, topic) is any(matches_topic(q, topic) for q in queries)


@PROPERTIES
@given(topic=TOPIC.filter(lambda t: t != t.swapcase()))
def test_topics_are_case_sensitive(topic: str) -> None:
    """Changing the case of a literal topic's letters breaks the match."""
    assert not matches_topic(topic.swapcase(), topic)


# -- filters --------------------------------------------------------------------------------------------


@st.composite
def event_and_own_filter(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """An event and a filter built from some of its own leaves (keys as full paths or bare last names)."""
    event = draw(EVENT)
    paths = _leaf_paths(event)
    chosen = draw(st.lists(st.sampled_from(paths), min_size=1, max_size=len(paths), unique=True))
    flat = flatten(event)
    filter_: dict[str, Any] = {}
    for path in chosen:
        key = path.rsplit(".", 1)[-1] if draw(st.booleans()) else path
        filter_[key] = flat[path]
    return event, filter_


@PROPERTIES
@given(pair=event_and_own_filter())
def test_a_filter_built_from_the_events_own_values_matches(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """Every key = the event's own value (as a full path or a bare key) matches: strings as globs of themselves."""
    event, filter_ = pair
    assert matches_filter(filter_, event)


@PROPERTIES
@given(pair=event_and_own_filter(), key=NAME)
def test_an_extra_required_key_with_an_absent_value_never_matches(
    pair: tuple[dict[str, Any], dict[str, Any]], key: str
) -> None:
    """Requiring one more key whose value the event does not hold anywhere makes the filter fail."""
    event, filter_ = pair
    assert not matches_filter({**filter_, key: ABSENT}, event)
    assert not matches_filter({**filter_, f"zz_unrelated.{key}": ABSENT}, event)


@PROPERTIES
@given(pair=event_and_own_filter(), data=st.data())
def test_a_list_value_means_any_element(
    pair: tuple[dict[str, Any], dict[str, Any]], data: st.DataObject
) -> None:
    """`{k: [a, b]}` matches iff `{k: a}` or `{k: b}` does (with the rest of the filter unchanged)."""
    event, filter_ = pair
    key = data.draw(st.sampled_from(sorted(filter_)))
    others = data.draw(st.lists(SCALAR, max_size=2))
    own = filter_[key]
    options = [*(own if isinstance(own, list) else [own]), *others]
    options = data.draw(st.permutations(options))
    rest = {k: v for k, v in filter_.items() if k != key}
    expected = any(matches_filter({**rest, key: option}, event) for option in options)
    assert expected
    assert matches_filter({**rest, key: list(options)}, event) is expected


@PROPERTIES
@given(value=st.booleans() | st.integers(-(10**6), 10**6))
def test_string_globs_compare_with_the_value_as_javascript_writes_it(value: bool | int) -> None:
    """A string filter compares with String(value): `{"isPart": "false"}` matches `false`, "42" matches 42."""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    event = {"payload": {"field": value}}
    assert matches_filter({"field": text}, event)
    assert not matches_filter({"field": text + "0"}, event)


@PROPERTIES
@given(value=SCALAR.filter(lambda v: v is not None))
def test_null_matches_only_null(value: object) -> None:
    """A `null` filter value matches a null (or missing) field and nothing else."""
    assert matches_filter({"field": None}, {"payload": {"field": None}})
    assert matches_filter({"field": None}, {"payload": {}})
    assert not matches_filter({"field": None}, {"payload": {"field": value}})


@PROPERTIES
@given(segments=st.lists(NAME, min_size=2, max_size=4))
def test_star_in_a_value_never_crosses_a_colon(segments: list[str]) -> None:
    """`{job: "*"}` fails on `a:b`; `{job: "a:*"}`, `{job: "*:b"}` and `{job: "**"}` match a two-part name."""
    name = ":".join(segments)
    event = {"payload": {"job": name}}
    assert not matches_filter({"job": "*"}, event)
    assert matches_filter({"job": "**"}, event)
    assert matches_filter({"job": ":".join(["*"] * len(segments))}, event)
    assert matches_filter({"job": f"{segments[0]}:**"}, event)


@PROPERTIES
@given(pair=event_and_own_filter())
def test_a_bare_key_is_the_same_as_its_double_star_form(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """@flatfile/listener turns a bare key `k` into the glob `**.k`: both select the same paths."""
    event, filter_ = pair
    for key, value in filter_.items():
        if "." not in key:
            assert matches_filter({key: value}, event) is matches_filter({f"**.{key}": value}, event)
            assert matches_filter({key: ABSENT}, event) is matches_filter({f"**.{key}": ABSENT}, event)


@PROPERTIES
@given(pair=event_and_own_filter())
def test_nested_filters_flatten_to_dot_paths(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """`{"a": {"b": v}}` means the same as `{"a.b": v}`."""
    event, filter_ = pair
    nested: dict[str, Any] = {}
    for key, value in filter_.items():
        *parents, last = key.split(".")
        target = nested
        for parent in parents:
            target = target.setdefault(parent, {})
            if not isinstance(target, dict):  # a bare key and a path disagreeing; not this property's case
                return
        target[last] = value
    assert matches_filter(nested, event) is matches_filter(filter_, event)


@PROPERTIES
@given(pair=event_and_own_filter())
def test_matching_changes_neither_argument(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Matching is pure: the event and the filter are left as they were."""
    event, filter_ = pair
    before = copy.deepcopy((event, filter_))
    matches_filter(filter_, event)
    assert (event, filter_) == before
