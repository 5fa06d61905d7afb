"""The raw floor: a plain Python loop doing the least work that still sends the same events.

Reads Singer lines from stdin with the stdlib `json` (floats as Decimal, as money needs), maps
each Shopify order to the event the target would send with direct dictionary lookups (same
fields, same SHA-256 hashes, same minor-unit amounts, through plain_loop.py's identifier and
value functions; a record it cannot map is dropped and counted, as the target rejects it),
posts batches of --batch-size events with `requests` over one keep-alive session, and writes
the latest STATE after each accepted batch. No framework, no schema validation, no retries:
what is left is the cost of reading, mapping and posting, which nothing can go below.

    python benchmarks/raw_floor.py --api-url URL --pixel-id PX --api-key KEY < stream.singer
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal
from typing import Any

import floor_rules
import requests
from floor_rules import (
    POWER,
    URL,
    Skip,
    country,
    email_hash,
    id_hash,
    ip_address,
    minor,
    name_hash,
    phone_hash,
    place,
    postal_code,
    timestamp_ms,
    url_param,
)


def _get(value: Any, *path: str) -> Any:
    """The value at `path` in nested objects, or None where one is missing or not an object."""
    for step in path:
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def _object(value: Any) -> dict[str, Any]:
    """An object, or {} for a value of another type (JMESPath reads nothing below it)."""
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    """A string value (a whole number written as one), else None; a value of another type
    means a record it cannot map."""
    if value is None or isinstance(value, str):
        return value
    if type(value) is int:
        return str(value)
    raise Skip("a field of another type than tap-shopify's")


def _amount(value: Any) -> Decimal | None:
    """A number, or a numeric string (as msgspec reads one into the plain loop's Decimal)."""
    if value is None:
        return None
    if isinstance(value, (int, Decimal, str)) and not isinstance(value, bool):
        try:
            number = Decimal(value.strip() if isinstance(value, str) else value)
        except ArithmeticError:  # (decimal.InvalidOperation)
            raise Skip("amount") from None
        if number.is_finite():
            return number
    raise Skip("amount")


def event_from_line(line: bytes) -> dict[str, Any] | None:
    """to_event of a RECORD line; None for a test order or another message."""
    try:
        message = json.loads(line, parse_float=Decimal)
    except ValueError:
        raise Skip("not JSON") from None
    if not isinstance(message, dict) or message.get("type") != "RECORD":
        return None
    return to_event(message.get("record"))


def to_event(rec: Any, now_ms: int | None = None) -> dict[str, Any] | None:
    """The tap-shopify/orders preset's event, by hand with dictionary lookups (the rules of
    plain_loop.to_event, floor_rules.py), or None for a test order; raises Skip where the
    target would send no event."""
    if not isinstance(rec, dict):
        raise Skip("a record that is not an object")
    if rec.get("test"):
        return None
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    order_id = _text(rec.get("id"))
    if not order_id or not order_id.strip():
        raise Skip("id")
    event: dict[str, Any] = {
        "id": order_id.strip(),
        "type": "order_created",
        "timestamp_ms": timestamp_ms(_text(rec.get("createdAt")), now_ms),
    }
    journey = rec.get("customerJourneySummary")
    click = url_param(_text(_get(journey, "lastVisit", "landingPage")), "oppref")
    if not click:
        attributes = rec.get("customAttributes")
        for attribute in attributes if isinstance(attributes, list) else ():
            if _get(attribute, "key") == "oppref":
                click = _text(attribute.get("value"))
                break
    if not click:
        click = url_param(_text(_get(journey, "firstVisit", "landingPage")), "oppref")
    if click and click.strip():
        event["oppref"] = click
    url = (_text(rec.get("statusPageUrl")) or "").strip()
    if url:
        if len(url) > 8192 or not URL.fullmatch(url):
            raise Skip("source_url")
        event["source_url"] = url
    event["action_source"] = "physical_store" if rec.get("sourceName") == "pos" else "web"
    if event["action_source"] == "web" and "source_url" not in event:
        raise Skip("a web event needs a source_url")

    billing, shipping, customer = (
        _object(rec.get(name)) for name in ("billingAddress", "shippingAddress", "customer")
    )

    def either(name: str, *others: dict[str, Any]) -> str | None:
        return (
            _text(billing.get(name))
            or _text(shipping.get(name))
            or next((_text(o.get(name)) for o in others if o.get(name)), None)
        )

    customer_id = _text(customer.get("id"))
    user: dict[str, Any] = {}
    for key, value in (
        ("emails_sha256", email_hash(_text(rec.get("email")) or _text(customer.get("email")))),
        ("phone_numbers_sha256", phone_hash(_text(rec.get("phone")) or either("phone"))),
        ("first_names_sha256", name_hash(either("firstName", customer))),
        ("last_names_sha256", name_hash(either("lastName", customer))),
        ("cities", place(either("city"))),
        ("regions", place(either("provinceCode"))),
        ("postal_codes", postal_code(either("zip"))),
        ("countries", country(either("countryCodeV2"))),
        ("external_ids_sha256", id_hash(customer_id)),
    ):
        if value is not None:
            user[key] = [value]
    ip = ip_address(_text(rec.get("clientIp")))
    if ip:
        user["ip_address"] = ip
    if user:
        event["user"] = user

    code = _text(_get(rec, "totalPriceSet", "shopMoney", "currencyCode")) or _text(
        rec.get("currencyCode")
    )
    data: dict[str, Any] = {"type": "contents"}
    power = 0
    if code:
        code = code.strip().upper()
        if code not in POWER:
            raise Skip("currency")
        power = POWER[code]
    amount = _amount(_get(rec, "totalPriceSet", "shopMoney", "amount"))
    if amount is not None:
        if not code:
            raise Skip("amount without a currency")
        data["amount"] = minor(amount, power)
    if code:
        data["currency"] = code
    items = rec.get("lineItems")
    if items is not None:
        if not isinstance(items, list):
            raise Skip("contents that are not a list")
        contents = []
        for item in items:
            if not isinstance(item, dict):
                # The preset's projection (lineItems[].{...}) leaves a null out and makes
                # another value an item of nulls: an empty one.
                if item is not None:
                    contents.append({})
                continue
            content: dict[str, Any] = {}
            item_id = (
                _text(item.get("sku"))
                or _text(_get(item, "product", "id"))
                or _text(item.get("id"))
            )
            if item_id and item_id.strip():
                content["id"] = item_id.strip()
            name = (_text(item.get("title")) or _text(item.get("name")) or "").strip()
            if name:
                content["name"] = name
            quantity = item.get("quantity")
            if quantity is not None:
                if type(quantity) is not int or quantity < 0:
                    raise Skip("quantity")
                content["quantity"] = quantity
            price = _amount(_get(item, "discountedUnitPriceSet", "shopMoney", "amount"))
            if price is None:
                price = _amount(_get(item, "originalUnitPriceSet", "shopMoney", "amount"))
            if price is not None:
                if not code:
                    raise Skip("item amount without a currency")
                content["amount"] = minor(price, power)
            contents.append(content)
        data["contents"] = contents
    event["data"] = data
    return event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--pixel-id", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--default-phone-region", default="US", help="'' reads numbers as written (%(default)s)"
    )
    args = parser.parse_args()
    floor_rules.PHONE_REGION = (args.default_phone_region or "").upper() or None
    session = requests.Session()
    session.headers.update(
        {"Authorization": f"Bearer {args.api_key}", "Content-Type": "application/json"}
    )
    url = f"{args.api_url}?pid={args.pixel_id}"
    batch: list[dict[str, Any]] = []
    state: Any = None
    sent = 0

    def post() -> None:
        nonlocal sent
        body = json.dumps({"validate_only": False, "events": batch}).encode()
        response = session.post(url, data=body, timeout=60)
        if response.status_code != 200:
            sys.exit(f"HTTP {response.status_code}: {response.text[:500]}")
        sent += len(batch)
        batch.clear()
        if state is not None:
            sys.stdout.write(json.dumps(state) + "\n")

    skipped = 0
    for line in sys.stdin.buffer:
        try:
            message = json.loads(line, parse_float=Decimal)
        except ValueError:  # not JSON
            skipped += 1
            continue
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "RECORD":
            try:
                event = to_event(message.get("record"))
            except Skip:
                skipped += 1
                continue
            if event is not None:
                batch.append(event)
            if len(batch) >= args.batch_size:
                post()
        elif kind == "STATE":
            state = message.get("value")
    if batch:
        post()
    sys.stdout.flush()
    print(f"raw floor: sent={sent} skipped={skipped}", file=sys.stderr)


if __name__ == "__main__":
    main()
