"""A seeded, realistic Singer stream of Shopify orders, as tap-shopify 3.x (GraphQL) emits them.

The SCHEMA has the shape of tap-shopify 3.x `orders` (130+ top-level properties, money as
`*Set.{shopMoney,presentmentMoney}.{amount,currencyCode}` numbers, addresses, line items with
their own money sets and tax lines), so that record validation costs what it costs in real
runs: the target reads about 20 of those fields, the framework validates all of them.

Records: 1-4 line items, several currencies (JPY without decimals, KWD with three), createdAt
within the last few hours written with various UTC offsets, emails in mixed case, phones in
several formats, IPv4 and IPv6 client addresses, an oppref in the landing page of most orders.
Customers repeat (about two orders each), as in a real shop. A STATE every 1,000 records and
one at the end.

Two record shapes under the same SCHEMA: `full` (~10 KiB: every field the tap selects, nulls
and empty lists written out) and `sparse` (~2 KiB: what most orders look like when a tap leaves
out absent optional fields: ids, times, the order's money, customer, one address, line items,
the last visit). Both carry every field the tap-shopify/orders preset reads, so both map to
the same events.

    python benchmarks/generate.py --records 20000 --output /tmp/orders.singer
    python benchmarks/generate.py --records 20000 --shape sparse --output /tmp/sparse.singer
    python benchmarks/generate.py --shape sparse --nullable anyof --output /tmp/anyof.singer
    python benchmarks/generate.py --records 1000000 | target-openai-capi --config ...
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

STREAM = "orders"
STATE_EVERY = 1000

# Currency -> decimals (ISO 4217 exponent); weights say how common each is in the stream.
CURRENCIES = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "JPY": 0, "KWD": 3}
CURRENCY_WEIGHTS = [40, 20, 10, 8, 7, 10, 5]
# Offsets shops and buyers really write timestamps with (Shopify returns UTC "Z").
OFFSETS = ["Z", "Z", "Z", "-08:00", "-05:00", "+01:00", "+09:00", "+05:30", "+10:00"]
COUNTRIES = [
    ("US", "United States", "CA", "California", "94107", "San Francisco", "+1"),
    ("US", "United States", "NY", "New York", "10001", "New York", "+1"),
    ("CA", "Canada", "ON", "Ontario", "M5V 2T6", "Toronto", "+1"),
    ("GB", "United Kingdom", "ENG", "England", "SW1A 1AA", "London", "+44"),
    ("DE", "Germany", "BE", "Berlin", "10115", "Berlin", "+49"),
    ("JP", "Japan", "JP-13", "Tokyo", "100-0001", "Chiyoda", "+81"),
    ("AU", "Australia", "NSW", "New South Wales", "2000", "Sydney", "+61"),
    ("KW", "Kuwait", "KU", "Al Asimah", "13001", "Kuwait City", "+965"),
]
# Country -> (calling code, leading digits of valid national numbers, national length): numbers
# libphonenumber accepts, so the target pays for parsing them, not for rejecting them.
PHONE_PLANS = {
    "US": ("+1", ["650", "415", "212", "312", "646"], 10),
    "CA": ("+1", ["416", "647", "604"], 10),
    "GB": ("+44", ["7400", "7911", "7723"], 10),
    "DE": ("+49", ["3012", "1512", "1701"], 11),
    "JP": ("+81", ["90", "80", "70"], 10),
    "AU": ("+61", ["412", "404", "2"], 9),
    "KW": ("+965", ["50", "60", "99"], 8),
}
FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kofi"]
LAST = ["Silva", "O'Brien", "Müller", "Tanaka", "Smith", "Nguyen", "García", "Kowalski", "Lee"]
PRODUCTS = [
    ("TEE-BLK-M", "Black tee"),
    ("TEE-WHT-L", "White tee"),
    ("MUG-11OZ", "Mug 11oz"),
    ("CAP-NAVY", "Navy cap"),
    ("HOOD-GRY-XL", "Grey hoodie"),
    ("SOCK-3PK", "Socks (3 pack)"),
    ("BAG-TOTE", "Canvas tote"),
    ("STK-SET", "Sticker set"),
    (None, "Gift wrap"),
]
VENDORS = ["Acme Apparel", "Blue Mug Co", "Northwind", "Contoso Goods"]
SOURCES = ["web", "web", "web", "web", "shopify_draft_order", "pos", "iphone"]
GATEWAYS = ["shopify_payments", "paypal", "gift_card", "manual"]
LANDINGS = [
    "https://shop.example.com/products/tee?utm_source=chatgpt&oppref={}",
    "/collections/all?oppref={}&utm_medium=referral",
    "https://shop.example.com/?oppref={}",
]


# --- schema ------------------------------------------------------------------------------------


def _n(kind: str, **extra: Any) -> dict[str, Any]:
    """A nullable property of one JSON type."""
    return {"type": ["null", kind], **extra}


def _obj(**properties: Any) -> dict[str, Any]:
    return {"type": ["null", "object"], "properties": properties}


def _arr(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": ["null", "array"], "items": items}


_S, _B, _I, _F = _n("string"), _n("boolean"), _n("integer"), _n("number")
_DT = _n("string", format="date-time")
_MONEY = _obj(amount=_F, currencyCode=_S)
_MONEY_SET = _obj(presentmentMoney=_MONEY, shopMoney=_MONEY)
_ADDRESS = _obj(
    **{
        name: _S
        for name in [
            "address1",
            "address2",
            "city",
            "company",
            "country",
            "countryCodeV2",
            "firstName",
            "formattedArea",
            "id",
            "lastName",
            "name",
            "phone",
            "province",
            "provinceCode",
            "timeZone",
            "validationResultSummary",
            "zip",
        ]
    },
    coordinatesValidated=_B,
    latitude=_F,
    longitude=_F,
)
_TAX_LINE = {
    "type": ["null", "object"],
    "properties": {
        "channelLiable": _B,
        "priceSet": _MONEY_SET,
        "rate": _F,
        "ratePercentage": _F,
        "source": _S,
        "title": _S,
    },
}
_ATTRIBUTES = _arr({"type": "object", "properties": {"key": _S, "value": _S}})
_VISIT = _obj(
    id=_S,
    landingPage=_S,
    referrerUrl=_S,
    source=_S,
    sourceType=_S,
    occurredAt=_DT,
    utmParameters=_obj(campaign=_S, content=_S, medium=_S, source=_S, term=_S),
)
_LINE_ITEM = {
    "type": ["null", "object"],
    "properties": {
        "id": _S,
        "sku": _S,
        "title": _S,
        "name": _S,
        "variantTitle": _S,
        "vendor": _S,
        "quantity": _I,
        "currentQuantity": _I,
        "unfulfilledQuantity": _I,
        "refundableQuantity": _I,
        "requiresShipping": _B,
        "taxable": _B,
        "isGiftCard": _B,
        "merchantEditable": _B,
        "product": _obj(id=_S, title=_S, productType=_S),
        "variant": _obj(id=_S, sku=_S, title=_S, barcode=_S),
        "originalUnitPriceSet": _MONEY_SET,
        "discountedUnitPriceSet": _MONEY_SET,
        "originalTotalSet": _MONEY_SET,
        "discountedTotalSet": _MONEY_SET,
        "taxLines": _arr(_TAX_LINE),
        "customAttributes": _ATTRIBUTES,
        "discountAllocations": _arr(
            {"type": "object", "properties": {"allocatedAmountSet": _MONEY_SET}}
        ),
    },
}
# Money sets of an order; every one is validated, only totalPriceSet is read.
MONEY_SET_FIELDS = [
    "cartDiscountAmountSet",
    "currentCartDiscountAmountSet",
    "currentShippingPriceSet",
    "currentSubtotalPriceSet",
    "currentTotalAdditionalFeesSet",
    "currentTotalDiscountsSet",
    "currentTotalDutiesSet",
    "currentTotalPriceSet",
    "currentTotalTaxSet",
    "netPaymentSet",
    "originalTotalAdditionalFeesSet",
    "originalTotalDutiesSet",
    "originalTotalPriceSet",
    "refundDiscrepancySet",
    "subtotalPriceSet",
    "totalCapturableSet",
    "totalDiscountsSet",
    "totalOutstandingSet",
    "totalPriceSet",
    "totalReceivedSet",
    "totalRefundedSet",
    "totalRefundedShippingSet",
    "totalShippingPriceSet",
    "totalTaxSet",
    "totalTipReceivedSet",
]
_STRING_FIELDS = [
    "cancelReason",
    "clientIp",
    "confirmationNumber",
    "currencyCode",
    "customerLocale",
    "discountCode",
    "displayFinancialStatus",
    "displayFulfillmentStatus",
    "email",
    "legacyResourceId",
    "name",
    "note",
    "phone",
    "poNumber",
    "presentmentCurrencyCode",
    "registeredSourceUrl",
    "returnStatus",
    "sourceIdentifier",
    "sourceName",
    "statusPageUrl",
]
_BOOL_FIELDS = [
    "billingAddressMatchesShippingAddress",
    "canMarkAsPaid",
    "canNotifyCustomer",
    "capturable",
    "closed",
    "confirmed",
    "customerAcceptsMarketing",
    "dutiesIncluded",
    "edited",
    "estimatedTaxes",
    "fulfillable",
    "fullyPaid",
    "hasTimelineComment",
    "refundable",
    "requiresShipping",
    "restockable",
    "taxExempt",
    "taxesIncluded",
    "test",
    "unpaid",
]
_DATETIME_FIELDS = ["cancelledAt", "closedAt", "createdAt", "processedAt", "updatedAt"]


def build_schema() -> dict[str, Any]:
    """The orders stream schema (tap-shopify 3.x shape)."""
    props: dict[str, Any] = {"id": {"type": "string"}}
    props.update({name: _S for name in _STRING_FIELDS})
    props.update({name: _B for name in _BOOL_FIELDS})
    props.update({name: _DT for name in _DATETIME_FIELDS})
    props.update({name: _MONEY_SET for name in MONEY_SET_FIELDS})
    props.update(
        {
            "currentSubtotalLineItemsQuantity": _I,
            "subtotalLineItemsQuantity": _I,
            "currentTotalWeight": _F,
            "totalWeight": _F,
            "billingAddress": _ADDRESS,
            "shippingAddress": _ADDRESS,
            "app": _obj(id=_S, name=_S, icon=_obj(id=_S)),
            "cancellation": _obj(staffNote=_S),
            "channelInformation": _obj(id=_S, channelId=_S),
            "customer": _obj(
                id=_S, email=_S, phone=_S, firstName=_S, lastName=_S, numberOfOrders=_S
            ),
            "discountCodes": _arr({"type": "string"}),
            "paymentGatewayNames": _arr({"type": "string"}),
            "tags": _arr({"type": "string"}),
            "disputes": _arr(
                {"type": "object", "properties": {"id": _S, "initiatedAs": _S, "status": _S}}
            ),
            "fulfillmentsCount": _obj(count=_I, precision=_S),
            "transactionsCount": _obj(count=_I, precision=_S),
            "merchantBusinessEntity": _obj(
                id=_S,
                companyName=_S,
                displayName=_S,
                primary=_B,
                address=_obj(
                    address1=_S, address2=_S, city=_S, countryCode=_S, province=_S, zip=_S
                ),
            ),
            "shopifyProtect": _obj(eligibility=_obj(status=_S), status=_S),
            "shippingLine": _obj(
                title=_S,
                code=_S,
                source=_S,
                originalPriceSet=_MONEY_SET,
                discountedPriceSet=_MONEY_SET,
            ),
            "retailLocation": _obj(id=_S, name=_S),
            "paymentTerms": _obj(id=_S, paymentTermsName=_S, paymentTermsType=_S, dueInDays=_I),
            "riskLevel": _S,
            "risks": _arr({"type": "object", "properties": {"level": _S, "message": _S}}),
            "totalCashRoundingAdjustment": _obj(paymentSet=_MONEY_SET, refundSet=_MONEY_SET),
            "taxLines": _arr(_TAX_LINE),
            "additionalFees": _arr(
                {
                    "type": "object",
                    "properties": {"id": _S, "name": _S, "price": _MONEY_SET},
                }
            ),
            "fulfillments": _arr(
                {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "name": _S,
                        "status": _S,
                        "totalQuantity": _F,
                        "createdAt": _DT,
                        "updatedAt": _DT,
                        "deliveredAt": _DT,
                        "trackingInfo": _arr(
                            {
                                "type": "object",
                                "properties": {"number": _S, "company": _S, "url": _S},
                            }
                        ),
                    },
                }
            ),
            "refunds": _arr(
                {
                    "type": "object",
                    "properties": {"id": _S, "createdAt": _DT, "totalRefundedSet": _MONEY_SET},
                }
            ),
            "lineItems": _arr(_LINE_ITEM),
            "customAttributes": _ATTRIBUTES,
            "customerJourneySummary": _obj(
                customerOrderIndex=_I,
                daysToConversion=_I,
                ready=_B,
                firstVisit=_VISIT,
                lastVisit=_VISIT,
            ),
            "metafields": _arr(
                {
                    "type": "object",
                    "properties": {"namespace": _S, "key": _S, "value": _S, "type": _S},
                }
            ),
        }
    )
    return {"type": "object", "properties": props}


# --- records -----------------------------------------------------------------------------------


def _money(amount: Any, currency: str) -> dict[str, Any]:
    return {
        "presentmentMoney": {"amount": amount, "currencyCode": currency},
        "shopMoney": {"amount": amount, "currencyCode": currency},
    }


def _amount(cents: int, decimals: int) -> int | float:
    """A JSON number with the currency's decimals (tap-shopify 3.x emits numbers)."""
    return cents if decimals == 0 else round(cents / 10**decimals, decimals)


