"""The compiled build_event (mapping/assembler.py) returns what build_event returns, and raises
what it raises, for every record: generated Shopify orders of both shapes, every preset and
hand-written mappings on random records, and random mutations of every read path."""

from __future__ import annotations

import datetime as dt
import random
import re
import sys
from collections.abc import Callable, Mapping
from decimal import Decimal
from hashlib import sha256
from pathlib import Path
from typing import Any

import msgspec
import pytest

from target_openai_capi.mapping.assembler import compile_assembler
from target_openai_capi.mapping.errors import MappingError
from target_openai_capi.mapping.event import build_event
from target_openai_capi.mapping.stream_mapping import StreamMapping, compile_stream_mapping
from target_openai_capi.presets import PRESETS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import generate
from test_presets import ga4_row, shopify_order, stripe_sub, track

_DECODE = msgspec.json.Decoder(float_hook=Decimal)
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)

MAPPINGS: dict[str, dict[str, Any]] = {
    **{f"preset {name}": {"preset": name} for name in PRESETS},
    "warehouse model": {},  # the type from a `type` column, every field by its own name
    "custom events": {
        "event_type": "custom",
        "fields": {"custom_event_name": "name", "custom_data": "props", "plan_id": "plan"},
    },
    "event names": {
        "event_type_from": "event",
        "event_types": {"Bought": "order_created", "Signed up": "lead_created"},
        "fields": {"timestamp_ms": "ts", "amount_minor": "cents", "currency": "cur"},
    },
    "app event": {
        "event_type": "app_installed",
        "fields": {"timestamp": "at", "email": "emails", "phone": "phones"},
    },
    "subscription": {
        "event_type": "subscription_created",
        "fields": {
            "timestamp": "at",
            "plan_id": "plan.id",
            "amount": "plan.amount",
            "currency": "plan.currency",
            "contents": "items",
            "external_id": "customer",
            "date_of_birth": "dob",
        },
    },
    "source url kept whole": {
        "event_type": "page_viewed",
        "keep_source_url_query": True,
        "fields": {"timestamp": "at", "source_url": "url", "action_source": "src"},
    },
    "customer action": {
        "event_type": "lead_created",
        "fields": {"timestamp": "at", "contents": "items", "amount": "value", "currency": "cur"},
    },
    "projections": {
        "event_type": "order_created",
        "fields": {
            "timestamp": "at",
            "currency": "cur",
            "contents": 'items[*].{id: sku || code, name: `"fixed"`, quantity: qty, amount: price}',
            "email": "contacts[].email",
            "phone": "contacts[*].phone || phone",
        },
    },
    "comparisons": {  # `==`, `!=`, `<`, `&&` written out (assembler.py `_inline_node`)
        "event_type": "page_viewed",
        "fields": {
            "timestamp": "at",
            "source_url": "url",
            "action_source": "(src == 'pos' && 'physical_store') || (src != 'app' && 'web') "
            "|| 'mobile_app'",
            "oppref": "(n < `2` && ref) || (n >= `2.5` && flag && ref2) || (n == `1` && 'one')",
            "contents": "items[].{id: (kind == 'gift' && 'GIFT') || sku, quantity: qty}",
        },
    },
    "projected content items": {  # every content field, each item made as it is read
        "event_type": "subscription_created",
        "fields": {
            "timestamp": "at",
            "currency": "cur",
            "contents": "lines[].{id: sku || code, group_id: group, name: title, "
            "content_type: kind, quantity: qty, currency: cur, amount: price, "
            "amount_minor: cents, variant_dict: variant}",
        },
    },
}
SETTINGS = [("plural", "US"), ("plural", None), ("singular", "GB")]
AT = "2026-11-30T10:00:00Z"
# A record each mapping builds an event from; random mutations of it reach every branch.
BASES: dict[str, dict[str, Any]] = {
    "preset tap-shopify/orders": shopify_order(1, AT, "USD", 25.5),
    "preset tap-shopify/abandoned_checkouts": shopify_order(2, AT, "EUR", 3),
    "preset tap-stripe/subscriptions": stripe_sub(
        "sub_1", "active", created=1764590400, currency="usd", plan={"id": "gold", "amount": 999}
    ),
    "preset segment/tracks": track("m1", "Order Completed", AT, revenue=12.5, currency="USD"),
    "preset rudderstack/tracks": track("m2", "Signed Up", AT, channel="mobile"),
    "preset ga4/events": ga4_row(
        "purchase", 30, {"transaction_id": "t1", "currency": "USD", "value": 9.5}
    )[0],
    "warehouse model": {
        "id": "e1",
        "type": "order_created",
        "timestamp_ms": 1764590400000,
        "amount": Decimal("25.99"),
        "currency": "USD",
        "email": "a@b.co",
        "contents": [{"id": "s", "quantity": 1}],
    },
    "custom events": {
        "id": "c1",
        "name": "Renewed!",
        "props": {"a": 1},
        "plan": "p1",
        "timestamp": AT,
    },
    "event names": {"id": "x", "event": "Bought", "ts": 1764590400000, "cents": 250, "cur": "EUR"},
    "app event": {"id": "a", "at": AT, "emails": ["A@b.co", "c@d.co"], "phones": "+14155552671"},
    "subscription": {
        "id": "s",
        "at": AT,
        "plan": {"id": "gold", "amount": Decimal("9.99"), "currency": "USD"},
        "items": [{"id": "i", "amount": 2}],
        "customer": 42,
        "dob": "1990-01-01",
    },
    "source url kept whole": {
        "id": "u",
        "at": AT,
        "url": "https://a.example/p?q=1#f",
        "src": "web",
    },
    "customer action": {"id": "l", "at": AT, "items": [{"id": "x"}], "value": 3, "cur": "USD"},
    "projections": {
        "id": "p",
        "at": AT,
        "cur": "USD",
        "items": [{"sku": "a", "qty": 1, "price": Decimal("2.50")}, {"code": "b"}, None],
        "contacts": [{"email": "a@b.co"}, [{"email": "c@d.co", "phone": "+14155552671"}]],
    },
    "comparisons": {
        "id": "k",
        "at": AT,
        "url": "https://a.example/p",
        "src": "pos",
        "n": 1,
        "ref": "r1",
        "ref2": "r2",
        "flag": True,
        "items": [{"kind": "gift", "sku": "s", "qty": 1}, {"kind": 3, "sku": "t"}, None],
    },
    "projected content items": {
        "id": "q",
        "at": AT,
        "cur": "EUR",
        "lines": [
            {"sku": "a", "group": "g", "title": " T ", "kind": "product", "qty": 2, "price": 3},
            [{"code": 7, "cur": "jpy", "cents": 120, "variant": {"size": "M", "n": None}}],
            None,
            {"code": "k", "cur": "KWD", "price": Decimal("1.5")},  # (1500, not EUR's 150)
            {"title": "no amount", "qty": Decimal("2")},
        ],
    },
}


