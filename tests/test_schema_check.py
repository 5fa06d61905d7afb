"""reading/schema_check.py: which SCHEMAs are usable, and what records are checked against.
Property names are never keywords; data (`default`, `enum`, `examples`) is never a schema."""

from __future__ import annotations

from typing import Any

import pytest

from target_openai_capi.reading.schema_check import (
    for_record_checks,
    merged_alternatives,
    schema_problem,
)


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


@pytest.mark.parametrize(
    "schema",
    [
        obj(pattern={"type": "string"}, multipleOf={"type": "number"}),
        obj(properties=obj(type={"type": "string"}, pattern={"type": "string"})),
        obj(**{"$ref": {"type": "string"}, "items": {"type": "string"}}),
        obj(a={"type": "object", "default": {"pattern": 5, "$ref": "http://x/y"}}),
        obj(a={"enum": [{"pattern": 5}], "examples": [{"properties": 1}]}),
        obj(a={"type": "array", "items": [{"type": "string"}, True]}),  # draft 4's list form
        obj(a={"dependencies": {"b": ["c"], "d": {"required": ["e"]}}}),
        {**obj(a={"$ref": "#/$defs/x"}), "$defs": {"x": {"type": "string"}}},
        {**obj(a={"$ref": "#"}), "additionalProperties": False},  # recursive
        obj(a={"type": "string", "required": True}),  # draft 3's flag
        # Patterns are never checked (for_record_checks leaves them out): one Python cannot
        # compile (ECMA-262's `\\p{L}`), or no text at all, refuses no SCHEMA.
        obj(a={"type": "string", "pattern": "\\p{L}"}),
        obj(a={"anyOf": [{"pattern": 5}]}),
        obj(a={"items": {"pattern": 5}}),
        obj(a={"patternProperties": {"(": {}}}),
    ],
)
def test_usable_schemas(schema: dict[str, Any]) -> None:
    assert schema_problem(schema, ["id"]) is None


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (obj(a={"not": 5}), "schema.properties.a.not is not a schema"),
        (obj(a={"allOf": {"type": "string"}}), "schema.properties.a.allOf is not a list"),
        (obj(a=5), "schema.properties.a is not a schema"),
        # (a name in `required` that is no text: the pruning compared it with the read names)
        (obj(a={"type": "object", "required": [["x"]]}), "a.required is not a list of property"),
        ({**obj(a={}), "required": "a"}, "schema.required is not a list of property names"),
        # A node reached by a $ref only (here under an unknown keyword) is checked too.
        (
            {**obj(a={"$ref": "#/x-extra/b"}), "x-extra": {"b": {"not": 5}}},
            "$ref.not is not a schema",
        ),
    ],
)
def test_unusable_schemas_say_where(schema: dict[str, Any], problem: str) -> None:
    found = schema_problem(schema, ["id"])
    assert found is not None
    assert problem in found


def test_record_checks_change_keywords_only_never_property_names() -> None:
    schema = obj(
        multipleOf={"type": "number", "multipleOf": 0.01},
        pattern={"type": "string", "pattern": "^a"},
        maximum={"type": "integer"},
        exclusiveMaximum=True,  # a property whose schema is `true`
        amount={"type": "number", "exclusiveMaximum": True, "maximum": 100},
    )
    checked = for_record_checks(schema)
    assert checked["properties"] == {
        "multipleOf": {"type": "number"},
        "pattern": {"type": "string"},
        "maximum": {"type": "integer"},
        "exclusiveMaximum": True,
        "amount": {"type": "number", "exclusiveMaximum": 100},
    }
    assert schema["properties"]["pattern"]["pattern"] == "^a"  # (a copy: the SCHEMA is kept)


