"""The target decodes only what a mapping reads; what it writes is as if it had read it all."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from conftest import API_KEY, PIXEL_ID
from support import now_ms, record, run_target, schema

from target_openai_capi.mapping.event import record_digest

PROPS = {
    "id": {"type": "string"},
    "ts": {"type": "integer"},
    "customer": {"type": ["null", "object"], "properties": {"email": {"type": "string"}}},
    "total": {"type": "number"},
    "cur": {"type": "string"},
    "notes": {"type": "array", "items": {"type": "object"}},
}
STREAM = {
    "event_type": "order_created",
    "fields": {
        "timestamp_ms": "ts",
        "amount": "total",
        "currency": "cur",
        "email": "customer.email",
    },
}


def order(rid: str, **changes) -> dict:
    """An order with properties the mapping never reads (notes, nested extras, a float)."""
    return {
        "id": rid,
        "ts": now_ms() - 60_000,
        "customer": {"email": f"{rid}@example.com", "since": 2019, "tags": ["vip"]},
        "total": 10.10,
        "cur": "EUR",
        "notes": [{"text": "gift wrap", "weight": 0.25}],
        "raw_payload": {"deep": {"deeper": [1, 2.50, None]}},
        **changes,
    }


def config(url: str, tmp_path) -> dict:
    return {
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": url,
        "dead_letter_path": str(tmp_path / "dead.jsonl"),
        "streams": {"orders": STREAM},
    }


def dead_records(tmp_path) -> dict[str, dict]:
    """Dead-lettered records by id, parsed as the target would parse them on a replay."""
    lines = (tmp_path / "dead.jsonl").read_text().splitlines()
    messages = [json.loads(line, parse_float=str) for line in lines]
    return {m["record"]["id"]: m for m in messages if m["type"] == "RECORD"}


def test_dead_letters_keep_the_whole_record_at_every_local_stage(sandbox, tmp_path):
    rejected = {
        # schema: a read path breaks the schema (a value, or the shape); mapping: a currency.
        "bad-schema": order("bad-schema", ts="yesterday"),
        "bad-shape": order("bad-shape", customer="not an object"),
        "bad-number": order("bad-number", total="10.10"),  # the schema says number
        "bad-currency": order("bad-currency", cur="XYZ"),
    }
    lines = [schema("orders", PROPS, ["id"])]
    lines += [record("orders", rec) for rec in (order("ok"), *rejected.values())]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["ok"]
    dead = dead_records(tmp_path)
    assert set(dead) == set(rejected)
    for rid, sent in rejected.items():
        # Every property, unread ones too, exactly as it came in (10.10 stays 10.10).
        assert dead[rid]["record"] == json.loads(json.dumps(sent), parse_float=str), rid
    assert dead["bad-schema"]["dead_letter"]["stage"] == "schema"
    assert "record.ts" in dead["bad-schema"]["dead_letter"]["reason"]
    assert dead["bad-shape"]["dead_letter"]["stage"] == "schema"
    assert "record.customer" in dead["bad-shape"]["dead_letter"]["reason"]
    assert dead["bad-number"]["dead_letter"]["stage"] == "schema"
    assert "record.total" in dead["bad-number"]["dead_letter"]["reason"]
    assert dead["bad-currency"]["dead_letter"]["stage"] == "mapping"


def test_a_record_the_api_refuses_is_dead_lettered_whole(skewed_sandbox, tmp_path):
    stale = order("stale", ts=now_ms() - 2 * 3600 * 1000)
    lines = [
        schema("orders", PROPS, ["id"]),
        record("orders", order("ok")),
        record("orders", stale),
    ]
    run = run_target(config(skewed_sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 0, run.output
    dead = dead_records(tmp_path)
    assert set(dead) == {"stale"}
    assert dead["stale"]["dead_letter"]["stage"] == "api"
    assert dead["stale"]["record"] == json.loads(json.dumps(stale), parse_float=str)


def test_a_stream_map_sees_properties_the_mapping_does_not_read(sandbox, tmp_path):
    cfg = config(sandbox.url, tmp_path)
    # The SDK's stream map computes `ts` and `cur` from properties the mapping never names.
    cfg["stream_maps"] = {"orders": {"ts": "created_ms", "cur": "shop_currency"}}
    props = {**PROPS, "created_ms": {"type": "integer"}, "shop_currency": {"type": "string"}}
    rec = order("mapped", created_ms=now_ms() - 5_000, shop_currency="USD")
    del rec["ts"], rec["cur"]
    run = run_target(cfg, [schema("orders", props, ["id"]), record("orders", rec)], tmp_path)
    assert run.returncode == 0, run.output
    (event,) = sandbox.events(PIXEL_ID)
    assert event["timestamp_ms"] == rec["created_ms"]
    assert event["data"]["currency"] == "USD"
    assert event["data"]["amount"] == 1010


def test_a_changed_schema_is_checked_by_its_own_rules_and_a_repeated_one_changes_nothing(
    sandbox, tmp_path
):
    number_total = schema("orders", PROPS, ["id"])
    text_total = schema("orders", {**PROPS, "total": {"type": "string"}}, ["id"])
    lines = [
        number_total,
        record("orders", order("n1")),
        number_total,  # repeated, as some taps do before every batch
        record("orders", order("n2")),
        text_total,  # now a numeric total breaks the schema
        record("orders", order("t1")),
        record("orders", order("t2", total="10.10")),
    ]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == ["n1", "n2", "t2"]
    dead = dead_records(tmp_path)
    assert set(dead) == {"t1"}
    assert dead["t1"]["dead_letter"]["stage"] == "schema"
    assert "record.total" in dead["t1"]["dead_letter"]["reason"]


REGISTERED = {
    "type": "object",
    "properties": {"email": {"type": "string"}, "cid": {"type": "integer"}},
    "required": ["cid"],
}
GUEST = {"type": "object", "properties": {"guest": {"const": True}}, "required": ["guest"]}


@pytest.mark.parametrize(
    ("customer", "sent", "refused"),
    [
        # An object or null: the `type` list it is equivalent to, cut to what is read like any
        # (cid is not read: the rule over it is not checked, as for `type: [object, null]`).
        ({"anyOf": [REGISTERED, {"type": "null"}]}, ["no-cid", "o0", "o1", "o2"], set()),
        # Two kinds of object: the rule holds for the value that is read, whole.
        ({"anyOf": [REGISTERED, GUEST]}, ["o0", "o1", "o2"], {"no-cid"}),
    ],
    ids=["nullable object", "alternative objects"],
)
def test_schema_rules_over_unread_properties_do_not_reject_good_records(
    sandbox, tmp_path, customer, sent, refused
):
    """singer-sdk taps put `$schema` on top and list `required` properties; `anyOf` nodes may
    require properties inside a value the mapping reads only in part."""
    sdk_schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {**PROPS, "customer": customer, "status": {"type": "string"}},
        "required": ["id", "status"],
    }
    line = json.dumps(
        {"type": "SCHEMA", "stream": "orders", "schema": sdk_schema, "key_properties": ["id"]}
    )
    rows = [
        order(f"o{i}", status="paid", customer={"email": f"o{i}@example.com", "cid": i})
        for i in range(3)
    ]
    broken = order("no-cid", status="paid", customer={"email": "x@example.com"})
    lines = [line, *(record("orders", row) for row in (*rows, broken))]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == sent
    dead = dead_records(tmp_path) if refused else {}
    assert (tmp_path / "dead.jsonl").exists() == bool(refused)
    assert set(dead) == refused
    for letter in dead.values():
        assert letter["dead_letter"]["stage"] == "schema"


@pytest.mark.parametrize("dead_letters", [True, False], ids=["two passes", "one pass"])
def test_an_id_hashed_from_the_record_covers_the_properties_the_mapping_does_not_read(
    sandbox, tmp_path, dead_letters
):
    """No id mapped and no key properties: the id is a hash of the whole record, as before the
    reader decoded only read paths; rows differing only in unread properties stay apart."""
    rows = [order("same", notes=[{"text": text}]) for text in ("gift wrap", "no gift wrap")]
    for row in rows:
        del row["id"]
    cfg = config(sandbox.url, tmp_path)
    if not dead_letters:
        del cfg["dead_letter_path"]
    lines = [schema("orders", PROPS, []), *(record("orders", row) for row in rows)]
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    expected = [
        f"rec_{record_digest(json.loads(json.dumps(row), parse_float=Decimal))}" for row in rows
    ]
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == sorted(expected)
    assert "duplicate=0" in run.stderr


def test_a_stream_whose_sink_another_stream_replaced_is_checked_by_the_new_schema(
    sandbox, tmp_path
):
    """A stream map sends `legacy` into the `orders` sink: its SCHEMA replaces that sink, and
    `orders` records are then checked against the new schema, not the decoder's old one."""
    cfg = config(sandbox.url, tmp_path)
    cfg["stream_maps"] = {"legacy": {"__alias__": "orders"}}
    text_total = {**PROPS, "total": {"type": "string"}}
    lines = [
        schema("orders", PROPS, ["id"]),
        record("orders", order("before")),
        schema("legacy", text_total, ["id"]),
        record("orders", order("after")),  # a numeric total now breaks the sink's schema
    ]
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["before"]
    dead = dead_records(tmp_path)
    assert set(dead) == {"after"}
    assert dead["after"]["dead_letter"]["stage"] == "schema"


