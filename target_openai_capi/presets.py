"""Built-in stream mappings for common taps: `preset: <name>` on a stream entry starts from one.

Each preset is written against the records its source publishes (the shapes are named in the
comment above it and in docs/cookbook.md) and is tested on records of that shape in
tests/test_presets.py. Expressions fall back with JMESPath `||` where sources differ, and a
field that a source does not have evaluates to null and is left out of the event. A comparison
that fails is `false`, not null, so a chain of `(test && value)` ends in `|| `null``: a field
with no value is left out instead of being rejected as a boolean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# An `oppref` entry in a Shopify Admin GraphQL `Attribute` list ([{key, value}]).
_SHOPIFY_ATTRIBUTE_OPPREF = "(customAttributes[?key == 'oppref'].value | [0])"

# Shopify customer identifiers: billing address first (what the buyer typed at checkout).
_SHOPIFY_USER = {
    "first_name": "billingAddress.firstName || shippingAddress.firstName || customer.firstName",
    "last_name": "billingAddress.lastName || shippingAddress.lastName || customer.lastName",
    "city": "billingAddress.city || shippingAddress.city",
    "state": "billingAddress.provinceCode || shippingAddress.provinceCode",
    "zip": "billingAddress.zip || shippingAddress.zip",
    "country": "billingAddress.countryCodeV2 || shippingAddress.countryCodeV2",
    "external_id": "customer.id",
}

# tap-shopify 3.x (singer-io, GraphQL Admin API) `orders`: camelCase fields, money as
# `*Set.shopMoney.amount` numbers in the shop currency, `lineItems` already a list of line
# item objects (the tap unwraps the connection's edges), `test` true for test orders.
# The oppref comes from the landing page of the visit that converted, else from an order
# attribute named `oppref` that the storefront saved on the cart, else from the first visit.
# (tap-shopify 3.13.0 selects customerJourneySummary.lastVisit and order-level customAttributes,
# so the oppref arrives with the tap as published; it does not select firstVisit.)
SHOPIFY_ORDERS: dict[str, Any] = {
    "event_type": "order_created",
    "filter": "!test",
    "fields": {
        "id": "id",
        "timestamp": "createdAt",
        "oppref": (
            "url_param(customerJourneySummary.lastVisit.landingPage, 'oppref')"
            f" || {_SHOPIFY_ATTRIBUTE_OPPREF}"
            " || url_param(customerJourneySummary.firstVisit.landingPage, 'oppref')"
        ),
        "source_url": "statusPageUrl",
        # Point-of-sale orders happened in a shop, not on a web page.
        "action_source": "(sourceName == 'pos' && 'physical_store') || 'web'",
        "amount": "totalPriceSet.shopMoney.amount",
        "currency": "totalPriceSet.shopMoney.currencyCode || currencyCode",
        "contents": (
            "lineItems[].{id: sku || product.id || id, name: title || name, "
            "quantity: quantity, amount: discountedUnitPriceSet.shopMoney.amount "
            "|| originalUnitPriceSet.shopMoney.amount}"
        ),
        "email": "email || customer.email",
        "phone": "phone || billingAddress.phone || shippingAddress.phone",
        "ip_address": "clientIp",
        **_SHOPIFY_USER,
    },
}

# tap-shopify 3.x `abandoned_checkouts` (GraphQL AbandonedCheckout): no currencyCode, email or
# phone at the top level (they are in totalPriceSet and customer), line items as a list.
# tap-shopify 3.13.0 selects only customer.id and no customAttributes (OPTIONAL_PATHS).
# No source_url / action_source: the only URL, abandonedCheckoutUrl, is a recovery link that
# opens the buyer's checkout and must not leave the shop.
SHOPIFY_ABANDONED_CHECKOUTS: dict[str, Any] = {
    "event_type": "checkout_started",
    "fields": {
        "id": "id",
        "timestamp": "createdAt",
        "oppref": _SHOPIFY_ATTRIBUTE_OPPREF,
        "amount": "totalPriceSet.shopMoney.amount",
        "currency": "totalPriceSet.shopMoney.currencyCode",
        "contents": (
            "lineItems[].{id: sku || variant.id || id, name: title, quantity: quantity, "
            "amount: discountedUnitPriceSet.shopMoney.amount "
            "|| originalUnitPriceSet.shopMoney.amount}"
        ),
        "email": "customer.email",
        "phone": "customer.phone || billingAddress.phone || shippingAddress.phone",
        **_SHOPIFY_USER,
    },
}

# tap-stripe `subscriptions`. singer-io/tap-stripe emits `created`, `trial_start`, ... as
# date-time strings, a `plan` object (amount in minor units, lowercase currency) and `items`
# as a list of ids; taps that pass Stripe's API objects through emit epoch seconds and
# `items.data[].price`. Both work: timestamps take either form, prices fall back to `plan`.
# A trialing subscription is a trial_started; once it is active (or past due: it was created,
# a later payment failed) it is a subscription_created, at the trial's end if it had one.
# Other statuses (incomplete, canceled, ...) and test-mode objects are filtered out.
# The amount is one unit of the first price: JMESPath cannot multiply by the quantity.
STRIPE_SUBSCRIPTIONS: dict[str, Any] = {
    "event_type_from": "status",
    "event_types": {
        "trialing": "trial_started",
        "active": "subscription_created",
        "past_due": "subscription_created",
    },
    "filter": "livemode != `false` && contains(['trialing', 'active', 'past_due'], status)",
    "fields": {
        "id": "id",
        "timestamp": (
            "(status == 'trialing' && (trial_start || start_date || created))"
            " || trial_end || start_date || created"
        ),
        "oppref": "metadata.oppref",
        # (Stripe's minor units are not ISO 4217's for ISK and MGA: stripe_amount reads them)
        "amount": (
            "stripe_amount(items.data[0].price.unit_amount || plan.amount,"
            " items.data[0].price.currency || plan.currency)"
        ),
        "currency": "items.data[0].price.currency || plan.currency",
        "plan_id": "items.data[0].price.id || plan.id",
        "contents": (
            "items.data[].{id: price.id, name: price.nickname, quantity: quantity, "
            "amount: stripe_amount(price.unit_amount, price.currency)}"
        ),
        "external_id": "customer",
    },
}

# Segment warehouse `tracks` table, or one of its per-event tables (same columns plus the
# event's properties as snake_case columns): `id` is the messageId, `event_text` the name as
# tracked ("Order Completed"; `event` is its snake_case form), context fields flattened to
# `context_*` columns. Arrays such as `products` are stored as JSON strings, so no contents.
# The page URL of a tracks row when it is a web page's (http:// or https://), else null.
_WEB_PAGE = "web_page(context_page_url)"
_TRACKS_FIELDS: dict[str, str] = {
    "id": "id",
    "timestamp": "timestamp || original_timestamp",
    "oppref": "oppref || url_param(context_page_url, 'oppref')",
    # A table's own `source_url` / `amount` columns first (a model shaped for this target). A
    # page URL that is no web page's (`about:blank`, `file:` of a hybrid app, a relative path)
    # is none: the event goes without it rather than rejected.
    "source_url": f"source_url || {_WEB_PAGE}",
    # Only with a currency: a `value` or `price` property of an event that is no sale (a video
    # watched, a lead scored) would be an amount, and an amount without a currency rejects the
    # whole event; a sale tracked without its currency goes without its amount.
    "amount": "currency && (amount || total || revenue || value || price)",
    "currency": "currency",
    "email": "context_traits_email || email",
    "phone": "context_traits_phone || phone",
    "first_name": "context_traits_first_name || first_name",
    "last_name": "context_traits_last_name || last_name",
    "external_id": "user_id",
    "user_agent": "context_user_agent",
}
SEGMENT_TRACKS: dict[str, Any] = {
    "event_type_from": "event_text || event",
    "fields": {
        **_TRACKS_FIELDS,
        # Web when the event carries a page, mobile app when it carries an app (Segment's
        # mobile libraries set context.app); server-side events have neither.
        "action_source": (
            f"((source_url || {_WEB_PAGE}) && 'web') || (context_app_name && 'mobile_app')"
        ),
        "ip_address": "context_ip",
    },
}

# RudderStack warehouse `tracks` (and per-event) tables: Segment's layout, plus `channel`
# (web, mobile, server) and the request's IP in `context_request_ip` when none was passed.
RUDDERSTACK_TRACKS: dict[str, Any] = {
    "event_type_from": "event_text || event",
    "fields": {
        **_TRACKS_FIELDS,
        "action_source": (
            f"((source_url || {_WEB_PAGE}) && 'web') || (channel == 'mobile' && 'mobile_app')"
            " || `null`"
        ),
        "ip_address": "context_ip || context_request_ip",
    },
}

# GA4 event names that the built-in event-name table maps to a CAPI type. Everything else in
# a GA4 export (session_start, user_engagement, scroll, page_view, ...) is filtered out: add
# names to the filter to send them (unmapped names go out as custom events).
GA4_CONVERSION_NAMES = (
    "purchase",
    "begin_checkout",
    "add_to_cart",
    "view_item",
    "generate_lead",
    "sign_up",
    "first_open",
)


def _ga4_param(key: str, kind: str = "string_value") -> str:
    """JMESPath for one GA4 event parameter's value (event_params is a key/value list)."""
    return f"(event_params[?key == '{key}'].value.{kind} | [0])"