def test_rules_reached_only_by_a_ref_are_left_out_of_record_checks_too() -> None:
    """A property whose schema is a $ref into a place no keyword names (`x-types`, OpenAPI's
    `components`): its pattern and multipleOf are left out as everywhere else (a pattern such
    as ^([a-z]+)+$ takes seconds on one value; a decimal multipleOf fails every amount)."""
    schema = {
        **obj(email={"$ref": "#/x-types/email"}, amount={"$ref": "#/components/schemas/Money"}),
        "x-types": {"email": {"type": "string", "pattern": "^([a-z]+)+$"}},
        "components": {"schemas": {"Money": {"type": "number", "multipleOf": 0.01}}},
    }
    assert schema_problem(schema, ["id"]) is None
    checked = for_record_checks(schema)
    assert checked["x-types"]["email"] == {"type": "string"}
    assert checked["components"]["schemas"]["Money"] == {"type": "number"}
    assert schema["x-types"]["email"]["pattern"] == "^([a-z]+)+$"  # (the SCHEMA is kept)


def nested(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        node = obj(a=node)
    return node


def test_a_schema_too_deep_for_the_validator_is_refused_saying_so() -> None:
    """fastjsonschema cannot compile ~45 levels of objects; a schema deeper than 32 is refused
    with a reason a person can act on, not the compiler's 'too many levels of indentation'."""
    assert schema_problem(nested(20), ["id"]) is None
    problem = schema_problem(nested(40), ["id"])
    assert problem is not None
    assert "is nested more than 32 levels deep" in problem


# --- alternatives of types: one node -------------------------------------------------------------


def test_nullable_columns_written_as_alternatives_become_type_lists() -> None:
    """As singer-io and pipelinewise taps write nullable columns: checked (and decoded at the
    read paths) as the `type` list they stand for, keywords kept with their kind."""
    schema = obj(
        created={"anyOf": [{"type": "null"}, {"type": "string", "format": "date-time"}]},
        total={"anyOf": [{"type": ["null", "number"], "multipleOf": 0.01}], "title": "Total"},
        customer={
            "anyOf": [
                {"type": ["null", "string"]},  # (an id, or the object expanded)
                {"type": ["null", "object"], "properties": {"email": {"type": "string"}}},
            ]
        },
        kind={"oneOf": [{"type": "null"}, {"type": "string", "maxLength": 3}]},
    )
    assert for_record_checks(schema)["properties"] == {
        "created": {"type": ["null", "string"], "format": "date-time"},
        "total": {"type": ["null", "number"], "title": "Total"},
        "customer": {
            "type": ["null", "string", "object"],
            "properties": {"email": {"type": "string"}},
        },
        "kind": {"type": ["null", "string"], "maxLength": 3},
    }


@pytest.mark.parametrize(
    "node",
    [
        {"anyOf": [{"type": "null"}, {"type": "string", "enum": ["a"]}]},  # enum: every kind
        {"anyOf": [{"type": "string"}, {"type": "string", "maxLength": 3}]},  # the first takes all
        {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "number"}]},  # integer is a number
        {"oneOf": [{"type": ["null", "string"]}, {"type": ["null", "integer"]}]},  # null: both
        {"anyOf": [{"type": "string", "minimum": 3}, {"type": "integer"}]},  # minimum: not its kind
        {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/x"}]},
        {"anyOf": [{"type": "null"}, {"type": "string"}], "type": "string"},  # a sibling rule
        {"anyOf": [{"type": "null"}], "oneOf": [{"type": "null"}]},
        {"anyOf": []},
        {"anyOf": [{"type": "null"}, {"type": [["string"]]}]},  # (hostile: not a name)
        {"oneOf": [{"type": [{"type": "string"}]}]},
        {"anyOf": [{"type": "null"}, {"type": "text"}]},
    ],
)
def test_alternatives_that_say_more_than_types_stay_as_they_are(node: dict[str, Any]) -> None:
    assert merged_alternatives(node) is None
    assert for_record_checks(obj(a=node))["properties"]["a"] == node


