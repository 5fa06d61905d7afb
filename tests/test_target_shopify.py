"""The real CLI on a Shopify-style (tap-shopify 3.x GraphQL) orders stream into the sandbox."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat

import pytest
from conftest import API_KEY, PIXEL_ID
from support import iso_minutes_ago, record, run_target, schema, state

ORDER_PROPERTIES = {
    "id": {"type": "string"},
    "createdAt": {"type": "string", "format": "date-time"},
    "test": {"type": "boolean"},
    "email": {"type": ["string", "null"]},
    "phone": {"type": ["string", "null"]},
    "clientIp": {"type": ["string", "null"]},
    "currencyCode": {"type": "string"},
    "statusPageUrl": {"type": "string"},
    "totalPriceSet": {
        "type": "object",
        "properties": {
            "shopMoney": {
                "type": "object",
                "properties": {"amount": {"type": "string"}, "currencyCode": {"type": "string"}},
            }
        },
    },
    "customerJourneySummary": {"type": ["object", "null"]},
    "lineItems": {"type": "array", "items": {"type": "object"}},
}

SHOPIFY_STREAM = {
    "event_type": "order_created",
    "filter": "!test",
    "fields": {
        "id": "id",
        "timestamp": "createdAt",
        "oppref": "url_param(customerJourneySummary.lastVisit.landingPage, 'oppref')",
        "source_url": "statusPageUrl",
        "action_source": "'web'",
        "amount": "totalPriceSet.shopMoney.amount",
        "currency": "currencyCode",
        "contents": "lineItems[].{id: sku, name: title, quantity: quantity, "
        "amount: originalUnitPriceSet.shopMoney.amount}",
        "email": "email",
        "phone": "phone",
        "ip_address": "clientIp",
    },
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def order(n: int, *, total: str, currency: str, created: str, items: list[dict], **extra: object):
    rec = {
        "id": f"gid://shopify/Order/{n}",
        "createdAt": created,
        "test": False,
        "email": None,
        "phone": None,
        "clientIp": "203.0.113.7",
        "currencyCode": currency,
        "statusPageUrl": f"https://shop.example.com/orders/{n}/status",
        "totalPriceSet": {"shopMoney": {"amount": total, "currencyCode": currency}},
        "customerJourneySummary": {
            "lastVisit": {"landingPage": f"https://shop.example.com/?utm_source=x&oppref=opp_{n}"}
        },
        "lineItems": items,
    }
    rec.update(extra)
    return rec


def item(sku: str, title: str, qty: int, price: str) -> dict:
    return {
        "sku": sku,
        "title": title,
        "quantity": qty,
        "originalUnitPriceSet": {"shopMoney": {"amount": price}},
    }


def to_ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.fixture
def config(sandbox, tmp_path):
    return {
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": sandbox.url,
        "dead_letter_path": str(tmp_path / "dead" / "letters.jsonl"),
        "default_phone_region": "US",
        "streams": {"orders": SHOPIFY_STREAM},
    }


def test_shopify_orders_arrive_exactly(sandbox, config, tmp_path):
    usd_at = iso_minutes_ago(30, "-08:00")
    jpy_at = iso_minutes_ago(50, "+09:00")
    kwd_at = iso_minutes_ago(70, "+05:30")
    lines = [
        schema("orders", ORDER_PROPERTIES, ["id"]),
        record(
            "orders",
            order(
                1001,
                total="59.97",
                currency="USD",
                created=usd_at,
                items=[item("SKU-1", "Tee", 3, "19.99")],
                email="  Jane.Doe@Example.COM ",
                phone="(650) 555-1234",
                # Shopify's order status link: its key opens the order to whoever holds it.
                statusPageUrl="https://shop.example.com/orders/1001/authenticate?key=0a1b2c3d4e5f#s",
            ),
        ),
        record(
            "orders",
            order(
                1002,
                total="1500",
                currency="JPY",
                created=jpy_at,
                items=[item("SKU-2", "Mug", 1, "1500")],
            ),
        ),
        record(
            "orders",
            order(
                1003,
                total="12.345",
                currency="KWD",
                created=kwd_at,
                items=[item("SKU-3", "Pen", 1, "12.345")],
            ),
        ),
        record(
            "orders", order(1004, total="5.00", currency="USD", created=usd_at, items=[], test=True)
        ),
        state({"bookmarks": {"orders": {"updatedAt": usd_at}}}),
    ]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output

    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert set(events) == {
        "gid://shopify/Order/1001",
        "gid://shopify/Order/1002",
        "gid://shopify/Order/1003",
    }  # the test order is filtered
    usd = events["gid://shopify/Order/1001"]
    assert usd == {
        "id": "gid://shopify/Order/1001",
        "type": "order_created",
        "timestamp_ms": to_ms(usd_at),
        "oppref": "opp_1001",
        "source_url": "https://shop.example.com/orders/1001/authenticate",  # no query, fragment
        "action_source": "web",
        "user": {
            "emails_sha256": [sha("jane.doe@example.com")],
            "phone_numbers_sha256": [sha("16505551234")],
            "ip_address": "203.0.113.7",
        },
        "data": {
            "type": "contents",
            "amount": 5997,
            "currency": "USD",
            "contents": [{"id": "SKU-1", "name": "Tee", "quantity": 3, "amount": 1999}],
        },
    }
    assert "0a1b2c3d4e5f" not in json.dumps(sandbox.received_bodies())
    assert events["gid://shopify/Order/1002"]["source_url"] == (
        "https://shop.example.com/orders/1002/status"
    )
    assert events["gid://shopify/Order/1002"]["data"]["amount"] == 1500
    assert events["gid://shopify/Order/1002"]["timestamp_ms"] == to_ms(jpy_at)
    assert events["gid://shopify/Order/1003"]["data"]["amount"] == 12345
    assert events["gid://shopify/Order/1003"]["data"]["currency"] == "KWD"
    assert events["gid://shopify/Order/1003"]["timestamp_ms"] == to_ms(kwd_at)

    # STATE goes out once the events before it were accepted; the summary adds up.
    assert run.states == [{"bookmarks": {"orders": {"updatedAt": usd_at}}}]
    assert "received=4" in run.stderr
    assert "sent=3" in run.stderr
    assert "filtered=1" in run.stderr
    metrics = [
        json.loads(line.split("METRIC: ", 1)[1])
        for line in run.stderr.splitlines()
        if "METRIC: " in line and "capi_records" in line
    ]
    assert {(m["tags"]["outcome"], m["value"]) for m in metrics} == {("sent", 3), ("filtered", 1)}
    assert API_KEY not in run.output
    assert "jane.doe" not in run.output.lower()


def test_stale_and_broken_orders_are_rejected_while_the_rest_arrive(sandbox, config, tmp_path):
    fresh = iso_minutes_ago(10)
    lines = [
        schema("orders", ORDER_PROPERTIES, ["id"]),
        record("orders", order(2001, total="10.00", currency="USD", created=fresh, items=[])),
        record(
            "orders",
            order(
                2002, total="10.00", currency="USD", created=iso_minutes_ago(8 * 24 * 60), items=[]
            ),
        ),
        record("orders", order(2003, total="ten", currency="USD", created=fresh, items=[])),
        record("orders", order(2004, total="10.999", currency="USD", created=fresh, items=[])),
        record("orders", order(2005, total="10.00", currency="XYZ", created=fresh, items=[])),
        record(
            "orders", order(2006, total="10.00", currency="USD", created="last tuesday", items=[])
        ),
        record(
            "orders",
            {
                **order(2007, total="1", currency="USD", created=fresh, items=[]),
                "test": "not-a-boolean",
            },
        ),
        record("orders", order(2008, total="20.00", currency="EUR", created=fresh, items=[])),
    ]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "Traceback" not in run.output

    stored = sorted(e["id"] for e in sandbox.events(PIXEL_ID))
    assert stored == ["gid://shopify/Order/2001", "gid://shopify/Order/2008"]

    path = tmp_path / "dead" / "letters.jsonl"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines_out = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines_out[0]["type"] == "SCHEMA"
    dead = {m["record"]["id"]: m["dead_letter"] for m in lines_out if m["type"] == "RECORD"}
    assert dead["gid://shopify/Order/2002"]["stage"] == "window"
    assert "older than 7 days" in dead["gid://shopify/Order/2002"]["reason"]
    assert dead["gid://shopify/Order/2003"]["stage"] == "mapping"
    assert dead["gid://shopify/Order/2004"]["stage"] == "mapping"
    assert "USD" in dead["gid://shopify/Order/2004"]["reason"]
    assert dead["gid://shopify/Order/2005"]["stage"] == "mapping"
    assert "XYZ" in dead["gid://shopify/Order/2005"]["reason"]
    assert dead["gid://shopify/Order/2006"]["stage"] == "mapping"
    assert dead["gid://shopify/Order/2007"]["stage"] == "schema"
    assert dead["gid://shopify/Order/2007"]["key"] == {"id": "gid://shopify/Order/2007"}
    assert "received=8" in run.stderr
    assert "sent=2" in run.stderr
    assert "rejected=6" in run.stderr


def test_an_item_with_an_empty_title_or_sku_does_not_cost_the_order(sandbox, config, tmp_path):
    """Every field of a content item is optional on the official page: a line item whose
    title is "" (a custom item) or whose SKU is blank is sent without it, the order with it."""
    lines = [
        schema("orders", ORDER_PROPERTIES, ["id"]),
        record(
            "orders",
            order(
                3001,
                total="25.00",
                currency="USD",
                created=iso_minutes_ago(5),
                items=[item("SKU-1", "", 1, "20.00"), item("  ", "Gift wrap", 1, "5.00")],
            ),
        ),
    ]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    [event] = sandbox.events(PIXEL_ID)
    assert event["data"]["contents"] == [
        {"id": "SKU-1", "quantity": 1, "amount": 2000},
        {"name": "Gift wrap", "quantity": 1, "amount": 500},
    ]
    assert "sent=1" in run.stderr
    assert "rejected=0" in run.stderr


def test_dry_run_validates_and_stores_nothing(sandbox, config, tmp_path):
    config["dry_run"] = True
    lines = [
        schema("orders", ORDER_PROPERTIES, ["id"]),
        record(
            "orders",
            order(3001, total="10.00", currency="USD", created=iso_minutes_ago(5), items=[]),
        ),
        state({"bookmarks": {"orders": {"updatedAt": "2026-12-02T00:00:00Z"}}}),
    ]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert sandbox.events(PIXEL_ID) == []
    assert sandbox.stats()["validate_only_requests"] == 1
    assert "validated=1" in run.stderr
    # No bookmark past the previewed order: the real run after it (Meltano keeps STATE) sends it.
    assert run.states == []
    assert "Dry run: no STATE was written (1 records of streams in dry_run)" in run.stderr


def test_a_stream_in_dry_run_holds_back_the_state_that_would_pass_its_records(
    sandbox, config, tmp_path
):
    # STATE is one bookmark for every stream: the one after the previewed order is not written.
    config["streams"] = {"orders": SHOPIFY_STREAM, "preview": {**SHOPIFY_STREAM, "dry_run": True}}
    at = iso_minutes_ago(5)
    lines = [
        schema("orders", ORDER_PROPERTIES, ["id"]),
        schema("preview", ORDER_PROPERTIES, ["id"]),
        record("orders", order(3101, total="1.00", currency="USD", created=at, items=[])),
        state({"bookmarks": {"orders": 1}}),
        record("preview", order(3102, total="1.00", currency="USD", created=at, items=[])),
        state({"bookmarks": {"orders": 1, "preview": 1}}),
    ]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["gid://shopify/Order/3101"]
    assert run.states == []
    assert "Dry run: no STATE was written (1 records of streams in dry_run)" in run.stderr


def test_a_global_dry_run_every_stream_overrides_is_a_real_run_with_its_state(
    sandbox, config, tmp_path
):
    """dry_run: true with each entry's dry_run: false sends for real: its STATE goes out (it
    was held back for good, so an incremental sync sent everything again at every run)."""
    config["dry_run"] = True
    config["streams"] = {"orders": {**SHOPIFY_STREAM, "dry_run": False}}
    at = iso_minutes_ago(5)
    lines = [
        schema("orders", ORDER_PROPERTIES, ["id"]),
        record("orders", order(3201, total="1.00", currency="USD", created=at, items=[])),
        state({"bookmarks": {"orders": 1}}),
    ]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["gid://shopify/Order/3201"]
    assert run.states == [{"bookmarks": {"orders": 1}}]
    assert "Dry run" not in run.stderr
    # Said at start-up: a dry run asked for (the workflow's dispatch) sends this stream for real.
    assert (
        "dry_run is true, but streams.orders sets dry_run: false: its events are sent for real."
    ) in run.stderr


def test_a_filter_that_drops_every_record_is_said_at_the_end(sandbox, config, tmp_path):
    at = iso_minutes_ago(5)
    tests = [
        order(n, total="1.00", currency="USD", created=at, items=[], test=True) for n in (1, 2)
    ]
    lines = [schema("orders", ORDER_PROPERTIES, ["id"]), *(record("orders", o) for o in tests)]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "streams.orders: all 2 of its records were filtered out (by its `filter`" in run.stderr
    live = order(3, total="1.00", currency="USD", created=at, items=[])
    run = run_target(config, [*lines, record("orders", live)], tmp_path)
    assert run.returncode == 0, run.output
    assert "were filtered out" not in run.stderr  # one got through: the filter works


@pytest.mark.parametrize("workers", [0, 2])
def test_a_mapped_path_that_never_read_a_value_is_named_at_the_end(
    workers, sandbox, config, tmp_path
):
    """`shopmoney` for `shopMoney`: every order went out without its amount, valid and sent,
    and nothing said so. Worker processes or not (the events are JSON then), it is named; a
    line item's amount is not the order's (with workers, it hid the missing total)."""
    config["worker_processes"] = workers
    stream = {**SHOPIFY_STREAM, "fields": dict(SHOPIFY_STREAM["fields"])}
    stream["fields"]["amount"] = "totalPriceSet.shopmoney.amount"
    config["streams"] = {"orders": stream}
    at = iso_minutes_ago(5)
    items = [item("SKU-1", "Tee", 1, "9.99")]
    orders = [order(n, total="9.99", currency="USD", created=at, items=items) for n in (1, 2)]
    lines = [schema("orders", ORDER_PROPERTIES, ["id"]), *(record("orders", o) for o in orders)]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [e["data"].get("amount") for e in sandbox.events(PIXEL_ID)] == [None, None]
    assert (
        "streams.orders.fields.amount ('totalPriceSet.shopmoney.amount') gave no value in any "
        "of the 2 events of the stream"
    ) in run.stderr
    sandbox.reset()
    config["streams"] = {"orders": SHOPIFY_STREAM}  # the right path: nothing to say
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [e["data"]["amount"] for e in sandbox.events(PIXEL_ID)] == [999, 999]
    assert "gave no value" not in run.stderr


def test_a_dry_run_that_filters_or_rejects_every_record_writes_no_state_either(
    sandbox, config, tmp_path
):
    # Trying out a mapping: after fixing it, the real run must read these records again.
    config["dry_run"] = True
    at = iso_minutes_ago(5)
    lines = [
        schema("orders", ORDER_PROPERTIES, ["id"]),
        record(
            "orders", order(3201, total="1.00", currency="USD", created=at, items=[], test=True)
        ),
        record("orders", order(3202, total="ten", currency="USD", created=at, items=[])),
        state({"bookmarks": {"orders": 2}}),
    ]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "filtered=1" in run.stderr
    assert "rejected=1" in run.stderr
    assert run.states == []


def test_an_event_only_validated_makes_no_event_sent_for_real_a_duplicate(
    sandbox, config, tmp_path
):
    # One order in a stream in dry run and the same order in a stream sent for real: the one
    # validated was not sent, so the other is no duplicate of it.
    config["streams"] = {"preview": {**SHOPIFY_STREAM, "dry_run": True}, "orders": SHOPIFY_STREAM}
    same = order(3301, total="1.00", currency="USD", created=iso_minutes_ago(5), items=[])
    lines = [
        schema("preview", ORDER_PROPERTIES, ["id"]),
        schema("orders", ORDER_PROPERTIES, ["id"]),
        record("preview", same),
        record("orders", same),
        record("orders", same),
    ]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["gid://shopify/Order/3301"]
    assert "received=3 sent=1 validated=1 duplicate=1" in run.stderr


def test_only_what_the_mapping_reads_is_validated(sandbox, config, tmp_path):
    # `note` breaks its schema but is never read: the event is exact without it, so it is sent.
    # `currencyCode` is read: a number there is a schema rejection, as before.
    properties = {**ORDER_PROPERTIES, "note": {"type": ["null", "string"]}}
    fresh = iso_minutes_ago(5)
    lines = [
        schema("orders", properties, ["id"]),
        record(
            "orders",
            order(4001, total="10.00", currency="USD", created=fresh, items=[], note=123),
        ),
        record("orders", order(4002, total="10.00", currency=5, created=fresh, items=[])),
    ]
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["gid://shopify/Order/4001"]
    dead = [
        json.loads(line) for line in (tmp_path / "dead" / "letters.jsonl").read_text().splitlines()
    ]
    rejected = [m for m in dead if m["type"] == "RECORD"]
    assert [m["record"]["id"] for m in rejected] == ["gid://shopify/Order/4002"]
    assert rejected[0]["dead_letter"]["stage"] == "schema"
    assert "currencyCode" in rejected[0]["dead_letter"]["reason"]