@pytest.mark.parametrize("workers", [None, 0])
def test_a_column_named_like_the_other_of_a_pair_does_not_replace_what_was_mapped(
    workers, sandbox, tmp_path
):
    """`timestamp` and `amount` mapped: a record's `timestamp_ms` and `amount_minor` columns
    are not read (they would win over the mapped fields); nor does a `custom_event_name` column
    replace the name event_type_from gave."""
    hour_ago = now_ms() - 3_600_000
    three_days_ago = now_ms() - 3 * 86_400_000
    streams = {
        "orders": {
            "event_type": "order_created",
            "fields": {"timestamp": "occurred_at", "amount": "total", "currency": "cur"},
        },
        "tracks": {"event_type_from": "event"},
    }
    settings = {**config(sandbox.url, tmp_path), "streams": streams}
    if workers is not None:
        settings["worker_processes"] = workers
    text = {"type": "string"}
    lines = [
        schema("orders", {"id": text, "occurred_at": {"type": "number"}}, ["id"]),
        record(
            "orders",
            {
                "id": "o1",
                "occurred_at": hour_ago / 1000,
                "timestamp_ms": three_days_ago,
                "total": "19.99",
                "amount_minor": 5,
                "cur": "USD",
            },
        ),
        schema("tracks", {"id": text}, ["id"]),
        record(
            "tracks",
            {
                "id": "t1",
                "event": "Demo Booked",
                "custom_event_name": "order_created",
                "timestamp_ms": hour_ago,
            },
        ),
    ]
    run = run_target(settings, lines, tmp_path)
    assert run.returncode == 0, run.output
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert events["o1"]["timestamp_ms"] == hour_ago
    assert events["o1"]["data"]["amount"] == 1999
    assert events["t1"]["type"] == "custom"
    assert events["t1"]["custom_event_name"] == "demo_booked"


