"""tap-demo-orders: reproducible Shopify-shaped orders, dated relative to now, as Singer messages.

The target's demo needs orders the Conversions API accepts (no older than 7 days), so the
orders are generated at run time: `seed` fixes everything but the clock. Standard library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
from decimal import Decimal
from typing import Any

STREAM = "orders"
SHOP = "https://demo-shop.example.com"
DEFAULT_SEED = 7
DEFAULT_ORDER_COUNT = 36

SETTINGS = [
    {
        "name": "seed",
        "kind": "integer",
        "value": DEFAULT_SEED,
        "description": "Random seed: the same seed gives the same orders and ids.",
    },
    {
        "name": "order_count",
        "kind": "integer",
        "value": DEFAULT_ORDER_COUNT,
        "description": "How many orders to emit (at least 3).",
    },
]
CAPABILITIES = ["about", "catalog", "discover", "state"]

# currency -> (country, UTC offset written in timestamps, decimals, price factor from USD)
CURRENCIES = {
    "USD": ("US", "-07:00", 2, Decimal("1")),
    "EUR": ("DE", "+01:00", 2, Decimal("0.92")),
    "GBP": ("GB", "Z", 2, Decimal("0.79")),
    "CAD": ("CA", "-05:00", 2, Decimal("1.36")),
    "JPY": ("JP", "+09:00", 0, Decimal("151")),
}
PRODUCTS = [
    ("TEE-BLK-M", "Black tee", Decimal("19.99")),
    ("HOODIE-GRY-L", "Grey hoodie", Decimal("54.00")),
    ("MUG-CER-01", "Ceramic mug", Decimal("12.50")),
    ("CAP-NVY", "Navy cap", Decimal("24.95")),
    ("SOCKS-3PK", "Socks, 3 pack", Decimal("14.00")),
    ("BOTTLE-750", "Steel bottle 750 ml", Decimal("29.00")),
]
FIRST_NAMES = ["Ana", "Ben", "Chloé", "Dev", "Emma", "Felix", "Grace", "Hiro", "Ines", "Jonas"]
LAST_NAMES = ["Silva", "Okafor", "Martin", "Patel", "Schmidt", "Tanaka", "Nguyen", "Rossi"]
CITIES = {
    "US": ("San Francisco", "CA", "94103"),
    "DE": ("Berlin", "BE", "10115"),
    "GB": ("London", "LND", "SW1A 1AA"),
    "CA": ("Toronto", "ON", "M5V 2T6"),
    "JP": ("Tokyo", "13", "100-0001"),
}

NULL_STR = {"type": ["null", "string"]}
NUM = {"type": ["null", "number"]}
MONEY_BAG = {
    "type": ["null", "object"],
    "properties": {
        "shopMoney": {
            "type": ["null", "object"],
            "properties": {"amount": NUM, "currencyCode": NULL_STR},
        }
    },
}
ADDRESS = {
    "type": ["null", "object"],
    "properties": {
        k: NULL_STR
        for k in ("firstName", "lastName", "city", "provinceCode", "zip", "countryCodeV2", "phone")
    },
}
ATTRIBUTES = {
    "type": ["null", "array"],
    "items": {"type": "object", "properties": {"key": NULL_STR, "value": NULL_STR}},
}
# A subset of tap-shopify 3.x `orders`, plus the Admin API's customerJourneySummary and
# order customAttributes (where a storefront keeps the landing page and the oppref).
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": NULL_STR,
        "createdAt": {"type": ["null", "string"], "format": "date-time"},
        "updatedAt": {"type": ["null", "string"], "format": "date-time"},
        "test": {"type": ["null", "boolean"]},
        "email": NULL_STR,
        "phone": NULL_STR,
        "clientIp": NULL_STR,
        "currencyCode": NULL_STR,
        "sourceName": NULL_STR,
        "statusPageUrl": NULL_STR,
        "totalPriceSet": MONEY_BAG,
        "billingAddress": ADDRESS,
        "customer": {
            "type": ["null", "object"],
            "properties": {"id": NULL_STR, "email": NULL_STR},
        },
        "lineItems": {
            "type": ["null", "array"],
            "items": {
                "type": "object",
                "properties": {
                    "id": NULL_STR,
                    "sku": NULL_STR,
                    "title": NULL_STR,
                    "quantity": {"type": ["null", "integer"]},
                    "discountedUnitPriceSet": MONEY_BAG,
                },
            },
        },
        "customAttributes": ATTRIBUTES,
        "customerJourneySummary": {
            "type": ["null", "object"],
            "properties": {
                "lastVisit": {
                    "type": ["null", "object"],
                    "properties": {"landingPage": NULL_STR, "source": NULL_STR},
                }
            },
        },
    },
}
STALE_DAYS = 10  # older than the API's 7-day window: the target rejects it, with a reason


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    # float() of a quantised Decimal prints as the same short decimal in JSON ("19.99").
    return {"shopMoney": {"amount": float(amount), "currencyCode": currency}}


def _stamp(moment: dt.datetime, offset: str) -> str:
    """ISO 8601 with the shop's UTC offset, as Shopify writes it."""
    if offset == "Z":
        return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    sign = 1 if offset[0] == "+" else -1
    tz = dt.timezone(sign * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    return moment.astimezone(tz).isoformat(timespec="seconds")


def generate_orders(seed: int, count: int, now: dt.datetime) -> list[dict[str, Any]]:
    """`count` orders, oldest first; the same seed gives the same orders (times shift with now)."""
    rng = random.Random(seed)
    ages = sorted((rng.uniform(5, 3 * 24 * 60) for _ in range(count - 1)), reverse=True)
    ages_minutes = [STALE_DAYS * 24 * 60.0, *ages]
    test_index = 1 + rng.randrange(count - 1)
    orders = []
    for index, age in enumerate(ages_minutes):
        number = 1001 + index
        currency = rng.choice(list(CURRENCIES))
        country, offset, decimals, factor = CURRENCIES[currency]
        quantum = Decimal(1).scaleb(-decimals)
        lines: list[dict[str, Any]] = []
        total = Decimal(0)
        for line_no, (sku, title, usd) in enumerate(rng.sample(PRODUCTS, rng.randint(1, 4))):
            unit = (usd * factor).quantize(quantum)
            quantity = rng.randint(1, 3)
            total += unit * quantity
            lines.append(
                {
                    "id": f"gid://shopify/LineItem/{number}{line_no}",
                    "sku": sku,
                    "title": title,
                    "quantity": quantity,
                    "discountedUnitPriceSet": _money(unit, currency),
                }
            )
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first}.{last}{number}@Example.com"
        email = "".join(c.upper() if rng.random() < 0.3 else c for c in email)
        city, province, zip_code = CITIES[country]
        landing = f"{SHOP}/products/{lines[0]['sku'].lower()}?utm_source=chatgpt"
        oppref = f"opp_{rng.getrandbits(48):012x}"
        attributes: list[dict[str, str]] = []
        where = rng.random()
        if where < 0.65:
            landing += f"&oppref={oppref}"
        elif where < 0.85:
            attributes.append({"key": "oppref", "value": oppref})
        created = _stamp(now - dt.timedelta(minutes=age), offset)
        orders.append(
            {
                "id": f"gid://shopify/Order/{number}",
                "name": f"#{number}",
                "createdAt": created,
                "updatedAt": created,
                "test": index == test_index,
                "email": f"  {email} " if index % 5 == 0 else email,
                "phone": f"+1 415 555 {rng.randint(100, 199):04d}" if country == "US" else None,
                "clientIp": f"203.0.113.{rng.randint(1, 254)}",
                "currencyCode": currency,
                "sourceName": "pos" if rng.random() < 0.08 else "web",
                "statusPageUrl": f"{SHOP}/58213/orders/{number:x}{seed:x}/authenticate",
                "totalPriceSet": _money(total, currency),
                "billingAddress": {
                    "firstName": first,
                    "lastName": last,
                    "city": city,
                    "provinceCode": province,
                    "zip": zip_code,
                    "countryCodeV2": country,
                    "phone": None,
                },
                "customer": {"id": f"gid://shopify/Customer/{5000 + index}", "email": None},
                "lineItems": lines,
                "customAttributes": attributes,
                "customerJourneySummary": {
                    "lastVisit": {"landingPage": landing, "source": "chatgpt"}
                },
            }
        )
    return orders


