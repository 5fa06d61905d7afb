"""A stream schema cut down to the record paths a mapping reads (mapping/reads.py builds them).

A property the mapping never reads can neither break an event nor be sent, so it is not checked:
a whole tap-shopify order schema costs 5x its read paths to validate.

`prune_schema` keeps the paths of a read tree in a JSON schema, with the types of the objects and
arrays along the way, and leaves whole any schema node it does not fully understand ($ref, anyOf,
...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from target_openai_capi.mapping.reads import Tree

# Keywords that do not constrain a record as the target validates it (formats are not checked,
# defaults not applied: sink.FastRecordValidator); also used by decoding.py.
NOT_CHECKED_KEYWORDS = frozenset(
    {
        "$schema",  # which draft: singer-sdk taps put it at the top of every schema
        "format",
        "description",
        "title",
        "default",
        "$comment",
        "examples",
        "readOnly",
        "writeOnly",
        "deprecated",
        # Where a $ref's targets live (a node with a $ref is kept whole; these are kept too),
        # and what taps write beside a schema about its selection (pipelinewise's logical
        # replication schemas carry `definitions`; catalogs `selected`, `inclusion`).
        "definitions",
        "$defs",
        "$id",
        "selected",
        "inclusion",
        "selected-by-default",
        "sql-datatype",
    }
)

_UNDERSTOOD = NOT_CHECKED_KEYWORDS | {
    "type",
    "properties",
    "items",
    "required",
    "additionalProperties",
    "patternProperties",
    "minimum",
    "maximum",
    "enum",
    "const",
    "minLength",
    "maxLength",
    "pattern",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
}


# Keywords that compare a value whole: on an object or array read only in part, they would
# compare the part (two line items of one SKU and two sizes, read by SKU, "not unique").
_WHOLE_VALUE_KEYWORDS = frozenset({"uniqueItems", "enum", "const"})


def prune_schema(schema: Any, tree: Tree | bool) -> Any:
    """schema cut down to the paths in tree; a node it does not fully understand stays whole,
    and so does a schema a `$ref` of which points anywhere but its definitions (a property cut
    away would leave it pointing to nowhere)."""
    if _refers_outside_definitions(schema):
        return schema
    return _prune(schema, tree, [])


def prune_schema_exactly(schema: Any, tree: Tree | bool) -> Any | None:
    """prune_schema, or None when a node it left whole lies where only part of the value is
    read: that node (`anyOf`, `$ref`, ...) may need properties that a record decoded only at
    the read paths (decoding.py) does not hold, so such a record must be decoded whole."""
    if _refers_outside_definitions(schema):
        return None
    whole_where_partial: list[bool] = []
    pruned = _prune(schema, tree, whole_where_partial)
    return None if whole_where_partial else pruned


def _prune(schema: Any, tree: Tree | bool, whole_where_partial: list[bool]) -> Any:
    if tree is True or isinstance(schema, bool):  # (`true` takes any value, `false` none)
        return schema
    if (
        not isinstance(schema, dict)
        or set(schema) - _UNDERSTOOD
        or (isinstance(types := schema.get("type"), list) and not all(map(_is_text, types)))
    ):  # (draft 3's schemas among the types: their rules are not cut)
        whole_where_partial.append(True)
        return schema
    assert isinstance(tree, dict)
    if not _WHOLE_VALUE_KEYWORDS.isdisjoint(schema):
        # (items alike in what is read may differ in what is not: the whole value is compared)
        whole_where_partial.append(True)
    out = {k: v for k, v in schema.items() if k not in ("properties", "items", "required")}
    names = [name for name in tree if name != "[]"]
    properties = schema.get("properties")
    if isinstance(properties, dict):
        out["properties"] = {
            name: _prune(properties[name], tree[name], whole_where_partial)
            for name in names
            if name in properties
        }
    required = schema.get("required")
    if isinstance(required, list):
        # (a name not read is not checked: a record decoded at its read paths lacks it)
        out["required"] = [name for name in required if name in tree]
    elif "required" in schema:
        out["required"] = required
    if not any(name not in (properties or {}) for name in names):
        # Every name read is a declared property: other properties are not read.
        out.pop("additionalProperties", None)
        out.pop("patternProperties", None)
    elif "additionalProperties" in schema and "patternProperties" not in schema:
        # A name read is not declared (a field read by its name): what the schema says of
        # other properties is said of the names read alone, so a column nobody reads is
        # unchecked however the record was decoded (whole, it holds them all).
        out.setdefault("properties", {})
        for name in names:
            if name not in (properties or {}):  # (cut to what is read of it, as a declared one)
                out["properties"][name] = _prune(
                    schema["additionalProperties"], tree[name], whole_where_partial
                )
        out.pop("additionalProperties")
    if "items" in schema:
        items = schema["items"]
        out["items"] = _prune(items, tree["[]"], whole_where_partial) if "[]" in tree else items
    return out


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def any_ref(schema: Any, test: Callable[[object], bool] = lambda ref: True) -> bool:
    """Whether an object anywhere in the JSON value (data too) has a `$ref` that passes
    `test`. Iterative: a deep schema must not exhaust the stack here."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            if "$ref" in node and test(node["$ref"]):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _refers_outside_definitions(schema: Any) -> bool:
    """A `$ref` in the schema points elsewhere than into its `definitions` or `$defs`."""
    return any_ref(
        schema,
        lambda ref: isinstance(ref, str) and not ref.startswith(("#/definitions/", "#/$defs/")),
    )
