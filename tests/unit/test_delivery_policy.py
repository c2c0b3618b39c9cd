"""The receiver's delivery policy: what receive() refuses before anything recursive or the queue sees it."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flatfile_app_jobs import listener as sample_listener
from flatfile_stack.delivery_policy import (
    MAX_DEPTH,
    InvalidEventError,
    MalformedJSONError,
    ReceivePolicy,
    receive,
)
from flatfile_stack.queues import Delivery

JOB_HEADERS = {"content-type": "application/json"}
OPEN_POLICY = ReceivePolicy(allow_unsigned=True)


def job_body(raw_input: str = "{}", *, event_id: str = "us_evt_1", job_id: str = "us_jb_1") -> bytes:
    """A job:ready body (for a registered sample job) with ``payload.input`` and the ids as written."""
    return (
        f'{{"id":"{event_id}","topic":"job:ready","context":{{"jobId":"{job_id}"}},'
        f'"payload":{{"job":"space:configure","input":{raw_input}}}}}'
    ).encode()


def nested(levels: int, *, opener: str = '{"a":', closer: str = "}") -> str:
    """``levels`` objects (or arrays) inside each other around a ``1``."""
    return opener * levels + "1" + closer * levels


def accept(body: bytes) -> Delivery:
    delivery = receive(body, JOB_HEADERS, policy=OPEN_POLICY, listener=sample_listener)
    assert delivery is not None
    return delivery


def test_nesting_up_to_the_limit_is_accepted_one_more_level_is_refused() -> None:
    """The event nests MAX_DEPTH levels (input at depth 3): accepted; one level more: MalformedJSONError."""
    accept(job_body(nested(MAX_DEPTH - 2)))
    accept(job_body(nested(MAX_DEPTH - 2, opener="[", closer="]")))
    for opener, closer in (('{"a":', "}"), ("[", "]")):
        with pytest.raises(MalformedJSONError, match=f"deeper than {MAX_DEPTH}"):
            receive(
                job_body(nested(MAX_DEPTH - 1, opener=opener, closer=closer)),
                JOB_HEADERS,
                policy=OPEN_POLICY,
                listener=sample_listener,
            )


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    """Brackets in strings (escaped quotes and backslashes around them too) are text, not depth."""
    text = '"' + "[{" * 200 + '\\"\\\\' + "]}" * 200 + '"'
    delivery = accept(job_body(f'{{"note":{text},"deep":{nested(10)}}}'))
    assert delivery.event["payload"]["input"]["note"].startswith("[{[{")


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":"' + b"[" * 100_000,
        b'"\\"' * 50_000 + b"[" * 100,
        b"[" * 100_000 + b'"',
        b"}" * 100 + b"{" * 100,
    ],
    ids=["unterminated-string", "escaped-quotes-only", "string-after-brackets", "closers-first"],
)
def test_malformed_text_full_of_brackets_is_a_malformed_json_error(body: bytes) -> None:
    """Unbalanced or unterminated text with many brackets is a MalformedJSONError, never another exception."""
    with pytest.raises(MalformedJSONError):
        receive(body, JOB_HEADERS, policy=OPEN_POLICY, listener=sample_listener)


JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ax\u00e9', max_size=6)


def depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@settings(max_examples=200, deadline=None)
@given(
    inner=st.recursive(
        JSON_LEAVES,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(JSON_LEAVES.filter(lambda leaf: isinstance(leaf, str)), children, max_size=3)
        ),
        max_leaves=8,
    ),
    wrappers=st.lists(st.sampled_from(["list", "dict"]), max_size=MAX_DEPTH + 4),
)
def test_depth_check_agrees_with_the_parsed_value(inner: object, wrappers: list[str]) -> None:
    """Refused for depth exactly when the parsed event nests deeper than MAX_DEPTH (brackets in keys too)."""
    value: object = inner
    for kind in wrappers:
        value = [value] if kind == "list" else {"k[": value}
    body = job_body(json.dumps(value))
    if 2 + depth(value) > MAX_DEPTH:
        with pytest.raises(MalformedJSONError, match="deeper than"):
            accept(body)
    else:
        accept(body)


@pytest.mark.parametrize(
    "number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1E400", "123456789e999"]
)
def test_numbers_json_does_not_have_are_refused(number: str) -> None:
    """NaN, Infinity and numbers overflowing to infinity are not RFC 8259 JSON: MalformedJSONError."""
    with pytest.raises(MalformedJSONError):
        receive(job_body(f'{{"n":{number}}}'), JOB_HEADERS, policy=OPEN_POLICY, listener=sample_listener)


def test_large_small_and_exact_numbers_are_kept() -> None:
    """The largest double, an underflow to zero and big integers are standard JSON, queued as sent."""
    raw = '{"max":1.7976931348623157e308,"tiny":1e-999,"big":123456789012345678901234567890,"neg":-0.5}'
    delivery = accept(job_body(raw))
    assert delivery.event["payload"]["input"] == {
        "max": 1.7976931348623157e308,
        "tiny": 0.0,
        "big": 123456789012345678901234567890,
        "neg": -0.5,
    }
    assert raw in delivery.body


@pytest.mark.parametrize(
    "raw_input",
    ['{"a":1,"a":2}', '{"x":{"b":1,"c":2,"b":3}}', '[{"k":1},{"k":2,"k":2}]'],
    ids=["top", "nested", "in-array"],
)
def test_duplicate_keys_anywhere_are_refused(raw_input: str) -> None:
    """A key twice in one object, at any depth, is a MalformedJSONError naming the key."""
    with pytest.raises(MalformedJSONError, match="appears twice"):
        receive(job_body(raw_input), JOB_HEADERS, policy=OPEN_POLICY, listener=sample_listener)


def test_same_key_in_different_objects_is_fine() -> None:
    """Only duplicates within one object are refused."""
    accept(job_body('[{"k":1},{"k":2}]'))


@pytest.mark.parametrize(
    ("ids", "field"),
    [
        ({"event_id": "x\\ud800"}, "event.id"),
        ({"job_id": "x\\udfff"}, "event.context.jobId"),
        ({"job_id": "us_jb_\\u0001"}, "event.context.jobId"),
        ({"event_id": "us_evt_\\uffff"}, "event.id"),
    ],
)
def test_ids_sqs_cannot_carry_as_attributes_are_invalid_events(ids: dict[str, str], field: str) -> None:
    """A lone surrogate, control character or non-character in an id is refused, naming the field."""
    with pytest.raises(InvalidEventError, match=re.escape(field)):
        receive(job_body(**ids), JOB_HEADERS, policy=OPEN_POLICY, listener=sample_listener)


def test_lone_surrogate_in_the_input_is_queued_escaped() -> None:
    """Outside the ids a lone surrogate is valid JSON text: accepted, and the queued body stays UTF-8."""
    delivery = accept(job_body('{"note":"x\\ud800"}'))
    assert delivery.body.encode("utf-8")
    assert json.loads(delivery.body)["payload"]["input"]["note"] == "x\ud800"