def catalog() -> dict[str, Any]:
    """The Singer catalog of the one stream."""
    return {
        "streams": [
            {
                "tap_stream_id": STREAM,
                "stream": STREAM,
                "schema": SCHEMA,
                "key_properties": ["id"],
                "replication_key": "updatedAt",
                "replication_method": "INCREMENTAL",
                "metadata": [
                    {
                        "breadcrumb": [],
                        "metadata": {
                            "selected": True,
                            "table-key-properties": ["id"],
                            "valid-replication-keys": ["updatedAt"],
                            "forced-replication-method": "INCREMENTAL",
                        },
                    }
                ],
            }
        ]
    }


def _selected(catalog_path: str | None) -> bool:
    """False only when a catalog explicitly deselects the stream."""
    if not catalog_path:
        return True
    with open(catalog_path, encoding="utf-8") as handle:
        streams = json.load(handle).get("streams", [])
    for stream in streams:
        if stream.get("tap_stream_id") == STREAM:
            for entry in stream.get("metadata", []):
                if entry.get("breadcrumb") == []:
                    return bool(entry.get("metadata", {}).get("selected", True))
            return True
    return False


def _read_config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    if not isinstance(config, dict):
        raise SystemExit(f"tap-demo-orders: {path} is not a JSON object")
    return config


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Command line: the Singer tap conventions that Meltano uses."""
    parser = argparse.ArgumentParser(prog="tap-demo-orders", description=__doc__)
    parser.add_argument("--config", help="JSON settings file: seed, order_count")
    parser.add_argument("--state", help="accepted for Meltano; every run emits every order")
    parser.add_argument("--catalog", help="Singer catalog (the stream can be deselected)")
    parser.add_argument("--properties", help="legacy name of --catalog")
    parser.add_argument("--discover", action="store_true", help="print the catalog and exit")
    parser.add_argument("--about", action="store_true", help="print settings and exit")
    parser.add_argument("--format", default="json", help="--about output format (json only)")
    args = parser.parse_args(argv)

    if args.about:
        about = {"name": "tap-demo-orders", "capabilities": CAPABILITIES, "settings": SETTINGS}
        print(json.dumps(about, indent=2))
        return 0
    if args.discover:
        print(json.dumps(catalog(), indent=2))
        return 0

    config = _read_config(args.config)
    try:
        seed = int(config.get("seed", DEFAULT_SEED))
        count = int(config.get("order_count", DEFAULT_ORDER_COUNT))
    except (TypeError, ValueError):
        raise SystemExit("tap-demo-orders: seed and order_count must be integers") from None
    if count < 3:
        raise SystemExit("tap-demo-orders: order_count must be at least 3")
    if not _selected(args.catalog or args.properties):
        return 0

    now = dt.datetime.now(dt.timezone.utc)
    orders = generate_orders(seed, count, now)
    _emit(
        {
            "type": "SCHEMA",
            "stream": STREAM,
            "schema": SCHEMA,
            "key_properties": ["id"],
            "bookmark_properties": ["updatedAt"],
        }
    )
    for order in orders:
        _emit({"type": "RECORD", "stream": STREAM, "record": order})
    latest = orders[-1]["updatedAt"]  # oldest first: the last order is the newest
    _emit({"type": "STATE", "value": {"bookmarks": {STREAM: {"updatedAt": latest}}}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
