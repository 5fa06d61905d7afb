"""Whether a SCHEMA message can be used, before the SDK and the validators see it (pure).

A tap's schema is input like any other: one that would crash a validator or make it fetch a URL
is refused with a reason (the reader records the line as a rejection), never a crash. Records
are checked against `for_record_checks(schema)`, which says what the tap meant in the
validator's terms: regular expressions are left out (a pattern such as `^(a+)+$` takes
exponential time on some values, and no event field depends on one); draft-4 boolean
`exclusiveMaximum`/`exclusiveMinimum` (SQL taps write them for NUMERIC columns) become the
bounds they stand for (a schema that declares draft 4 or 3 keeps them for its draft's
validator: fastjsonschema's for draft 4, jsonschema's Draft3Validator for draft 3); where
`patternProperties` is left out, so is `additionalProperties` beside it (which names are
additional depends on the patterns); and `multipleOf` (draft 3's `divisibleBy`) is left
out: it is a column's declared precision
(`0.01`, or `1e-38` for any NUMERIC), which the validators can only apply to an exact decimal
by dividing it by a float (a TypeError), and the money the target sends is held to its
currency's minor unit by its own exact rule (mapping/money.py). And alternatives of types only,
as many taps write a nullable column (`anyOf: [{type: "null"}, {type: "string", format: ...}]`),
become the one node they are equivalent to (`type: ["null", "string"], format: ...`), so that such
a stream is decoded at its read paths and checked on the way (reading/decoding.py), as one that
writes `type: ["null", "string"]` is (`merged_alternatives` says when they are equivalent).
An `enum` or a list of alternatives of more than MAX_CHOICES_CHECKED items is left out too.
Tap metadata (`_sdc_sequence`...) is not required of a record: it is taken out first.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from target_openai_capi.reading.envelope import SDC_METADATA
from target_openai_capi.reading.schema_paths import NOT_CHECKED_KEYWORDS, any_ref

# Deeper than any tap's schema; deeper is hostile or broken, and would exhaust the stack.
MAX_SCHEMA_DEPTH = 32  # (fastjsonschema cannot compile ~45 levels of objects)

# Where a schema holds other schemas (JSON Schema drafts 4 to 2020-12). Only these are walked:
# the names under `properties` are a record's property names, whatever they are called (a CSV
# column named `pattern`, an event's `properties` object), and `enum`, `const`, `default` or
# `examples` hold data, never schemas.
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_ONE_SCHEMA = (
    "additionalProperties",
    "additionalItems",
    "unevaluatedProperties",
    "unevaluatedItems",
    "propertyNames",
    "contains",
    "not",
    "if",
    "then",
    "else",
)
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")


def subschemas(node: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, schema) for each schema the schema `node` holds, one level down."""
    for key in _SCHEMA_MAPS:
        value = node.get(key)
        if isinstance(value, Mapping):
            for name, sub in value.items():
                yield f".{key}.{name}", sub
    for key in _ONE_SCHEMA:
        if key in node:
            yield f".{key}", node[key]
    for key in (*_SCHEMA_LISTS, "items"):  # (`items` is a schema, or a list of them: draft 4)
        value = node.get(key)
        if isinstance(value, list):
            for i, sub in enumerate(value):
                yield f".{key}[{i}]", sub
        elif key == "items" and value is not None:
            yield ".items", value
    dependencies = node.get("dependencies")  # (draft 4: a schema, or a list of names)
    if isinstance(dependencies, Mapping):
        for name, sub in dependencies.items():
            if not isinstance(sub, list):
                yield f".dependencies.{name}", sub


_NOTHING = object()


def _resolved(root: Mapping[str, Any], ref: str) -> Any:
    """The node a local '#/...' JSON pointer names in the schema, or _NOTHING. The pointer is
    a URI fragment, percent-decoded first (`#/definitions/a%20b`), as jsonschema reads it."""
    node: Any = root
    if ref == "#":
        return root
    for raw in unquote(ref.removeprefix("#/")).split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _NOTHING
    return node


def describes_objects(schema: Mapping[str, Any]) -> bool:
    """Whether a schema allows JSON objects by its `type` (no `type`: any value)."""
    types = schema.get("type", "object")
    return types == "object" or (isinstance(types, list) and "object" in types)


