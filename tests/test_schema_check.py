"""reading/schema_check.py: which SCHEMAs are usable, and what records are checked against.
Property names are never keywords; data (`default`, `enum`, `examples`) is never a schema."""

from __future__ import annotations

from typing import Any

import pytest

from target_openai_capi.reading.schema_check import for_record_checks, schema_problem


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
    ],
)
def test_usable_schemas(schema: dict[str, Any]) -> None:
    assert schema_problem(schema, ["id"]) is None


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (obj(a={"type": "string", "pattern": "\\p{L}"}), "schema.properties.a.pattern is a"),
        (
            obj(a={"anyOf": [{"pattern": 5}]}),
            "schema.properties.a.anyOf[0].pattern is not a string",
        ),
        (obj(a={"items": {"pattern": 5}}), "schema.properties.a.items.pattern is not a string"),
        (obj(a={"not": 5}), "schema.properties.a.not is not a schema"),
        (obj(a={"allOf": {"type": "string"}}), "schema.properties.a.allOf is not a list"),
        (obj(a=5), "schema.properties.a is not a schema"),
        (obj(a={"patternProperties": {"(": {}}}), "patternProperties name is a regular"),
        # A node reached by a $ref only (here under an unknown keyword) is checked too.
        ({**obj(a={"$ref": "#/x-extra/b"}), "x-extra": {"b": {"pattern": 5}}}, "not a string"),
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
