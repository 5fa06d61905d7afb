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
    Skip,
    country,
    email_hash,
    first,
    id_hash,
    ip_address,
    is_true,
    item_amount,
    money,
    name_hash,
    number,
    optional_text,
    order_id,
    phone_hash,
    place,
    postal_code,
    quantity,
    source_url,
    text,
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


def _amount(value: Any) -> Decimal | None:
    """A number or numeric string, None for null or "" (which `||` passes over)."""
    if value is None or value == "":
        return None
    exact = number(value)
    if exact is None:
        raise Skip("amount")
    return exact


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
    if is_true(rec.get("test")):
        return None
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    event: dict[str, Any] = {
        "id": order_id(text(rec.get("id"))),
        "type": "order_created",
        "timestamp_ms": timestamp_ms(rec.get("createdAt"), now_ms),
    }
    journey = rec.get("customerJourneySummary")
    click = url_param(text(_get(journey, "lastVisit", "landingPage")), "oppref")
    if not click:
        attributes = rec.get("customAttributes")
        values = [
            _get(attribute, "value")
            for attribute in (attributes if isinstance(attributes, list) else ())
            if _get(attribute, "key") == "oppref" and _get(attribute, "value") is not None
        ]  # customAttributes[?key == 'oppref'].value | [0]: the projection leaves nulls out
        click = text(values[0]) if values else None
    if not click:
        click = url_param(text(_get(journey, "firstVisit", "landingPage")), "oppref")
    if click and click.strip():
        event["oppref"] = click
    url = source_url(text(rec.get("statusPageUrl")))
    if url is not None:
        event["source_url"] = url
    event["action_source"] = "physical_store" if rec.get("sourceName") == "pos" else "web"
    if url is None and event["action_source"] == "web":
        raise Skip("a web event needs a source_url")

    billing, shipping, customer = (
        _object(rec.get(name)) for name in ("billingAddress", "shippingAddress", "customer")
    )

    def address(name: str, *others: dict[str, Any]) -> str | None:
        return first(*(text(part.get(name)) for part in (billing, shipping, *others)))

    user: dict[str, Any] = {}
    for key, value in (
        ("emails_sha256", email_hash(first(text(rec.get("email")), text(customer.get("email"))))),
        ("phone_numbers_sha256", phone_hash(first(text(rec.get("phone")), address("phone")))),
        ("first_names_sha256", name_hash(address("firstName", customer))),
        ("last_names_sha256", name_hash(address("lastName", customer))),
        ("cities", place(address("city"))),
        ("regions", place(address("provinceCode"))),
        ("postal_codes", postal_code(address("zip"))),
        ("countries", country(address("countryCodeV2"))),
        ("external_ids_sha256", id_hash(text(customer.get("id")))),
    ):
        if value is not None:
            user[key] = [value]
    ip = ip_address(text(rec.get("clientIp")))
    if ip:
        user["ip_address"] = ip
    if user:
        event["user"] = user

    code = first(
        text(_get(rec, "totalPriceSet", "shopMoney", "currencyCode")), text(rec.get("currencyCode"))
    )
    data, power = money(code, _amount(_get(rec, "totalPriceSet", "shopMoney", "amount")))
    items = rec.get("lineItems")
    if isinstance(items, list):  # (lineItems[] of anything else is null: no contents)
        contents = []
        for item in items:
            if not isinstance(item, dict):
                # The preset's projection (lineItems[].{...}) leaves a null out and makes
                # another value an item of nulls: an empty one.
                if item is not None:
                    contents.append({})
                continue
            content: dict[str, Any] = {}
            item_id = first(
                text(item.get("sku")), text(_get(item, "product", "id")), text(item.get("id"))
            )
            if item_id := optional_text(item_id):
                content["id"] = item_id
            if name := optional_text(first(text(item.get("title")), text(item.get("name")))):
                content["name"] = name
            if (count := quantity(item.get("quantity"))) is not None:
                content["quantity"] = count
            price = _amount(_get(item, "discountedUnitPriceSet", "shopMoney", "amount"))
            if price is None:
                price = _amount(_get(item, "originalUnitPriceSet", "shopMoney", "amount"))
            if price is not None:
                content["amount"] = item_amount(price, power)
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
    written: Any = None  # the STATE last written
    sent = 0

    def post() -> None:
        nonlocal sent, written
        body = json.dumps({"validate_only": False, "events": batch}).encode()
        response = session.post(url, data=body, timeout=60)
        if response.status_code != 200:
            sys.exit(f"HTTP {response.status_code}: {response.text[:500]}")
        sent += len(batch)
        batch.clear()
        if state is not None and state is not written:
            sys.stdout.write(json.dumps(state) + "\n")
            written = state

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
    if state is not None and state is not written:  # (a STATE after the last batch was sent)
        sys.stdout.write(json.dumps(state) + "\n")
    sys.stdout.flush()
    print(f"raw floor: sent={sent} skipped={skipped}", file=sys.stderr)


if __name__ == "__main__":
    main()
