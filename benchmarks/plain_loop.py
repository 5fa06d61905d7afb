"""The plain-loop floor: the least work the job needs in CPython, written as one plain loop.

What any target must do for the tap-shopify/orders preset's events, done the cheapest way this
interpreter allows: decode each line with msgspec straight into typed structs holding only the
fields the preset reads (amounts as exact Decimals), skip test orders, parse the time and keep
it only within the API's window, turn money into exact minor units (any ISO 4217 currency),
normalise and SHA-256 the identifiers by the official rules (leaving out a value that fails
them), build the event as a dict with the preset's `||` fallbacks, serialise request bodies of
--batch-size events with orjson, post them from --in-flight threads over keep-alive `requests`
sessions (the target's default is 4 in flight, so that neither waits for the sandbox's answers
with its CPU idle), and write the latest STATE once every batch before it is accepted.

It checks nothing it need not (no schema, no contract, no retries, no dedup, no report of why
a record was dropped), but it drops and counts a record the API would refuse, as the target
rejects it: a field of another type than tap-shopify's, no id, a time outside the window, a
web order without a URL, an unknown currency, an amount finer than the currency's minor unit.
So a stream from another generator runs through it (one bad event would fail a whole batch).
On the records of benchmarks/generate.py (every shape) it sends exactly the events the target
sends (benchmarks/agree.py, tests/test_benchmark_floors.py).

    python benchmarks/plain_loop.py --api-url URL --pixel-id PX --api-key KEY < stream.singer
    python benchmarks/plain_loop.py --config target-config.json < stream.singer  # the same job
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import floor_rules
import msgspec
import orjson
import raw_floor
import requests
from floor_rules import (
    MAX_ID,
    MAX_MINOR,
    URL,
    Skip,
    country,
    email_hash,
    id_hash,
    ip_address,
    item_amount,
    money,
    name_hash,
    phone_hash,
    place,
    postal_code,
    timestamp_ms,
    url_param,
    without_query_and_credentials,
)


# gc=False: the collector need not track what holds no reference cycle (scalars, structs, lists).
class Money(msgspec.Struct, gc=False):
    amount: Decimal | None = None
    currencyCode: str | None = None


class MoneySet(msgspec.Struct, gc=False):
    shopMoney: Money | None = None


class Product(msgspec.Struct, gc=False):
    id: str | None = None


class LineItem(msgspec.Struct, gc=False):
    id: str | None = None
    sku: str | None = None
    title: str | None = None
    name: str | None = None
    quantity: int | None = None
    product: Product | None = None
    discountedUnitPriceSet: MoneySet | None = None
    originalUnitPriceSet: MoneySet | None = None


class Address(msgspec.Struct, gc=False):
    phone: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    city: str | None = None
    provinceCode: str | None = None
    zip: str | None = None
    countryCodeV2: str | None = None


class Customer(msgspec.Struct, gc=False):
    id: str | None = None
    email: str | None = None
    firstName: str | None = None
    lastName: str | None = None


class Attribute(msgspec.Struct, gc=False):
    key: str | None = None
    value: str | None = None


class Visit(msgspec.Struct, gc=False):
    landingPage: str | None = None


class Journey(msgspec.Struct, gc=False):
    lastVisit: Visit | None = None
    firstVisit: Visit | None = None


class Order(msgspec.Struct, gc=False):
    id: str | None = None
    createdAt: str | None = None
    test: bool | None = None
    email: str | None = None
    phone: str | None = None
    clientIp: str | None = None
    statusPageUrl: str | None = None
    sourceName: str | None = None
    currencyCode: str | None = None
    totalPriceSet: MoneySet | None = None
    lineItems: list[LineItem] | None = None
    customer: Customer | None = None
    billingAddress: Address | None = None
    shippingAddress: Address | None = None
    customAttributes: list[Attribute] | None = None
    customerJourneySummary: Journey | None = None


class Message(msgspec.Struct, gc=False):
    type: str
    record: Order | None = None
    value: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET  # a STATE's, as the tap wrote it


_DECODER = msgspec.json.Decoder(Message)
_NO_ADDRESS = Address()
_NO_CUSTOMER = Customer()


def shop_amount(money: MoneySet | None) -> Decimal | None:
    shop = money.shopMoney if money is not None else None
    return shop.amount if shop is not None else None


def to_event(message: Message, now_ms: int | None = None) -> dict[str, Any] | None:
    """The tap-shopify/orders preset's event for a RECORD, by hand (its `||` fallbacks
    included), or None for a test order; raises Skip where the target would send no event."""
    order = message.record
    if order is None:
        raise Skip("a RECORD without a record")
    if order.test:
        return None
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    # (the rules of floor_rules.order_id, source_url, required_text and quantity, written out
    # here: a call a field is a tenth of this loop's work on a sparse order)
    oid = order.id.strip() if order.id else ""
    if not oid or len(oid) > MAX_ID:
        raise Skip("id")
    event: dict[str, Any] = {
        "id": oid,
        "type": "order_created",
        "timestamp_ms": timestamp_ms(order.createdAt, now_ms),
    }
    journey = order.customerJourneySummary
    click = (
        url_param(journey.lastVisit.landingPage, "oppref")
        if journey and journey.lastVisit
        else None
    )
    if not click and order.customAttributes:
        # customAttributes[?key == 'oppref'].value | [0]: the projection leaves nulls out
        click = next(
            (a.value for a in order.customAttributes if a.key == "oppref" and a.value is not None),
            None,
        )
    if not click and journey and journey.firstVisit:
        click = url_param(journey.firstVisit.landingPage, "oppref")
    if click and click.strip():
        event["oppref"] = click
    url = order.statusPageUrl
    if url and not url.isspace():  # (only spaces is no value)
        url = without_query_and_credentials(url.strip())
        if not url or len(url) > 8192 or not URL.fullmatch(url):
            raise Skip("source_url")
        event["source_url"] = url
    else:
        url = None
    event["action_source"] = "physical_store" if order.sourceName == "pos" else "web"
    if not url and event["action_source"] == "web":
        raise Skip("a web event needs a source_url")

    billing = order.billingAddress or _NO_ADDRESS
    shipping = order.shippingAddress or _NO_ADDRESS
    customer = order.customer or _NO_CUSTOMER
    user: dict[str, Any] = {}
    if value := email_hash(order.email or customer.email):
        user["emails_sha256"] = [value]
    if value := phone_hash(order.phone or billing.phone or shipping.phone):
        user["phone_numbers_sha256"] = [value]
    if value := name_hash(billing.firstName or shipping.firstName or customer.firstName):
        user["first_names_sha256"] = [value]
    if value := name_hash(billing.lastName or shipping.lastName or customer.lastName):
        user["last_names_sha256"] = [value]
    if value := place(billing.city or shipping.city):
        user["cities"] = [value]
    if value := place(billing.provinceCode or shipping.provinceCode):
        user["regions"] = [value]
    if value := postal_code(billing.zip or shipping.zip):
        user["postal_codes"] = [value]
    if value := country(billing.countryCodeV2 or shipping.countryCodeV2):
        user["countries"] = [value]
    if value := id_hash(customer.id):
        user["external_ids_sha256"] = [value]
    ip = ip_address(order.clientIp)
    if ip:
        user["ip_address"] = ip
    if user:
        event["user"] = user

    shop = order.totalPriceSet.shopMoney if order.totalPriceSet else None
    code = (shop.currencyCode if shop else None) or order.currencyCode
    data, power = money(code, shop.amount if shop else None)
    if order.lineItems is not None:
        contents = []
        for item in order.lineItems:
            content: dict[str, Any] = {}
            item_id = item.sku or (item.product.id if item.product else None) or item.id
            if item_id and (item_id := item_id.strip()):  # (blank: no value)
                content["id"] = item_id
            name = item.title or item.name
            if name and (name := name.strip()):
                content["name"] = name
            count = item.quantity
            if count is not None:
                if not 0 <= count <= MAX_MINOR:
                    raise Skip("quantity")
                content["quantity"] = count
            price = shop_amount(item.discountedUnitPriceSet)
            if price is None:
                price = shop_amount(item.originalUnitPriceSet)
            if price is not None:
                content["amount"] = item_amount(price, power)
            contents.append(content)
        data["contents"] = contents
    event["data"] = data
    return event


def record_event(line: bytes) -> dict[str, Any] | None:
    """The event of a RECORD line, None for a test order or another message; raises Skip."""
    try:
        message = _DECODER.decode(line)
    except msgspec.DecodeError:  # not JSON, or values of other types than tap-shopify's
        return raw_floor.event_from_line(line)
    return to_event(message) if message.type == "RECORD" else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="the target's config file: the settings below from it")
    parser.add_argument("--api-url")
    parser.add_argument("--pixel-id")
    parser.add_argument("--api-key")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument(
        "--default-phone-region", default="US", help="'' reads numbers as written (%(default)s)"
    )
    args = parser.parse_args()
    if args.config:
        config = json.loads(Path(args.config).read_text())
        args.api_url = config.get("api_url")
        args.pixel_id = config.get("pixel_id")
        args.api_key = config.get("api_key")
        args.batch_size = config.get("batch_size", 1000)
        args.in_flight = config.get("max_concurrent_requests", 4)
        args.default_phone_region = config.get("default_phone_region")
    if not (args.api_url and args.pixel_id and args.api_key):
        parser.error("give --config, or --api-url, --pixel-id and --api-key")
    floor_rules.PHONE_REGION = (args.default_phone_region or "").upper() or None
    url = f"{args.api_url}?pid={args.pixel_id}"
    headers = {"Authorization": f"Bearer {args.api_key}", "Content-Type": "application/json"}
    local = threading.local()
    out = sys.stdout.buffer

    def post(events: list[dict[str, Any]]) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers.update(headers)
        body = orjson.dumps({"validate_only": False, "events": events})
        response = session.post(url, data=body, timeout=60)
        if response.status_code != 200:
            raise SystemExit(f"HTTP {response.status_code}: {response.text[:500]}")
        return len(events)

    pool = ThreadPoolExecutor(args.in_flight)
    pending: deque[tuple[Future[int], bytes | None]] = deque()  # in order, with the STATE after
    batch: list[dict[str, Any]] = []
    state: bytes | None = None
    sent = 0

    def settle(keep: int) -> None:
        """Wait for the oldest batches until at most `keep` are in flight; write their STATE."""
        nonlocal sent
        while len(pending) > keep:
            future, after = pending.popleft()
            sent += future.result()
            if after is not None and not pending:
                out.write(after + b"\n")

    skipped = 0
    gc.freeze()  # what the imports built lives as long as the process (the target does the same)
    for line in sys.stdin.buffer:
        try:
            message: Message | None = _DECODER.decode(line)
        except msgspec.DecodeError:  # not JSON, or values of other types than tap-shopify's
            message = None
        if message is None or message.type == "RECORD":
            try:
                event = raw_floor.event_from_line(line) if message is None else to_event(message)
            except Skip:
                skipped += 1
                continue
            if event is None:  # a test order
                continue
            batch.append(event)
            if len(batch) >= args.batch_size:
                pending.append((pool.submit(post, batch), state))
                batch = []
                settle(args.in_flight)
        elif message.type == "STATE" and message.value is not msgspec.UNSET:
            state = bytes(message.value)
    if batch:
        pending.append((pool.submit(post, batch), None))
    settle(0)
    if state is not None:
        out.write(state + b"\n")
    out.flush()
    pool.shutdown()
    print(f"plain loop: sent={sent} skipped={skipped}", file=sys.stderr)


if __name__ == "__main__":
    main()
