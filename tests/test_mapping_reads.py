"""Which record paths a mapping reads, and the stream schema cut down to them."""

from __future__ import annotations

import pytest

from target_openai_capi.mapping.reads import read_paths, unknown_reads
from target_openai_capi.mapping.stream_mapping import compile_stream_mapping
from target_openai_capi.reading.schema_paths import prune_schema


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["id"], {"id": True}),
        (["a.b"], {"a": {"b": True}}),
        (["a.b.c"], {"a": {"b": {"c": True}}}),
        (["a[0].b"], {"a": {"[]": {"b": True}}}),
        # Flatten may splice nested lists, so `a[].b` also reads b of a's items' items.
        (["a[].b"], {"a": {"[]": {"b": True, "[]": {"b": True}}}}),
        (["a[*].b"], {"a": {"[]": {"b": True}}}),
        (["a[*].{x: b.c, y: d || e}"], {"a": {"[]": {"b": {"c": True}, "d": True, "e": True}}}),
        (["a[?x > `1`].y"], {"a": {"[]": {"x": True, "y": True}}}),
        (
            ["url_param(c.lastVisit.landingPage, 'oppref')"],
            {"c": {"lastVisit": {"landingPage": True}}},
        ),
        (["(attrs[?key == 'o'].value | [0])"], {"attrs": {"[]": {"key": True, "value": True}}}),
        (["!test"], {"test": True}),
        (["a.*.b"], {"a": True}),
        (["sort_by(items, &price)[0].id"], {"items": True}),
        (["`1`", "'web'"], {}),
        (["@.id"], {"id": True}),
        (["a[]"], {"a": {"[]": True}}),
        (["@"], None),
        (["keys(@)"], None),
        (["email", "customer.email"], {"email": True, "customer": {"email": True}}),
        # A side tested for truth is read whole: an object cut to the read keys may be empty.
        (["(a || b).c"], {"a": True, "b": {"c": True}}),
        (["(a && b).c"], {"a": True, "b": {"c": True}}),
    ],
)
def test_read_paths(texts, expected):
    assert read_paths(texts) == expected


def test_whole_properties_are_added_and_win_over_paths():
    assert read_paths(["a.b"], whole=["a", "id"]) == {"a": True, "id": True}


SCHEMA = {
    "type": "object",
    "properties": {
        "a": {
            "type": ["null", "object"],
            "properties": {"b": {"type": "string"}, "c": {"type": "string"}},
        },
        "d": {"type": "integer"},
        "l": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"x": {"type": "number"}, "y": {"type": "string"}},
            },
        },
        "z": {"anyOf": [{"type": "string"}]},
    },
    "required": ["a", "d"],
}


def test_prune_keeps_read_paths_with_their_types():
    pruned = prune_schema(SCHEMA, {"a": {"b": True}, "l": {"[]": {"x": True}}, "z": True})
    assert pruned == {
        "type": "object",
        "properties": {
            "a": {"type": ["null", "object"], "properties": {"b": {"type": "string"}}},
            "l": {
                "type": "array",
                "items": {"type": "object", "properties": {"x": {"type": "number"}}},
            },
            "z": {"anyOf": [{"type": "string"}]},
        },
        "required": ["a"],
    }


@pytest.mark.parametrize(
    "node",
    [
        {"$ref": "#/definitions/x"},
        {"anyOf": [{"type": "object", "properties": {"b": {"type": "string"}}}]},
        {"allOf": [{"type": "object"}]},
    ],
)
def test_prune_leaves_nodes_it_does_not_understand_whole(node):
    schema = {"type": "object", "properties": {"a": node, "other": {"type": "string"}}}
    assert prune_schema(schema, {"a": {"b": True}}) == {
        "type": "object",
        "properties": {"a": node},
    }


def test_prune_keeps_additional_properties_when_a_read_name_is_not_declared():
    """What the schema says of other properties still checks an undeclared name that is read
    (said of that name alone: an unread column is no concern of a record's, decoded in part
    or whole)."""
    import jsonschema

    schema = {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}}
    pruned = prune_schema(schema, {"x": True})
    assert pruned == {"type": "object", "properties": {"x": {"type": "string"}}}
    assert not jsonschema.Draft7Validator(pruned).is_valid({"x": 1})  # (read: checked)
    assert jsonschema.Draft7Validator(pruned).is_valid({"x": "a", "y": 1})  # (y: not read)
    closed = {"type": "object", "properties": {"a": {}}, "additionalProperties": False}
    pruned = prune_schema(closed, {"x": True})
    assert not jsonschema.Draft7Validator(pruned).is_valid({"x": 1})  # (closed to x, read)
    assert jsonschema.Draft7Validator(pruned).is_valid({"a": 1, "y": 2})  # (a, y: not read)


def test_shopify_preset_reads_the_mapped_paths_and_every_unmapped_event_field():
    mapping = compile_stream_mapping("orders", {"preset": "tap-shopify/orders"})
    assert mapping.reads is not None
    assert mapping.reads["totalPriceSet"] == {"shopMoney": {"amount": True, "currencyCode": True}}
    assert mapping.reads["lineItems"]["[]"]["discountedUnitPriceSet"] == {
        "shopMoney": {"amount": True}
    }
    assert mapping.reads["test"] is True  # the filter
    assert mapping.reads["user_agent"] is True  # not mapped: read from the same-named property
    assert "fulfillments" not in mapping.reads


def test_a_mapping_that_reads_the_whole_record_validates_all_of_it():
    mapping = compile_stream_mapping("s", {"event_type": "lead_created", "fields": {"id": "@"}})
    assert mapping.reads is None


@pytest.mark.parametrize(
    ("expressions", "expected"),
    [
        ({"fields.currency": "USD"}, [("fields.currency", "USD")]),  # meant 'USD'
        ({"filter": "status == paid"}, [("filter", "paid")]),  # meant 'paid'
        ({"fields.email": "emial || customer.email"}, [("fields.email", "emial")]),
        ({"fields.currency": "'USD'", "filter": "status == 'paid'"}, []),
        ({"fields.email": "customer.nope"}, []),  # (only top-level names: nested ones vary)
        ({"fields.id": '"\\ufefforder_id"'}, [("fields.id", "\ufefforder_id")]),
        ({"fields.custom_data": "@"}, []),  # the whole record: anything
    ],
)
def test_unknown_reads_name_the_properties_a_schema_does_not_list(expressions, expected):
    schema = {"properties": {"status": {}, "customer": {}, "email": {}, "order_id": {}}}
    assert unknown_reads(expressions, schema) == expected


def test_unknown_reads_trust_a_schema_that_lists_nothing_or_admits_patterns():
    assert unknown_reads({"fields.currency": "USD"}, {"properties": {}}) == []
    assert unknown_reads({"fields.currency": "USD"}, {"type": "object"}) == []
    patterned = {"properties": {"a": {}}, "patternProperties": {"^x": {}}}
    assert unknown_reads({"fields.currency": "USD"}, patterned) == []
    for more in ({"additionalProperties": True}, {"allOf": [{"properties": {"USD": {}}}]}):
        assert unknown_reads({"fields.currency": "USD"}, {"properties": {"a": {}}, **more}) == []
    closed = {"properties": {"a": {}}, "additionalProperties": False}
    assert unknown_reads({"fields.currency": "USD"}, closed) == [("fields.currency", "USD")]