def outcome(build: Callable[[], tuple[dict[str, Any], list[str]]]) -> tuple[str, Any]:
    """What a build gave: its result, or the exception's type, message and event id."""
    try:
        return "built", build()
    except MappingError as exc:
        return "MappingError", (str(exc), exc.event_id)
    except Exception as exc:
        return type(exc).__name__, str(exc)


def in_order(value: Any) -> Any:
    """The value with each dict as the list of its items: == then compares key order too."""
    if isinstance(value, dict):
        return [(key, in_order(item)) for key, item in value.items()]
    if isinstance(value, (list, tuple)):
        return [in_order(item) for item in value]
    return value


def agree(mapping: StreamMapping, records: list[Any], keys: tuple[str, ...], style: str, region):
    assemble = compile_assembler(mapping, keys, style, region)
    assert assemble is not None
    kinds: set[str] = set()
    for record in records:
        whole = lambda record=record: record  # noqa: E731
        expected = outcome(
            lambda record=record, whole=whole: build_event(
                mapping,
                record,
                keys,
                user_field_style=style,
                default_phone_region=region,
                whole_record=whole,
            )
        )
        got = outcome(lambda record=record, whole=whole: assemble(record, whole))
        # (in key order too: it is the order of the JSON sent)
        assert in_order(got) == in_order(expected), (record, assemble.source)  # type: ignore[attr-defined]
        kinds.add(got[0])
    return kinds


# --- random records along the paths a mapping reads ------------------------------------------

