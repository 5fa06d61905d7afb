"""Whether a SCHEMA message can be used, before the SDK and the validators see it (pure).

A tap's schema is input like any other: one that would crash a validator or make it fetch a URL
is refused with a reason (the reader records the line as a rejection), never a crash. Records
are checked against `for_record_checks(schema)`, which says what the tap meant in the
validator's terms: regular expressions are left out (a pattern such as `^(a+)+$` takes
exponential time on some values, and no event field depends on one); draft-4 boolean
`exclusiveMaximum`/`exclusiveMinimum` (SQL taps write them for NUMERIC columns) become the
bounds they stand for; and `multipleOf` is left out: it is a column's declared precision
(`0.01`, or `1e-38` for any NUMERIC), which the validators can only apply to an exact decimal
by dividing it by a float (a TypeError), and the money the target sends is held to its
currency's minor unit by its own exact rule (mapping/money.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Deeper than any tap's schema; deeper is hostile or broken, and would exhaust the stack.
MAX_SCHEMA_DEPTH = 64
# Keywords whose value is a regular expression, and those whose value maps names to them.
_PATTERN_KEYS = ("pattern",)
_PATTERN_MAP_KEYS = ("patternProperties",)


def _resolves(root: Mapping[str, Any], ref: str) -> bool:
    """True when a local '#/...' JSON pointer names a node of the schema."""
    node: Any = root
    if ref == "#":
        return True
    for raw in ref.removeprefix("#/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _pattern_problem(pattern: object, where: str) -> str | None:
    if not isinstance(pattern, str):
        return f"{where} is not a string"
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"{where} is a regular expression Python cannot use ({exc})"
    return None


def schema_problem(schema: object, key_properties: object) -> str | None:
    """Why a SCHEMA message's schema and key properties cannot be used, or None."""
    if not isinstance(schema, Mapping):
        return "schema is not a JSON object"
    if key_properties is not None and not (
        isinstance(key_properties, list) and all(isinstance(k, str) for k in key_properties)
    ):
        return "key_properties is not a list of property names"
    if "properties" not in schema:  # (the Singer spec's SCHEMA describes a record's properties)
        return "schema has no properties (a SCHEMA message names the properties of its records)"
    if "$schema" in schema and not isinstance(schema["$schema"], str):
        return "schema.$schema is not a string"  # (the validator reads it for the draft)
    ids = {node.get("$id") for node in [schema] if isinstance(node.get("$id"), str)}
    stack: list[tuple[Any, str, int]] = [(schema, "schema", 0)]
    while stack:  # iterative: a deep schema must not exhaust the stack here
        node, where, depth = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            return f"{where} is nested more than {MAX_SCHEMA_DEPTH} levels deep"
        if isinstance(node, list):
            stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(node))
            continue
        if not isinstance(node, Mapping):
            continue
        for key in ("properties", "patternProperties", "$defs", "definitions"):
            if key in node and not isinstance(node[key], Mapping):
                return f"{where}.{key} is not a JSON object"
        for name, sub in (node.get("properties") or {}).items():
            if not isinstance(sub, (Mapping, bool)):
                return f"{where}.properties.{name} is not a schema (an object)"
        ref = node.get("$ref")
        if ref is not None:
            if not isinstance(ref, str):
                return f"{where}.$ref is not a string"
            if not ref.startswith("#") and ref not in ids:
                return (
                    f"{where}.$ref points outside the schema ({ref[:80]!r}); "
                    "remote references are never fetched"
                )
            if ref.startswith("#") and not _resolves(schema, ref):
                return f"{where}.$ref {ref[:80]!r} points to nothing in the schema"
        for key in _PATTERN_KEYS:
            if key in node and (problem := _pattern_problem(node[key], f"{where}.{key}")):
                return problem
        for key in _PATTERN_MAP_KEYS:
            for pattern in node.get(key, {}) if isinstance(node.get(key), Mapping) else ():
                if problem := _pattern_problem(pattern, f"{where}.{key} name"):
                    return problem
        stack.extend((sub, f"{where}.{name}", depth + 1) for name, sub in node.items())
    return None


def without_patterns(schema: Any) -> Any:
    """A copy of the schema without `pattern` and `patternProperties` (for validating records)."""
    if isinstance(schema, list):
        return [without_patterns(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    return {
        key: without_patterns(value)
        for key, value in schema.items()
        if key not in ("pattern", "patternProperties")
    }


def for_record_checks(schema: Any) -> Any:
    """A copy of the schema to check records against (the module's docstring says why)."""
    declared = schema.get("$schema") if isinstance(schema, Mapping) else None
    draft4 = isinstance(declared, str) and ("draft-04" in declared or "draft-03" in declared)
    return _for_record_checks(without_patterns(schema), draft4)


def _for_record_checks(schema: Any, draft4: bool) -> Any:
    if isinstance(schema, list):
        return [_for_record_checks(item, draft4) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    out = {
        key: _for_record_checks(value, draft4)
        for key, value in schema.items()
        if key != "multipleOf"
    }
    if not draft4:  # (a schema that says it is draft 4 is checked as draft 4)
        for exclusive, bound in (("exclusiveMaximum", "maximum"), ("exclusiveMinimum", "minimum")):
            flag = out.get(exclusive)
            if type(flag) is bool:
                del out[exclusive]
                if flag and bound in out:
                    out[exclusive] = out.pop(bound)
    return out