# GA4 BigQuery export rows (`events_YYYYMMDD`): event_name, event_timestamp in MICROseconds,
# event_params as [{key, value: {string_value, int_value, float_value, double_value}}],
# ecommerce.transaction_id / purchase_revenue, items[] with item_id, item_name, quantity,
# price. micros_to_ms() turns the microsecond time into the API's milliseconds.
# A GA4 event has no id of its own: purchases use the transaction id, other events fall back to
# the stream's key properties, else a hash of the row (stable across re-sends of that row).
GA4_EVENTS: dict[str, Any] = {
    "event_type_from": "event_name",
    "filter": "contains(["
    + ", ".join(f"'{name}'" for name in GA4_CONVERSION_NAMES)
    + "], event_name)",
    "fields": {
        "id": f"ecommerce.transaction_id || {_ga4_param('transaction_id')}",
        "timestamp_ms": "micros_to_ms(event_timestamp)",
        "oppref": f"{_ga4_param('oppref')} || url_param({_ga4_param('page_location')}, 'oppref')",
        # (a page_location that is no web page's, a hybrid app's file: page, is none)
        "source_url": f"web_page({_ga4_param('page_location')})",
        "action_source": (
            f"(platform == 'WEB' && web_page({_ga4_param('page_location')}) && 'web')"
            " || ((platform == 'IOS' || platform == 'ANDROID') && 'mobile_app') || `null`"
        ),
        # (only with a currency, as the tracks presets: a lead's `value` without one would
        # reject the lead)
        "amount": (
            f"{_ga4_param('currency')} && (ecommerce.purchase_revenue"
            f" || {_ga4_param('value', 'double_value')}"
            f" || {_ga4_param('value', 'float_value')} || {_ga4_param('value', 'int_value')})"
        ),
        "currency": _ga4_param("currency"),
        # (items priced only with a currency too: a price without one rejects the event)
        "contents": (
            f"({_ga4_param('currency')}"
            " && items[].{id: item_id, name: item_name, quantity: quantity, amount: price})"
            " || items[].{id: item_id, name: item_name, quantity: quantity}"
        ),
        "external_id": "user_id",
    },
}

