"""The fast path: fastjsonschema, one compiled validator per event type, checking every event
before it is batched; an invalid one is explained by explain.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import fastjsonschema

from target_openai_capi.contract.explain import _explain
from target_openai_capi.contract.schema import _FORMATS, DATA_SHAPE_BY_TYPE, EVENT_SCHEMA, _resolve


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
    known = isinstance(event_type, str) and event_type in DATA_SHAPE_BY_TYPE
    validate = _fast_validator(event_type) if known else None
    if validate is None:
        return _explain(event) or "type: is required"
    try:
        validate(event)
    except fastjsonschema.JsonSchemaException as exc:
        return _explain(event) or f"event: {exc}"
    if _float_in_integer_field(event):
        return _explain(event) or "event: an integer field holds a float"
    return None