_TEXT = [
    "",
    " ",
    "x",
    "Jane.Doe@Example.COM ",
    "not an email",
    "+1 (415) 555-2671",
    "(415) 555-2671",
    "12",
    "2026-11-30T10:00:00Z",
    "2026-11-30 10:00:00+02:00",
    "yesterday",
    "1764590400",
    "https://shop.example.com/p?oppref=abc&x=1",
    "https://shop.example.com/o/1/authenticate?key=k#status",
    "https://jane:pw@shop.example.com/thanks?x=1",
    "?only=query",
    "#",
    "USD",
    "jpy",
    "ZZZ",
    "203.0.113.9",
    "2001:db8::1, 10.0.0.1",
    "fe80::1%eth0",
    "a" * 64,
    "Bought",
    "Signed up",
    "order_created",
    "Renewed!",
    "true",
    "no",
    '[{"id": "s1", "amount": 3}]',
    "O'Connor José",
    "us",
    "UK",
    "SW1A 1AA",
    "x" * 300 + "@example.com",  # past the cache of normalised values
    " " * 300,
    "NULL",  # markers of a missing value, and names and codes that only look like them
    " undefined ",
    "NaN",
    "\\N",
    "-",
    "Nan",
    "NA",
    "::ffff:203.0.113.9",
    "+44 (0)20 7946 0958",
]


def _leaf(rng: random.Random) -> Any:
    choice = rng.random()
    if choice < 0.4:
        return rng.choice(_TEXT)
    if choice < 0.5:
        return rng.choice([None, True, False, [], {}, [None], [""]])  # JMESPath's false values
    if choice < 0.65:
        return rng.choice([0, 1, 3, -2, 1_764_590_400_000, 10**20])
    if choice < 0.75:
        return rng.choice([Decimal("25.99"), Decimal("0.001"), Decimal("1E+3"), Decimal("-1")])
    if choice < 0.88:
        return [rng.choice(_TEXT) for _ in range(rng.randint(0, 5))]
    return {"k": rng.choice(_TEXT), "n": rng.randint(0, 3)}


