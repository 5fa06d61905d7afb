"""Which parts of a record a stream's mapping reads.

Record validation checks what the mapping uses and nothing else: a tap-shopify order has ~500
schema properties and the tap-shopify/orders preset reads ~40 of them, so validating the whole
schema cost ~150 µs a record where the read paths cost ~30 µs (benchmarks/RESULTS.md). A field
that is never read can neither break an event nor reach the API, so it is not checked.

`read_paths(texts)` walks the JMESPath syntax trees and returns the paths read as a tree:
{"lineItems": {"[]": {"sku": True, ...}}, "email": True, ...}, where True means the whole
value is used and "[]" stands for the items of an array; or None when an expression may read
anything (`@` at the top, `keys(@)`, a node type this walk does not know). The reader decodes and
checks only those paths (reading/decoding.py, reading/schema_paths.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import jmespath

from target_openai_capi.mapping.user_fields import USER_FIELD_STYLES, USER_FIELDS

Tree = dict[str, Any]  # name -> Tree or True
Path = tuple[str, ...]


class _Opaque:
    """Where a value that does not come from the record (literal, function result) lives."""


OPAQUE = _Opaque()


class _ListOf:
    """A list assembled from the values found at `path` (a projection's or flatten's result)."""

    def __init__(self, path: Path) -> None:
        self.path = path


Location = Path | _ListOf | _Opaque


class _ReadsAnything(Exception):
    """The expression may read any part of the record."""


class _Reads:
    def __init__(self) -> None:
        self.tree: Tree = {}

    def mark(self, location: Location, *, whole: bool) -> None:
        if isinstance(location, _Opaque):
            return
        path = location.path if isinstance(location, _ListOf) else location
        if not path:
            if whole:
                raise _ReadsAnything
            return
        node = self.tree
        for i, name in enumerate(path):
            last = i == len(path) - 1
            current = node.get(name)
            if current is True:
                return
            if last and whole:
                node[name] = True
                return
            if current is None:
                current = node[name] = {}
            node = current

    def use(self, locations: Iterable[Location]) -> None:
        for location in locations:
            self.mark(location, whole=True)

    def visit(self, node: Mapping[str, Any], here: Location) -> list[Location]:
        kind = node["type"]
        children = node.get("children", [])
        if kind == "field":
            if not isinstance(here, tuple):
                return [OPAQUE]  # a field of a list or of a computed value: not the record
            location = (*here, node["value"])
            self.mark(location, whole=False)
            return [location]
        if kind in ("current", "identity"):
            return [here]
        if kind in ("literal", "raw_string"):
            return [OPAQUE]
        if kind in ("subexpression", "pipe"):  # a chain: a.b.c is one node with 3 children
            locations = [here]
            for child in children:
                locations = [out for at in locations for out in self.visit(child, at)]
            return locations
        if kind == "index_expression":
            index = children[1]
            result: list[Location] = []
            for at in self.visit(children[0], here):
                if index["type"] == "slice":
                    result.append(at)  # a slice of the list is a list from the same place
                elif isinstance(at, _ListOf):
                    result.append(at.path)
                elif isinstance(at, tuple):
                    result.append((*at, "[]"))
                else:
                    result.append(OPAQUE)
            return result
        if kind == "flatten":
            result = []
            for at in self.visit(children[0], here):
                if isinstance(at, _ListOf):
                    items = at.path
                elif isinstance(at, tuple):
                    items = (*at, "[]")
                else:
                    result.append(OPAQUE)
                    continue
                # Items that are lists are spliced in, so their own items are elements too.
                result += [_ListOf(items), _ListOf((*items, "[]"))]
            return result
        if kind in ("projection", "filter_projection"):
            result = []
            for at in self.visit(children[0], here):
                if isinstance(at, _ListOf):
                    element: Location = at.path
                elif isinstance(at, tuple):
                    element = (*at, "[]")
                else:
                    element = OPAQUE
                if kind == "filter_projection":
                    self.use(self.visit(children[2], element))
                for out in self.visit(children[1], element):
                    result.append(_ListOf(out) if isinstance(out, tuple) else out)
            return result
        if kind == "value_projection":
            locations = self.visit(children[0], here)
            self.use(locations)  # values of an object: keep the object whole
            return [OPAQUE]
        if kind in ("or_expression", "and_expression"):
            # The left side is tested for truth, and an object with only the read keys may be
            # empty where the whole one is not: it is read whole.
            left = self.visit(children[0], here)
            self.use(left)
            return left + self.visit(children[1], here)
        if kind in ("not_expression", "comparator", "function_expression"):
            for child in children:
                if child["type"] != "expref":  # applied to items of another argument, used whole
                    self.use(self.visit(child, here))
            return [OPAQUE]
        if kind in ("multi_select_list", "multi_select_dict", "key_val_pair"):
            for child in children:
                self.use(self.visit(child, here))
            return [OPAQUE]
        raise _ReadsAnything  # a node type this analysis does not know


def read_paths(texts: Iterable[str], whole: Iterable[str] = ()) -> Tree | None:
    """The paths the expressions read (plus top-level properties `whole`), or None: anything."""
    reads = _Reads()
    try:
        for name in whole:
            reads.mark((name,), whole=True)
        for text in texts:
            reads.use(reads.visit(jmespath.compile(text).parsed, ()))
    except _ReadsAnything:
        return None
    return reads.tree


def unknown_reads(
    expressions: Mapping[str, str], schema: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """(where, name) for each top-level property an expression reads that the stream's SCHEMA
    does not list: `currency: USD` (the value is 'USD'), `filter: status == paid`, a misspelt
    or BOM-prefixed column. Nothing when the schema lists no properties, admits others
    (`additionalProperties` other than false, `patternProperties`) or adds some elsewhere
    (`allOf`, `$ref`, ...), or when the expression reads the whole record."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        return []
    if schema.get("additionalProperties", False) is not False or any(
        key in schema
        for key in ("patternProperties", "allOf", "anyOf", "oneOf", "$ref", "dependentSchemas")
    ):
        return []  # (it admits others, or adds some elsewhere: `properties` is not the list)
    found = []
    for where, text in expressions.items():
        if not isinstance(text, str):
            continue
        tree = read_paths([text])
        for name in tree or {}:
            if name not in properties:
                found.append((where, name))
    return found


