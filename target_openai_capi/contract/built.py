"""The check of every event the target builds: a hand-written recognizer of valid events, in
front of the schema validator.

`built_event_problem(event)` answers exactly what `event_problem` (fast.py, the compiled JSON
Schema) answers, only faster for the events the builder makes. `certainly_valid` walks the event
once with the shapes the builder produces (dicts, lists, str, int, bool, exact types) and the
schema's own rules (its enums, lengths, minimums and patterns, read from event.schema.json); it
says True only when every rule holds. Anything else (a problem, or a shape it does not follow)
goes to `event_problem`, which gives the verdict and its reason. So a valid event costs one walk
of plain Python (~5 µs) instead of the generated validator (~25 µs), and the answer never differs:
tests/test_contract_built.py checks the two agree on built events of both benchmark record
shapes and on thousands of mutations of them.

User values are checked where they are made: mapping/user_values.py checks each value it
normalises against its key's rule here (`user_value_rule`), once per distinct value (its results
are cached), and leaves out a value that fails with a note. The pipeline then checks a built
event with `normalised_user=True`: every rule of the contract per event, but the user values'
own, which each value passed already.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from target_openai_capi.contract.fast import event_problem
from target_openai_capi.contract.schema import (
    _FORMATS,
    ACTION_SOURCES,
    APP_EVENT_TYPES,
    DATA_SHAPE_BY_TYPE,
    EVENT_SCHEMA,
    SHAPE_FIELDS,
    _resolve,
)

_PROPERTIES = EVENT_SCHEMA["properties"]
_DEFS = EVENT_SCHEMA["$defs"]
_EVENT_KEYS = frozenset(_PROPERTIES)
_ID_MAX = _PROPERTIES["id"]["maxLength"]
_URL_MAX = _PROPERTIES["source_url"]["maxLength"]
_ACTION_SOURCES = frozenset(ACTION_SOURCES)
_APP_EVENT_TYPES = frozenset(APP_EVENT_TYPES)
_CONTENT_KEYS = frozenset(_DEFS["content_item"]["properties"])
_USER = _DEFS["user"]["properties"]
_USER_KEYS = frozenset(_USER)
# Shapes whose data takes only its listed fields (custom takes any others too).
_CLOSED_SHAPES = {
    shape: fields
    for shape, fields in SHAPE_FIELDS.items()
    if _resolve(f"#/$defs/data_{shape}").get("additionalProperties") is False
}


def _pattern(node: Mapping[str, Any]) -> Callable[[str], Any]:
    """The schema node's pattern as JSON Schema applies it (re.search, as fastjsonschema does)."""
    return re.compile(node["pattern"]).search


_CUSTOM_NAME = _pattern(_PROPERTIES["custom_event_name"])
_URL = _pattern(_PROPERTIES["source_url"])
_CURRENCY = _pattern(_DEFS["currency"])
_DATA_CURRENCY = _pattern(_DEFS["data_currency"])


def source_url_ok(url: object) -> bool:
    """True when the value is a source_url the contract takes (a URL with a scheme and host)."""
    return type(url) is str and len(url) <= _URL_MAX and _URL(url) is not None


def _string_rule(node: Mapping[str, Any]) -> Callable[[object], bool]:
    """A check of one string-valued schema node: type, minLength, maxLength, pattern, format."""
    if "$ref" in node:
        node = _resolve(node["$ref"])
    least = node.get("minLength", 0)
    most = node.get("maxLength")
    pattern = _pattern(node) if "pattern" in node else None
    formats = [_FORMATS[f["format"]] for f in node.get("anyOf", [])]
    if set(node) - {"type", "minLength", "maxLength", "pattern", "anyOf", "description"}:
        raise RuntimeError(f"contract/built.py does not know every rule of {node}")

    def rule(value: object) -> bool:
        if type(value) is not str or len(value) < least:
            return False
        if most is not None and len(value) > most:
            return False
        if pattern is not None and not pattern(value):
            return False
        return not formats or any(check(value) for check in formats)

    return rule


# A lowercase hex SHA-256 digest, as the builder writes every hashed identifier.
_DIGEST_NODE = {
    "type": "string",
    "pattern": "^[0-9a-f]{64}$",
    "minLength": 64,
    "maxLength": 64,
}
_HEX_DIGITS = "0123456789abcdef"


def _digest_list_rule(least: int, item: Callable[[object], bool]) -> Callable[[object], bool]:
    """A list of digests: a string of 64 characters that are all lowercase hex digits keeps
    every rule of the node (without running its pattern); anything else asks `item`."""

    def rule(value: object) -> bool:
        if type(value) is not list or len(value) < least:
            return False
        for element in value:
            if type(element) is str and len(element) == 64 and not element.strip(_HEX_DIGITS):
                continue
            if not item(element):
                return False
        return True

    return rule


def _user_rule(node: Mapping[str, Any]) -> Callable[[object], bool]:
    """A check of one user property: a string, or a non-empty list of such strings."""
    if "$ref" in node:
        node = _resolve(node["$ref"])
    if node.get("type") != "array":
        return _string_rule(node)
    item = _string_rule(node["items"])
    least = node.get("minItems", 0)
    items = node["items"]
    items = _resolve(items["$ref"]) if "$ref" in items else items
    if {k: v for k, v in items.items() if k != "description"} == _DIGEST_NODE:
        return _digest_list_rule(least, item)

    def rule(value: object) -> bool:
        if type(value) is not list or len(value) < least:
            return False
        for element in value:  # noqa: SIM110 (a loop: all() over a generator costs twice)
            if not item(element):
                return False
        return True

    return rule


