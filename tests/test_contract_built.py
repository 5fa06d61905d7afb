"""The built-event check (contract/built.py) answers what the schema validator answers.

Its recognizer says "valid" only when the compiled JSON Schema says so; everything else goes to
the schema validator. Checked on every event the builder makes from the benchmark generator's
orders of both shapes (through the tap-shopify/orders preset), on the official page's examples,
and on thousands of mutations of them: each value of each event replaced in turn by values
that break some rule (wrong types, empty, too long, out of range, bad formats), keys removed
and keys added.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from target_openai_capi.contract import event_problem, explain
from target_openai_capi.contract.built import (
    built_event_problem,
    certainly_valid,
    user_value_rule,
)
from target_openai_capi.contract.schema import EVENT_SCHEMA
from target_openai_capi.mapping.errors import MappingError
from target_openai_capi.mapping.event import build_event
from target_openai_capi.mapping.stream_mapping import compile_stream_mapping

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import generate

_DECODE = msgspec.json.Decoder(float_hook=Decimal)
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def built_events(shape: str, records: int = 400) -> list[dict[str, Any]]:
    mapping = compile_stream_mapping("orders", {"preset": "tap-shopify/orders"})
    events = []
    for line in generate.stream_lines(records, seed=7, now=NOW, shape=shape):
        message = _DECODE.decode(line)
        if message["type"] != "RECORD":
            continue
        try:
            event, _ = build_event(mapping, message["record"], ["id"], default_phone_region="US")
        except MappingError:  # (varied orders hold a few the target rejects)
            continue
        if event["action_source"] == "web" and "source_url" not in event:
            continue  # (and a few web orders without a page, which the contract refuses)
        events.append(event)
    return events


OTHER_EVENTS: list[dict[str, Any]] = [
    # Every shape and the fields the preset does not produce.
    {
        "id": "lead-1",
        "type": "lead_created",
        "timestamp_ms": 1_764_590_400_000,
        "action_source": "phone_call",
        "opt_out": True,
        "user": {
            "email_sha256": "a" * 64,
            "external_id_sha256": "b" * 64,
            "country": "us",
            "city": "Paris",
            "zip_code": "75001",
            "obref": "ob.1",
            "android_advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d",
            "user_agent": "Mozilla/5.0",
            "ip_address": "2001:db8::1",
        },
        "data": {"type": "customer_action", "amount": 100, "currency": "EUR"},
    },
    {
        "id": "sub-1",
        "type": "subscription_created",
        "timestamp_ms": 1_764_590_400_000,
        "data": {
            "type": "plan_enrollment",
            "plan_id": "pro",
            "contents": [{"id": "p", "amount": 5, "currency": "USD", "quantity": 0}],
        },
    },
    {
        "id": "c-1",
        "type": "custom",
        "custom_event_name": "quote_requested",
        "timestamp_ms": 1_764_590_400_000,
        "action_source": "web",
        "source_url": "https://example.com/q?x=1",
        "oppref": "opp_1",
        "data": {"type": "custom", "tier": "gold", "score": 3, "nested": {"a": [1, None]}},
    },
    {
        "id": "app-1",
        "type": "app_installed",
        "timestamp_ms": 1_764_590_400_000,
        "action_source": "mobile_app",
        "user": {"android_advertising_id": "38400000-8CF0-11BD-B23E-10B96E40000D"},
        "data": {"type": "customer_action"},
    },
    {
        "id": "v-1",
        "type": "items_added",
        "timestamp_ms": 1,
        "data": {
            "type": "contents",
            "contents": [
                {
                    "id": "s",
                    "group_id": "g",
                    "content_type": "product",
                    "variant_dict": {"size": "M"},
                }
            ],
        },
    },
]

BAD_VALUES: list[Any] = [
    None,
    "",
    " ",
    "x",
    "x" * 300,
    "x" * 9000,
    0,
    -1,
    1.5,
    12.0,
    True,
    False,
    [],
    [""],
    ["x"],
    ["A" * 64],
    {},
    {"x": 1},
    "US",
    "usd",
    "USD",
    "USDX",
    "custom",
    "Order_Created",
    "web",
    "mobile_app",
    "contents",
    "1.2.3.4",
    "1.2.3.400",
    "fe80::1%eth0",
    "not a url",
    "https://example.com/\n",
    "a" * 64,
    "A" * 64,
    "g" * 64,
    "00000000-0000-0000-0000-00000000000",
]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key in value:
            yield from _paths(value[key], (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _replaced(event: dict[str, Any], path: tuple[Any, ...], new: Any) -> dict[str, Any]:
    copied = copy.deepcopy(event)
    node = copied
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return copied


def _removed(event: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    copied = copy.deepcopy(event)
    node = copied
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return copied


def mutations(event: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for path in itertools.islice(_paths(event), 1, None):
        for bad in BAD_VALUES:
            yield _replaced(event, path, bad)
        yield _removed(event, path)
    for container in [p for p in _paths(event) if not p or isinstance(_at(event, p), dict)]:
        yield (
            _replaced(event, (*container, "unexpected"), 1)
            if container
            else {
                **event,
                "unexpected": 1,
            }
        )


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _agree(event: Any) -> None:
    expected = event_problem(event)
    assert built_event_problem(event) == expected, event
    if certainly_valid(event):
        assert expected is None, event


@pytest.mark.parametrize("shape", ["full", "sparse", "varied"])
def test_every_event_built_from_the_benchmark_orders_is_recognised_as_valid(shape):
    events = built_events(shape)
    assert len(events) == 400 if shape != "varied" else len(events) >= 390
    for event in events:
        assert event_problem(event) is None
        assert certainly_valid(event), event  # the fast path is the one taken


@pytest.mark.parametrize("index", range(len(OTHER_EVENTS)))
def test_other_valid_events_are_recognised_too(index):
    assert event_problem(OTHER_EVENTS[index]) is None
    assert certainly_valid(OTHER_EVENTS[index])


@pytest.mark.parametrize(
    "seed_event",
    [
        *built_events("full", 3)[:2],
        *built_events("sparse", 3)[:2],
        *built_events("varied", 3)[:2],
        *OTHER_EVENTS,
    ],
    ids=lambda e: f"{e['type']}-{e['id'][-6:]}",
)
def test_mutations_of_an_event_get_the_schemas_answer(seed_event):
    count = invalid = 0
    for mutated in mutations(seed_event):
        _agree(mutated)
        count += 1
        invalid += event_problem(mutated) is not None
    assert count > 250
    assert invalid > count // 3  # the mutations do break rules


def test_events_that_are_not_objects_get_the_schemas_answer():
    for value in [None, [], "event", 1, {"type": "order_created"}, {}]:
        _agree(value)


# --- events straight from the builder: user values were checked as they were made ------------


def _inside_a_user_value(path: tuple[Any, ...]) -> bool:
    return len(path) >= 2 and path[0] == "user"


@pytest.mark.parametrize("shape", ["full", "sparse", "varied"])
def test_built_events_are_recognised_without_looking_at_their_user_values(shape):
    for event in built_events(shape):
        assert certainly_valid(event, normalised_user=True), event


@pytest.mark.parametrize(
    "seed_event",
    [
        *built_events("full", 3)[:2],
        *built_events("sparse", 3)[:2],
        *built_events("varied", 3)[:2],
        *OTHER_EVENTS,
    ],
    ids=lambda e: f"{e['type']}-{e['id'][-6:]}",
)
def test_with_normalised_user_values_every_other_rule_is_still_checked(seed_event):
    """Every mutation but those of a user value (which user_values.py made and checked) gets
    the schema's answer: the user object's keys, and everything outside it, are still checked."""
    count = invalid = 0
    for path in itertools.islice(_paths(seed_event), 1, None):
        if _inside_a_user_value(path):
            continue
        for mutated in [*(_replaced(seed_event, path, bad) for bad in BAD_VALUES),
                        _removed(seed_event, path)]:  # fmt: skip
            expected = event_problem(mutated)
            assert built_event_problem(mutated, normalised_user=True) == expected, mutated
            count += 1
            invalid += expected is not None
    if "user" in seed_event:
        mutated = _replaced(seed_event, ("user", "unexpected"), ["a" * 64])
        assert event_problem(mutated) is not None
        assert built_event_problem(mutated, normalised_user=True) == event_problem(mutated)
    assert count > 100
    assert invalid > count // 3


def test_a_user_value_is_what_normalised_user_leaves_unchecked():
    """The one thing the option trusts: a user value. Never use it for an event from outside."""
    event = copy.deepcopy(built_events("sparse", 1)[0])
    event["user"]["emails_sha256"] = ["not a digest"]
    assert event_problem(event) is not None
    assert certainly_valid(event, normalised_user=True)
    assert not certainly_valid(event)


def test_the_digest_rule_without_its_pattern_is_the_schemas_rule():
    """Hashed user values in a list are recognised by length and characters (built.py
    `_digest_list_rule`), a single value by its node's rule with the pattern (`user_value_rule`,
    what user_values.py checks each value it makes against): both agree with the schema on
    digests and on near misses of every kind."""
    digest = "0123456789abcdef" * 4
    values: list[object] = [digest, digest.upper(), digest[:-1], digest + "0", digest[:-1] + "\n",
        digest + "\n", " " + digest[1:], digest[:-1] + "g", "\u0660" * 64, "\uff10" * 64, "",
        None, 64, [digest], digest[:32] + "-" + digest[33:]]  # fmt: skip
    for value in values:
        event = {**OTHER_EVENTS[0], "user": {"emails_sha256": [value]}}
        expected = event_problem(event)
        assert built_event_problem(event) == expected, value
        assert (expected is None) == (value == digest), value
        assert user_value_rule("emails_sha256")[0](value) == (value == digest), value


# --- the explaining validator's schema: $refs inlined -------------------------------------------


def _errors(validator: Any, event: Any) -> list[tuple[Any, ...]]:
    return sorted(
        (
            [str(part) for part in error.absolute_path],
            [str(part) for part in error.absolute_schema_path],
            error.validator,
            error.message,
        )
        for error in validator.iter_errors(event)
    )


def test_the_explaining_schema_without_refs_reports_what_the_schema_as_written_does():
    """explain.py validates against the schema with its $refs inlined (jsonschema looks each up
    again at every use): every error, its instance path and its schema path must be those the
    schema as written gives, since messages are read from those paths."""
    inlined = explain._explainer()
    as_written = type(inlined)(EVENT_SCHEMA, format_checker=inlined.format_checker)
    assert "$ref" not in json.dumps(inlined.schema["properties"])
    assert "$ref" in json.dumps(as_written.schema["properties"])
    seeds = OTHER_EVENTS
    count = with_errors = 0
    for seed in seeds:
        for event in [seed, *mutations(seed)]:
            expected = _errors(as_written, event)
            assert _errors(inlined, event) == expected, event
            count += 1
            with_errors += bool(expected)
    assert count > 1000
    assert with_errors > count // 3
