"""What the Conversions API accepts: the event JSON Schema, its constants and readable checks."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import fastjsonschema
import jsonschema
from iso4217 import Currency


def _load_schema() -> dict[str, Any]:
    """Read event.schema.json, which ships as package data next to this module."""
    text = resources.files(__name__).joinpath("event.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


EVENT_SCHEMA: dict[str, Any] = _load_schema()


def _resolve(ref: str) -> Any:
    """Follow a local '#/...' reference inside EVENT_SCHEMA."""
    node: Any = EVENT_SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _shapes_by_type() -> dict[str, str]:
    """Event type -> data.type, read from the schema's shape-dispatch entries."""
    shapes: dict[str, str] = {}
    for entry in EVENT_SCHEMA["allOf"]:
        data_ref = entry.get("then", {}).get("properties", {}).get("data", {}).get("$ref")
        if data_ref is None:
            continue
        shape = _resolve(data_ref)["properties"]["type"]["const"]
        for event_type in entry["if"]["properties"]["type"]["enum"]:
            shapes[event_type] = shape
    return shapes


# The rules live once, in event.schema.json; these constants are read from it.
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_SCHEMA["properties"]["type"]["enum"])
ACTION_SOURCES: tuple[str, ...] = tuple(EVENT_SCHEMA["properties"]["action_source"]["enum"])
DATA_SHAPE_BY_TYPE: dict[str, str] = _shapes_by_type()
SHAPE_FIELDS: dict[str, frozenset[str]] = {
    shape: frozenset(_resolve(f"#/$defs/data_{shape}")["properties"])
    for shape in dict.fromkeys(DATA_SHAPE_BY_TYPE.values())
}
USER_FIELDS: frozenset[str] = frozenset(EVENT_SCHEMA["$defs"]["user"]["properties"])


def _app_event_types() -> tuple[str, ...]:
    """The event types whose action_source must be mobile_app, read from the schema's rule."""
    for entry in EVENT_SCHEMA["allOf"]:
        then = entry.get("then", {})
        if then.get("properties", {}).get("action_source", {}).get("const") == "mobile_app":
            return tuple(entry["if"]["properties"]["type"]["enum"])
    raise RuntimeError("event.schema.json: no action_source rule for app events")


APP_EVENT_TYPES: tuple[str, ...] = _app_event_types()

if set(DATA_SHAPE_BY_TYPE) != set(EVENT_TYPES):  # pragma: no cover - guards edits to the schema
    raise RuntimeError("event.schema.json: every event type needs exactly one data shape")

# Server-side limits the schema cannot express (they depend on the batch or on the clock).
MAX_EVENTS_PER_REQUEST = 1000
MAX_EVENT_AGE_MS = 7 * 24 * 3600 * 1000
MAX_EVENT_FUTURE_MS = 10 * 60 * 1000


def _is_ipv4(value: object) -> bool:
    """True for a dotted-quad IPv4 address (a format applies to strings only)."""
    return not isinstance(value, str) or _parses_as_ipv4(value)


def _is_ipv6(value: object) -> bool:
    """True for an IPv6 address without a zone id (a format applies to strings only)."""
    return not isinstance(value, str) or _parses_as_ipv6(value)


# Addresses repeat (a returning customer, a shared office address) and parsing one costs ~3 µs.
@lru_cache(maxsize=4096)
def _parses_as_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=4096)
def _parses_as_ipv6(value: str) -> bool:
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return not address.scope_id


# Both validators get the same format functions: their built-in ip checks differ, and an event the
# fast path rejects must also be one the explaining validator can explain.
_FORMATS = {"ipv4": _is_ipv4, "ipv6": _is_ipv6}

_format_checker = jsonschema.FormatChecker(formats=())
for _name, _check in _FORMATS.items():
    _format_checker.checks(_name)(_check)

# JSON Schema counts 12.0 as an integer; a strict JSON decoder on the server (e.g. into int64)
# would not, so the explaining validator is strict and _float_in_integer_field backs the fast one.
_ExplainingValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)
_explainer = _ExplainingValidator(EVENT_SCHEMA, format_checker=_format_checker)


def _float_in_integer_field(event: Mapping[str, Any]) -> bool:
    """True when an integer field holds a float such as 12.0 (the fast validator lets it pass)."""
    # These are every "type": "integer" location in the schema; test_contract checks the list.
    if isinstance(event.get("timestamp_ms"), float):
        return True
    data = event.get("data")
    if not isinstance(data, dict):
        return False
    if isinstance(data.get("amount"), float):
        return True
    contents = data.get("contents")
    if isinstance(contents, list):
        for item in contents:
            if isinstance(item, dict) and (
                isinstance(item.get("amount"), float) or isinstance(item.get("quantity"), float)
            ):
                return True
    return False