@pytest.mark.parametrize("workers", [None, 0])
def test_properties_named_outside_ascii_are_read(workers, sandbox, tmp_path):
    """A CSV of French headers: the decoder of read paths (msgspec 0.23) matched no name that
    is not ASCII, so `numéro` read null on every record: the id fell back, the second order
    was taken for a duplicate of the first, and the names and postcodes went without a word."""
    at = now_ms() - 60_000
    streams = {
        "commandes": {
            "event_type": "order_created",
            "fields": {
                "id": '"numéro"',
                "timestamp_ms": '"créé"',
                "first_name": '"prénom"',
                "zip": 'client."código_postal"',
                "amount": '"prix_payé"',
                "currency": "'EUR'",
                "action_source": "'offline'",
            },
        },
    }
    settings = {**config(sandbox.url, tmp_path), "streams": streams}
    if workers is not None:
        settings["worker_processes"] = workers
    text = {"type": "string"}
    props = {"numéro": text, "créé": {"type": "integer"}, "prénom": text, "prix_payé": text}
    lines = [schema("commandes", {**props, "client": {"type": "object"}}, ["numéro"])]
    for n in (1, 2):
        row = {"numéro": f"c{n}", "créé": at, "prénom": "Zoë", "prix_payé": "12.50"}
        lines.append(record("commandes", {**row, "client": {"código_postal": "75001"}}))
    run = run_target(settings, lines, tmp_path)
    assert run.returncode == 0, run.output
    events = sorted(sandbox.events(PIXEL_ID), key=lambda e: e["id"])
    assert [e["id"] for e in events] == ["c1", "c2"]
    for event in events:
        assert event["timestamp_ms"] == at
        assert event["data"] == {"type": "contents", "amount": 1250, "currency": "EUR"}
        assert event["user"]["postal_codes"] == ["75001"]
        assert len(event["user"]["first_names_sha256"]) == 1


