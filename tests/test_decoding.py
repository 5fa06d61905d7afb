"""A decoder that checks a schema's types must never accept what the schema validator rejects."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

import fastjsonschema
import msgspec
import pytest

from target_openai_capi.mapping.errors import MappingError
from target_openai_capi.mapping.expressions import compile_expression
from target_openai_capi.mapping.reads import read_paths
from target_openai_capi.reading.decoding import record_decoding
from target_openai_capi.reading.schema_paths import prune_schema

WHOLE = msgspec.json.Decoder(float_hook=Decimal)

JSON_TYPES = ["null", "boolean", "integer", "number", "string", "object", "array"]
# JSON texts of values of every type, with the edge cases: 1.0, a numeric string, nesting.
VALUES = [
    "null", "true", "false", "0", "7", "-3", "1.0", "1.50", "1e3", '""', '"x"', '"1.5"',
    "{}", '{"a": 1}', '{"a": "s"}', '{"a": null}', "[]", "[1]", '["s"]', "[null]", "[{}]",
]  # fmt: skip
TYPE_LISTS = [
    *JSON_TYPES,
    *(list(pair) for pair in itertools.combinations(JSON_TYPES, 2)),
    ["null", "integer", "string"],
]


def accepted(decoding, text: bytes) -> bool:
    try:
        record = decoding.decoder.decode(text)
    except msgspec.ValidationError:
        return False
    return decoding.leaves_ok(record)


def schema_accepts(schema, tree, text: bytes) -> bool:
    validate = fastjsonschema.compile(
        prune_schema(schema, tree), use_default=False, use_formats=False
    )
    try:
        validate(WHOLE.decode(text))
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


@pytest.mark.parametrize("types", TYPE_LISTS, ids=str)
@pytest.mark.parametrize("read", ["whole", "field a"])
def test_a_checked_decode_accepts_nothing_the_schema_rejects(types, read):
    field = {"type": types}
    if "object" in (types if isinstance(types, list) else [types]):
        field["properties"] = {"a": {"type": ["null", "integer"]}}
    if "array" in (types if isinstance(types, list) else [types]):
        field["items"] = {"type": ["null", "integer"]}
    schema = {"type": "object", "properties": {"v": field, "other": {"type": "string"}}}
    tree = {"v": True} if read == "whole" else {"v": {"a": True, "[]": True}}
    decoding = record_decoding(tree, prune_schema(schema, tree))
    kinds = set(types if isinstance(types, list) else [types])
    # Left unchecked: an object or array (with rules for its contents) used whole, or one that
    # may also be a number.
    containers = kinds & {"object", "array"}
    assert decoding.checks_schema == (not containers or ("number" not in kinds and read != "whole"))
    for value in VALUES:
        text = f'{{"v": {value}, "other": 5}}'.encode()  # `other` breaks the schema, unread
        if decoding.checks_schema and accepted(decoding, text):
            assert schema_accepts(schema, tree, text), (types, value)


def test_type_only_schemas_are_checked_while_decoding():
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "the order id"},
            "at": {"type": ["null", "string"], "format": "date-time"},
            "total": {"type": ["null", "number"]},
            "lines": {
                "type": ["null", "array"],
                "items": {"type": "object", "properties": {"qty": {"type": "integer"}}},
            },
        },
    }
    tree = {"id": True, "at": True, "total": True, "lines": {"[]": {"qty": True}}}
    decoding = record_decoding(tree, prune_schema(schema, tree))
    assert decoding.checks_schema
    good = b'{"id": "o1", "at": "soon", "total": 10.10, "lines": [{"qty": 2, "x": "y"}], "z": 1}'
    record = decoding.decoder.decode(good)
    assert record == {"id": "o1", "at": "soon", "total": Decimal("10.10"), "lines": [{"qty": 2}]}
    assert decoding.leaves_ok(record)
    for bad in (
        b'{"id": 5}',
        b'{"id": "o1", "total": "10.10"}',  # a numeric string is not a number
        b'{"id": "o1", "total": true}',
        b'{"id": "o1", "lines": [{"qty": 2.5}]}',
        b'{"id": "o1", "lines": {"qty": 2}}',
    ):
        assert not accepted(decoding, bad), bad


# Rules databases' taps write (VARCHAR(n), INTEGER's range, NUMERIC bounds, NOT NULL columns,
# enums, closed objects), each against values on both sides of it: what the decoder accepts
# must be exactly what the schema accepts (never more: the record would go unchecked; never
# less: it would be decoded twice and validated, the slow path).
RULES = [
    '{"type": "string", "minLength": 2}',
    '{"type": ["null", "string"], "maxLength": 2}',
    '{"type": "string", "minLength": 1, "maxLength": 1}',
    '{"type": ["null", "integer"], "minimum": -1, "maximum": 7}',
    '{"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 7}',
    '{"type": ["null", "number"], "minimum": 0}',
    '{"type": "number", "maximum": 1.5}',
    '{"type": "number", "maximum": 0.3}',  # (the validator compares with the float 0.3)
    '{"type": ["null", "number"], "exclusiveMinimum": 0, "exclusiveMaximum": 1000}',
    '{"type": ["integer", "number"], "exclusiveMaximum": 1.0}',
    '{"type": "number", "minimum": -1e400, "maximum": 1E+38}',
    '{"type": "number", "maximum": 9007199254740995e0}',  # (an integer there, not a float)
    '{"type": "number", "maximum": 5, "exclusiveMaximum": 10, "minimum": 0.5}',
    '{"type": ["null", "string"], "enum": [null, "x", "\\u00e9", "1.5"]}',
    '{"type": "string", "enum": ["x", null, "xyz"], "maxLength": 2}',
    '{"type": ["null", "string"], "enum": ["x"]}',
    '{"type": ["null", "object"], "properties": {"a": {}}, "required": ["a"]}',
    '{"type": "object", "properties": {"a": {"type": "integer"}, "b": {}}, "required": ["a"]}',
    # `a` is read but not declared: additionalProperties false refuses it
    '{"type": "object", "additionalProperties": false, "properties": {"b": {}}}',
    '{"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}}',
    '{"type": "object", "additionalProperties": true, "properties": {"b": {}}}',
    '{"type": "object", "additionalProperties": {"type": "string"}, "properties": {"b": {}}}',
]
RULE_VALUES = [
    *VALUES,
    '"xy"', '"xyz"', '"\\u00e9"', '"e\\u0301"', '"\\ud83d\\ude00"',
    '"\\ud83d\\ude00\\ud83d\\ude00"',
    "-1", "-2", "1", "6", "7", "8", "0.0", "-0.0", "0.5", "1.4999999999999999999", "1.5",
    "0.3", "0.29999999999999998", "0.2999999999999999", "1E+38",
    "100000000000000000000000000000000000001", "9007199254740995", "9007199254740996",
    "9007199254740995.5", "4.9999", "5.0001", "9.99",
    "1.50000000000000000001", "999.99", "1000", "1e400", "-1e400", "12345678901234567890",
    '{"b": 1}', '{"a": "s", "b": 1}', '{"c": 1}', '{"a": 1.0}',
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "read"),
    [
        (text, read)
        for text in RULES
        for read in ("whole", "field a")
        # (an object used whole: its names are the validator's to check, next test)
        if not (read == "whole" and '"object"' in text)
    ],
)
def test_a_checked_decode_accepts_exactly_what_the_rules_of_a_column_accept(text, read):
    rule = WHOLE.decode(text)  # (as a SCHEMA line is read: fractions as Decimals)
    schema = {"type": "object", "properties": {"v": rule, "other": {"type": "string"}}}
    tree = {"v": True} if read == "whole" else {"v": {"a": True}}
    decoding = record_decoding(tree, prune_schema(schema, tree))
    assert decoding.checks_schema
    # (the same checks step by step, as a record nested past what Python compiles has them)
    from target_openai_capi.reading.decoding import _leaf_check

    steps = [_leaf_check(*check) for check in decoding.leaf_checks or ()]
    for value in RULE_VALUES:
        text = f'{{"v": {value}, "other": 5}}'.encode()  # `other` breaks the schema, unread
        assert accepted(decoding, text) == schema_accepts(schema, tree, text), (rule, value)
        try:
            record = decoding.decoder.decode(text)
        except msgspec.ValidationError:
            continue
        assert all(step(record) for step in steps) == decoding.leaves_ok(record), (rule, value)


@pytest.mark.parametrize("draft", ["draft-04", "draft-03"])
def test_draft_4_exclusive_bounds_are_left_to_the_validator(draft):
    """Draft 4 reads exclusiveMaximum as a flag on maximum, a number too: `maximum: 5,
    exclusiveMaximum: 10` refuses 5 there. Read as draft 6's bound, 5 went through."""
    for rule in (
        {"type": "number", "maximum": 5, "exclusiveMaximum": 10},
        {"type": "number", "minimum": 0, "exclusiveMinimum": -3},
        {"type": "integer", "maximum": 5, "exclusiveMaximum": True},
    ):
        schema = {
            "$schema": f"http://json-schema.org/{draft}/schema#",
            "type": "object",
            "properties": {"v": rule},
        }
        decoding = record_decoding({"v": True}, prune_schema(schema, {"v": True}))
        assert not decoding.checks_schema


