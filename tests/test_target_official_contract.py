"""The real CLI into the sandbox, checked against OpenAI's official page as written out here:
the user object of each official version, the documented normalisation examples, custom event
names, app events, integration_source on every request, and error bodies that name bad events.

Expected events are written from the page's rules by hand, never computed by the target's code.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
from conftest import API_KEY, DAY_MS, PIXEL_ID
from support import iso_minutes_ago, record, run_target, schema, target_config

from target_openai_capi.sandbox import Sandbox, start_sandbox


def h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config(sandbox: Sandbox, tmp_path: Any, streams: dict[str, Any], **extra: Any) -> dict:
    return target_config(sandbox.url, tmp_path, streams, **extra)


def dead_letters(tmp_path: Any) -> dict[str, dict[str, Any]]:
    """The dead-letter file's rejections by the rejected record's id."""
    path = tmp_path / "dead.jsonl"
    if not path.exists():
        return {}
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return {line["record"]["id"]: line["dead_letter"] for line in lines if line["type"] == "RECORD"}


ADDRESS = {
    "firstName": "Mary Jane",
    "lastName": "O'Connor",
    "city": " San Francisco ",
    "provinceCode": "CA",
    "zip": "94107",
    "countryCodeV2": "US",
    "phone": None,
}


def order(number: int, phone: str, at: str) -> dict[str, Any]:
    """A tap-shopify 3.x order with a billing address, two emails and a phone."""
    return {
        "id": f"gid://shopify/Order/{number}",
        "createdAt": at,
        "test": False,
        "email": " Mary.Jane@Example.COM ",
        "phone": phone,
        "clientIp": "203.0.113.1",
        "currencyCode": "USD",
        "statusPageUrl": f"https://shop.example.com/orders/{number}/authenticate",
        "totalPriceSet": {"shopMoney": {"amount": "25.99", "currencyCode": "USD"}},
        "billingAddress": ADDRESS,
        "customer": {"id": "gid://shopify/Customer/7", "email": "mj@work.example"},
        "lineItems": [
            {
                "sku": "TEE-M",
                "title": "Tee",
                "quantity": 1,
                "originalUnitPriceSet": {"shopMoney": {"amount": "25.99"}},
            }
        ],
    }


OBJECT = {"type": ["object", "null"]}
SHOPIFY_SCHEMA = {
    "id": {"type": "string"},
    "createdAt": {"type": "string", "format": "date-time"},
    "email": {"type": ["string", "null"]},
    "phone": {"type": ["string", "null"]},
    "billingAddress": OBJECT,
    "customer": OBJECT,
    "lineItems": {"type": "array"},
}
# Phones in national, "+" and "00" forms (the official examples are the last two).
PHONES = {5001: "(415) 555-2671", 5002: "+1 (415) 555-2671", 5003: "001 415 555 2671"}
ORDERS_STREAM = {
    "preset": "tap-shopify/orders",
    "fields": {"email": "[email, customer.email]"},  # two emails
}


def shopify_lines() -> tuple[list[str], dict[int, str]]:
    at = {n: iso_minutes_ago(10 + n % 10) for n in PHONES}
    lines = [schema("orders", SHOPIFY_SCHEMA, ["id"])]
    lines += [record("orders", order(n, phone, at[n])) for n, phone in PHONES.items()]
    return lines, at


def test_a_shopify_order_arrives_in_the_current_official_shape(sandbox, tmp_path):
    lines, _ = shopify_lines()
    run = run_target(
        config(sandbox, tmp_path, {"orders": ORDERS_STREAM}, default_phone_region="US"),
        lines,
        tmp_path,
    )
    assert run.returncode == 0, run.output
    events = sandbox.events(PIXEL_ID)
    assert len(events) == 3
    for event in events:
        assert event["user"] == {
            "emails_sha256": [h("mary.jane@example.com"), h("mj@work.example")],
            "phone_numbers_sha256": [h("14155552671")],
            "external_ids_sha256": [h("gid://shopify/Customer/7")],
            "first_names_sha256": [h("maryjane")],
            "last_names_sha256": [h("oconnor")],
            "cities": ["San Francisco"],
            "regions": ["CA"],
            "postal_codes": ["94107"],
            "countries": ["US"],
            "ip_address": "203.0.113.1",
        }
    stats = sandbox.stats()
    assert stats["integration_sources"] == {"target-openai-capi": stats["requests"]}
    assert "Mary" not in run.output
    assert "mary.jane" not in run.output.lower()


def test_the_singular_option_gives_the_earlier_official_shape(sandbox, tmp_path):
    lines, _ = shopify_lines()
    streams = {"orders": ORDERS_STREAM}
    run = run_target(
        config(sandbox, tmp_path, streams, user_field_style="singular"), lines, tmp_path
    )
    assert run.returncode == 0, run.output
    for event in sandbox.events(PIXEL_ID):
        assert event["user"] == {
            "email_sha256": h("mary.jane@example.com"),
            "external_id_sha256": h("gid://shopify/Customer/7"),
            "city": "San Francisco",
            "zip_code": "94107",
            "country": "US",
            "ip_address": "203.0.113.1",
        }
    for name in ("phone", "first_name", "last_name", "state"):
        assert f"streams.orders.fields.{name} is not sent: the singular user_field_style" in (
            run.stderr
        )


def test_custom_names_app_events_contents_and_custom_data(sandbox, tmp_path):
    at = iso_minutes_ago(5)
    streams = {
        "tracks": {
            "event_type_from": "event",
            "fields": {
                "id": "id",
                "timestamp": "at",
                "source_url": "url",
                "action_source": "'web'",
                "custom_data": "props",
                "contents": "items",
            },
        },
        "installs": {"event_type": "app_installed", "fields": {"id": "id", "timestamp": "at"}},
        "web_installs": {  # (read from each record: a fixed 'web' is refused at start-up)
            "event_type": "app_opened",
            "fields": {"id": "id", "timestamp": "at", "action_source": "source"},
        },
    }
    url = "https://shop.example.com/p"
    tracks = [
        {"id": "t1", "event": "Demo Booked", "props": {"seats": 3, "tier": "pro"}},
        {"id": "t2", "event": "QuizDone", "props": None},
        {
            "id": "t3",
            "event": "Order Created!",
            "items": [
                {
                    "id": "sku",
                    "group_id": "prod",
                    "quantity": 0,
                    "variant_dict": {"size": "M", "gift_wrap": True, "engraved": False},
                }
            ],
        },
        {"id": "t4", "event": "!!!"},
        {"id": "t5", "event": "custom"},
        {"id": "t6", "event": "Demo Booked", "props": {"amount": 5}},
    ]
    lines = [schema("tracks", {"id": {"type": "string"}}, ["id"])]
    lines += [record("tracks", {**t, "at": at, "url": url}) for t in tracks]
    lines += [schema("installs", {"id": {"type": "string"}}, ["id"])]
    lines += [record("installs", {"id": "i1", "at": at})]
    lines += [schema("web_installs", {"id": {"type": "string"}}, ["id"])]
    lines += [record("web_installs", {"id": "w1", "at": at, "source": "web"})]
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert set(events) == {"t1", "t2", "t3", "i1"}
    assert events["t1"]["type"] == "custom"
    assert events["t1"]["custom_event_name"] == "demo_booked"
    assert events["t1"]["data"] == {"type": "custom", "seats": 3, "tier": "pro"}
    assert events["t2"]["custom_event_name"] == "quizdone"  # within the rule: lowercased
    assert events["t3"]["type"] == "order_created"  # made valid, it is a standard name
    assert "custom_event_name" not in events["t3"]
    assert events["t3"]["data"] == {
        "type": "contents",
        "contents": [
            {
                "id": "sku",
                "group_id": "prod",
                "quantity": 0,
                # (a yes/no option as text: a boolean rejected the whole order)
                "variant_dict": {"size": "M", "gift_wrap": "true", "engraved": "false"},
            }
        ],
    }
    assert events["i1"]["action_source"] == "mobile_app"
    rejected = dead_letters(tmp_path)
    assert rejected["t4"]["stage"] == "mapping"
    assert "custom event name has no letter or digit of ASCII" in rejected["t4"]["reason"]
    assert "the type 'custom' is no name: the API refuses it" in rejected["t5"]["reason"]
    assert "custom_data.amount is one of data's own fields" in rejected["t6"]["reason"]
    assert rejected["w1"]["stage"] == "validation"
    assert "action_source: must be 'mobile_app', got 'web'" in rejected["w1"]["reason"]
    # Mapped to 'web' for every record, each would be rejected: a config error instead.
    streams["web_installs"]["fields"]["action_source"] = "'web'"
    again = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert again.returncode == 1
    assert (
        "streams.web_installs.fields.action_source: 'web' is no source of app_opened events"
        in again.stderr
    )
    assert len(sandbox.events(PIXEL_ID)) == 4  # (the first run's, nothing more)


def test_a_field_the_event_types_data_has_no_place_for_is_named_at_start_up(sandbox, tmp_path):
    """A lead's data (customer_action) has no contents, plan_id or custom_data: said once at
    start-up, why, not at the end as a path that 'gave no value' (it gave one)."""
    at = iso_minutes_ago(5)
    fields = {
        "id": "id",
        "timestamp": "at",
        "action_source": "'offline'",
        "contents": "items[].{id: sku}",
        "plan_id": "plan",
        "custom_data": "props",
    }
    streams = {
        "leads": {"event_type": "lead_created", "fields": fields},
        "trials": {"event_type": "trial_started", "fields": fields},
    }
    row = {"id": "1", "at": at, "items": [{"sku": "a"}], "plan": "pro", "props": {"k": "v"}}
    lines = [schema("leads", {"id": {"type": "string"}}, ["id"]), record("leads", row)]
    lines += [schema("trials", {"id": {"type": "string"}}, ["id"]), record("trials", row)]
    run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    events = {e["type"]: e for e in sandbox.events(PIXEL_ID)}
    assert events["lead_created"]["data"] == {"type": "customer_action"}
    assert events["trial_started"]["data"] == {
        "type": "plan_enrollment",
        "contents": [{"id": "a"}],
        "plan_id": "pro",
    }
    said = [line.split("| ")[-1] for line in run.stderr.splitlines() if "is not sent:" in line]
    assert said == [
        "streams.leads.fields.contents is not sent: lead_created events carry data of type "
        "customer_action, which has no contents (only data of type contents, plan_enrollment "
        "or custom has it).",
        "streams.leads.fields.plan_id is not sent: lead_created events carry data of type "
        "customer_action, which has no plan_id (only subscription_created, trial_started and "
        "custom events have one).",
        "streams.leads.fields.custom_data is not sent: lead_created events carry data of type "
        "customer_action, which has no custom_data (only custom events have it).",
        "streams.trials.fields.custom_data is not sent: trial_started events carry data of type "
        "plan_enrollment, which has no custom_data (only custom events have it).",
    ]
    assert "gave no value" not in run.stderr


def test_integration_source_is_a_setting_checked_at_start_up(sandbox, tmp_path):
    lines, _ = shopify_lines()
    streams = {"orders": ORDERS_STREAM}
    run = run_target(
        config(sandbox, tmp_path, streams, integration_source="Acme.Agency"), lines, tmp_path
    )
    assert run.returncode == 0, run.output
    stats = sandbox.stats()
    assert stats["integration_sources"] == {"acme.agency": stats["requests"]}  # API lowercases

    sandbox.reset()
    bad = run_target(
        config(sandbox, tmp_path, streams, integration_source="-bad source"), lines, tmp_path
    )
    assert bad.returncode != 0
    assert "integration_source must be 1-64 ASCII letters" in bad.output
    assert "Traceback" not in bad.output
    assert sandbox.stats()["requests"] == 0

    # None sent for null, nor for an empty text: Meltano passes its default for a null.
    for nothing in (None, "", "  "):
        sandbox.reset()
        run = run_target(
            config(sandbox, tmp_path, streams, integration_source=nothing), lines, tmp_path
        )
        assert run.returncode == 0, run.output
        stats = sandbox.stats()
        assert stats["integration_sources"] == {"(none)": stats["requests"]}


def _stale_here(name_params: bool) -> Sandbox:
    """A sandbox whose clock is 7 days less an hour ahead: an event two hours old passes the
    target's own window check and is refused by the API, as a stale event at the edge is."""
    skew = 7 * DAY_MS - 3600 * 1000
    return start_sandbox(
        api_keys={API_KEY},
        pixel_ids={PIXEL_ID},
        now_ms=lambda: int(time.time() * 1000) + skew,
        name_params=name_params,
    )