_VALUES = [None, True, "", "ab", "abcd", 0, -1, 3, 7, 7.5, 11, 12.0, {}, {"a": "x"}, {"a": 1}]
_VALUES += [{"b": 2}, [], [1], ["x"], [1, 2, 3]]
_ALTERNATIVES: list[dict[str, Any]] = [
    {"type": "null"},
    {"type": "boolean"},
    {"type": "string"},
    {"type": "string", "maxLength": 3},
    {"type": ["string", "null"], "minLength": 2},
    {"type": "integer"},
    {"type": "integer", "minimum": 0},
    {"type": "number"},
    {"type": ["number", "null"], "maximum": 10, "exclusiveMinimum": 0},
    {"type": "object"},
    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
    {"type": ["object", "null"], "additionalProperties": False},
    {"type": "array"},
    {"type": "array", "items": {"type": "integer"}, "maxItems": 2},
    {"type": ["array", "string"], "minItems": 1},
    {"type": "string", "minimum": 1},  # a keyword of another kind: never merged
    {"type": "integer", "enum": [3, 7]},  # a keyword of every kind: never merged
]


def test_merged_alternatives_accept_exactly_the_values_the_alternatives_accept() -> None:
    """Every anyOf and oneOf of one to three of the alternatives above: where they merge, the
    merged node and the original take the same values, by jsonschema and by fastjsonschema."""
    import itertools

    import fastjsonschema
    import jsonschema

    merged_count = kept_count = 0
    for size in (1, 2, 3):
        for chosen in itertools.combinations(_ALTERNATIVES, size):
            for keyword in ("anyOf", "oneOf"):
                node = {keyword: list(chosen)}
                merged = merged_alternatives(node)
                if merged is None:
                    kept_count += 1
                    continue
                merged_count += 1
                original = jsonschema.Draft202012Validator(node)
                other = jsonschema.Draft202012Validator(merged)
                fast = fastjsonschema.compile(merged)
                for value in _VALUES:
                    expected = original.is_valid(value)
                    assert other.is_valid(value) == expected, (node, merged, value)
                    try:
                        fast(value)
                    except fastjsonschema.JsonSchemaValueException:
                        assert not expected, (node, merged, value)
                    else:
                        assert expected, (node, merged, value)
    assert merged_count > 300
    assert kept_count > 300


def test_alternatives_a_ref_points_into_and_draft_3_alternatives_stay() -> None:
    """Merged, `anyOf/1` would be gone: a $ref to it would point to nothing (the validators
    could not compile the schema). Draft 3 has no anyOf: its validator ignores it."""
    import fastjsonschema

    nullable = {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 5}]}
    schema = obj(email=nullable, other={"$ref": "#/properties/email/anyOf/1"})
    checked = for_record_checks(schema)
    assert checked["properties"]["email"] == nullable
    validate = fastjsonschema.compile(checked)
    validate({"email": None, "other": "x@y"})
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validate({"email": None, "other": "x@example.com"})
    draft3 = {**obj(email=nullable), "$schema": "http://json-schema.org/draft-03/schema#"}
    assert for_record_checks(draft3)["properties"]["email"] == nullable
    draft4 = {**obj(email=nullable), "$schema": "http://json-schema.org/draft-04/schema#"}
    assert for_record_checks(draft4)["properties"]["email"] == {
        "type": ["null", "string"],
        "maxLength": 5,
    }


MONEY = {"type": "object", "properties": {"amount": {"type": ["null", "number"]}}}


def chain(levels: int) -> dict[str, Any]:
    """A definition in each level of an object, each using the next."""
    definitions = {f"d{i}": obj(x={"$ref": f"#/definitions/d{i + 1}"}) for i in range(levels)}
    definitions[f"d{levels}"] = {"type": "string"}
    return {**obj(detail={"$ref": "#/definitions/d0"}), "definitions": definitions}


WIDE = {  # 20 uses of a definition using another 20 times, holding 1,000 texts: 400 copies
    **obj(a={"$ref": "#/$defs/b"}),
    "$defs": {
        "b": obj(**{f"p{i}": {"$ref": "#/$defs/c"} for i in range(20)}),
        "c": obj(**{f"q{i}": {"enum": [f"t{j}" for j in range(1000)]} for i in range(20)}),
    },
}


