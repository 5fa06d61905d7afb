"""Presets: the real CLI on records shaped by each source's published schema, into the sandbox.

Schemas are faithful subsets of the published ones: singer-io/tap-shopify 3.x
(`tap_shopify/schemas/orders.json`, money amounts are JSON numbers, `lineItems` a list),
Shopify's GraphQL AbandonedCheckout object, singer-io/tap-stripe `subscriptions.json`
(date-times, `plan`, `items` as ids) and Stripe's API Subscription object (epoch seconds,
`items.data[].price`), the Segment / RudderStack warehouse layouts (`context_*` columns) and
the GA4 BigQuery export (`event_params` key/value list, microsecond timestamps).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from typing import Any

import pytest
from conftest import API_KEY, PIXEL_ID
from support import iso_minutes_ago, record, run_target, schema

from target_openai_capi.presets import PRESETS

STR = {"type": ["null", "string"]}
NUM = {"type": ["null", "number"]}
INT = {"type": ["null", "integer"]}
BOOL = {"type": ["null", "boolean"]}
DATETIME = {"type": ["null", "string"], "format": "date-time"}


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": ["null", "object"], "properties": properties}


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": ["null", "array"], "items": items}


MONEY_BAG = obj(shopMoney=obj(amount=NUM, currencyCode=STR), presentmentMoney=obj(amount=NUM))
ADDRESS = obj(
    firstName=STR,
    lastName=STR,
    city=STR,
    provinceCode=STR,
    zip=STR,
    countryCodeV2=STR,
    phone=STR,
)
ATTRIBUTES = array(obj(key=STR, value=STR))
VISIT = obj(landingPage=STR, referrerUrl=STR, source=STR)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def to_ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def config_for(sandbox, tmp_path, streams: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "pixel_id": PIXEL_ID,
        "api_key": API_KEY,
        "api_url": sandbox.url,
        "dead_letter_path": str(tmp_path / "dead.jsonl"),
        "streams": streams,
        **extra,
    }


def stored(sandbox) -> dict[str, dict[str, Any]]:
    return {event["id"]: event for event in sandbox.events(PIXEL_ID)}


# --- tap-shopify 3.x orders -----------------------------------------------------------------

SHOPIFY_ORDER_PROPERTIES = {
    "id": {"type": "string"},
    "createdAt": DATETIME,
    "updatedAt": DATETIME,
    "test": BOOL,
    "email": STR,
    "phone": STR,
    "clientIp": STR,
    "currencyCode": STR,
    "sourceName": STR,
    "statusPageUrl": STR,
    "totalPriceSet": MONEY_BAG,
    "billingAddress": ADDRESS,
    "shippingAddress": ADDRESS,
    "customer": obj(id=STR, email=STR, firstName=STR, lastName=STR),
    "lineItems": array(
        obj(
            id=STR,
            sku=STR,
            title=STR,
            name=STR,
            quantity=INT,
            product=obj(id=STR),
            discountedUnitPriceSet=MONEY_BAG,
            originalTotalSet=MONEY_BAG,
            customAttributes=ATTRIBUTES,
        )
    ),
    # Order fields of the Admin API that the published 3.x schema does not select; a tap that
    # selects them (or a warehouse copy that has them) feeds the preset's oppref.
    "customAttributes": ATTRIBUTES,
    "customerJourneySummary": obj(lastVisit=VISIT, firstVisit=VISIT),
}


def shopify_money(amount: float | int, currency: str) -> dict[str, Any]:
    return {"shopMoney": {"amount": amount, "currencyCode": currency}}


def shopify_line(n: int, sku: str | None, title: str, qty: int, unit: float | int, cur: str):
    return {
        "id": f"gid://shopify/LineItem/{n}",
        "sku": sku,
        "title": title,
        "name": title,
        "quantity": qty,
        "product": {"id": f"gid://shopify/Product/{n + 100}"},
        "discountedUnitPriceSet": shopify_money(unit, cur),
        "originalTotalSet": shopify_money(unit, cur),
        "customAttributes": [],
    }


def shopify_order(n: int, created: str, currency: str, total: float | int, **extra: Any):
    order = {
        "id": f"gid://shopify/Order/{n}",
        "createdAt": created,
        "updatedAt": created,
        "test": False,
        "email": None,
        "phone": None,
        "clientIp": None,
        "currencyCode": currency,
        "sourceName": "web",
        "statusPageUrl": f"https://shop.example.com/12345/orders/{n}abc/authenticate",
        "totalPriceSet": shopify_money(total, currency),
        "billingAddress": None,
        "shippingAddress": None,
        "customer": None,
        "lineItems": [],
        "customAttributes": [],
        "customerJourneySummary": None,
    }
    order.update(extra)
    return order


def test_shopify_orders_preset(sandbox, tmp_path):
    usd_at = iso_minutes_ago(25, "-07:00")
    eur_at = iso_minutes_ago(40, "+02:00")
    jpy_at = iso_minutes_ago(55, "+09:00")
    orders = [
        shopify_order(
            5001,
            usd_at,
            "USD",
            59.98,
            email="  Ana.Silva@Example.COM ",
            phone="+1 415-555-0100",
            clientIp="203.0.113.9",
            billingAddress={
                "firstName": "Ana",
                "lastName": "Silva",
                "city": "San  Francisco",
                "provinceCode": "CA",
                "zip": "94103",
                "countryCodeV2": "US",
                "phone": None,
            },
            customer={"id": "gid://shopify/Customer/77", "email": "ana.silva@example.com"},
            lineItems=[
                shopify_line(1, "TEE-BLK-M", "Black tee", 2, 19.99, "USD"),
                shopify_line(2, None, "Gift wrap", 1, 20, "USD"),
            ],
            customerJourneySummary={
                "lastVisit": {
                    "landingPage": "/products/tee?utm_source=chatgpt&oppref=opp_last_5001"
                },
                "firstVisit": {"landingPage": "/?oppref=opp_first_5001"},
            },
        ),
        shopify_order(
            5002,
            eur_at,
            "EUR",
            42.5,
            customer={"id": "gid://shopify/Customer/78", "email": "Lea@Example.fr"},
            customAttributes=[
                {"key": "gift_note", "value": "no"},
                {"key": "oppref", "value": "opp_attr_5002"},
            ],
            lineItems=[shopify_line(3, "MUG-01", "Mug", 1, 42.5, "EUR")],
        ),
        shopify_order(
            5003,
            jpy_at,
            "JPY",
            3300,
            sourceName="pos",
            lineItems=[shopify_line(4, "SOCKS", "Socks", 3, 1100, "JPY")],
        ),
        shopify_order(5004, usd_at, "USD", 1, test=True),
    ]
    lines = [schema("orders", SHOPIFY_ORDER_PROPERTIES, ["id"])]
    lines += [record("orders", order) for order in orders]
    config = config_for(sandbox, tmp_path, {"orders": {"preset": "tap-shopify/orders"}})
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output

    assert stored(sandbox) == {
        "gid://shopify/Order/5001": {
            "id": "gid://shopify/Order/5001",
            "type": "order_created",
            "timestamp_ms": to_ms(usd_at),
            "oppref": "opp_last_5001",
            "source_url": "https://shop.example.com/12345/orders/5001abc/authenticate",
            "action_source": "web",
            "user": {
                "emails_sha256": [sha("ana.silva@example.com")],
                "phone_numbers_sha256": [sha("14155550100")],
                "external_ids_sha256": [sha("gid://shopify/Customer/77")],
                "first_names_sha256": [sha("ana")],
                "last_names_sha256": [sha("silva")],
                "cities": ["San  Francisco"],  # raw, trimmed: the API lowercases it
                "regions": ["CA"],
                "postal_codes": ["94103"],
                "countries": ["US"],
                "ip_address": "203.0.113.9",
            },
            "data": {
                "type": "contents",
                "amount": 5998,
                "currency": "USD",
                "contents": [
                    {"id": "TEE-BLK-M", "name": "Black tee", "quantity": 2, "amount": 1999},
                    {
                        "id": "gid://shopify/Product/102",
                        "name": "Gift wrap",
                        "quantity": 1,
                        "amount": 2000,
                    },
                ],
            },
        },
        "gid://shopify/Order/5002": {
            "id": "gid://shopify/Order/5002",
            "type": "order_created",
            "timestamp_ms": to_ms(eur_at),
            "oppref": "opp_attr_5002",
            "source_url": "https://shop.example.com/12345/orders/5002abc/authenticate",
            "action_source": "web",
            "user": {
                "emails_sha256": [sha("lea@example.fr")],
                "external_ids_sha256": [sha("gid://shopify/Customer/78")],
            },
            "data": {
                "type": "contents",
                "amount": 4250,
                "currency": "EUR",
                "contents": [{"id": "MUG-01", "name": "Mug", "quantity": 1, "amount": 4250}],
            },
        },
        "gid://shopify/Order/5003": {
            "id": "gid://shopify/Order/5003",
            "type": "order_created",
            "timestamp_ms": to_ms(jpy_at),
            "source_url": "https://shop.example.com/12345/orders/5003abc/authenticate",
            "action_source": "physical_store",
            "data": {
                "type": "contents",
                "amount": 3300,
                "currency": "JPY",
                "contents": [{"id": "SOCKS", "name": "Socks", "quantity": 3, "amount": 1100}],
            },
        },
    }  # 5004 is a test order: filtered
    assert "filtered=1" in run.stderr
    assert "ana.silva" not in run.output.lower()


# --- tap-shopify 3.x abandoned checkouts --------------------------------------------------------

ABANDONED_CHECKOUT_PROPERTIES = {
    "id": {"type": "string"},
    "name": STR,
    "abandonedCheckoutUrl": STR,
    "createdAt": DATETIME,
    "updatedAt": DATETIME,
    "completedAt": DATETIME,
    "customAttributes": ATTRIBUTES,
    "customer": obj(id=STR, email=STR, phone=STR, firstName=STR, lastName=STR),
    "billingAddress": ADDRESS,
    "shippingAddress": ADDRESS,
    "totalPriceSet": MONEY_BAG,
    "subtotalPriceSet": MONEY_BAG,
    "lineItems": array(
        obj(
            id=STR,
            sku=STR,
            title=STR,
            quantity=INT,
            variant=obj(id=STR),
            originalUnitPriceSet=MONEY_BAG,
            discountedUnitPriceSet=MONEY_BAG,
        )
    ),
}


def test_shopify_abandoned_checkouts_preset(sandbox, tmp_path):
    at = iso_minutes_ago(90, "+01:00")
    checkout = {
        "id": "gid://shopify/AbandonedCheckout/9001",
        "name": "#9001",
        "abandonedCheckoutUrl": "https://shop.example.com/12345/checkouts/ac/tok/recover?key=s3cr3t",
        "createdAt": at,
        "updatedAt": at,
        "completedAt": None,
        "customAttributes": [{"key": "oppref", "value": "opp_cart_9001"}],
        "customer": {
            "id": "gid://shopify/Customer/90",
            "email": "Sam@Example.co.uk",
            "phone": "+44 20 7946 0018",
            "firstName": "Sam",
            "lastName": "Jones",
        },
        "billingAddress": None,
        "shippingAddress": {"city": "London", "zip": "SW1A 1AA", "countryCodeV2": "GB"},
        "totalPriceSet": shopify_money(35.0, "GBP"),
        "subtotalPriceSet": shopify_money(30.0, "GBP"),
        "lineItems": [
            {
                "id": "gid://shopify/AbandonedCheckoutLineItem/1",
                "sku": None,
                "title": "Candle",
                "quantity": 2,
                "variant": {"id": "gid://shopify/ProductVariant/55"},
                "originalUnitPriceSet": shopify_money(15, "GBP"),
                "discountedUnitPriceSet": None,
            }
        ],
    }
    lines = [
        schema("abandoned_checkouts", ABANDONED_CHECKOUT_PROPERTIES, ["id"]),
        record("abandoned_checkouts", checkout),
    ]
    streams = {"abandoned_checkouts": {"preset": "tap-shopify/abandoned_checkouts"}}
    run = run_target(config_for(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert list(stored(sandbox).values()) == [
        {
            "id": "gid://shopify/AbandonedCheckout/9001",
            "type": "checkout_started",
            "timestamp_ms": to_ms(at),
            "oppref": "opp_cart_9001",
            "user": {
                "emails_sha256": [sha("sam@example.co.uk")],
                "phone_numbers_sha256": [sha("442079460018")],
                "external_ids_sha256": [sha("gid://shopify/Customer/90")],
                "first_names_sha256": [sha("sam")],
                "last_names_sha256": [sha("jones")],
                "cities": ["London"],
                "postal_codes": ["SW1A 1AA"],
                "countries": ["GB"],
            },
            "data": {
                "type": "contents",
                "amount": 3500,
                "currency": "GBP",
                "contents": [
                    {
                        "id": "gid://shopify/ProductVariant/55",
                        "name": "Candle",
                        "quantity": 2,
                        "amount": 1500,
                    }
                ],
            },
        }
    ]
    assert "s3cr3t" not in str(sandbox.events(PIXEL_ID))  # the recovery link never leaves


# --- tap-stripe subscriptions -------------------------------------------------------------------

STRIPE_SINGER_IO_PROPERTIES = {
    "id": STR,
    "object": STR,
    "status": STR,
    "livemode": BOOL,
    "created": DATETIME,
    "start_date": DATETIME,
    "trial_start": DATETIME,
    "trial_end": DATETIME,
    "customer": STR,
    "quantity": INT,
    "items": array(STR),
    "metadata": {"type": ["null", "object"], "properties": {}},
    "plan": obj(id=STR, amount=INT, currency=STR, interval=STR, nickname=STR, product=STR),
}

STRIPE_API_PROPERTIES = {
    "id": STR,
    "object": STR,
    "status": STR,
    "livemode": BOOL,
    "created": INT,
    "start_date": INT,
    "trial_start": INT,
    "trial_end": INT,
    "customer": STR,
    "metadata": {"type": ["null", "object"], "properties": {}},
    "items": obj(
        object=STR,
        data=array(
            obj(
                id=STR,
                quantity=INT,
                price=obj(id=STR, unit_amount=INT, currency=STR, nickname=STR),
            )
        ),
    ),
}


def stripe_sub(sub_id: str, status: str, **extra: Any) -> dict[str, Any]:
    sub = {
        "id": sub_id,
        "object": "subscription",
        "status": status,
        "livemode": True,
        "customer": "cus_Q1w2e3",
        "metadata": {},
    }
    sub.update(extra)
    return sub


def test_stripe_subscriptions_preset_on_both_published_shapes(sandbox, tmp_path):
    plan = {
        "id": "price_pro_monthly",
        "amount": 2900,
        "currency": "usd",
        "interval": "month",
        "nickname": "Pro",
        "product": "prod_1",
    }
    trial_at = iso_minutes_ago(120)
    converted_at = iso_minutes_ago(10)
    paid_at = iso_minutes_ago(30, "+05:30")
    singer_io = [
        stripe_sub(
            "sub_trial",
            "trialing",
            created=trial_at,
            start_date=trial_at,
            trial_start=trial_at,
            trial_end=iso_minutes_ago(-14 * 24 * 60),
            quantity=1,
            items=["si_1"],
            metadata={"oppref": "opp_stripe_1"},
            plan=plan,
        ),
        # A trial that converted ten minutes ago: the subscription starts at the trial's end.
        stripe_sub(
            "sub_converted",
            "active",
            created=iso_minutes_ago(3 * 24 * 60),
            start_date=iso_minutes_ago(3 * 24 * 60),
            trial_start=iso_minutes_ago(3 * 24 * 60),
            trial_end=converted_at,
            quantity=1,
            items=["si_2"],
            plan=plan,
        ),
        stripe_sub("sub_paid", "active", created=paid_at, start_date=paid_at, plan=plan),
        stripe_sub("sub_gone", "canceled", created=paid_at, plan=plan),
        stripe_sub("sub_testmode", "active", livemode=False, created=paid_at, plan=plan),
    ]
    api_created = int(time.time()) - 600
    api_shaped = stripe_sub(
        "sub_api",
        "active",
        created=api_created,
        start_date=api_created,
        metadata={"oppref": "opp_stripe_api"},
        items={
            "object": "list",
            "data": [
                {
                    "id": "si_9",
                    "quantity": 1,
                    "price": {
                        "id": "price_team_yearly",
                        "unit_amount": 120000,
                        "currency": "eur",
                        "nickname": "Team yearly",
                    },
                }
            ],
        },
    )
    lines = [schema("subscriptions", STRIPE_SINGER_IO_PROPERTIES, ["id"])]
    lines += [record("subscriptions", sub) for sub in singer_io]
    lines += [
        schema("stripe_subscriptions", STRIPE_API_PROPERTIES, ["id"]),
        record("stripe_subscriptions", api_shaped),
    ]
    preset = {"preset": "tap-stripe/subscriptions"}
    streams = {"subscriptions": preset, "stripe_subscriptions": preset}
    run = run_target(config_for(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output

    user = {"external_ids_sha256": [sha("cus_Q1w2e3")]}
    pro = {"type": "plan_enrollment", "amount": 2900, "currency": "USD"}
    assert stored(sandbox) == {
        "sub_trial": {
            "id": "sub_trial",
            "type": "trial_started",
            "timestamp_ms": to_ms(trial_at),
            "oppref": "opp_stripe_1",
            "user": user,
            "data": {**pro, "plan_id": "price_pro_monthly"},
        },
        "sub_converted": {
            "id": "sub_converted",
            "type": "subscription_created",
            "timestamp_ms": to_ms(converted_at),
            "user": user,
            "data": {**pro, "plan_id": "price_pro_monthly"},
        },
        "sub_paid": {
            "id": "sub_paid",
            "type": "subscription_created",
            "timestamp_ms": to_ms(paid_at),
            "user": user,
            "data": {**pro, "plan_id": "price_pro_monthly"},
        },
        "sub_api": {
            "id": "sub_api",
            "type": "subscription_created",
            "timestamp_ms": api_created * 1000,
            "oppref": "opp_stripe_api",
            "user": user,
            "data": {
                "type": "plan_enrollment",
                "amount": 120000,
                "currency": "EUR",
                "contents": [
                    {
                        "id": "price_team_yearly",
                        "name": "Team yearly",
                        "quantity": 1,
                        "amount": 120000,
                    }
                ],
                "plan_id": "price_team_yearly",
            },
        },
    }  # canceled and test-mode subscriptions are filtered
    assert "filtered=2" in run.stderr


@pytest.mark.parametrize(
    ("currency", "unit_amount", "iso_amount"),
    [
        ("isk", 50000, 500),  # Stripe counts ISK in hundredths; ISO 4217 has no decimals
        ("mga", 5000, 500000),  # zero-decimal at Stripe; two decimals in ISO 4217
        ("jpy", 5000, 5000),
        ("kwd", 12345, 12345),
        ("usd", 2900, 2900),
    ],
)
def test_stripe_amounts_are_sent_in_iso_minor_units(
    currency, unit_amount, iso_amount, sandbox, tmp_path
):
    """Stripe's minor units are ISO 4217's but for ISK and MGA: taken as they were, an ISK
    price went out 100 times too high and an MGA one 100 times too low."""
    created = int(time.time()) - 600
    price = {"id": "price_1", "unit_amount": unit_amount, "currency": currency}
    sub = stripe_sub(
        "sub_1",
        "active",
        created=created,
        start_date=created,
        items={"object": "list", "data": [{"id": "si_1", "quantity": 2, "price": price}]},
    )
    lines = [schema("subscriptions", STRIPE_API_PROPERTIES, ["id"]), record("subscriptions", sub)]
    streams = {"subscriptions": {"preset": "tap-stripe/subscriptions"}}
    run = run_target(config_for(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    data = stored(sandbox)["sub_1"]["data"]
    assert (data["amount"], data["currency"]) == (iso_amount, currency.upper())
    assert data["contents"] == [{"id": "price_1", "quantity": 2, "amount": iso_amount}]


# --- Segment and RudderStack tracks tables ----------------------------------------------------

TRACKS_PROPERTIES = {
    "id": {"type": "string"},
    "anonymous_id": STR,
    "user_id": STR,
    "event": STR,
    "event_text": STR,
    "timestamp": DATETIME,
    "original_timestamp": DATETIME,
    "received_at": DATETIME,
    "context_ip": STR,
    "context_user_agent": STR,
    "context_page_url": STR,
    "context_app_name": STR,
    "context_traits_email": STR,
    "context_library_name": STR,
}
# A per-event table: the same columns plus the event's properties.
ORDER_COMPLETED_PROPERTIES = {
    **TRACKS_PROPERTIES,
    "order_id": STR,
    "total": NUM,
    "revenue": NUM,
    "currency": STR,
    "products": STR,  # arrays are stored as JSON text
}

UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15"
)


def track(message_id: str, event_text: str, at: str, **extra: Any) -> dict[str, Any]:
    row = {
        "id": message_id,
        "anonymous_id": "anon-7f3e",
        "user_id": "user_42",
        "event": event_text.lower().replace(" ", "_"),
        "event_text": event_text,
        "timestamp": at,
        "original_timestamp": at,
        "received_at": at,
        "context_ip": "198.51.100.23",
        "context_user_agent": UA,
        "context_page_url": None,
        "context_app_name": None,
        "context_traits_email": "Kim@Example.com",
        "context_library_name": "analytics.js",
    }
    row.update(extra)
    return row


@pytest.mark.parametrize("preset", ["segment/tracks", "rudderstack/tracks"])
def test_tracks_presets(sandbox, tmp_path, preset):
    ordered_at = iso_minutes_ago(15)
    added_at = iso_minutes_ago(20)
    signed_up_at = iso_minutes_ago(60)
    clicked_at = iso_minutes_ago(5)
    page = "https://shop.example.com/checkout/thanks?oppref=opp_seg_1"
    lines = [
        schema("order_completed", ORDER_COMPLETED_PROPERTIES, ["id"]),
        record(
            "order_completed",
            track(
                "msg-1",
                "Order Completed",
                ordered_at,
                context_page_url=page,
                order_id="o-1",
                total=129.99,
                revenue=110.0,
                currency="usd",
                products='[{"sku": "A"}]',
            ),
        ),
        schema("tracks", TRACKS_PROPERTIES, ["id"]),
        record(
            "tracks",
            track(
                "msg-2", "Product Added", added_at, context_page_url="https://shop.example.com/p/a"
            ),
        ),
        record("tracks", track("msg-3", "Signed Up", signed_up_at, context_app_name="Shop iOS")),
        record("tracks", track("msg-4", "Wishlist Shared", clicked_at)),
    ]
    streams = {"order_completed": {"preset": preset}, "tracks": {"preset": preset}}
    run = run_target(config_for(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output

    user = {
        "emails_sha256": [sha("kim@example.com")],
        "external_ids_sha256": [sha("user_42")],
        "ip_address": "198.51.100.23",
        "user_agent": UA,
    }
    mobile = "mobile_app" if preset == "segment/tracks" else None
    expected = {
        "msg-1": {
            "id": "msg-1",
            "type": "order_created",
            "timestamp_ms": to_ms(ordered_at),
            "oppref": "opp_seg_1",
            "source_url": "https://shop.example.com/checkout/thanks",  # (page, without its query)
            "action_source": "web",
            "user": user,
            "data": {"type": "contents", "amount": 12999, "currency": "USD"},
        },
        "msg-2": {
            "id": "msg-2",
            "type": "items_added",
            "timestamp_ms": to_ms(added_at),
            "source_url": "https://shop.example.com/p/a",
            "action_source": "web",
            "user": user,
            "data": {"type": "contents"},
        },
        "msg-3": {
            "id": "msg-3",
            "type": "registration_completed",
            "timestamp_ms": to_ms(signed_up_at),
            **({"action_source": mobile} if mobile else {}),
            "user": user,
            "data": {"type": "customer_action"},
        },
        "msg-4": {
            "id": "msg-4",
            "type": "custom",
            "timestamp_ms": to_ms(clicked_at),
            "custom_event_name": "wishlist_shared",  # the official name rule allows no space
            "user": user,
            "data": {"type": "custom"},
        },
    }
    assert stored(sandbox) == expected


@pytest.mark.parametrize("preset", ["segment/tracks", "rudderstack/tracks"])
def test_tracks_presets_read_a_tables_own_amount_and_source_url(sandbox, tmp_path, preset):
    at = iso_minutes_ago(7)
    row = track(
        "msg-9",
        "Order Completed",
        at,
        amount=42.5,
        total=99,
        currency="EUR",
        source_url="https://shop.example.com/thanks",
    )
    properties = {
        **TRACKS_PROPERTIES,
        "amount": NUM,
        "total": NUM,
        "currency": STR,
        "source_url": STR,
    }
    lines = [schema("tracks", properties, ["id"]), record("tracks", row)]
    streams = {"tracks": {"preset": preset}}
    run = run_target(config_for(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    event = stored(sandbox)["msg-9"]
    assert event["data"]["amount"] == 4250  # the table's own amount column, not `total`
    assert event["source_url"] == "https://shop.example.com/thanks"
    assert event["action_source"] == "web"


def test_rudderstack_tracks_reads_the_channel_and_the_request_ip(sandbox, tmp_path):
    at = iso_minutes_ago(3)
    properties = {**TRACKS_PROPERTIES, "channel": STR, "context_request_ip": STR}
    row = track("rs-1", "Application Installed", at, context_ip=None, context_traits_email=None)
    row.update(channel="mobile", context_request_ip="2001:db8::7")
    lines = [schema("tracks", properties, ["id"]), record("tracks", row)]
    streams = {"tracks": {"preset": "rudderstack/tracks"}}
    run = run_target(config_for(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert list(stored(sandbox).values()) == [
        {
            "id": "rs-1",
            "type": "app_installed",
            "timestamp_ms": to_ms(at),
            "action_source": "mobile_app",
            "user": {
                "external_ids_sha256": [sha("user_42")],
                "ip_address": "2001:db8::7",
                "user_agent": UA,
            },
            "data": {"type": "customer_action"},
        }
    ]


@pytest.mark.parametrize("preset", ["segment/tracks", "rudderstack/tracks"])
def test_tracks_presets_send_an_event_whose_money_has_no_currency_without_it(
    sandbox, tmp_path, preset
):
    """A server-side Order Completed without its currency, and a video's `value` property: each
    was rejected, 'amount needs a currency', and the conversion lost."""
    at = iso_minutes_ago(4)
    properties = {**ORDER_COMPLETED_PROPERTIES, "value": NUM}
    lines = [
        schema("tracks", properties, ["id"]),
        record("tracks", track("m-1", "Order Completed", at, order_id="o-9", total=20.0)),
        record("tracks", track("m-2", "Video Playback Completed", at, value=100)),
    ]
    run = run_target(config_for(sandbox, tmp_path, {"tracks": {"preset": preset}}), lines, tmp_path)
    assert run.returncode == 0, run.output
    events = stored(sandbox)
    assert events["m-1"]["type"] == "order_created"
    assert events["m-2"]["custom_event_name"] == "video_playback_completed"
    for event in events.values():
        assert event["data"] in ({"type": "contents"}, {"type": "custom"})


@pytest.mark.parametrize("preset", ["segment/tracks", "rudderstack/tracks"])
def test_tracks_presets_send_events_whose_page_is_no_web_page_without_it(sandbox, tmp_path, preset):
    """A hybrid app's `file:` page, `about:blank` in an iframe, a relative path: each event was
    rejected ('source_url is a file: URL, not a page's', or at validation) though it carried a
    user id; it goes without a page (and the oppref of a relative path is still read)."""
    at = iso_minutes_ago(4)
    pages = {
        "p-1": "file:///android_asset/www/index.html",
        "p-2": "about:blank",
        "p-3": "/checkout/done?oppref=rel",
        "p-4": "https://shop.example.com/signed-up",
    }
    lines = [schema("tracks", TRACKS_PROPERTIES, ["id"])]
    lines += [
        record("tracks", track(mid, "Signed Up", at, context_page_url=page))
        for mid, page in pages.items()
    ]
    run = run_target(config_for(sandbox, tmp_path, {"tracks": {"preset": preset}}), lines, tmp_path)
    assert run.returncode == 0, run.output
    events = stored(sandbox)
    assert sorted(events) == list(pages)
    for mid in ("p-1", "p-2", "p-3"):
        assert "source_url" not in events[mid]
        assert events[mid].get("action_source") != "web"
    assert events["p-3"]["oppref"] == "rel"
    assert events["p-4"]["source_url"] == "https://shop.example.com/signed-up"
    assert events["p-4"]["action_source"] == "web"


# --- GA4 BigQuery export ------------------------------------------------------------------------

PARAM_VALUE = obj(string_value=STR, int_value=INT, float_value=NUM, double_value=NUM)
GA4_PROPERTIES = {
    "event_date": STR,
    "event_timestamp": INT,
    "event_name": STR,
    "event_params": array(obj(key=STR, value=PARAM_VALUE)),
    "user_id": STR,
    "user_pseudo_id": STR,
    "platform": STR,
    "ecommerce": obj(transaction_id=STR, purchase_revenue=NUM, total_item_quantity=INT),
    "items": array(obj(item_id=STR, item_name=STR, quantity=INT, price=NUM)),
}


def ga4_row(name: str, minutes_ago: float, params: dict[str, Any], **extra: Any):
    micros = int((time.time() - minutes_ago * 60) * 1_000_000)
    event_params = []
    for key, value in params.items():
        kind = {str: "string_value", int: "int_value", float: "double_value"}[type(value)]
        event_params.append({"key": key, "value": {kind: value}})
    row = {
        "event_date": time.strftime("%Y%m%d", time.gmtime()),
        "event_timestamp": micros,
        "event_name": name,
        "event_params": event_params,
        "user_id": None,
        "user_pseudo_id": "1234567890.1700000000",
        "platform": "WEB",
        "ecommerce": None,
        "items": [],
    }
    row.update(extra)
    return row, micros // 1000


@pytest.mark.parametrize(
    "stream_maps",
    [None, {"events": {"event_timestamp_ms": "int(event_timestamp // 1000)"}}],
    ids=["as is", "with the stream map older versions needed"],
)
def test_ga4_events_preset(sandbox, tmp_path, stream_maps):
    thanks = "https://shop.example.com/checkout/thanks?oppref=opp_ga4_1"
    purchase, purchase_ms = ga4_row(
        "purchase",
        12,
        {"page_location": thanks, "currency": "CAD", "transaction_id": "T-1001"},
        user_id="u-9",
        ecommerce={"transaction_id": "T-1001", "purchase_revenue": 45.5, "total_item_quantity": 2},
        items=[{"item_id": "SKU-9", "item_name": "Scarf", "quantity": 2, "price": 22.75}],
    )
    lead, lead_ms = ga4_row(
        "generate_lead",
        30,
        {"page_location": "https://shop.example.com/contact", "value": 15.0, "currency": "CAD"},
    )
    install, install_ms = ga4_row("first_open", 45, {}, platform="ANDROID")
    noise, _ = ga4_row("session_start", 46, {"page_location": "https://shop.example.com/"})
    lines = [schema("events", GA4_PROPERTIES, ["user_pseudo_id", "event_timestamp"])]
    lines += [record("events", row) for row in (purchase, lead, install, noise)]
    config = config_for(sandbox, tmp_path, {"events": {"preset": "ga4/events"}})
    if stream_maps:
        config["stream_maps"] = stream_maps
    run = run_target(config, lines, tmp_path)
    assert run.returncode == 0, run.output

    by_type = {event["type"]: event for event in sandbox.events(PIXEL_ID)}
    assert by_type == {
        "order_created": {
            "id": "T-1001",
            "type": "order_created",
            "timestamp_ms": purchase_ms,
            "oppref": "opp_ga4_1",
            "source_url": "https://shop.example.com/checkout/thanks",  # (without its query)
            "action_source": "web",
            "user": {"external_ids_sha256": [sha("u-9")]},
            "data": {
                "type": "contents",
                "amount": 4550,
                "currency": "CAD",
                "contents": [{"id": "SKU-9", "name": "Scarf", "quantity": 2, "amount": 2275}],
            },
        },
        "lead_created": {
            # No transaction id: the stream's key properties are the id.
            "id": f"1234567890.1700000000:{lead['event_timestamp']}",
            "type": "lead_created",
            "timestamp_ms": lead_ms,
            "source_url": "https://shop.example.com/contact",
            "action_source": "web",
            "data": {"type": "customer_action", "amount": 1500, "currency": "CAD"},
        },
        "app_installed": {
            "id": f"1234567890.1700000000:{install['event_timestamp']}",
            "type": "app_installed",
            "timestamp_ms": install_ms,
            "action_source": "mobile_app",
            "data": {"type": "customer_action"},
        },
    }  # session_start is not a conversion: filtered
    assert "filtered=1" in run.stderr


def test_ga4_microsecond_times_exported_as_text_are_read_too(sandbox, tmp_path):
    row, millis = ga4_row("generate_lead", 5, {"page_location": "https://shop.example.com/"})
    row["event_timestamp"] = str(row["event_timestamp"])  # BigQuery INT64 as a JSON string
    properties = {**GA4_PROPERTIES, "event_timestamp": STR}
    lines = [schema("events", properties, []), record("events", row)]
    streams = {"events": {"preset": "ga4/events"}}
    run = run_target(config_for(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [e["timestamp_ms"] for e in sandbox.events(PIXEL_ID)] == [millis]


def test_ga4_a_purchase_without_its_currency_is_sent_without_amounts(sandbox, tmp_path):
    """No currency param: the revenue and each item's price were an amount without a currency,
    and the purchase was rejected; it goes with its items and without amounts."""
    row, _ = ga4_row(
        "purchase",
        5,
        {"page_location": "https://shop.example.com/thanks", "transaction_id": "T-8"},
        ecommerce={"transaction_id": "T-8", "purchase_revenue": 20},
        items=[
            {"item_id": "SKU-1", "item_name": "Mug", "quantity": 1, "price": 20},
            # GA4's placeholders for what it does not know: no id, no name (not sent as such)
            {"item_id": "(not set)", "item_name": "(not set)", "quantity": 2, "price": 0},
        ],
    )
    lines = [schema("events", GA4_PROPERTIES, []), record("events", row)]
    run = run_target(
        config_for(sandbox, tmp_path, {"events": {"preset": "ga4/events"}}), lines, tmp_path
    )
    assert run.returncode == 0, run.output
    [event] = sandbox.events(PIXEL_ID)
    assert event["id"] == "T-8"
    assert event["data"] == {
        "type": "contents",
        "contents": [{"id": "SKU-1", "name": "Mug", "quantity": 1}, {"quantity": 2}],
    }


def test_ga4_an_event_whose_page_is_no_web_page_is_sent_without_it(sandbox, tmp_path):
    """A hybrid app's `file:` page or `about:blank` as page_location: the sign-up was rejected
    ('source_url is a file: URL, not a page's') though it carried a user id."""
    rows = [
        ga4_row("sign_up", 5, {"page_location": page}, user_id=f"u-{n}")[0]
        for n, page in enumerate(
            ["file:///android_asset/www/index.html", "about:blank", "HTTPS://SHOP.EXAMPLE.COM/x"]
        )
    ]
    lines = [schema("events", GA4_PROPERTIES, []), *(record("events", row) for row in rows)]
    run = run_target(
        config_for(sandbox, tmp_path, {"events": {"preset": "ga4/events"}}), lines, tmp_path
    )
    assert run.returncode == 0, run.output
    events = sorted(sandbox.events(PIXEL_ID), key=lambda e: e["user"]["external_ids_sha256"][0])
    assert len(events) == 3
    pages = [e.get("source_url") for e in events]
    assert pages.count(None) == 2
    assert "HTTPS://SHOP.EXAMPLE.COM/x" in pages


def test_ga4_nested_columns_kept_as_json_text_are_told_at_the_schema(sandbox, tmp_path):
    """A warehouse copy of the export keeps event_params, ecommerce and items as JSON text:
    every purchase went out without its id, amount, currency, items or page, and nothing was
    said (a preset's fields are not watched at the end of a run)."""
    row, _ = ga4_row(
        "purchase",
        5,
        {"page_location": "https://shop.example.com/thanks", "currency": "CAD"},
        ecommerce={"transaction_id": "T-7", "purchase_revenue": 9.5},
    )
    for column in ("event_params", "ecommerce", "items"):
        row[column] = json.dumps(row[column])
    properties = {**GA4_PROPERTIES, "event_params": STR, "ecommerce": STR, "items": STR}
    lines = [schema("events", properties, []), record("events", row)]
    run = run_target(
        config_for(sandbox, tmp_path, {"events": {"preset": "ga4/events"}}), lines, tmp_path
    )
    assert run.returncode == 0, run.output
    told = [line.split("| ")[-1] for line in run.stderr.splitlines() if "reads inside" in line]
    assert told == [
        f"streams.events reads inside {column}, which the stream's SCHEMA types as text (JSON "
        "kept as text, as warehouse copies keep nested columns): every path inside it reads "
        f"null. Map the fields that read it through parse_json({column})."
        for column in ("ecommerce", "event_params", "items")
    ]


# --- overriding a preset, unknown presets ---------------------------------------------------


def test_user_fields_and_filter_override_the_preset(sandbox, tmp_path):
    at = iso_minutes_ago(8)
    order = shopify_order(
        6001,
        at,
        "USD",
        10,
        test=True,
        email="x@example.com",
        phone="+1 415 555 2671",
        customAttributes=[{"key": "oppref", "value": "opp_attr"}],
        customerJourneySummary={"lastVisit": {"landingPage": "/?oppref=opp_landing"}},
    )
    streams = {
        "orders": {
            "preset": "tap-shopify/orders",
            "filter": "!cancelledAt",  # this shop sends test orders on purpose
            "fields": {
                "source_url": "'https://shop.example.com/thank-you'",
                "oppref": "customAttributes[?key == 'oppref'].value | [0]",
                # `null`: none sent, not even the record's property of the name, and no word
                # of a phone region or of a path that gave nothing
                "email": "`null`",
                "phone": "`null`",
                "contents": "`null`",
            },
        }
    }
    lines = [schema("orders", SHOPIFY_ORDER_PROPERTIES, ["id"]), record("orders", order)]
    run = run_target(config_for(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "default_phone_region" not in run.output
    assert "gave no value" not in run.output
    assert list(stored(sandbox).values()) == [
        {
            "id": "gid://shopify/Order/6001",
            "type": "order_created",
            "timestamp_ms": to_ms(at),
            "oppref": "opp_attr",
            "source_url": "https://shop.example.com/thank-you",
            "action_source": "web",
            "data": {"type": "contents", "amount": 1000, "currency": "USD"},
        }
    ]


def test_an_unknown_preset_stops_the_run_and_lists_the_known_ones(sandbox, tmp_path):
    streams = {"orders": {"preset": "tap-shopify/order"}}
    run = run_target(config_for(sandbox, tmp_path, streams), [], tmp_path)
    assert run.returncode == 1
    assert "streams.orders.preset: unknown preset 'tap-shopify/order'" in run.output
    for name in PRESETS:
        assert name in run.output
    assert sandbox.stats()["requests"] == 0


def test_a_preset_s_columns_missing_from_the_schema_are_told(sandbox, tmp_path):
    """A preset's reads were never checked against the SCHEMA: a tap whose catalog left `test`
    out sent test orders as real ones without a word, one without `livemode` sent test-mode
    subscriptions, and a warehouse's upper-case columns made every row 'event name is empty'.
    The same expressions written by hand were told at the SCHEMA."""
    at = iso_minutes_ago(60)
    orders = {key: SHOPIFY_ORDER_PROPERTIES[key] for key in ("id", "createdAt", "email")}
    subscriptions = {
        "id": STR, "status": STR, "created": DATETIME, "customer": STR, "livemode": STR,
        "plan": obj(id=STR, amount=INT, currency=STR),
    }  # fmt: skip
    tracks = {"ID": STR, "EVENT_TEXT": STR, "TIMESTAMP": DATETIME}
    lines = [
        schema("orders", {**orders, "currencyCode": STR, "statusPageUrl": STR}, ["id"]),
        record("orders", {"id": "o1", "createdAt": at, "email": "a@example.com",
                          "currencyCode": "USD", "statusPageUrl": "https://shop.example/1"}),
        schema("subscriptions", subscriptions, ["id"]),
        record("subscriptions", {"id": "sub_1", "status": "active", "created": at,
                                 "customer": "cus_1", "livemode": "false",
                                 "plan": {"id": "p", "amount": 2900, "currency": "usd"}}),
        schema("tracks", tracks, ["ID"]),
        record("tracks", {"ID": "m1", "EVENT_TEXT": "Order Completed", "TIMESTAMP": at}),
    ]  # fmt: skip
    streams = {
        "orders": {"preset": "tap-shopify/orders"},
        "subscriptions": {"preset": "tap-stripe/subscriptions"},
        "tracks": {"preset": "segment/tracks"},
    }
    run = run_target(config_for(sandbox, tmp_path, streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    said = [line.split(" | ", 3)[3] for line in run.stderr.splitlines() if "of the preset" in line]
    unlisted = "which the stream's SCHEMA does not list"
    assert said == [
        "streams.orders.fields.amount of the preset tap-shopify/orders "
        f"(totalPriceSet.shopMoney.amount) reads 'totalPriceSet', {unlisted}: it reads null on "
        "every record unless records carry it anyway, so the events go without it. Select it "
        "in the tap (its catalog), or write fields.amount yourself.",
        "streams.orders.fields.contents of the preset tap-shopify/orders (lineItems[].{id: sku "
        f"|| product.id || id, name: title || name, quantity: quanti…) reads 'lineItems', "
        f"{unlisted}: it reads null on every record unless records carry it anyway, so the "
        "events go without it. Select it in the tap (its catalog), or write fields.contents "
        "yourself.",
        f"streams.orders.filter of the preset tap-shopify/orders (!test) reads 'test', {unlisted}"
        ": it reads null on every record unless records carry it anyway, so the filter decides "
        "alike for every record (test ones too). Select it in the tap (its catalog), or write "
        "filter yourself.",
        "streams.subscriptions.fields.contents of the preset tap-stripe/subscriptions "
        "(items.data[].{id: price.id, name: price.nickname, quantity: quantity, amount: s…) "
        f"reads 'items', {unlisted}: it reads null on every record unless records carry it "
        "anyway, so the events go without it. Select it in the tap (its catalog), or write "
        "fields.contents yourself.",
        "streams.subscriptions.filter (of the preset tap-stripe/subscriptions): livemode is "
        "compared with a boolean, and the stream's SCHEMA types it as text: to JMESPath any "
        "text but '' is true ('false' and '0' too), and no text equals `true` or `false`. "
        "Compare it instead: lower(livemode) == 'true' (or !=).",
        f"streams.tracks.fields.id of the preset segment/tracks (id) reads 'id', {unlisted} (it "
        "lists 'ID': names are case-sensitive): it reads null on every record unless records "
        "carry it anyway, so the events go without it. Select it in the tap (its catalog), or "
        "write fields.id yourself.",
        "streams.tracks.fields.timestamp of the preset segment/tracks (timestamp || "
        f"original_timestamp) reads 'timestamp', 'original_timestamp', {unlisted} (it lists "
        "'TIMESTAMP': names are case-sensitive): it reads null on every record unless records "
        "carry it anyway, so the events go without it. Select it in the tap (its catalog), or "
        "write fields.timestamp yourself.",
        # (no amount or currency: Segment's `tracks` table has none, a table per event has)
        "streams.tracks.fields.source_url of the preset segment/tracks (source_url || "
        f"web_page(context_page_url)) reads 'source_url', 'context_page_url', {unlisted}: it "
        "reads null on every record unless records carry it anyway, so the events go without "
        "it. Select it in the tap (its catalog), or write fields.source_url yourself.",
        "streams.tracks.event_type_from of the preset segment/tracks (event_text || event) "
        f"reads 'event_text', 'event', {unlisted} (it lists 'EVENT_TEXT': names are "
        "case-sensitive): it reads null on every record unless records carry it anyway, so the "
        "events have no name, and their records are rejected. Select it in the tap (its "
        "catalog), or write event_type_from yourself.",
    ]
    # (what the user replaced is theirs: not told as the preset's)
    streams["orders"] = {"preset": "tap-shopify/orders", "filter": "`true`",
                         "fields": {"amount": "`null`", "contents": "`null`"}}  # fmt: skip
    again = run_target(config_for(sandbox, tmp_path, streams), lines[:2], tmp_path)
    assert again.returncode == 0, again.output
    assert "of the preset" not in again.stderr