@pytest.mark.parametrize("name_params", [True, False], ids=["named", "unnamed"])
def test_one_bad_event_in_1000_through_the_cli(tmp_path, name_params):
    streams = {"conversions": {"event_type": "lead_created", "fields": {"timestamp": "at"}}}
    fresh, old = iso_minutes_ago(1), iso_minutes_ago(120)
    lines = [schema("conversions", {"id": {"type": "string"}}, ["id"])]
    lines += [
        record("conversions", {"id": f"c{n}", "at": old if n == 617 else fresh})
        for n in range(1000)
    ]
    with _stale_here(name_params) as sandbox:
        run = run_target(config(sandbox, tmp_path, streams), lines, tmp_path)
        assert run.returncode == 0, run.output
        stored = {e["id"] for e in sandbox.events(PIXEL_ID)}
        requests = sandbox.stats()["requests"]
    assert len(stored) == 999
    assert "c617" not in stored
    [(record_id, rejected)] = dead_letters(tmp_path).items()
    assert record_id == "c617"
    assert rejected["event_id"] == "c617"
    assert rejected["stage"] == "api"
    assert "timestamp_ms: older than 7 days" in rejected["reason"]
    # The position is the request's (a part of the batch, or the event alone), not the
    # record's: the reason leaves it out; the server's message is kept as it was written.
    assert "events[" not in rejected["reason"]
    assert rejected["server_message"].startswith("events[")
    if name_params:
        assert requests == 2
    else:
        assert 2 < requests <= 21