def with_properties(schema: object, key_properties: object = None) -> object:
    """The schema, with `properties` where it has none but describes objects: a schemaless
    tap's `{"type": "object"}` (or `{}`) says every record is an object of any properties. (The
    SDK's sink reads `properties` of every schema, and its stream maps look for the key
    properties there: each is declared, of any type.)"""
    if isinstance(schema, Mapping) and "properties" not in schema and describes_objects(schema):
        keys = key_properties if isinstance(key_properties, list) else []
        return {**schema, "properties": {key: {} for key in keys if isinstance(key, str)}}
    return schema


def schema_problem(schema: object, key_properties: object) -> str | None:
    """Why a SCHEMA message's schema and key properties cannot be used, or None."""
    if not isinstance(schema, Mapping):
        return "schema is not a JSON object"
    if key_properties is not None and not (
        isinstance(key_properties, list) and all(isinstance(k, str) for k in key_properties)
    ):
        return "key_properties is not a list of property names"
    if "properties" not in schema:  # (with_properties gives a schemaless tap's schema some)
        if not describes_objects(schema):
            return "schema describes no object (a RECORD's record is a JSON object)"
        return "schema declares no properties (on_rejected: fail takes no schemaless stream)"
    if "$schema" in schema and not isinstance(schema["$schema"], str):
        return "schema.$schema is not a string"  # (the validator reads it for the draft)
    ids = {node.get("$id") for node in [schema] if isinstance(node.get("$id"), str)}
    stack: list[tuple[Any, str, int]] = [(schema, "schema", 0)]
    seen: set[int] = set()  # (nodes a $ref leads to are walked too, each once)
    while stack:  # iterative: a deep schema must not exhaust the stack here
        node, where, depth = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            return f"{where} is nested more than {MAX_SCHEMA_DEPTH} levels deep"
        if isinstance(node, bool):
            continue
        if not isinstance(node, Mapping):
            return f"{where} is not a schema (an object)"
        if id(node) in seen:
            continue
        seen.add(id(node))
        for key in _SCHEMA_MAPS:
            if key in node and not isinstance(node[key], Mapping):
                return f"{where}.{key} is not a JSON object"
        for key in _SCHEMA_LISTS:
            if key in node and not isinstance(node[key], list):
                return f"{where}.{key} is not a list of schemas"
        required = node.get("required", [])
        if not isinstance(required, bool) and not (  # (draft 3: a flag on the property)
            isinstance(required, list) and all(isinstance(name, str) for name in required)
        ):
            return f"{where}.required is not a list of property names"
        ref = node.get("$ref")
        if ref is not None:
            if not isinstance(ref, str):
                return f"{where}.$ref is not a string"
            if not ref.startswith("#") and ref not in ids:
                return (
                    f"{where}.$ref points outside the schema ({ref[:80]!r}); "
                    "remote references are never fetched"
                )
            target = _resolved(schema, ref) if ref.startswith("#") else schema
            if target is _NOTHING:
                return f"{where}.$ref {ref[:80]!r} points to nothing in the schema"
            stack.append((target, f"{where}.$ref", depth + 1))
        # (A `pattern` Python cannot compile, `\p{L}` of ECMA-262, refuses nothing: no pattern
        # is checked, for_record_checks leaves them all out.)
        stack.extend((sub, where + suffix, depth + 1) for suffix, sub in subschemas(node))
    return None


def _changed_everywhere(schema: Any, change: Callable[[dict[str, Any]], None]) -> Any:
    """A copy of the schema in which `change` was made to every schema node, and only to
    schema nodes (property names and data are never taken for keywords), those a local `$ref`
    leads to included wherever they are (`x-types`, OpenAPI's `components`): the validators
    follow those refs too."""
    out = copy.deepcopy(schema)
    stack: list[Any] = [out]
    seen: set[int] = set()
    while stack:  # iterative, each node once (a $ref may lead back)
        node = stack.pop()
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        change(node)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            stack.append(_resolved(out, ref))  # (_NOTHING, a dangling one, is no dict)
        stack.extend(sub for _, sub in subschemas(node))
    return out