_USER_RULES = {name: _user_rule(node) for name, node in _USER.items()}


def user_value_rule(key: str) -> tuple[Callable[[object], bool], str]:
    """The contract's rule for one value of the user property `key` (one item of a list
    property), and what it asks for, in words: for user_values.py, which checks every value it
    makes against it (built events then need no check of their user values, `certainly_valid`)."""
    node = _USER[key]
    if "$ref" in node:
        node = _resolve(node["$ref"])
    if node.get("type") == "array":
        node = node["items"]
        if "$ref" in node:
            node = _resolve(node["$ref"])
    same = _VALUE_RULES.get(repr(node))  # one rule for keys that share a node (the digests)
    if same is None:
        same = _VALUE_RULES[repr(node)] = (
            _string_rule(node),
            node.get("description", "a non-empty string"),
        )
    return same


_VALUE_RULES: dict[str, tuple[Callable[[object], bool], str]] = {}


def _amount_ok(value: object) -> bool:
    return type(value) is int and value >= 0


def _currency_ok(value: object, pattern: Callable[[str], Any] = _CURRENCY) -> bool:
    return type(value) is str and len(value) == 3 and pattern(value) is not None


def _text_ok(value: object) -> bool:  # a string of at least one character
    return type(value) is str and len(value) >= 1


def _content_ok(item: object, data_currency: bool) -> bool:
    # (_text_ok and _amount_ok written out: a batch's items are the most checked values)
    if type(item) is not dict or not item.keys() <= _CONTENT_KEYS:
        return False
    for key in ("id", "group_id", "name", "content_type"):
        if key in item:
            text = item[key]
            if type(text) is not str or not text:
                return False
    if "quantity" in item:
        quantity = item["quantity"]
        if type(quantity) is not int or quantity < 0:
            return False
    if "amount" in item:
        amount = item["amount"]
        if type(amount) is not int or amount < 0:
            return False
        if not data_currency and "currency" not in item:
            return False
    if "currency" in item and not _currency_ok(item["currency"]):
        return False
    if "variant_dict" in item:
        variant = item["variant_dict"]
        if type(variant) is not dict:
            return False
        for value in variant.values():
            if type(value) is not str:
                return False
    return True


def _data_ok(data: object, shape: str) -> bool:
    if type(data) is not dict or data.get("type") != shape:
        return False
    closed = _CLOSED_SHAPES.get(shape)
    if closed is not None and not data.keys() <= closed:
        return False
    has_currency = "currency" in data
    if has_currency and not _currency_ok(data["currency"], _DATA_CURRENCY):
        return False
    if "amount" in data and not (has_currency and _amount_ok(data["amount"])):
        return False
    if "plan_id" in data and not _text_ok(data["plan_id"]):
        return False
    if "contents" in data:
        contents = data["contents"]
        if type(contents) is not list:
            return False
        for item in contents:
            if not _content_ok(item, has_currency):
                return False
    return True


def certainly_valid(event: object, *, normalised_user: bool = False) -> bool:
    """True only when the event keeps every rule of the contract (False: ask event_problem).

    `normalised_user`: the event's `user` object was built by mapping/identity.py (or the
    compiled builder) from values that mapping/user_values.py normalised: each of them already
    passed its key's rule (`user_value_rule`) when it was made, so only the object's keys are
    checked here. For events straight from the builder only, never for one read from outside.
    """
    if type(event) is not dict or not event.keys() <= _EVENT_KEYS:
        return False
    event_id = event.get("id")
    if type(event_id) is not str or not 1 <= len(event_id) <= _ID_MAX:
        return False
    event_type = event.get("type")
    shape = DATA_SHAPE_BY_TYPE.get(event_type) if type(event_type) is str else None
    if shape is None:
        return False
    timestamp = event.get("timestamp_ms")
    if type(timestamp) is not int or timestamp < 1:
        return False
    if event_type == "custom":
        name = event.get("custom_event_name")
        if type(name) is not str or _CUSTOM_NAME(name) is None:
            return False
    elif "custom_event_name" in event:
        return False
    action = event.get("action_source")
    if action is not None and (type(action) is not str or action not in _ACTION_SOURCES):
        return False
    if event_type in _APP_EVENT_TYPES and action != "mobile_app":
        return False
    if "source_url" in event:
        url = event["source_url"]
        if not source_url_ok(url):
            return False
    elif action == "web":
        return False
    if "oppref" in event and not _text_ok(event["oppref"]):
        return False
    if "opt_out" in event and type(event["opt_out"]) is not bool:
        return False
    if "action_source" in event and action is None:
        return False  # null is not a source
    if "user" in event:
        user = event["user"]
        if type(user) is not dict or not user.keys() <= _USER_KEYS:
            return False
        if not normalised_user:
            for key, value in user.items():
                if not _USER_RULES[key](value):
                    return False
    return "data" in event and _data_ok(event["data"], shape)


def built_event_problem(event: Mapping[str, Any], *, normalised_user: bool = False) -> str | None:
    """event_problem's answer: None at once for an event certainly valid, else its reason.
    `normalised_user` as for `certainly_valid`."""
    if certainly_valid(event, normalised_user=normalised_user):
        return None
    return event_problem(event)