# --- The fast path: fastjsonschema, one compiled validator per event type ---------------------
# fastjsonschema evaluates if/then/else and "not" by raising and catching exceptions, which made a
# valid event cost ~30 us. Each type gets a copy of the schema with the conditions on `type`
# already decided and the other conditions rewritten into equivalent forms that do not raise when
# the event is valid: ~3x faster. The rewrites are equivalences; test_contract checks that this
# path and the explaining validator agree on every example.


def _decides_type(if_schema: Mapping[str, Any]) -> bool:
    """True for an 'if' that only tests the event's type (decidable once the type is known)."""
    return (
        set(if_schema) <= {"required", "properties"}
        and set(if_schema.get("required", [])) <= {"type"}
        and set(if_schema.get("properties", {})) == {"type"}
    )


def _type_matches(if_schema: Mapping[str, Any], event_type: str) -> bool:
    """Whether a type-only 'if' holds for event_type."""
    test = if_schema["properties"]["type"]
    return event_type == test["const"] if "const" in test else event_type in test["enum"]


def _for_fast_path(node: Any, event_type: str) -> Any:
    """node with local $refs inlined, type conditions decided and conditions made raise-free."""
    if isinstance(node, list):
        return [_for_fast_path(item, event_type) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _for_fast_path(_resolve(node["$ref"]), event_type)
    conditional = ("$defs", "allOf", "if", "then", "else", "not")
    out = {
        key: _for_fast_path(sub, event_type) for key, sub in node.items() if key not in conditional
    }
    parts: list[Any] = []
    conditions = [node] if "if" in node else []
    for sub in node.get("allOf", []):
        if "if" in sub and set(sub) <= {"if", "then", "else", "$comment"}:
            conditions.append(sub)
        else:
            parts.append(_for_fast_path(sub, event_type))
    for condition in conditions:
        if_, then, else_ = condition["if"], condition.get("then"), condition.get("else")
        if _decides_type(if_):
            chosen = then if _type_matches(if_, event_type) else else_
            if chosen is not None:
                parts.append(_for_fast_path(chosen, event_type))
            continue
        if set(if_) == {"not"} and set(if_["not"]) == {"required"}:
            if_, then, else_ = if_["not"], else_, then  # if not A then X  ==  if A else X
        if (  # if {required: [a]} then {required: [b, ...]}  ==  dependencies {a: [b, ...]}
            set(if_) == {"required"}
            and len(if_["required"]) == 1
            and else_ is None
            and then is not None
            and set(then) == {"required"}
        ):
            parts.append({"dependencies": {if_["required"][0]: then["required"]}})
            continue
        rewritten = {"if": _for_fast_path(if_, event_type)}
        if then is not None:
            rewritten["then"] = _for_fast_path(then, event_type)
        if else_ is not None:
            rewritten["else"] = _for_fast_path(else_, event_type)
        parts.append(rewritten)
    if "not" in node:
        if set(node["not"]) == {"required"}:  # not {required: [a]}  ==  properties {a: false}
            parts.append({"properties": dict.fromkeys(node["not"]["required"], False)})
        else:
            out["not"] = _for_fast_path(node["not"], event_type)
    if parts:
        out["allOf"] = parts
    return out


@cache
def _fast_validator(event_type: str) -> Callable[[Any], Any]:
    """The compiled validator for one event type (compiled on first use: ~30 ms each)."""
    schema = _for_fast_path(EVENT_SCHEMA, event_type)
    schema["properties"]["type"] = {"const": event_type}
    validate: Callable[[Any], Any] = fastjsonschema.compile(
        schema, formats=_FORMATS, use_default=False
    )
    return validate


def event_problem(event: Mapping[str, Any]) -> str | None:
    """First problem with one event as '<dotted.path>: <message>', or None when it is valid."""
    if not isinstance(event, dict):
        return f"event: must be a JSON object, got {type(event).__name__}"
    event_type = event.get("type")
    validate = _fast_validator(event_type) if event_type in DATA_SHAPE_BY_TYPE else None
    if validate is None:
        return _explain(event) or "type: is required"
    try:
        validate(event)
    except fastjsonschema.JsonSchemaException as exc:
        return _explain(event) or f"event: {exc}"
    if _float_in_integer_field(event):
        return _explain(event) or "event: an integer field holds a float"
    return None


def dedup_name(event: Mapping[str, Any]) -> str:
    """The event name of the API's dedup key (pixel, name, id): a custom event's own name."""
    if event.get("type") == "custom":
        return str(event.get("custom_event_name", "")).lower()  # the API lowercases it
    return str(event.get("type"))


def window_problem(timestamp_ms: int, now_ms: int) -> str | None:
    """'timestamp_ms: older than 7 days', '...: more than 10 minutes in the future', or None."""
    if timestamp_ms < now_ms - MAX_EVENT_AGE_MS:
        return "timestamp_ms: older than 7 days"
    if timestamp_ms > now_ms + MAX_EVENT_FUTURE_MS:
        return "timestamp_ms: more than 10 minutes in the future"
    return None


_CURRENCY_CODE = re.compile(r"[A-Z]{3}")


@lru_cache(maxsize=512)
def currency_problem(code: str) -> str | None:
    """Why an ISO 4217 code cannot carry an integer minor-unit amount, or None when it can."""
    if not isinstance(code, str) or not _CURRENCY_CODE.fullmatch(code):
        return f"{code!r} is not a three-letter ISO 4217 code in upper case, e.g. 'USD'"
    try:
        exponent = Currency(code).exponent
    except ValueError:
        return f"{code!r} is not a known ISO 4217 currency code"
    if exponent is None:
        return f"{code!r} has no minor unit, so an amount in its lowest denomination is undefined"
    return None


def event_currency_problem(event: Mapping[str, Any]) -> str | None:
    """currency_problem for data.currency and each item's currency, with the field's path."""
    data = event.get("data")
    if not isinstance(data, dict):
        return None
    code = data.get("currency")
    if isinstance(code, str) and (problem := currency_problem(code)):
        return f"data.currency: {problem}"
    contents = data.get("contents")
    if isinstance(contents, list):
        for index, item in enumerate(contents):
            code = item.get("currency") if isinstance(item, dict) else None
            if isinstance(code, str) and (problem := currency_problem(code)):
                return f"data.contents[{index}].currency: {problem}"
    return None


# --- Explaining an invalid event (slow path, only after the fast validator said no) -------------

_REDACTED = "<value hidden: may be personal data>"
_MAX_SHOWN = 80

# Errors are reported in the order a reader meets the fields: an event's own fields in schema order,
# then data's, then a content item's, then user's; unknown names after all of those.
_FIELD_ORDER: dict[str, int] = {
    name: rank
    for rank, name in enumerate(
        dict.fromkeys(
            [
                *EVENT_SCHEMA["properties"],
                *EVENT_SCHEMA["$defs"]["data_custom"]["properties"],
                *EVENT_SCHEMA["$defs"]["content_item"]["properties"],
                *EVENT_SCHEMA["$defs"]["user"]["properties"],
            ]
        )
    )
}
# When one field has several errors, the most telling one wins (a wrong type before a bad pattern).
_VALIDATOR_PRIORITY = {"type": 0, "required": 1, "const": 2, "enum": 2, "pattern": 3, "anyOf": 4}

Path = tuple[str | int, ...]


def _dotted(path: Sequence[str | int]) -> str:
    """('data', 'contents', 2, 'quantity') -> 'data.contents[2].quantity'."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


# Event fields whose values may be personal data (an id may be an email): never shown.
_HIDDEN_FIELDS = frozenset({"user", "id", "oppref"})


def _show(value: Any, path: Path) -> str:
    """A value as it may appear in a message: never user data, never a URL's query (it may
    carry an email), never a page of text."""
    if path and path[0] in _HIDDEN_FIELDS:
        return _REDACTED
    if path and path[0] == "source_url" and isinstance(value, str):
        cut = min((i for i in (value.find("?"), value.find("#")) if i >= 0), default=-1)
        if cut >= 0:
            value = value[:cut] + "?<query hidden>"
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _sort_key(path: Path, validator: str | None, schema_path: str) -> tuple[Any, ...]:
    """Deterministic order: by field position, then by how telling the error is."""
    ranks = tuple(
        (part, "") if isinstance(part, int) else (_FIELD_ORDER.get(part, len(_FIELD_ORDER)), part)
        for part in path
    )
    return (ranks, _VALIDATOR_PRIORITY.get(validator or "", 5), schema_path)


def _conditions(error: jsonschema.ValidationError, event: Mapping[str, Any]) -> str:
    """' when ...' for an error found inside if/then/else, read from the enclosing 'if' schemas."""
    instance_path = list(error.absolute_path)
    node: Any = EVENT_SCHEMA
    depth = 0  # how many instance path parts the schema path walked so far
    after_properties = False
    found: list[str] = []
    for key in error.absolute_schema_path:
        while isinstance(node, dict) and key not in node and "$ref" in node:
            node = _resolve(node["$ref"])  # jsonschema leaves "$ref" out of schema paths
        if isinstance(node, dict) and key in ("then", "else"):
            text = _describe_if(node["if"], tuple(instance_path[:depth]), negated=key == "else")
            if text:
                found.append(text)
        if after_properties or key in ("items", "additionalProperties"):
            depth += 1
        after_properties = key == "properties" and not after_properties
        if not isinstance(node, (dict, list)):
            break
        node = node[key]
    return " when " + " and ".join(reversed(found)) if found else ""


def _describe_if(if_schema: Mapping[str, Any], level: Path, *, negated: bool) -> str:
    """'data.amount is present', "type is not 'custom'"; '' for shape dispatch (noise)."""
    prefix = _dotted(level) + "." if level else ""
    parts: list[str] = []
    properties = if_schema.get("properties", {})
    for name, sub in properties.items():
        if "enum" in sub:
            return ""  # the shape dispatch on type; its errors speak for themselves
        if "const" in sub:
            parts.append(f"{prefix}{name} is {'not ' if negated else ''}{sub['const']!r}")
    for name in if_schema.get("required", []):
        if name not in properties:
            parts.append(f"{prefix}{name} is {'absent' if negated else 'present'}")
    for name in if_schema.get("not", {}).get("required", []):
        parts.append(f"{prefix}{name} is {'present' if negated else 'absent'}")
    return " and ".join(parts)


def _allowed(schema: Mapping[str, Any]) -> str:
    """The '(allowed: ...)' hint for an object schema."""
    return "allowed: " + ", ".join(sorted(schema.get("properties", {})))


def _messages(
    error: jsonschema.ValidationError, event: Mapping[str, Any]
) -> Iterator[tuple[Path, str]]:
    """(field path, message) pairs for one jsonschema error, worded for a data engineer."""
    path: Path = tuple(error.absolute_path)
    schema: Any = error.schema
    when = _conditions(error, event)
    validator, value = error.validator, error.validator_value
    instance = error.instance
    if validator == "required":
        for name in value:
            if isinstance(instance, dict) and name not in instance:
                yield (*path, name), f"is required{when}"
        return
    if validator == "additionalProperties":
        known = schema.get("properties", {})
        shape = known.get("type", {}).get("const")
        where = f" in data of type {shape!r}" if shape else ""
        for name in instance:
            if name not in known:
                yield (*path, name), f"is not an allowed field{where}{when} ({_allowed(schema)})"
        return
    if validator == "not" and set(value) == {"required"}:  # a field that may not appear here
        for name in value["required"]:
            yield (*path, name), f"is not allowed{when}"
        return
    shown = _show(instance, path)
    description = schema.get("description") if isinstance(schema, dict) else None
    if validator == "type":
        message = f"{shown} is not of type {value!r}"
    elif validator == "enum":
        message = f"{shown} is not one of {value!r}"
    elif validator == "const":
        message = f"must be {value!r}, got {shown}"
        if path == ("data", "type") and isinstance(event.get("type"), str):
            message = f"must be {value!r} for type {event['type']!r}, got {shown}"
    elif validator in ("pattern", "anyOf", "format", "minLength", "maxLength") and description:
        message = f"{shown} is not {description}"
    elif validator in ("minLength", "minItems") and value == 1:
        message = "must not be empty"
    elif validator == "maxLength":
        message = f"is longer than {value} characters"
    elif validator == "minimum":
        message = f"{shown} is less than the minimum of {value}"
    elif path and path[0] == "user":
        message = f"is invalid ({validator} {value!r})"
    else:
        message = error.message
    yield path, message + when


def _explain(event: Mapping[str, Any]) -> str | None:
    """The first schema error by path order, as '<dotted.path>: <message>'."""
    best: tuple[tuple[Any, ...], str] | None = None
    for error in _explainer.iter_errors(event):
        schema_path = "/".join(str(part) for part in error.absolute_schema_path)
        for path, message in _messages(error, event):
            key = _sort_key(path, error.validator, schema_path)
            if best is None or key < best[0]:
                best = (key, f"{_dotted(path) or 'event'}: {message}")
    return None if best is None else best[1]


__all__ = [
    "ACTION_SOURCES",
    "APP_EVENT_TYPES",
    "DATA_SHAPE_BY_TYPE",
    "EVENT_SCHEMA",
    "EVENT_TYPES",
    "MAX_EVENTS_PER_REQUEST",
    "MAX_EVENT_AGE_MS",
    "MAX_EVENT_FUTURE_MS",
    "SHAPE_FIELDS",
    "USER_FIELDS",
    "currency_problem",
    "dedup_name",
    "event_currency_problem",
    "event_problem",
    "window_problem",
]