def random_value(tree: Any, rng: random.Random, depth: int = 0) -> Any:
    """A value for a read-path tree: usually shaped as the tree reads it, sometimes anything."""
    if tree is True or depth > 6 or rng.random() < 0.1:
        return _leaf(rng)
    if "[]" in tree and rng.random() < 0.8:
        return [random_value(tree["[]"], rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {
        name: random_value(sub, rng, depth + 1)
        for name, sub in tree.items()
        if name != "[]" and rng.random() < 0.75
    }


def mutate(record: Mapping[str, Any], tree: Mapping[str, Any], rng: random.Random) -> Any:
    """The record with one read path (at any depth) replaced, removed or emptied."""
    result = dict(record)
    names = [name for name in tree if name != "[]"]
    if not names:
        return result
    name = rng.choice(names)
    sub = tree[name]
    roll = rng.random()
    if roll < 0.2:
        result.pop(name, None)
    elif roll < 0.6 or sub is True or not isinstance(result.get(name), dict):
        result[name] = random_value(sub, rng)
    else:
        result[name] = mutate(result[name], sub, rng)
    return result


@pytest.mark.parametrize(("style", "region"), SETTINGS)
@pytest.mark.parametrize("name", list(MAPPINGS))
def test_random_records_build_alike(name, style, region):
    mapping = compile_stream_mapping("s", MAPPINGS[name])
    assert mapping.reads is not None
    rng = random.Random(f"{name}/{style}/{region}")
    records = [random_value(mapping.reads, rng) for _ in range(800)]
    records = [r if isinstance(r, dict) else {} for r in records]
    record = BASES[name]
    for _ in range(800):
        record = mutate(BASES[name] if rng.random() < 0.3 else record, mapping.reads, rng)
        records.append(record)
    kinds = agree(mapping, [BASES[name], *records], ("id",), style, region)
    assert kinds >= {"built", "MappingError"}
    kinds = agree(mapping, records, (), style, region)  # ids from a hash of the record
    assert kinds >= {"built", "MappingError"}


@pytest.mark.parametrize("shape", ["full", "sparse", "varied"])
@pytest.mark.parametrize("preset", ["tap-shopify/orders", "tap-shopify/abandoned_checkouts"])
def test_generated_orders_and_their_mutations_build_alike(shape, preset):
    mapping = compile_stream_mapping("orders", {"preset": preset})
    assert mapping.reads is not None
    records = [
        message["record"]
        for message in map(_DECODE.decode, generate.stream_lines(400, seed=3, now=NOW, shape=shape))
        if message["type"] == "RECORD"
    ]
    rng = random.Random(shape)
    mutated = []
    for record in records:
        for _ in range(5):
            record = mutate(record, mapping.reads, rng)
            mutated.append(record)
    kinds = agree(mapping, records + mutated, ("id",), "plural", "US")
    assert kinds >= {"built", "MappingError"}
    built = agree(mapping, records, ("id",), "plural", "US")
    # (varied orders hold a few the target rejects: an amount finer than the currency's unit)
    whole = preset == "tap-shopify/orders" and shape != "varied"
    assert built == {"built"} if whole else "built" in built


@pytest.mark.parametrize(
    ("fields", "record"),
    [
        ({"oppref": "(n < `NaN` && 'low') || 'x'"}, {"n": Decimal("1")}),
        ({"oppref": "n == `1` && 'one'"}, {"n": Decimal("sNaN")}),
        ({"action_source": "(src >= `1` && 'physical_store') || 'web'"}, {"src": Decimal("NaN")}),
        (  # an item's own error comes after the projection's: the projection runs first
            {"contents": "items[].{id: (p < `NaN` && 'a') || sku, amount: price}"},
            {"items": [{"sku": "s", "price": "x"}, {"p": Decimal("2"), "sku": "t"}]},
        ),
        (  # (a user field's: the event goes without it, with a note, in both)
            {"email": "contacts[].{e: (p > `1.5` && email)}[].e"},
            {"contacts": [{"p": Decimal("NaN"), "email": "a@b.co"}]},
        ),
    ],
)
def test_a_comparison_that_fails_fails_alike_in_both_builders(fields, record):
    """A comparison written out raises what its guarded getter raises: a MappingError naming
    the expression, with the event's id, never the decimal module's own error."""
    fields = {"timestamp": "at", "currency": "cur", **fields}
    entry = {"event_type": "order_created", "fields": fields}
    mapping = compile_stream_mapping("s", entry)
    record = {"id": "e1", "at": AT, "cur": "USD", **record}
    kind = "built" if "email" in fields else "MappingError"
    assert agree(mapping, [record], ("id",), "plural", "US") == {kind}


@pytest.mark.parametrize(
    ("fields", "record", "note"),
    [
        ({"email": "lower(em)"}, {"em": 12345}, "email: expression 'lower(em)' failed: lower()"),
        (
            {"phone": "join('', [cc, num])"},
            {"cc": "+44", "num": 7700900123},
            "phone: expression \"join('', [cc, num])\" failed: join()",
        ),
    ],
)
def test_a_user_field_whose_expression_fails_costs_the_event_nothing(fields, record, note):
    """`email: lower(customer_email)` (the cookbook's) on a row whose value is no text rejected
    the whole conversion, its other identifiers too: an optional field left out, with a note."""
    fields = {"timestamp": "at", "external_id": "uid", **fields}
    mapping = compile_stream_mapping("s", {"event_type": "lead_created", "fields": fields})
    record = {"id": "e1", "at": AT, "uid": "u-1", **record}
    assert agree(mapping, [record], ("id",), "plural", "US") == {"built"}
    event, notes = build_event(mapping, record, ["id"])
    assert event["user"] == {"external_ids_sha256": [sha256(b"u-1").hexdigest()]}
    assert len(notes) == 1
    assert notes[0].startswith(note)
    assert notes[0].endswith("; sent without it")


def test_the_source_holds_no_config_text():
    """Expressions reach the compiled function as getters, never as source."""
    mapping = compile_stream_mapping(
        "s", {"event_type": "order_created", "fields": {"id": "`\"__import__('os')\"`"}}
    )
    assemble = compile_assembler(mapping, (), "plural", None)
    assert assemble is not None
    assert "__import__" not in assemble.source  # type: ignore[attr-defined]
    assert assemble({"timestamp": "2026-11-30T10:00:00Z"}, None)[0]["id"] == "__import__('os')"


def test_unusable_user_settings_are_left_to_build_event():
    mapping = compile_stream_mapping("s", {})
    assert compile_assembler(mapping, (), "plural", "XX") is None
    assert compile_assembler(mapping, (), "nonsense", None) is None


def test_projections_of_plain_paths_are_written_out():
    """The line items of the Shopify preset and a hand-written projection are read by the
    compiled function itself, not through their compiled getters (the fast path is taken)."""
    for entry, field in [
        ({"preset": "tap-shopify/orders"}, "contents"),
        (MAPPINGS["projections"], "contents"),
        (MAPPINGS["projections"], "email"),
        (MAPPINGS["projected content items"], "contents"),
    ]:
        assemble = compile_assembler(compile_stream_mapping("s", entry), ("id",), "plural", "US")
        assert assemble is not None
        assert f"GET_{field}" not in assemble.source  # type: ignore[attr-defined]
        if field == "contents":  # each item made as it is read, not by event.py's _contents
            assert "_contents(" not in assemble.source  # type: ignore[attr-defined]
    assemble = compile_assembler(
        compile_stream_mapping("s", MAPPINGS["projections"]), ("id",), "plural", "US"
    )
    assert "GET_phone" in assemble.source  # type: ignore[union-attr]  # (a || after a projection)


def test_content_items_made_as_they_are_read_keep_every_rule_of_contents():
    """The compiled function makes each item of a projected `contents` as it reads it
    (assembler.py `_content_item`): each rule of event.py `_contents`, case by case."""
    mapping = compile_stream_mapping("s", MAPPINGS["projected content items"])
    base = BASES["projected content items"]
    cases: list[list[Any]] = [
        [{"code": "a", "price": 1, "cents": 100}],  # amount and amount_minor: an error
        [{"code": "a"}, {"code": "b", "price": 1, "cents": 100}],  # ... of contents[1]
        [None, {"code": "a", "price": 1, "cents": 100}],  # (a null element is not counted)
        [{"code": "a", "variant": {}}, {"code": "b", "variant": {"n": None, "e": ""}}],
        [{"code": "a", "variant": {"size": 1}}, {"variant": "M"}],  # not an object: an error
        [{"code": "a", "cur": "KWD", "price": Decimal("1.5")}],  # the item's own currency
        [{"code": "a", "cur": "", "price": Decimal("1.5")}],  # ("" is no currency)
        [{"code": "a", "cur": "JPY", "price": Decimal("1.5")}],  # too precise for JPY
        [{"code": "a", "cur": "XXX1"}],  # not a currency
        [{"code": "a", "qty": -1}, {"qty": True}, {"qty": Decimal("2.5")}],
        [{"code": 7, "title": Decimal("1.0")}, {"code": {"x": 1}}],  # ids from numbers; objects
        [{"code": "  "}, {"title": " "}],  # blank text: an error
        [[{"code": "nested"}, None], "text", 3],  # flattened one level; other values: empty items
    ]
    records = [{**base, "lines": lines} for lines in cases]
    records += [{**base, "cur": None, "lines": [{"code": "a", "price": 1}]}]  # no currency at all
    records += [{**base, "cur": None, "lines": [{"code": "a", "cents": 1}]}]
    kinds = agree(mapping, records, ("id",), "plural", "US")
    assert kinds == {"built", "MappingError"}


@pytest.mark.parametrize(
    ("value", "keys", "expected"),
    [
        ("A-1", {}, "A-1"),
        ("(not set)", {"k": "K9"}, "K9"),  # a placeholder: the key properties next
        (" NULL ", {"k": "K9"}, "K9"),
        ("N/A", {}, "rec_"),  # then a hash of the record
        ("ok", {}, "ok"),
        (None, {"k": "(NOT SET)"}, "rec_"),  # a placeholder key is no key either
        ("a.b@example.com", {}, "sha256_" + sha256(b"a.b@example.com").hexdigest()),
        (None, {"k": "lead:x@y.io"}, "sha256_" + sha256(b"lead:x@y.io").hexdigest()),
        ("order@123", {}, "order@123"),  # an @ is not an email address
        ("jane%40example.com", {}, "sha256_" + sha256(b"jane%40example.com").hexdigest()),
        ("Null", {"k": "K9"}, "K9"),  # a placeholder in any case
        ("N/a", {}, "rec_"),
    ],
)  # fmt: skip
def test_event_ids_of_placeholders_and_email_addresses_both_builders(value, keys, expected):
    """The id as both builders make it: a placeholder is no id, an email is never sent raw."""
    mapping = compile_stream_mapping(
        "s", {"event_type": "lead_created", "fields": {"id": "i", "timestamp_ms": "t"}}
    )
    record = {"i": value, "t": 1_700_000_000_000, **keys}
    key_properties = ["k"] if keys else []
    assemble = compile_assembler(mapping, key_properties, "plural", None)
    assert assemble is not None
    for event in (
        build_event(mapping, record, key_properties)[0],
        assemble(record, None)[0],
    ):
        assert event["id"].startswith(expected) if expected == "rec_" else event["id"] == expected


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"a": "x", "b": "z"}, "x:z"),  # as ids of several key properties always were
        ({"a": "x:y", "b": "z"}, "x\\:y:z"),  # a `:` in a value is escaped...
        ({"a": "x", "b": "y:z"}, "x:y\\:z"),  # ...so these two are two ids, not `x:y:z`
        ({"a": "x\\", "b": ":z"}, "x\\\\:\\:z"),  # and so is the escape itself
        ({"a": 7, "b": "gid://shopify/Order/1"}, "7:gid\\://shopify/Order/1"),
    ],
)
def test_ids_of_several_key_properties_never_run_into_one_another(keys, expected):
    mapping = compile_stream_mapping(
        "s", {"event_type": "lead_created", "fields": {"timestamp_ms": "t"}}
    )
    record = {"t": 1_700_000_000_000, **keys}
    assemble = compile_assembler(mapping, ["a", "b"], "plural", None)
    assert assemble is not None
    assert build_event(mapping, record, ["a", "b"])[0]["id"] == expected
    assert assemble(record, None)[0]["id"] == expected
    # One key property is its value, `:` and all.
    assert build_event(mapping, record, ["b"])[0]["id"] == str(keys["b"])


