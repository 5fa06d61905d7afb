"""The raw floor: a plain Python loop doing the least work that still sends the same events.

Reads Singer lines from stdin with the stdlib `json` (floats as Decimal, as money needs), maps
each Shopify order to the event the target would send with direct dictionary lookups (same
fields, same SHA-256 hashes, same minor-unit amounts, no checks beyond what the data needs),
posts batches of --batch-size events with `requests` over one keep-alive session, and writes
the latest STATE after each accepted batch. No framework, no schema validation, no retries:
what is left is the cost of reading, mapping and posting, which nothing can go below.

    python benchmarks/raw_floor.py --api-url URL --pixel-id PX --api-key KEY < stream.singer
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import string
import sys
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

# ISO 4217 exponents of the currencies the generator writes.
EXPONENT = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "JPY": 0, "KWD": 3}
CALLING_CODES = {"US": "1", "CA": "1", "GB": "44", "DE": "49", "JP": "81", "AU": "61", "KW": "965"}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def minor(amount: Decimal | int, currency: str) -> int:
    return int(Decimal(amount).scaleb(EXPONENT[currency]))


def phone_digits(phone: str) -> str:
    digits = "".join(c for c in phone if c.isdigit())
    return digits if phone.lstrip().startswith("+") else "1" + digits


_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def person_name(name: str) -> str:
    """The official rule: lowercased, whitespace and ASCII punctuation removed."""
    return "".join(name.lower().translate(_NO_PUNCTUATION).split())


def to_event(rec: dict[str, Any]) -> dict[str, Any]:
    """The tap-shopify/orders preset's event, by hand, for the generator's records."""
    created = dt.datetime.fromisoformat(rec["createdAt"].replace("Z", "+00:00"))
    event: dict[str, Any] = {
        "id": rec["id"],
        "type": "order_created",
        "timestamp_ms": int(created.timestamp() * 1000),
    }
    journey = rec.get("customerJourneySummary") or {}
    landing = (journey.get("lastVisit") or {}).get("landingPage")
    if landing:
        oppref = parse_qs(urlsplit(landing).query).get("oppref")
        if oppref:
            event["oppref"] = oppref[0]
    event["source_url"] = rec["statusPageUrl"]
    event["action_source"] = "physical_store" if rec["sourceName"] == "pos" else "web"
    address = rec.get("billingAddress") or {}
    user = {"emails_sha256": [sha(rec["email"].strip().lower())]}
    phone = rec.get("phone") or address.get("phone")
    if phone:
        user["phone_numbers_sha256"] = [sha(phone_digits(phone))]
    user["external_ids_sha256"] = [sha(rec["customer"]["id"])]
    user["first_names_sha256"] = [sha(person_name(address["firstName"]))]
    user["last_names_sha256"] = [sha(person_name(address["lastName"]))]
    user["cities"] = [address["city"].strip()]
    user["regions"] = [address["provinceCode"].strip()]
    user["postal_codes"] = [address["zip"].strip()]
    user["countries"] = [address["countryCodeV2"].upper()]
    if rec.get("clientIp"):
        user["ip_address"] = rec["clientIp"]
    event["user"] = user
    money = rec["totalPriceSet"]["shopMoney"]
    currency = money["currencyCode"]
    event["data"] = {
        "type": "contents",
        "amount": minor(money["amount"], currency),
        "currency": currency,
        "contents": [
            {
                "id": item.get("sku") or item["product"]["id"],
                "name": item["title"],
                "quantity": item["quantity"],
                "amount": minor(item["discountedUnitPriceSet"]["shopMoney"]["amount"], currency),
            }
            for item in rec["lineItems"]
        ],
    }
    return event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--pixel-id", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
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

    for line in sys.stdin.buffer:
        message = json.loads(line, parse_float=Decimal)
        kind = message["type"]
        if kind == "RECORD":
            record = message["record"]
            if record.get("test"):
                continue
            batch.append(to_event(record))
            if len(batch) >= args.batch_size:
                post()
        elif kind == "STATE":
            state = message["value"]
    if batch:
        post()
    sys.stdout.flush()
    print(f"raw floor: sent={sent}", file=sys.stderr)


if __name__ == "__main__":
    main()