def without_patterns(schema: Any) -> Any:
    """A copy of the schema without `pattern` and `patternProperties` (for validating records)."""
    return _changed_everywhere(schema, _drop_patterns)


def _drop_patterns(node: dict[str, Any]) -> None:
    node.pop("pattern", None)
    node.pop("patternProperties", None)


# Annotations: no effect on which values a schema accepts (formats are not checked either, but a
# format applies only to strings, and is kept with its string branch).
_ANNOTATIONS = NOT_CHECKED_KEYWORDS - {"format"}
_JSON_TYPES = frozenset({"null", "boolean", "string", "integer", "number", "object", "array"})
# The keywords that apply to values of one kind only (the others pass them): JSON type -> kind.
_KIND_OF_TYPE = {"integer": "number", **{name: name for name in _JSON_TYPES if name != "integer"}}
_KEYWORD_KIND = {
    **dict.fromkeys(("minLength", "maxLength", "pattern", "format"), "string"),
    **dict.fromkeys(
        ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"), "number"
    ),
    **dict.fromkeys(
        (
            "properties",
            "required",
            "additionalProperties",
            "patternProperties",
            "minProperties",
            "maxProperties",
            "propertyNames",
            "dependencies",
            "dependentRequired",
            "dependentSchemas",
        ),
        "object",
    ),
    **dict.fromkeys(
        ("items", "additionalItems", "prefixItems", "minItems", "maxItems", "uniqueItems"),
        "array",
    ),
}


def merged_alternatives(node: Mapping[str, Any]) -> dict[str, Any] | None:
    """The one schema node equivalent to `node`'s `anyOf` or `oneOf` of types, or None.

    `{anyOf: [{type: "null"}, {type: "string", maxLength: 9}]}` is `{type: ["null", "string"],
    maxLength: 9}`: a value is of one JSON type, and a keyword such as maxLength says nothing
    of values of other kinds. So the alternatives merge when each is a `type` with keywords of
    its own kinds only, and for each kind of value the keywords come from one alternative at
    most: in `anyOf`, when two alternatives take the same kind (`null` in both, `integer` and
    `number`), neither may say more of it; in `oneOf`, no two may take the same kind (a value
    matching both would fail it).
    """
    lists = [key for key in ("anyOf", "oneOf") if key in node]
    if len(lists) != 1 or set(node) - _ANNOTATIONS - {lists[0]}:
        return None
    alternatives = node[lists[0]]
    if not isinstance(alternatives, list) or not alternatives:
        return None
    types: list[str] = []
    kept: dict[str, Any] = {}
    said: dict[str, int] = {}  # kind -> alternatives that take it
    spoken: set[str] = set()  # kinds of which an alternative says more than the type
    for alternative in alternatives:
        if not isinstance(alternative, Mapping):
            return None
        named = alternative.get("type")
        named = [named] if isinstance(named, str) else named
        if not isinstance(named, list) or not named:
            return None
        if not all(isinstance(name, str) and name in _JSON_TYPES for name in named):
            return None  # (a type that is no JSON type's name, or no string at all)
        kinds = {_KIND_OF_TYPE[name] for name in named}
        for key, value in alternative.items():
            if key == "type" or key in _ANNOTATIONS:
                continue
            kind = _KEYWORD_KIND.get(key)
            if kind not in kinds:
                return None  # a keyword of no kind, or of a kind this alternative does not take
            spoken.add(kind)
            kept[key] = value
        for kind in kinds:
            said[kind] = said.get(kind, 0) + 1
        types += [name for name in named if name not in types]
    shared = {kind for kind, count in said.items() if count > 1}
    if shared and (lists[0] == "oneOf" or shared & spoken):
        return None
    merged = {key: value for key, value in node.items() if key != lists[0]}
    return {**merged, "type": types, **kept}


def _refs_into_lists(schema: Any) -> bool:
    """True when a string `$ref` anywhere in the schema names a place inside an anyOf/oneOf."""
    return any_ref(
        schema, lambda ref: isinstance(ref, str) and ("/anyOf" in ref or "/oneOf" in ref)
    )