def test_an_id_too_long_is_refused_before_it_is_searched_for_an_email():
    """(An id of a million characters with an @ and no dot once took hours to search.)"""
    mapping = compile_stream_mapping(
        "s", {"event_type": "lead_created", "fields": {"id": "i", "timestamp_ms": "t"}}
    )
    record = {"i": "a" * 100_000 + "@" + "b" * 100_000, "t": 1_700_000_000_000}
    with pytest.raises(MappingError, match="id is longer than 256 characters"):
        build_event(mapping, record, [])


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"currency": "USD"}, "currency ('USD') gave no value for this record"),
        ({}, "the record has no `currency` property"),
    ],
)
def test_an_amount_without_a_currency_says_what_was_read_both_builders(fields, says):
    """(It said "map `currency`" to a user who had mapped it, as a bare word.)"""
    entry = {"event_type": "order_created", "fields": {"timestamp_ms": "t", **fields}}
    mapping = compile_stream_mapping("s", entry)
    record = {"id": "o1", "t": 1_700_000_000_000, "amount": "5.00"}
    assemble = compile_assembler(mapping, [], "plural", None)
    assert assemble is not None
    for build in (lambda: build_event(mapping, record, []), lambda: assemble(record, None)):
        with pytest.raises(MappingError, match=re.escape(says)):
            build()