@pytest.mark.parametrize("rule", [{"required": ["a"]}, {"additionalProperties": False}])
def test_an_object_used_whole_is_left_to_the_validator_when_its_names_are_ruled(rule):
    """Its names would have to be looked at one by one: the validator does that."""
    schema = {"type": "object", "properties": {"v": {"type": "object", **rule}}}
    tree = {"v": True}
    assert not record_decoding(tree, prune_schema(schema, tree)).checks_schema


@pytest.mark.parametrize(
    "field",
    [
        {"type": "integer", "minimum": 0.5},  # (msgspec takes integer bounds only)
        {"type": "integer", "maximum": 5, "exclusiveMaximum": 10},  # (and one of le and lt)
        {"type": "string", "maxLength": 2**63},  # (and lengths of an int64)
        {"type": ["null", "null"]},  # (and no union of null with null)
        {"type": "integer", "maximum": 2**64},  # (and those of an int64)
        {"type": "number", "exclusiveMinimum": True},  # (draft 4's flag, in a draft-4 schema)
        {"type": "string", "enum": ["a", 1]},
        {"type": ["string", "number"], "maxLength": 3},
        {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        {"$ref": "#/definitions/x"},
        {"type": ["number", "object"], "properties": {"a": {}}},
        {"type": "array", "items": [{"type": "string"}]},
        {"properties": {"a": {"type": "string"}}},  # applies only when the value is an object
        {"minLength": 1},  # (the same: only when the value is a string)
    ],
)
def test_schemas_that_say_more_than_types_are_left_to_the_validator(field):
    schema = {"type": "object", "properties": {"v": field}}
    tree = {"v": {"a": True}}
    decoding = record_decoding(tree, prune_schema(schema, tree))
    assert not decoding.checks_schema
    # It still decodes the read paths, whatever the value.
    assert decoding.decoder.decode(b'{"v": {"a": [1], "b": 2}}') == {"v": {"a": [1]}}


def test_without_a_schema_nothing_is_checked():
    decoding = record_decoding({"v": True})
    assert not decoding.checks_schema
    assert decoding.decoder.decode(json.dumps({"v": "anything", "w": 1}).encode()) == {
        "v": "anything"
    }


EXPRESSIONS = [
    "a.b",
    "(a || b).c",
    "(a && b).c",
    "(a || `null`).c",
    "items[].{id: id || sku, q: qty}",
    "items[?qty > `1`].id",
    "items[*].tags[0]",
    "items[].tags[]",
    "length(items)",
    "a.*",
    "!a",
    "a == b",
    "keys(a || `{}`)",
    "url_param(a.url, 'oppref') || b.c",
    "items[0].id || a.c",
]
RECORDS = [
    {"a": {"x": 1}, "b": {"c": "B"}},
    {"a": {"c": "A", "url": "/?oppref=o1"}, "b": None},
    {"a": {}, "b": {"c": "B", "x": [1]}},
    {"a": None, "items": [{"id": "i1", "qty": 2, "tags": ["t"]}, {"sku": "s2", "qty": 1}]},
    {"items": [[{"id": "nested"}], {"id": "i3", "tags": []}], "a": {"c": ""}},
    {"a": "text", "b": [1, 2], "items": "not a list"},
]


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_an_expression_reads_the_same_from_a_record_decoded_at_its_paths(text):
    tree = read_paths([text])
    if tree is None:
        return  # reads anything: such a stream is decoded whole
    decoder = record_decoding(tree).decoder
    evaluate = compile_expression(text)

    def value(record):
        try:
            return evaluate(record)
        except MappingError as e:
            return f"error: {e}"

    for record in RECORDS:
        line = json.dumps(record).encode()
        try:
            partial = decoder.decode(line)
        except msgspec.ValidationError:
            continue  # not shaped as read: the reader decodes it whole
        assert value(partial) == value(WHOLE.decode(line)), (text, record)


@pytest.mark.parametrize("arrays", [1, 25])  # 25 nested loops: past what Python compiles
def test_number_leaves_under_nested_arrays_are_checked(arrays):
    """The leaf check is one generated function; nested deeper than Python compiles, it is the
    same check step by step. Either way a string where a number belongs fails it."""
    from target_openai_capi.reading.decoding import _leaves_check

    check = _leaves_check(((("a", *["[]"] * arrays, "n"), "types", {type(None), int, Decimal}),))

    def nested(leaf):
        value = [{"n": leaf}, None, {"m": 1}]
        for _ in range(arrays - 1):
            value = [value]
        return {"a": value}

    assert (check.__name__ == "leaves_ok") == (arrays == 1)
    assert check(nested(Decimal("1.5")))
    assert check(nested(None))
    assert not check(nested("1.5"))
    assert check({"a": None})
    assert check({})