# An `enum` or a list of alternatives longer than this is left out of the record checks: the
# validator is generated code, about 8 KB of it an item (an enum of a million ids took a minute
# and 8 GB at the SCHEMA). Such a list is a tap's promise about its values, which no event needs.
MAX_CHOICES_CHECKED = 1_000
_LISTS_OF_CHOICES = ("enum", "anyOf", "oneOf", "allOf")


# Where a list is kept whatever its length: under `not` and `if`, and in `oneOf`'s branches
# (a branch that matched more would make two match), and in definitions a `$ref` from one of
# those leads to.
_KEPT_UNDER = (".not", ".if", ".oneOf")


def _drop_long_choices(schema: Any) -> None:
    """Take out, in place, the lists of more than MAX_CHOICES_CHECKED choices where that only
    lets more records through: not under `not`, `if` or a `oneOf` branch (`not: {enum: [...]}`
    left as `not: {}` would refuse every record), nor in what a `$ref` from there leads to."""
    kept: set[int] = set()  # nodes reached from a place where lists are kept
    stack: list[tuple[Any, bool]] = [(schema, False)]
    seen: set[tuple[int, bool]] = set()
    while stack:  # (each node once for each way it is reached, $refs followed)
        node, inverted = stack.pop()
        if not isinstance(node, dict) or (id(node), inverted) in seen:
            continue
        seen.add((id(node), inverted))
        if inverted:
            kept.add(id(node))
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            stack.append((_resolved(schema, ref), inverted))
        for where, sub in subschemas(node):
            definition = where.startswith((".$defs", ".definitions"))
            # (a definition is reached by its $refs: walked here as kept or not by them)
            if not definition:
                stack.append((sub, inverted or where.startswith(_KEPT_UNDER)))
    stack2: list[Any] = [schema]
    done: set[int] = set()
    while stack2:
        node = stack2.pop()
        if not isinstance(node, dict) or id(node) in done:
            continue
        done.add(id(node))
        if id(node) not in kept:
            for word in _LISTS_OF_CHOICES:
                listed = node.get(word)
                if isinstance(listed, list) and len(listed) > MAX_CHOICES_CHECKED:
                    del node[word]
        stack2.extend(sub for _, sub in subschemas(node))


# What may stand beside a `$ref` that is inlined: words that say nothing of the values (in
# draft 2019-09 and later a `$ref`'s other words apply too, so a node with any other keeps it).
_BESIDE_A_REF = frozenset({"$ref", "description", "title", "$comment", "examples", "default"})
# Limits of an inlining, past which the `$ref`s stay: the schema nodes (data items counted)
# its copies hold in all, and how deep the properties and items it writes out go (the
# validator's generated code holds each node's subtree again for its messages, and Python
# compiles no code nested much deeper).
MAX_INLINED_NODES = 5_000
MAX_INLINED_DEPTH = 12


class _KeepRefs(Exception):
    """A `$ref` that cannot be written out as the same schema (or past the limits)."""


def _with_definitions_inlined(schema: Any) -> Any:
    """The schema with each `$ref` to one of its `definitions` or `$defs` that a property or
    an array's items is written as replaced by a copy of what it names: a stream whose money
    is one definition used everywhere (`{"$ref": "#/definitions/money"}`) is then cut to the
    paths the mapping reads and decoded there, in the worker processes, as one written out is
    (reading/schema_paths.py leaves a `$ref` whole, so such a record was decoded whole and
    prepared in the main process alone, at half the speed). The definitions stay (data may
    name them). The schema as it is when any `$ref` is left anywhere else, or cannot be
    replaced so: a recursive one, one elsewhere than the definitions, one with rules beside
    it, an `$id` or draft 4's `id` below the root (they move where a `$ref` points), or past
    the limits."""
    if not isinstance(schema, dict) or not any_ref(schema) or _moves_refs(schema):
        return schema
    made = 0
    sizes: dict[int, int] = {}

    def spine(node: Any, chain: tuple[str, ...], depth: int) -> Any:
        nonlocal made
        if depth > MAX_INLINED_DEPTH:
            raise _KeepRefs
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if ref is not None:
            if (
                not isinstance(ref, str)
                or not ref.startswith(("#/definitions/", "#/$defs/"))
                or ref in chain
                or not set(node) <= _BESIDE_A_REF
            ):
                raise _KeepRefs
            target = _resolved(schema, ref)
            if not isinstance(target, dict):
                raise _KeepRefs
            made += sizes.setdefault(id(target), _size(target))
            if made > MAX_INLINED_NODES:
                raise _KeepRefs
            return spine(target, (*chain, ref), depth)
        out = dict(node)
        properties = node.get("properties")
        if isinstance(properties, dict):
            out["properties"] = {
                name: spine(sub, chain, depth + 1) for name, sub in properties.items()
            }
        if isinstance(node.get("items"), dict):
            out["items"] = spine(node["items"], chain, depth + 1)
        return out

    try:
        inlined = spine(schema, (), 0)
    except (_KeepRefs, RecursionError):
        return schema
    rest = {key: value for key, value in inlined.items() if key not in ("definitions", "$defs")}
    return schema if any_ref(rest) else inlined