@pytest.mark.parametrize(
    ("entry", "record", "expected"),
    [
        (
            {"event_type": "order_created", "fields": {"timestamp": "at", "amount": "total"}},
            {
                "id": "a",
                "at": 1_700_000_000,
                "timestamp_ms": 5,
                "total": "1.50",
                "amount_minor": 7,
                "currency": "USD",
            },
            {
                "timestamp_ms": 1_700_000_000_000,
                "data": {"type": "contents", "amount": 150, "currency": "USD"},
            },
        ),
        (
            {"event_type": "order_created", "fields": {"timestamp_ms": "at", "amount_minor": "m"}},
            {
                "id": "a",
                "at": 1_700_000_000_000,
                "timestamp": 5,
                "m": 150,
                "amount": "9.99",
                "currency": "USD",
            },
            {
                "timestamp_ms": 1_700_000_000_000,
                "data": {"type": "contents", "amount": 150, "currency": "USD"},
            },
        ),
        (
            {"event_type_from": "event"},
            {
                "id": "a",
                "event": "Demo Booked",
                "custom_event_name": "order_created",
                "timestamp_ms": 1_700_000_000_000,
            },
            {"type": "custom", "custom_event_name": "demo_booked"},
        ),
        (  # the type itself: the name is the record's custom_event_name
            {"event_type_from": "event"},
            {
                "id": "a",
                "event": "custom",
                "custom_event_name": "Quiz Done",
                "timestamp_ms": 1_700_000_000_000,
            },
            {"type": "custom", "custom_event_name": "quiz_done"},
        ),
        (  # a mapped name replaces the one event_type_from gave
            {"event_type_from": "event", "fields": {"custom_event_name": "label"}},
            {
                "id": "a",
                "event": "Demo Booked",
                "label": "Quiz Done",
                "timestamp_ms": 1_700_000_000_000,
            },
            {"type": "custom", "custom_event_name": "quiz_done"},
        ),
    ],
)
def test_what_is_mapped_is_not_replaced_by_a_column_of_another_name(entry, record, expected):
    mapping = compile_stream_mapping("s", entry)
    assemble = compile_assembler(mapping, ("id",), "plural", None)
    assert assemble is not None
    for event, _ in (build_event(mapping, record, ("id",)), assemble(record, lambda: record)):
        assert {name: event[name] for name in expected} == expected