# Preset name -> a `streams` entry (event_type / event_type_from, event_types, filter, fields).
PRESETS: dict[str, dict[str, Any]] = {
    "tap-shopify/orders": SHOPIFY_ORDERS,
    "tap-shopify/abandoned_checkouts": SHOPIFY_ABANDONED_CHECKOUTS,
    "tap-stripe/subscriptions": STRIPE_SUBSCRIPTIONS,
    "segment/tracks": SEGMENT_TRACKS,
    "rudderstack/tracks": RUDDERSTACK_TRACKS,
    "ga4/events": GA4_EVENTS,
}


def apply_preset(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry with its preset filled in; the user's keys win, and `fields` merge per field."""
    name = entry.get("preset")
    if name is None:
        return dict(entry)
    if name not in PRESETS:
        known = ", ".join(sorted(PRESETS)) or "none"
        raise ValueError(f"preset: unknown preset {name!r} (known: {known})")
    preset = PRESETS[name]
    merged = {**preset, **{k: v for k, v in entry.items() if k != "preset"}}
    merged["fields"] = {**preset.get("fields", {}), **(entry.get("fields") or {})}
    if "event_type" in entry:
        merged.pop("event_type_from", None)  # the user's literal type replaces the preset's
    if "event_type_from" in entry:
        merged.pop("event_type", None)
    merged["event_types"] = {**preset.get("event_types", {}), **(entry.get("event_types") or {})}
    return merged


# Fields of a preset that a table of its source may well not have, and so are not told when
# the stream's SCHEMA lists none of what they read (stream_mapping.py preset_expressions):
# Segment's and RudderStack's `tracks` table holds the columns common to every event, no money.
FIELDS_A_TABLE_MAY_LACK: dict[str, frozenset[str]] = {
    "segment/tracks": frozenset({"amount", "currency"}),
    "rudderstack/tracks": frozenset({"amount", "currency"}),
}

# Paths a preset reads that the tap it is named for does not select as published (checked
# against the schemas tap-shopify 3.13.0 ships, in tests/test_real_taps.py): those fields are
# null with that tap and the preset reads them for sources that have them.
OPTIONAL_PATHS: dict[str, frozenset[str]] = {
    "tap-shopify/orders": frozenset({"customerJourneySummary.firstVisit.landingPage"}),
    "tap-shopify/abandoned_checkouts": frozenset(
        {
            "customAttributes.[].key",
            "customAttributes.[].value",
            "customer.email",
            "customer.phone",
            "customer.firstName",
            "customer.lastName",
        }
    ),
}
