"""The plain-loop floor: the least work the job needs in CPython, written as one plain loop.

What any target must do for the tap-shopify/orders preset's events, done the cheapest way this
interpreter allows: decode each line with msgspec straight into typed structs holding only the
fields the mapping reads (amounts as exact Decimals), skip test orders, parse the time, turn money
into minor units, normalise and SHA-256 the identifiers, build the event as a dict, serialise
request bodies of --batch-size events with orjson, post them from --in-flight threads over
keep-alive `requests` sessions (the target's default is 4 in flight, so that neither waits for
the sandbox's answers with its CPU idle), and write the latest STATE once every batch before it
is accepted. It checks nothing it need not
(no schema, no contract, no retries) and knows the generator's data (benchmarks/generate.py):
both record shapes map to the events the target sends for them.

    python benchmarks/plain_loop.py --api-url URL --pixel-id PX --api-key KEY < stream.singer
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import string
import sys
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import msgspec
import orjson
import requests

# ISO 4217 exponents of the currencies the generator writes.
POWER = {"USD": 100, "EUR": 100, "GBP": 100, "CAD": 100, "AUD": 100, "JPY": 1, "KWD": 1000}


class Money(msgspec.Struct):
    amount: Decimal
    currencyCode: str | None = None


class MoneySet(msgspec.Struct):
    shopMoney: Money


class Product(msgspec.Struct):
    id: str | None = None


class LineItem(msgspec.Struct):
    sku: str | None = None
    title: str | None = None
    quantity: int = 0
    product: Product | None = None
    discountedUnitPriceSet: MoneySet | None = None


class Address(msgspec.Struct):
    phone: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    city: str | None = None
    provinceCode: str | None = None
    zip: str | None = None
    countryCodeV2: str | None = None


class Customer(msgspec.Struct):
    id: str | None = None


class Visit(msgspec.Struct):
    landingPage: str | None = None


class Journey(msgspec.Struct):
    lastVisit: Visit | None = None


class Order(msgspec.Struct):
    id: str
    createdAt: str
    totalPriceSet: MoneySet
    test: bool = False
    email: str | None = None
    phone: str | None = None
    clientIp: str | None = None
    statusPageUrl: str | None = None
    sourceName: str | None = None
    lineItems: list[LineItem] = []
    customer: Customer | None = None
    billingAddress: Address | None = None
    customerJourneySummary: Journey | None = None


class Message(msgspec.Struct):
    type: str
    record: Order | None = None
    value: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET  # a STATE's, as the tap wrote it


_DECODER = msgspec.json.Decoder(Message)
_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def phone_digits(phone: str) -> str:
    digits = "".join(c for c in phone if c.isdigit())
    return digits if phone.lstrip().startswith("+") else "1" + digits  # national: US


def person_name(name: str) -> str:
    return "".join(name.lower().translate(_NO_PUNCTUATION).split())


def oppref(url: str) -> str | None:
    query = url.partition("?")[2].partition("#")[0]
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == "oppref" and value:
            return value
    return None


def to_event(order: Order) -> dict[str, Any]:
    """The tap-shopify/orders preset's event, by hand, for the generator's records."""
    created = dt.datetime.fromisoformat(order.createdAt.replace("Z", "+00:00"))  # (3.10)
    event: dict[str, Any] = {
        "id": order.id,
        "type": "order_created",
        "timestamp_ms": int(created.timestamp() * 1000),
    }
    journey = order.customerJourneySummary
    landing = journey.lastVisit.landingPage if journey and journey.lastVisit else None
    click = oppref(landing) if landing else None
    if click:
        event["oppref"] = click
    event["source_url"] = order.statusPageUrl
    event["action_source"] = "physical_store" if order.sourceName == "pos" else "web"
    address = order.billingAddress or Address()
    user: dict[str, Any] = {"emails_sha256": [sha(order.email.strip().lower())]}  # type: ignore[union-attr]
    phone = order.phone or address.phone
    if phone:
        user["phone_numbers_sha256"] = [sha(phone_digits(phone))]
    user["external_ids_sha256"] = [sha(order.customer.id)]  # type: ignore[union-attr,arg-type]
    user["first_names_sha256"] = [sha(person_name(address.firstName))]  # type: ignore[arg-type]
    user["last_names_sha256"] = [sha(person_name(address.lastName))]  # type: ignore[arg-type]
    user["cities"] = [address.city.strip()]  # type: ignore[union-attr]
    user["regions"] = [address.provinceCode.strip()]  # type: ignore[union-attr]
    user["postal_codes"] = [address.zip.strip()]  # type: ignore[union-attr]
    user["countries"] = [address.countryCodeV2.upper()]  # type: ignore[union-attr]
    if order.clientIp:
        user["ip_address"] = order.clientIp
    event["user"] = user
    money = order.totalPriceSet.shopMoney
    currency = money.currencyCode
    power = POWER[currency]  # type: ignore[index]
    event["data"] = {
        "type": "contents",
        "amount": int(money.amount * power),
        "currency": currency,
        "contents": [
            {
                "id": item.sku or item.product.id,  # type: ignore[union-attr]
                "name": item.title,
                "quantity": item.quantity,
                "amount": int(item.discountedUnitPriceSet.shopMoney.amount * power),  # type: ignore[union-attr]
            }
            for item in order.lineItems
        ],
    }
    return event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--pixel-id", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=4)
    args = parser.parse_args()
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

    for line in sys.stdin.buffer:
        message = _DECODER.decode(line)
        if message.type == "RECORD":
            order = message.record
            if order is None or order.test:
                continue
            batch.append(to_event(order))
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
    print(f"plain loop: sent={sent}", file=sys.stderr)


if __name__ == "__main__":
    main()