@pytest.mark.parametrize("contents", ["items", "items[].{id: sku, currency: cur, amount: price}"])
def test_an_item_s_currency_that_is_none_is_named_by_its_place(contents):
    entry = {"event_type": "order_created", "fields": {"contents": contents}}
    mapping = compile_stream_mapping("s", entry)
    assemble = compile_assembler(mapping, ("id",), "plural", None)
    assert assemble is not None
    items = [{"sku": "a", "cur": "EUR", "price": 1}, {"sku": "b", "cur": "QQQ", "price": 2}]
    if contents == "items":
        items = [{"id": i["sku"], "currency": i["cur"], "amount": i["price"]} for i in items]
    record = {"id": "o", "timestamp_ms": 1_700_000_000_000, "currency": "EUR", "items": items}
    for build in (lambda: build_event(mapping, record, ("id",)), lambda: assemble(record, dict)):
        with pytest.raises(MappingError) as caught:
            build()
        assert str(caught.value) == (
            "contents[1].currency: unknown currency 'QQQ' (not a current ISO 4217 code)"
        )


@pytest.mark.parametrize("preset", ["segment/tracks", "rudderstack/tracks"])
def test_a_preset_s_amount_leaves_a_table_s_amount_minor_column_read(preset):
    """The pair rule is the user's: a preset's `amount` (a table's own amount column, then the
    properties') does not hide an `amount_minor` column of a table shaped for this target."""
    mapping = compile_stream_mapping("order_completed", {"preset": preset})
    assemble = compile_assembler(mapping, ("id",), "plural", None)
    assert assemble is not None
    record = track(
        "m1", "Order Completed", "2026-12-04T10:00:00Z", amount_minor=1999, currency="USD"
    )
    for event, _ in (build_event(mapping, record, ("id",)), assemble(record, lambda: record)):
        assert event["data"]["amount"] == 1999


def test_a_user_s_field_replaces_the_other_of_its_pair_that_a_preset_maps():
    """`amount_minor` mapped over a preset that maps `amount`: 'map amount or amount_minor,
    not both' (the workaround was `amount: null`)."""
    entry = {"preset": "segment/tracks", "fields": {"amount_minor": "cents"}}
    mapping = compile_stream_mapping("order_completed", entry)
    assert "amount" not in mapping.fields
    # Nor are its columns read (and so checked against the schema: a 'n/a' price refused it).
    assert mapping.reads is not None
    assert {"cents", "currency"} <= mapping.reads.keys()
    assert not {"amount", "total", "revenue", "value", "price"} & mapping.reads.keys()
    assemble = compile_assembler(mapping, ("id",), "plural", None)
    assert assemble is not None
    record = track("m1", "Order Completed", "2026-12-04T10:00:00Z", cents=1999, currency="USD")
    record["amount"] = "5.00"  # (a column the preset's amount would read first)
    for event, _ in (build_event(mapping, record, ("id",)), assemble(record, lambda: record)):
        assert event["data"]["amount"] == 1999