@pytest.mark.parametrize(
    ("schema", "inlined"),
    [
        (  # money as one definition, used twice: written out where it is used
            {
                **obj(total={"$ref": "#/definitions/money"}, tax={"$ref": "#/definitions/money"}),
                "definitions": {"money": MONEY},
            },
            {**obj(total=MONEY, tax=MONEY), "definitions": {"money": MONEY}},
        ),
        (  # a definition using another, under items, with an annotation beside the $ref
            {
                **obj(lines={"type": "array", "items": {"$ref": "#/$defs/line", "title": "L"}}),
                "$defs": {"line": obj(price={"$ref": "#/$defs/money"}), "money": MONEY},
            },
            {
                **obj(lines={"type": "array", "items": obj(price=MONEY)}),
                "$defs": {"line": obj(price={"$ref": "#/$defs/money"}), "money": MONEY},
            },
        ),
        # Kept as they are: a recursive definition, a $ref elsewhere, rules beside a $ref (in
        # draft 2019-09 on they apply too), an $id (it moves where a $ref points), a $ref
        # that is no property's nor items' (under dependencies, in data), past the limits
        (
            {
                **obj(a={"$ref": "#/definitions/t"}),
                "definitions": {"t": obj(t={"$ref": "#/definitions/t"})},
            },
            None,
        ),
        (obj(a={"type": "string"}, b={"$ref": "#/properties/a"}), None),
        (
            {**obj(a={"$ref": "#/$defs/m", "maxLength": 3}), "$defs": {"m": {"type": "string"}}},
            None,
        ),
        (
            {**obj(a={"$ref": "#/$defs/m"}), "$defs": {"m": {"$id": "m.json", "type": "string"}}},
            None,
        ),
        (
            {
                **obj(total={"$ref": "#/definitions/m"}),
                "dependencies": {"enum": {"$ref": "#/definitions/m"}},
                "definitions": {"m": {"type": ["number", "null"]}},
            },
            None,
        ),
        (
            {
                **obj(
                    total={"$ref": "#/definitions/m"}, n={"default": {"$ref": "#/definitions/m"}}
                ),
                "definitions": {"m": {"type": ["number", "null"]}},
            },
            None,
        ),
        (chain(48), None),  # (written out, too deep for the validator's code to compile)
        (WIDE, None),  # (written out: 400 copies of 1,000 texts, minutes to compile)
    ],
)
def test_definitions_are_written_out_where_they_are_used(schema, inlined) -> None:
    """So that a stream whose schema uses definitions is cut to the paths its mapping reads and
    decoded there, in the worker processes: a `$ref` was left whole, and every record decoded
    whole in the main process alone. Where they cannot be written out alike, they stay."""
    assert for_record_checks(schema) == (inlined or schema)


def test_written_out_definitions_accept_exactly_what_the_references_accept() -> None:
    import fastjsonschema

    line = obj(sku={"type": "string", "maxLength": 4}, price={"$ref": "#/definitions/money"})
    schema = {
        **obj(total={"$ref": "#/definitions/money"}, lines={"type": "array", "items": line}),
        "definitions": {"money": {**MONEY, "required": ["amount"]}},
    }
    original, checked = (
        fastjsonschema.compile(schema),
        fastjsonschema.compile(for_record_checks(schema)),
    )
    assert "$ref" not in str(for_record_checks(schema))
    values: list[Any] = [None, {}, {"amount": 1}, {"amount": "1"}, {"x": 1}, {"amount": None}]
    for total in values:
        for price in values:
            for sku in ("abcd", "abcde", 5):
                record = {"total": total, "lines": [{"sku": sku, "price": price}]}
                accepted = []
                for validate in (original, checked):
                    try:
                        validate(record)
                    except fastjsonschema.JsonSchemaValueException:
                        accepted.append(False)
                    else:
                        accepted.append(True)
                assert accepted[0] == accepted[1], record