def filter_truth_traps(text: str, schema: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(property, what the filter does with it) for each top-level property a filter treats
    as a boolean that its SCHEMA says is none: tested for truth (`!is_test`) while it is text
    (any text but '' is true, 'false' too) or a number (0 is true), or compared with `true` /
    `false` while it is text (never equal); or one its SCHEMA says is a boolean compared with a
    number or text (`is_test != `1``: never equal). Such a filter keeps or drops every record
    alike."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return []
    try:
        node = jmespath.compile(text).parsed
    except jmespath.exceptions.JMESPathError:
        return []
    found: list[tuple[str, str]] = []
    _truth_traps(node, properties, found, tested=True)
    return found


def _declared_types(node: Mapping[str, Any], properties: Mapping[str, Any]) -> list[str] | None:
    """The SCHEMA types of a top-level property `node` reads (none of them boolean), or None."""
    if node.get("type") != "field":
        return None
    types = schema_types(properties.get(node.get("value")))  # type: ignore[arg-type]
    return types if types is not None and "boolean" not in types else None


def _boolean_only(node: Mapping[str, Any], properties: Mapping[str, Any]) -> bool:
    """True when `node` reads a top-level property its SCHEMA types as boolean (or null) only."""
    if node.get("type") != "field":
        return False
    types = schema_types(properties.get(node.get("value")))  # type: ignore[arg-type]
    return types is not None and "boolean" in types and set(types) <= {"boolean", "null"}


def schema_types(declared: Any) -> list[str] | None:
    """The JSON types a property's schema allows: its `type`, or those of alternatives that
    each give only a type (`anyOf: [{type: string}, {type: null}]`, as singer-io taps write a
    nullable column); None when it says otherwise or nothing."""
    if not isinstance(declared, Mapping):
        return None
    types = declared.get("type")
    if types is None:
        options = declared.get("anyOf", declared.get("oneOf"))
        if not isinstance(options, list) or not options:
            return None
        found: list[str] = []
        for option in options:
            if not isinstance(option, Mapping) or not isinstance(option.get("type"), (str, list)):
                return None
            found += [option["type"]] if isinstance(option["type"], str) else option["type"]
        types = found
    types = [types] if isinstance(types, str) else types
    if not isinstance(types, list) or not all(isinstance(name, str) for name in types):
        return None  # (draft 3's schemas among the types say more than a type)
    return types


def _truth_traps(
    node: Mapping[str, Any],
    properties: Mapping[str, Any],
    found: list[tuple[str, str]],
    *,
    tested: bool,
) -> None:
    kind = node.get("type")
    children = node.get("children", [])
    if kind in ("not_expression", "and_expression", "or_expression"):
        for child in children:
            _truth_traps(child, properties, found, tested=True)
    elif kind == "comparator" and node.get("value") in ("eq", "ne") and len(children) == 2:
        for side, other in (children, children[::-1]):
            if other.get("type") != "literal":
                continue
            literal = other.get("value")
            types = _declared_types(side, properties)
            if types is not None and "string" in types and type(literal) is bool:
                _add(found, str(side["value"]), "text", "compared with a boolean")
            elif _boolean_only(side, properties) and type(literal) in (int, float, str):
                # (`is_test != `1``, `is_test != 'true'`: a tap that types a TINYINT(1) boolean)
                what = "text" if type(literal) is str else "a number"
                _add(found, str(side["value"]), "boolean", f"compared with {what}")
    elif kind == "field" and tested:
        types = _declared_types(node, properties)
        name = str(node["value"])
        # (`!cancelled_at`, `customer_id && ...` test for null or are always true, as meant:
        # only a column named as a yes/no flag is a boolean written as text or 0/1)
        if types is None or not _flag_name(name):
            return
        if "string" in types:
            _add(found, name, "text", "tested for truth")
        elif {"integer", "number"} & set(types):
            _add(found, name, "number", "tested for truth")


# Names of yes/no flags (is_test, has_paid, test, active, refunded_flag, ...).
_FLAG_NAME = re.compile(
    r"(?:is|has|was|can|did|should)_\w+|\w*_(?:flag|bool|yn)|test|flag|active|enabled"
    r"|disabled|deleted|archived|paid|refunded|cancelled|canceled|converted|opted_out|opt_out"
    r"|consent|verified|subscribed"
)  # (matched lower-cased: IS_TEST, Test; and camelCase isTest, IsTest by _FLAG_CAMEL)
_FLAG_CAMEL = re.compile(r"(?:[iI]s|[hH]as|[wW]as)[A-Z][a-z]\w*")


def _flag_name(name: str) -> bool:
    """A column named as a yes/no flag."""
    return bool(_FLAG_NAME.fullmatch(name.lower()) or _FLAG_CAMEL.fullmatch(name))


def _add(found: list[tuple[str, str]], name: str, kind: str, how: str) -> None:
    if all(name != seen for seen, _ in found):
        found.append((name, f"{how}, and the stream's SCHEMA types it as {kind}"))


def read_into_text(reads: Mapping[str, Any] | None, schema: Mapping[str, Any]) -> list[str]:
    """The top-level properties a mapping reads into (`event_params[].key`, `customer.email`)
    that the SCHEMA types as text only: JSON kept as text (as warehouse copies of nested
    columns keep it), where every such path reads null."""
    properties = schema.get("properties")
    if reads is None or not isinstance(properties, Mapping):
        return []
    found = []
    for name, below in reads.items():
        types = schema_types(properties.get(name))
        text_only = types is not None and "string" in types and set(types) <= _TEXT
        if isinstance(below, dict) and text_only:
            found.append(name)
    return found


_TEXT = frozenset({"string", "null"})


# The sent event's own names, which a table read at the friendly field names does not read:
# the user object's hashed lists and values (emails_sha256: no column is so named but a copy
# of sent events), and, inside its `user` and `data` objects, the names the API takes.
_WIRE_HASHES = frozenset(
    wire
    for style in USER_FIELD_STYLES.values()
    for wire in style.values()
    if wire.endswith("_sha256")
)
_WIRE_USER_NAMES = frozenset(
    wire for style in USER_FIELD_STYLES.values() for wire in style.values()
) - frozenset(USER_FIELDS)
_DATA_MONEY = frozenset({"amount", "currency", "contents"})


def the_event_s_own_columns(
    reads: Mapping[str, Any] | None, schema: Mapping[str, Any]
) -> list[str]:
    """The top-level properties of the SCHEMA that copy the event the API takes, that the
    mapping does not read: a column of hashes named as the API names them (emails_sha256), a
    `user` object holding such names, a `data` object holding money; such a table's user and
    money would go without a word."""
    properties = schema.get("properties")
    if reads is None or not isinstance(properties, Mapping):
        return []
    found = []
    for name, declared in properties.items():
        if name in reads or not isinstance(name, str):
            continue
        inside = declared.get("properties") if isinstance(declared, Mapping) else None
        inside = set(inside) if isinstance(inside, Mapping) else set()
        types = schema_types(declared) or ["object"]  # (unsaid: it may be the object)
        # An object with nothing declared inside (a jsonb column, `{}`) may be the copy; one
        # whose declared contents are something else (a login) is not.
        unsaid = "object" in types and not inside
        if (
            name in _WIRE_HASHES
            or (name == "user" and (unsaid or inside & _WIRE_USER_NAMES))
            or (name == "data" and (unsaid or inside & _DATA_MONEY))
        ):
            found.append(name)
    return found