@pytest.mark.parametrize("workers", [None, 0])
def test_unique_items_are_compared_whole_not_as_far_as_they_are_read(workers, sandbox, tmp_path):
    """Two line items of one SKU in two sizes, read by SKU and quantity: the items the decoder
    kept looked alike, and `uniqueItems` rejected the order. Items alike in full still are."""
    at = now_ms() - 60_000
    streams = {
        "orders": {
            "event_type": "order_created",
            "fields": {
                "timestamp_ms": "ts",
                "contents": "line_items[].{id: sku, quantity: qty}",
                "action_source": "'offline'",
            },
        }
    }
    settings = {**config(sandbox.url, tmp_path), "streams": streams}
    if workers is not None:
        settings["worker_processes"] = workers
    item = {
        "type": "object",
        "properties": {
            "sku": {"type": "string"},
            "size": {"type": "string"},
            "qty": {"type": "integer"},
        },
    }
    props = {
        "id": {"type": "string"},
        "ts": {"type": "integer"},
        "line_items": {"type": "array", "uniqueItems": True, "items": item},
    }
    shirt = {"sku": "TSHIRT", "qty": 1}
    lines = [
        schema("orders", props, ["id"]),
        record("orders", {"id": "o1", "ts": at, "line_items": [
            {**shirt, "size": "S"}, {**shirt, "size": "M"}]}),
        record("orders", {"id": "o2", "ts": at, "line_items": [
            {**shirt, "size": "S"}, {**shirt, "size": "S"}]}),
    ]  # fmt: skip
    run = run_target(settings, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["o1"]
    dead = dead_records(tmp_path)
    assert list(dead) == ["o2"]
    assert dead["o2"]["dead_letter"]["stage"] == "schema"
    assert "must contain unique items" in dead["o2"]["dead_letter"]["reason"]


_TEXT = {"type": "string"}
_READ_SCHEMAS = {
    # `a` read in part (a.b); `required` of a name not read must not refuse a record: the
    # record decoded at its read paths lacks it
    "required inside a value read in part": (
        {"a": {"type": "object", "required": ["zz"]}},
        {},
        {"first_name": "a.b"},
        [("ok", {"a": {"zz": 1, "b": "Ann"}})],
        [("bad", {"a": "not an object"})],
    ),
    # `u` is no declared property: additionalProperties says what it is, and is cut to what
    # is read of it as a declared property's schema is (it was applied whole to the part)
    "required in additionalProperties": (
        {},
        {"additionalProperties": {"type": "object", "required": ["y"], "properties": {"x": _TEXT}}},
        {"first_name": "u.x"},
        [("ok", {"u": {"x": "Ann", "y": 2}})],
        [("bad", {"u": {"x": 5, "y": 2}})],
    ),
    "minProperties in additionalProperties": (
        {},
        {"additionalProperties": {"type": "object", "minProperties": 2}},
        {"first_name": "u.x"},
        [("ok", {"u": {"x": "Ann", "y": 2}})],
        [("bad", {"u": {"x": "Ann"}})],
    ),
    # patterns are not checked: a name a pattern allows is no additional property
    "patternProperties beside additionalProperties false": (
        {},
        {"patternProperties": {"^x_": _TEXT}, "additionalProperties": False},
        {"first_name": "x_name"},
        [("ok", {"x_name": "Ann"})],
        [],
    ),
    # fastjsonschema does not know draft 3 and read it as draft 7: `exclusiveMaximum: true`
    # was a bound of 1, and 5 was refused
    "draft 3": (
        {
            "v": {"type": "number", "maximum": 100, "exclusiveMaximum": True},
            "w": {"type": "string", "required": True},
        },
        {"$schema": "http://json-schema.org/draft-03/schema#"},
        {"first_name": "w", "amount": "v", "currency": "'USD'"},
        [("ok", {"v": 5, "w": "Ann"}), ("ok2", {"v": 99.5, "w": "Bo"})],
        [("at-bound", {"v": 100, "w": "Ann"}), ("no-w", {"v": 5})],
    ),
    # draft 3's schemas among the types: kept whole, so the record is decoded whole for them
    "draft 3, a schema among the types": (
        {"c": {"type": [{"type": "object", "properties": {"b": {"required": True}}}, "null"]}},
        {"$schema": "http://json-schema.org/draft-03/schema#"},
        {"first_name": "c.name"},
        [("ok", {"c": {"name": "Ann", "b": 2}}), ("ok2", {"c": None})],
        [("no-b", {"c": {"name": "Ann"}})],
    ),
    # and among the types of a value read whole (the mapping's own look at the SCHEMA failed)
    "draft 3, a schema among a read value's types": (
        {"op": {"type": ["string", {"type": "object"}]}},
        {"$schema": "http://json-schema.org/draft-03/schema#"},
        {"oppref": "op"},
        [("ok", {"op": "oppref_1"})],
        [("a-number", {"op": 5})],
    ),
    # draft 3 in name only (a draft-4 `required` list): read as draft 7, the flags as bounds
    "draft 3 in name only": (
        {"v": {"type": "number", "maximum": 100, "exclusiveMaximum": True}},
        {"$schema": "http://json-schema.org/draft-03/schema#", "required": ["v"]},
        {"amount": "v", "currency": "'USD'"},
        [("ok", {"v": 5})],
        [("at-bound", {"v": 100}), ("no-v", {})],
    ),
    # a rule the validator cannot apply to a value refuses the record, never the run
    "draft 3, divisibleBy under extends": (
        {"v": {"type": "number", "extends": {"divisibleBy": 0.01}}},
        {"$schema": "http://json-schema.org/draft-03/schema#"},
        {"amount": "v", "currency": "'USD'"},
        [("ok", {"v": 5})],
        [("huge", {"v": 1e300})],
    ),
}


@pytest.mark.parametrize("workers", [None, 0])
@pytest.mark.parametrize("case", list(_READ_SCHEMAS))
def test_a_record_its_schema_allows_is_never_refused_for_what_is_not_read(
    case, workers, sandbox, tmp_path
):
    """Found by a differential fuzzer (the target's verdict against the validator's on the whole
    record): each of these SCHEMAs had its good records refused, for a rule over a property no
    mapping reads or a draft read as another. Records that break a rule on what is read still
    are refused."""
    properties, top, fields, good, bad = _READ_SCHEMAS[case]
    streams = {
        "orders": {
            "event_type": "order_created",
            "fields": {"timestamp_ms": "ts", "action_source": "'offline'", **fields},
        }
    }
    settings = {**config(sandbox.url, tmp_path), "streams": streams}
    if workers is not None:
        settings["worker_processes"] = workers
    full = {
        **top,
        "type": "object",
        "properties": {"id": _TEXT, "ts": {"type": "integer"}, **properties},
    }
    lines = [
        json.dumps({"type": "SCHEMA", "stream": "orders", "schema": full, "key_properties": ["id"]})
    ]
    at = now_ms() - 60_000
    lines += [record("orders", {"id": rid, "ts": at, **row}) for rid, row in (*good, *bad)]
    run = run_target(settings, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert sorted(e["id"] for e in sandbox.events(PIXEL_ID)) == sorted(rid for rid, _ in good)
    dead = dead_records(tmp_path) if bad else {}
    assert set(dead) == {rid for rid, _ in bad}
    assert all(letter["dead_letter"]["stage"] == "schema" for letter in dead.values())


def _draft_3_phone_refused(ph: dict, sandbox, tmp_path, workers: int | None = None) -> str:
    """Run a draft-3 SCHEMA whose mapped phone column `ph` has the rule given, on a record whose
    phone is a number; the reason its dead letter gives (the number never in the log)."""
    streams = {
        "orders": {
            "event_type": "order_created",
            "fields": {"timestamp_ms": "ts", "phone": "ph", "action_source": "'offline'"},
        }
    }
    settings = {**config(sandbox.url, tmp_path), "streams": streams}
    if workers is not None:
        settings["worker_processes"] = workers
    full = {
        "$schema": "http://json-schema.org/draft-03/schema#",
        "type": "object",
        "properties": {"id": _TEXT, "ts": {"type": "integer"}, "ph": ph},
    }
    line = {"type": "SCHEMA", "stream": "orders", "schema": full, "key_properties": ["id"]}
    lines = [json.dumps(line), record("orders", {"id": "o1", "ts": now_ms(), "ph": 14155550123})]
    run = run_target(settings, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "14155550123" not in run.stderr
    [letter] = dead_records(tmp_path).values()
    return str(letter["dead_letter"]["reason"])


@pytest.mark.parametrize("workers", [None, 0])
def test_a_draft_3_schema_s_rejection_names_the_field_not_the_value(workers, sandbox, tmp_path):
    """jsonschema's own words quote the value (`14155550123 is not of type 'string'`): a phone
    number in the log, where fastjsonschema's name the field (`record.ph must be string`)."""
    assert _draft_3_phone_refused(_TEXT, sandbox, tmp_path, workers) == (
        "record does not match its schema: Record Message Validation Error: record.ph does not "
        'meet the SCHEMA\'s type "string"'
    )


@pytest.mark.parametrize(
    ("ph", "reason"),
    [
        # draft 3 allows type names of one's own, which jsonschema cannot check: it raised,
        # the run stopped ("This is a bug") with the value in the log
        ({"type": "phone"}, "the stream's SCHEMA could not be applied to the record"),
        # draft 3's schemas among the types: ranking the errors compared them and raised
        ({"type": ["null", {"type": "string"}]}, "record.ph does not meet the SCHEMA's type"),
    ],
    ids=["a type of its own", "a schema among the types"],
)
def test_a_draft_3_rule_jsonschema_cannot_apply_refuses_the_record_not_the_run(
    ph, reason, sandbox, tmp_path
):
    assert reason in _draft_3_phone_refused(ph, sandbox, tmp_path)