def _iso(moment: dt.datetime, offset: str) -> str:
    if offset == "Z":
        return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    sign = 1 if offset[0] == "+" else -1
    tz = dt.timezone(sign * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    return moment.astimezone(tz).isoformat(timespec="seconds")


def _customer(seed: int, index: int) -> dict[str, Any]:
    """Customer `index`, the same every time it is drawn (so repeat buyers look the same)."""
    rng = random.Random(seed * 1_000_003 + index)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    country = rng.choice(COUNTRIES)
    local = f"{first}.{last}{index}".replace("'", "").lower()
    email = f"{local}@{rng.choice(['example.com', 'mail.example.org', 'Example.NET'])}"
    if rng.random() < 0.3:  # people type their addresses in odd ways
        email = f"  {email.title()} "
    prefix, first_digits, length = PHONE_PLANS[country[0]]
    lead = rng.choice(first_digits)
    national = lead + str(rng.randrange(2, 10))  # exchanges and subscriber blocks avoid 0 and 1
    national += "".join(str(rng.randrange(10)) for _ in range(length - len(national)))
    phone_style = rng.random()
    if phone_style < 0.3:
        phone: str | None = None
    elif phone_style < 0.6:
        phone = f"{prefix}{national}"
    elif phone_style < 0.8:
        phone = f"{prefix} {national[:3]} {national[3:6]} {national[6:]}"
    elif country[6] == "+1":
        phone = f"({national[:3]}) {national[3:6]}-{national[6:]}"  # national format
    else:
        phone = f"{prefix}{national}"
    address = {
        "id": f"gid://shopify/MailingAddress/{index}",
        "firstName": first,
        "lastName": last,
        "name": f"{first} {last}",
        "company": None,
        "address1": f"{rng.randrange(1, 999)} Market Street",
        "address2": rng.choice([None, "Apt 4", "Suite 210"]),
        "city": country[5],
        "province": country[3],
        "provinceCode": country[2],
        "country": country[1],
        "countryCodeV2": country[0],
        "zip": country[4],
        "phone": phone,
        "formattedArea": f"{country[5]} {country[2]}, {country[1]}",
        "timeZone": None,
        "validationResultSummary": "no_issues",
        "coordinatesValidated": True,
        "latitude": round(rng.uniform(-60, 60), 6),
        "longitude": round(rng.uniform(-170, 170), 6),
    }
    return {
        "id": f"gid://shopify/Customer/{7_000_000 + index}",
        "email": email,
        "phone": phone,
        "firstName": first,
        "lastName": last,
        "address": address,
        "ip": (
            f"203.0.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"
            if rng.random() < 0.8
            else f"2001:db8::{rng.randrange(1, 0xFFFF):x}"
        ),
    }


def _line_item(
    rng: random.Random, order_n: int, k: int, currency: str, decimals: int
) -> tuple[int, dict[str, Any]]:
    product = rng.randrange(len(PRODUCTS))
    sku, title = PRODUCTS[product]
    quantity = rng.choice([1, 1, 1, 2, 2, 3])
    minor = 10**decimals
    if decimals == 0:  # yen prices are whole hundreds
        unit_cents = rng.randrange(5, 200) * 100
    else:  # 12.00, 12.50, 12.99 (12.990 in KWD)
        unit_cents = rng.randrange(5, 200) * minor + rng.choice([0, 50, 99]) * minor // 100
    unit = _amount(unit_cents, decimals)
    total = _amount(unit_cents * quantity, decimals)
    line_id = f"gid://shopify/LineItem/{order_n * 10 + k}"
    return unit_cents * quantity, {
        "id": line_id,
        "sku": sku,
        "title": title,
        "name": title if k % 2 else f"{title} - Default",
        "variantTitle": rng.choice([None, "M", "L", "Default Title"]),
        "vendor": rng.choice(VENDORS),
        "quantity": quantity,
        "currentQuantity": quantity,
        "unfulfilledQuantity": quantity,
        "refundableQuantity": quantity,
        "requiresShipping": sku is not None,
        "taxable": True,
        "isGiftCard": False,
        "merchantEditable": True,
        "product": {
            "id": f"gid://shopify/Product/{8_100_000 + product}",
            "title": title,
            "productType": "Apparel",
        },
        "variant": {
            "id": f"gid://shopify/ProductVariant/{9_100_000 + product}",
            "sku": sku,
            "title": "Default Title",
            "barcode": None,
        },
        "originalUnitPriceSet": _money(unit, currency),
        "discountedUnitPriceSet": _money(unit, currency),
        "originalTotalSet": _money(total, currency),
        "discountedTotalSet": _money(total, currency),
        "taxLines": [
            {
                "channelLiable": False,
                "priceSet": _money(_amount(unit_cents * quantity // 10, decimals), currency),
                "rate": 0.1,
                "ratePercentage": 10.0,
                "source": "Shopify",
                "title": "Sales tax",
            }
        ],
        "customAttributes": [],
        "discountAllocations": [],
    }


def make_order(
    rng: random.Random, seed: int, n: int, now: dt.datetime, customers: int
) -> dict[str, Any]:
    """Order number n: 1-4 line items, a repeat customer, created in the last few hours."""
    currency = rng.choices(list(CURRENCIES), CURRENCY_WEIGHTS)[0]
    decimals = CURRENCIES[currency]
    customer = _customer(seed, rng.randrange(customers))
    lines = []
    subtotal = 0
    for k in range(rng.choice([1, 1, 2, 2, 3, 4])):
        cents, line = _line_item(rng, n, k, currency, decimals)
        subtotal += cents
        lines.append(line)
    shipping = 0 if rng.random() < 0.4 else 5 * 10**decimals
    tax = subtotal // 10
    total = subtotal + shipping + tax
    created = now - dt.timedelta(seconds=rng.randrange(60, 5 * 3600))
    created_at = _iso(created, rng.choice(OFFSETS))
    updated_at = _iso(created + dt.timedelta(seconds=rng.randrange(0, 600)), "Z")
    source = rng.choice(SOURCES)
    oppref = f"opp_{rng.getrandbits(48):012x}" if rng.random() < 0.7 else None
    landing = rng.choice(LANDINGS).format(oppref) if oppref else "https://shop.example.com/"
    address = customer["address"]
    money = {name: _money(_amount(0, decimals), currency) for name in MONEY_SET_FIELDS}
    money.update(
        {
            "subtotalPriceSet": _money(_amount(subtotal, decimals), currency),
            "currentSubtotalPriceSet": _money(_amount(subtotal, decimals), currency),
            "totalShippingPriceSet": _money(_amount(shipping, decimals), currency),
            "currentShippingPriceSet": _money(_amount(shipping, decimals), currency),
            "totalTaxSet": _money(_amount(tax, decimals), currency),
            "currentTotalTaxSet": _money(_amount(tax, decimals), currency),
            "totalPriceSet": _money(_amount(total, decimals), currency),
            "currentTotalPriceSet": _money(_amount(total, decimals), currency),
            "originalTotalPriceSet": _money(_amount(total, decimals), currency),
            "totalReceivedSet": _money(_amount(total, decimals), currency),
            "netPaymentSet": _money(_amount(total, decimals), currency),
        }
    )
    order_id = 5_000_000_000 + n
    return {
        "id": f"gid://shopify/Order/{order_id}",
        "legacyResourceId": str(order_id),
        "name": f"#{1000 + n}",
        "confirmationNumber": f"{rng.getrandbits(40):010X}",
        "createdAt": created_at,
        "processedAt": created_at,
        "updatedAt": updated_at,
        "cancelledAt": None,
        "closedAt": None,
        "cancelReason": None,
        "test": False,
        "email": customer["email"],
        "phone": customer["phone"] if rng.random() < 0.5 else None,
        "clientIp": customer["ip"] if source != "pos" else None,
        "customerLocale": rng.choice(["en", "en-US", "de", "ja", "fr"]),
        "currencyCode": currency,
        "presentmentCurrencyCode": currency,
        "sourceName": source,
        "sourceIdentifier": None,
        "registeredSourceUrl": None,
        "statusPageUrl": (
            f"https://shop.example.com/7340032/orders/{rng.getrandbits(64):016x}/authenticate"
            f"?key={rng.getrandbits(64):016x}"
        ),
        "displayFinancialStatus": "PAID",
        "displayFulfillmentStatus": "UNFULFILLED",
        "returnStatus": "NO_RETURN",
        "discountCode": None,
        "note": None,
        "poNumber": None,
        **{name: False for name in _BOOL_FIELDS if name != "test"},
        "fullyPaid": True,
        "confirmed": True,
        "refundable": True,
        "requiresShipping": True,
        "fulfillable": True,
        "canNotifyCustomer": True,
        "customerAcceptsMarketing": rng.random() < 0.4,
        **money,
        "currentSubtotalLineItemsQuantity": sum(line["quantity"] for line in lines),
        "subtotalLineItemsQuantity": sum(line["quantity"] for line in lines),
        "currentTotalWeight": rng.randrange(100, 3000),
        "totalWeight": rng.randrange(100, 3000),
        "billingAddress": address,
        "shippingAddress": address if rng.random() < 0.8 else {**address, "address2": None},
        "app": {"id": "gid://shopify/App/580111", "name": "Online Store", "icon": {"id": None}},
        "cancellation": None,
        "channelInformation": {
            "id": "gid://shopify/ChannelInformation/1",
            "channelId": "gid://shopify/Channel/1",
        },
        "customer": {
            "id": customer["id"],
            "email": customer["email"].strip().lower(),
            "phone": customer["phone"],
            "firstName": customer["firstName"],
            "lastName": customer["lastName"],
            "numberOfOrders": str(rng.randrange(1, 9)),
        },
        "discountCodes": [],
        "paymentGatewayNames": [rng.choice(GATEWAYS)],
        "tags": rng.choice([[], ["wholesale"], ["vip", "repeat"]]),
        "disputes": [],
        "fulfillmentsCount": {"count": 0, "precision": "EXACT"},
        "transactionsCount": {"count": 1, "precision": "EXACT"},
        "merchantBusinessEntity": {
            "id": "gid://shopify/BusinessEntity/1",
            "companyName": "Example Shop LLC",
            "displayName": "Example Shop",
            "primary": True,
            "address": {
                "address1": "1 Main St",
                "address2": None,
                "city": "San Francisco",
                "countryCode": "US",
                "province": "CA",
                "zip": "94107",
            },
        },
        "shopifyProtect": {"eligibility": {"status": "NOT_ELIGIBLE"}, "status": "NOT_PROTECTED"},
        "shippingLine": {
            "title": "Standard",
            "code": "STANDARD",
            "source": "shopify",
            "originalPriceSet": _money(_amount(shipping, decimals), currency),
            "discountedPriceSet": _money(_amount(shipping, decimals), currency),
        },
        "retailLocation": None,
        "paymentTerms": None,
        "riskLevel": "LOW",
        "risks": [],
        "totalCashRoundingAdjustment": {
            "paymentSet": _money(0, currency),
            "refundSet": _money(0, currency),
        },
        "taxLines": [
            {
                "channelLiable": False,
                "priceSet": _money(_amount(tax, decimals), currency),
                "rate": 0.1,
                "ratePercentage": 10.0,
                "source": "Shopify",
                "title": "Sales tax",
            }
        ],
        "additionalFees": [],
        "fulfillments": [],
        "refunds": [],
        "lineItems": lines,
        "customAttributes": [],
        "customerJourneySummary": {
            "customerOrderIndex": rng.randrange(1, 5),
            "daysToConversion": rng.randrange(0, 14),
            "ready": True,
            "firstVisit": None,
            "lastVisit": {
                "id": f"gid://shopify/CustomerVisit/{n}",
                "landingPage": landing,
                "referrerUrl": rng.choice([None, "https://chatgpt.com/"]),
                "source": "chatgpt" if oppref else "direct",
                "sourceType": None,
                "occurredAt": _iso(created - dt.timedelta(minutes=rng.randrange(1, 90)), "Z"),
                "utmParameters": None,
            },
        },
        "metafields": [],
    }


# What a sparse order keeps: top-level fields, then the fields of its line items and address.
SPARSE_FIELDS = (
    "id", "legacyResourceId", "name", "createdAt", "processedAt", "updatedAt", "test", "email",
    "phone", "clientIp", "currencyCode", "sourceName", "statusPageUrl", "displayFinancialStatus",
    "subtotalPriceSet", "totalPriceSet", "totalTaxSet", "customer", "billingAddress",
    "lineItems", "customerJourneySummary", "tags",
)  # fmt: skip
SPARSE_LINE_ITEM = ("id", "sku", "title", "quantity", "product", "discountedUnitPriceSet")
SPARSE_ADDRESS = ("firstName", "lastName", "city", "provinceCode", "zip", "countryCodeV2", "phone")


def sparse_order(order: dict[str, Any]) -> dict[str, Any]:
    """The order as a tap that leaves out absent optional fields writes it (~2 KiB)."""
    out = {k: order[k] for k in SPARSE_FIELDS if order.get(k) not in (None, [])}
    out["lineItems"] = [
        {k: item[k] for k in SPARSE_LINE_ITEM if item.get(k) is not None}
        for item in order["lineItems"]
    ]
    for item in out["lineItems"]:
        item["product"] = {"id": item["product"]["id"]}
        item["discountedUnitPriceSet"] = {"shopMoney": item["discountedUnitPriceSet"]["shopMoney"]}
    address = order["billingAddress"]
    out["billingAddress"] = {k: address[k] for k in SPARSE_ADDRESS if address.get(k) is not None}
    landing = order["customerJourneySummary"]["lastVisit"]["landingPage"]
    out["customerJourneySummary"] = {"lastVisit": {"landingPage": landing}}
    return out


# Varied orders relabel a currency with another of the same exponent (the amounts stay valid).
SAME_EXPONENT = {
    "USD": ["CHF", "SEK", "INR", "BRL", "MXN", "NZD"],
    "EUR": ["PLN", "DKK", "CZK"],
    "GBP": ["NOK", "ZAR"],
    "CAD": ["SGD", "HKD"],
    "AUD": ["ILS"],
    "JPY": ["KRW", "ISK", "CLP"],
    "KWD": ["BHD", "OMR", "JOD"],
}


def varied_order(order: dict[str, Any], rng: random.Random, now: dt.datetime) -> dict[str, Any]:
    """A sparse order where what the tap-shopify/orders preset reads varies as in real shops:
    each `||` fallback taken (customer email, shipping address, customer names, product or line
    ids, line item names, original prices, the oppref from a cart attribute or the first visit),
    fields absent, 0 to 15 line items, free items, other currencies, times with fractions,
    identifiers the official rules leave out (a short phone, an email without "@", a zip with
    punctuation), X-Forwarded-For addresses; and a few orders the target rejects (outside the
    time window, an amount finer than the currency's minor unit, a web order without a page)
    or filters out (test)."""
    out = sparse_order(order)
    roll = rng.random

    def money(amount: Any, code: str | None) -> dict[str, Any]:
        shop: dict[str, Any] = {"amount": amount}
        if code is not None:
            shop["currencyCode"] = code
        return {"shopMoney": shop}

    currency = order["currencyCode"]
    if roll() < 0.3:
        currency = rng.choice(SAME_EXPONENT[currency])
    out["currencyCode"] = currency
    total = order["totalPriceSet"]["shopMoney"]["amount"]
    out["totalPriceSet"] = money(total, None if roll() < 0.1 else currency)

    # Line items: 0-15, built from the order's own so that their money fits the currency.
    source = order["lineItems"]
    count = rng.choice([0, 1, 1, 2, 2, 3, 4, 6, 8, 11, 15])
    items = []
    for k in range(count):
        full = source[k % len(source)]
        item: dict[str, Any] = {"id": f"{full['id']}-{k}", "quantity": full["quantity"]}
        if full["sku"] is not None and roll() >= 0.15:
            item["sku"] = full["sku"]
        if roll() >= 0.1:
            item["product"] = {"id": full["product"]["id"]}
        item["title" if roll() >= 0.1 else "name"] = full["title"]
        price = full["discountedUnitPriceSet"]["shopMoney"]["amount"]
        if roll() < 0.05:
            price = 0  # a free item: 0 is a value, not a reason to fall back
        key = "discountedUnitPriceSet" if roll() >= 0.1 else "originalUnitPriceSet"
        item[key] = money(price, currency)
        items.append(item)
    out["lineItems"] = items

    address = out.pop("billingAddress")
    kept_address = roll()
    if kept_address < 0.6:
        out["billingAddress"] = address
    elif kept_address < 0.85:
        out["shippingAddress"] = address
    elif kept_address < 0.95:
        out["billingAddress"] = {k: v for k, v in address.items() if k in ("phone", "zip")}
        out["shippingAddress"] = address
    if roll() < 0.1 and "countryCodeV2" in address:
        address["countryCodeV2"] = (
            "UK" if address["countryCodeV2"] == "GB" else address["countryCodeV2"].lower()
        )
    if roll() < 0.02:
        address["zip"] = address.get("zip", "") + "!"
    if roll() < 0.05:
        address["firstName"] = f"  {address.get('firstName', '')}-Marie "

    email = out.get("email")
    drop_email = roll()
    if drop_email < 0.1:
        out.pop("email", None)  # customer.email is the fallback
    elif drop_email < 0.13:
        out.pop("email", None)
        out["customer"] = {k: v for k, v in out["customer"].items() if k != "email"}
    elif drop_email < 0.15 and email:
        out["email"] = email.replace("@", " at ")
    phone = roll()
    if phone < 0.03:
        out["phone"] = "12345"
    elif phone < 0.06:
        out["phone"] = "+1.650.555.0134"
    elif phone < 0.09:
        out["phone"] = "00 44 7911 123456"

    journey = out["customerJourneySummary"]
    landing = journey["lastVisit"]["landingPage"]
    click = f"opp_{rng.getrandbits(40):010x}"
    where = roll()
    if where < 0.1:
        journey["lastVisit"]["landingPage"] = "https://shop.example.com/"
        out["customAttributes"] = [
            {"key": "gift", "value": "no"},
            {"key": "oppref", "value": click},
        ]
    elif where < 0.15:
        journey["lastVisit"] = {"landingPage": "https://shop.example.com/cart"}
        journey["firstVisit"] = {"landingPage": landing}
    elif where < 0.18:
        journey["lastVisit"]["landingPage"] = f"/?oppref={click}%2B1&x=1"  # percent-encoded
    if roll() < 0.05 and "clientIp" in out:
        out["clientIp"] = f"{out['clientIp']}, 10.0.0.1"

    created = dt.datetime.fromisoformat(out["createdAt"].replace("Z", "+00:00"))
    created += dt.timedelta(microseconds=rng.randrange(1_000_000))
    moment = roll()
    if moment < 0.1:
        out["createdAt"] = created.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")
    elif moment < 0.15:
        out["createdAt"] = created.isoformat(timespec="microseconds").replace("+00:00", "Z")
    elif moment < 0.17:
        out["createdAt"] = _iso(now - dt.timedelta(days=8), "Z")  # too old for the API
    elif moment < 0.18:
        out["createdAt"] = _iso(now + dt.timedelta(hours=1), "+02:00")  # too far ahead
    if roll() < 0.01 and currency in ("JPY", "KRW", "ISK", "CLP"):
        out["totalPriceSet"]["shopMoney"]["amount"] = total + 0.5  # finer than a yen
    if roll() < 0.03:
        out["test"] = True
    if roll() < 0.01 and out.get("sourceName") != "pos":
        # A web order without a page: the contract refuses its event (source_url is required
        # when action_source is 'web'), the slowest rejection to explain.
        out["sourceName"] = "web"
        out.pop("statusPageUrl", None)
        out.pop("customerJourneySummary", None)
        out.pop("customAttributes", None)
    return out


def nullable_as_alternatives(node: Any) -> Any:
    """The schema with each nullable `type: ["null", X]` written `anyOf: [{type: null},
    {type: X}]`, as singer-io and pipelinewise taps write a nullable column (--nullable anyof)."""
    if isinstance(node, list):
        return [nullable_as_alternatives(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: nullable_as_alternatives(value) for key, value in node.items()}
    types = out.get("type")
    if isinstance(types, list) and len(types) == 2 and "null" in types:
        (kind,) = [name for name in types if name != "null"]
        rest = {key: value for key, value in out.items() if key != "type"}
        return {"anyOf": [{"type": "null"}, {"type": kind, **rest}]}
    return out


def stream_lines(
    records: int,
    seed: int = 1,
    now: dt.datetime | None = None,
    shape: str = "full",
    nullable: str = "type-list",
) -> Iterator[bytes]:
    """SCHEMA, then `records` RECORD lines with a STATE every STATE_EVERY and at the end."""
    now = now or dt.datetime.now(dt.timezone.utc)
    rng = random.Random(seed)
    customers = max(1, records // 2)
    schema = build_schema()
    if nullable == "anyof":
        schema = nullable_as_alternatives(schema)
    yield orjson.dumps(
        {"type": "SCHEMA", "stream": STREAM, "schema": schema, "key_properties": ["id"]}
    )
    last = ""
    for n in range(records):
        record = make_order(rng, seed, n, now, customers)
        if shape == "sparse":
            record = sparse_order(record)
        elif shape == "varied":
            record = varied_order(record, random.Random(seed * 7_919 + n), now)
        last = record["updatedAt"]
        yield orjson.dumps({"type": "RECORD", "stream": STREAM, "record": record})
        if (n + 1) % STATE_EVERY == 0:
            yield _state(last, n + 1)
    if records % STATE_EVERY:
        yield _state(last, records)


def _state(updated_at: str, count: int) -> bytes:
    value = {"bookmarks": {STREAM: {"updatedAt": updated_at, "records": count}}}
    return orjson.dumps({"type": "STATE", "value": value})


def write_stream(
    out: BinaryIO, records: int, seed: int = 1, shape: str = "full", nullable: str = "type-list"
) -> None:
    """Write the stream to a binary file, one message per line."""
    buffer: list[bytes] = []
    for line in stream_lines(records, seed, shape=shape, nullable=nullable):
        buffer.append(line)
        if len(buffer) >= 500:
            out.write(b"\n".join(buffer) + b"\n")
            buffer.clear()
    if buffer:
        out.write(b"\n".join(buffer) + b"\n")
    out.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000, help="RECORD lines (%(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (%(default)s)")
    parser.add_argument("--output", help="file to write (default: standard output)")
    parser.add_argument(
        "--shape",
        choices=["full", "sparse", "varied"],
        default="full",
        help="record shape (%(default)s)",
    )
    parser.add_argument(
        "--nullable",
        choices=["type-list", "anyof"],
        default="type-list",
        help='how the SCHEMA writes a nullable property: type: ["null", X], or anyOf of the two '
        "(%(default)s)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.output:
        with open(args.output, "wb") as out:
            write_stream(out, args.records, args.seed, args.shape, args.nullable)
        took = time.monotonic() - started
        print(f"wrote {args.records} records to {args.output} in {took:.1f} s", file=sys.stderr)
    else:
        try:
            write_stream(sys.stdout.buffer, args.records, args.seed, args.shape, args.nullable)
        except BrokenPipeError:  # the reader stopped early (e.g. the target failed)
            sys.exit(1)


if __name__ == "__main__":
    main()