def _size(node: Any) -> int:
    """Nodes in a JSON value, each item of a list (an enum's texts too) counted."""
    count, stack = 0, [node]
    while stack:
        value = stack.pop()
        count += 1
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return count


def _moves_refs(schema: dict[str, Any]) -> bool:
    """An `$id` (or draft 4's `id`) below the root: a `$ref` under it points elsewhere."""
    stack = [sub for _, sub in subschemas(schema)]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "$id" in node or isinstance(node.get("id"), str):
                return True
            stack.extend(sub for _, sub in subschemas(node))
    return False


def for_record_checks(schema: Any, *, draft_3_as_7: bool = False) -> Any:
    """A copy of the schema to check records against (the module's docstring says why);
    `draft_3_as_7`: one that declares draft 3 is made for a draft-7 validator (fastjsonschema
    knows no draft 3) as one that declares none."""
    declared = schema.get("$schema") if isinstance(schema, Mapping) else None
    draft3 = isinstance(declared, str) and "draft-03" in declared and not draft_3_as_7
    draft4 = draft3 or (isinstance(declared, str) and "draft-04" in declared)
    # Alternatives stay as they are where a $ref may point into them (it would point to nothing
    # once they are one node), and in draft 3, which has no anyOf (its validator ignores it).
    merge = not draft3 and not _refs_into_lists(schema)

    def change(node: dict[str, Any]) -> None:
        long_lists = any(
            isinstance(listed := node.get(word), list) and len(listed) > MAX_CHOICES_CHECKED
            for word in _LISTS_OF_CHOICES
        )
        merged = merged_alternatives(node) if merge and not long_lists else None
        if merged is not None:
            node.clear()
            node.update(merged)
        if "patternProperties" in node and node.get("additionalProperties", True) is not True:
            # Which names are "additional" depends on the patterns, which are not checked: a
            # property a pattern allows must not be refused as additional.
            del node["additionalProperties"]
        _drop_patterns(node)
        node.pop("multipleOf", None)
        node.pop("divisibleBy", None)  # (draft 3's multipleOf)
        if node.get("type") == []:  # (no type at all: the tap knows none, not that no value
            del node["type"]  # is allowed; every record was refused, a reason of nothing)
        if not draft4:  # (a schema that says it is draft 4 is checked as draft 4)
            for exclusive, bound in (
                ("exclusiveMaximum", "maximum"),
                ("exclusiveMinimum", "minimum"),
            ):
                flag = node.get(exclusive)
                if type(flag) is bool:
                    del node[exclusive]
                    if flag and bound in node:
                        node[exclusive] = node.pop(bound)

    checked = _changed_everywhere(schema, change)
    _drop_long_choices(checked)
    checked = _with_definitions_inlined(checked)
    required = checked.get("required") if isinstance(checked, dict) else None
    if isinstance(required, list) and any(name in SDC_METADATA for name in required):
        # Tap metadata is taken out of each record before it is checked (as the SDK takes it
        # out): a schema that requires it would refuse every record.
        checked["required"] = [name for name in required if name not in SDC_METADATA]
    return checked
