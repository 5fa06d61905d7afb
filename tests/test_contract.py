"""The event contract: valid events pass, each broken variant names its field."""

from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources
from typing import Any

import jsonschema
import pytest
from conftest import DOCS_EXAMPLE

from target_openai_capi import contract
from target_openai_capi.contract import (
    ACTION_SOURCES,
    DATA_SHAPE_BY_TYPE,
    EVENT_SCHEMA,
    EVENT_TYPES,
    MAX_EVENT_AGE_MS,
    MAX_EVENT_FUTURE_MS,
    SHAPE_FIELDS,
    currency_problem,
    event_currency_problem,
    event_problem,
    explain,
    window_problem,
)
from target_openai_capi.contract import schema as event_schema

DELETE = object()
SHA = hashlib.sha256(b"jane@example.com").hexdigest()


def variant(changes: dict[str, Any], base: dict[str, Any] = DOCS_EXAMPLE) -> dict[str, Any]:
    """A deep copy of base with dotted paths ('data.contents.0.quantity') set or DELETEd."""
    event = copy.deepcopy(base)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node: Any = event
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        key: Any = int(last) if last.isdigit() else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return event


def minimal(event_type: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The smallest valid event of a type."""
    event: dict[str, Any] = {
        "id": f"{event_type}_1",
        "type": event_type,
        "timestamp_ms": 1773892800000,
        "data": {"type": DATA_SHAPE_BY_TYPE[event_type], **(data or {})},
    }
    if event_type == "custom":
        event["custom_event_name"] = "quote_requested"
    if event_type in ("app_installed", "app_opened"):
        event["action_source"] = "mobile_app"
    return event


VALID: list[tuple[str, dict[str, Any]]] = [
    ("docs example", DOCS_EXAMPLE),
    *[(f"minimal {t}", minimal(t)) for t in EVENT_TYPES],
    ("lead with value", minimal("lead_created", {"amount": 5000, "currency": "EUR"})),
    ("app_installed", variant({"action_source": "mobile_app"}, minimal("app_installed"))),
    (
        "subscription with plan",
        minimal("subscription_created", {"plan_id": "pro", "amount": 999, "currency": "USD"}),
    ),
    (
        "custom with contents",
        minimal("custom", {"plan_id": "p", "contents": [{"id": "a", "quantity": 2}]}),
    ),
    ("zero amount", variant({"data.amount": 0})),
    # "Use a valid three-letter ISO 4217 currency code ...; the API converts values to uppercase."
    ("lowercase data currency", variant({"data.currency": "usd"})),
    ("mixed-case data currency", minimal("lead_created", {"amount": 5000, "currency": "eUr"})),
    ("no contents", variant({"data.contents": DELETE})),
    ("empty contents", variant({"data.contents": []})),
    ("item amount, event currency", variant({"data.contents.0.amount": 2599})),
    (
        "item amount and currency, no event amount",
        variant(
            {
                "data.amount": DELETE,
                "data.currency": DELETE,
                "data.contents.0.amount": 100,
                "data.contents.0.currency": "JPY",
            }
        ),
    ),
    ("not web, no source_url", variant({"action_source": "offline", "source_url": DELETE})),
    ("no action_source", variant({"action_source": DELETE, "source_url": DELETE})),
    ("http url", variant({"source_url": "http://localhost:8000/x?y=1#z"})),
    ("url with user info and an IPv6 host", variant({"source_url": "https://u@[2001:db8::1]:8/"})),
    ("opt out", variant({"opt_out": True})),
    (
        "singular user (the earlier official shape)",
        variant(
            {
                "user": {
                    "email_sha256": SHA,
                    "external_id_sha256": SHA,
                    "country": "US",
                    "city": "San Francisco",
                    "zip_code": "94107",
                    "obref": "ob_1",
                    "ip_address": "203.0.113.7",
                    "user_agent": "Mozilla/5.0",
                }
            }
        ),
    ),
    (
        "plural user (the newest official shape)",
        variant(
            {
                "user": {
                    "emails_sha256": [SHA, SHA],
                    "phone_numbers_sha256": [SHA],
                    "external_ids_sha256": [SHA],
                    "first_names_sha256": [SHA],
                    "last_names_sha256": [SHA],
                    "regions": ["CA"],
                    "cities": ["San Francisco", "Oakland"],
                    "postal_codes": ["94107", "SW1A 1AA"],
                    "countries": ["US", "GB"],
                    "android_advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d",
                    "obref": "123e4567-e89b-42d3-a456-426614174000",
                    "ip_address": "2001:db8::1",
                    "user_agent": "Mozilla/5.0",
                }
            }
        ),
    ),
    ("quantity zero", variant({"data.contents.0.quantity": 0})),
    (
        "content with group and variant",
        variant({"data.contents.0.group_id": "g1", "data.contents.0.variant_dict": {"size": "M"}}),
    ),
    ("custom data properties", minimal("custom", {"seats": 3, "tier": {"name": "pro"}})),
    ("app deep link source_url", variant({"source_url": "myapp://open/offer"})),
    (
        "custom name with a hyphen",
        variant({"custom_event_name": "quote-requested"}, minimal("custom")),
    ),
]


@pytest.mark.parametrize(("name", "event"), VALID, ids=[name for name, _ in VALID])
def test_valid_events_have_no_problem(name: str, event: dict[str, Any]) -> None:
    assert event_problem(event) is None


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("missing id", variant({"id": DELETE}), "id: is required"),
    ("empty id", variant({"id": ""}), "id: must not be empty"),
    ("long id", variant({"id": "x" * 257}), "id: is longer than 256 characters"),
    (
        "id not a string",
        variant({"id": 12345}),
        "id: <value hidden: may be personal data> is not of type 'string'",
    ),
    ("missing type", variant({"type": DELETE}), "type: is required"),
    ("unknown type", variant({"type": "purchase"}), "type: 'purchase' is not one of ["),
    (
        "attribution_appended is not OpenAI's",
        variant({"type": "attribution_appended"}),
        "type: 'attribution_appended' is not one of [",
    ),
    ("missing timestamp", variant({"timestamp_ms": DELETE}), "timestamp_ms: is required"),
    (
        "timestamp as string",
        variant({"timestamp_ms": "1773892800000"}),
        "timestamp_ms: '1773892800000' is not of type 'integer'",
    ),
    (
        "timestamp as float",
        variant({"timestamp_ms": 1773892800000.0}),
        "timestamp_ms: 1773892800000.0 is not of type 'integer'",
    ),
    (
        "timestamp zero",
        variant({"timestamp_ms": 0}),
        "timestamp_ms: 0 is less than the minimum of 1",
    ),
    (
        "custom without name",
        variant({"custom_event_name": DELETE}, minimal("custom")),
        "custom_event_name: is required when type is 'custom'",
    ),
    (
        "custom with empty name",
        variant({"custom_event_name": ""}, minimal("custom")),
        "custom_event_name: '' is not 1-64 letters, digits",
    ),
    (
        "custom name on a standard type",
        variant({"custom_event_name": "x"}),
        "custom_event_name: is not allowed when type is not 'custom'",
    ),
    (
        "web without source_url",
        variant({"source_url": DELETE}),
        "source_url: is required when action_source is 'web'",
    ),
    (
        "source_url without a host",
        variant({"source_url": "https:///y"}),
        "source_url: 'https:///y' is",
    ),
    (
        "source_url with a port but no host",
        variant({"source_url": "https://:443/checkout"}),
        "source_url: 'https://:443/checkout' is",
    ),
    ("source_url of user info only", variant({"source_url": "https://a@/"}), "source_url: 'h"),
    ("relative source_url", variant({"source_url": "/checkout"}), "source_url: '/checkout' is not"),
    ("url with newline", variant({"source_url": "https://x.com/\n"}), "source_url: 'https://x"),
    ("url with space", variant({"source_url": "https://x.com/a b"}), "source_url: 'https://x"),
    ("unknown action_source", variant({"action_source": "app"}), "action_source: 'app' is not"),
    ("empty oppref", variant({"oppref": ""}), "oppref: must not be empty"),
    ("opt_out as string", variant({"opt_out": "true"}), "opt_out: 'true' is not of type 'boolean'"),
    ("unknown top-level key", variant({"event_name": "x"}), "event_name: is not an allowed field"),
    ("missing data", variant({"data": DELETE}), "data: is required"),
    ("data not an object", variant({"data": "x"}), "data: 'x' is not of type 'object'"),
    ("missing data.type", variant({"data.type": DELETE}), "data.type: is required"),
    (
        "data.type mismatch",
        variant({"data.type": "custom"}),
        "data.type: must be 'contents' for type 'order_created', got 'custom'",
    ),
    (
        "lead with contents shape",
        variant({"type": "lead_created"}),
        "data.type: must be 'customer_action' for type 'lead_created', got 'contents'",
    ),
    (
        "contents in customer_action",
        variant({"data.contents": [{"id": "a"}]}, minimal("lead_created")),
        "data.contents: is not an allowed field in data of type 'customer_action' "
        "(allowed: amount, currency, type)",
    ),
    (
        "plan_id in contents shape",
        variant({"data.plan_id": "p"}),
        "data.plan_id: is not an allowed field in data of type 'contents'",
    ),
    (
        "amount as float",
        variant({"data.amount": 12.5}),
        "data.amount: 12.5 is not of type 'integer'",
    ),
    (
        "integral float amount",
        variant({"data.amount": 2599.0}),
        "data.amount: 2599.0 is not of type 'integer'",
    ),
    ("amount as string", variant({"data.amount": "25.99"}), "data.amount: '25.99' is not of type"),
    (
        "negative amount",
        variant({"data.amount": -1}),
        "data.amount: -1 is less than the minimum of 0",
    ),
    (
        "amount without currency",
        variant({"data.currency": DELETE}),
        "data.currency: is required when data.amount is present",
    ),
    (
        "lowercase item currency (only data.currency is converted to upper case)",
        variant({"data.contents.0.amount": 100, "data.contents.0.currency": "jpy"}),
        "data.contents[0].currency: 'jpy' is not a three",
    ),
    ("two-letter currency", variant({"data.currency": "us"}), "data.currency: 'us' is not a three"),
    ("long currency", variant({"data.currency": "USDX"}), "data.currency: 'USDX' is not a three"),
    ("currency newline", variant({"data.currency": "USD\n"}), "data.currency: 'USD\\n' is not"),
    ("contents not a list", variant({"data.contents": {}}), "data.contents: {} is not of type"),
    (
        "quantity as string",
        variant({"data.contents.0.quantity": "1"}),
        "data.contents[0].quantity: '1' is not of type 'integer'",
    ),
    (
        "negative quantity",
        variant({"data.contents.0.quantity": -1}),
        "data.contents[0].quantity: -1 is less than the minimum of 0",
    ),
    (
        "quantity float in third item",
        variant({"data.contents": [{"id": "a"}, {"id": "b"}, {"id": "c", "quantity": 2.0}]}),
        "data.contents[2].quantity: 2.0 is not of type 'integer'",
    ),
    (
        "unknown item key",
        variant({"data.contents.0.price": 100}),
        "data.contents[0].price: is not an allowed field (allowed: amount, content_type, "
        "currency, group_id, id, name, quantity, variant_dict)",
    ),
    (
        "item amount without any currency",
        variant(
            {"data.amount": DELETE, "data.currency": DELETE, "data.contents.0.amount": 100},
        ),
        "data.contents[0].currency: is required when data.contents[0].amount is present "
        "and data.currency is absent",
    ),
    (
        "item currency malformed",
        variant({"data.contents.0.currency": "eur"}),
        "data.contents[0].currency: 'eur' is not a three",
    ),
    ("empty user key", variant({"user": {"email": "x"}}), "user.email: is not an allowed field"),
    (
        "uppercase hash",
        variant({"user": {"email_sha256": SHA.upper()}}),
        "user.email_sha256: <value hidden: may be personal data> is not a lowercase SHA-256",
    ),
    (
        "raw email in hash field",
        variant({"user": {"email_sha256": "jane@example.com"}}),
        "user.email_sha256: <value hidden: may be personal data> is not a lowercase SHA-256",
    ),
    (
        "short hash",
        variant({"user": {"email_sha256": SHA[:63]}}),
        "user.email_sha256: <value hidden",
    ),
    (
        "hash list empty",
        variant({"user": {"emails_sha256": []}}),
        "user.emails_sha256: must not be empty",
    ),
    (
        "hash list with bad item",
        variant({"user": {"emails_sha256": [SHA, "x"]}}),
        "user.emails_sha256[1]: <value hidden",
    ),
    (
        "plural as a string",
        variant({"user": {"emails_sha256": SHA}}),
        "user.emails_sha256: <value hidden: may be personal data> is not of type 'array'",
    ),
    (
        "bad ipv4",
        variant({"user": {"ip_address": "999.1.1.1"}}),
        "user.ip_address: <value hidden: may be personal data> is not a valid IPv4 or IPv6",
    ),
    (
        "not an ip",
        variant({"user": {"ip_address": "not-an-ip"}}),
        "user.ip_address: <value hidden: may be personal data> is not a valid IPv4 or IPv6",
    ),
    ("ipv6 with zone", variant({"user": {"ip_address": "fe80::1%eth0"}}), "user.ip_address: <"),
    (
        "ip in a list",
        variant({"user": {"ip_address": ["203.0.113.7"]}}),
        "user.ip_address: <value hidden: may be personal data> is not of type 'string'",
    ),
    ("empty user agent", variant({"user": {"user_agent": ""}}), "user.user_agent: <value hidden"),
    (
        "a user name no official version had",
        variant({"user": {"city_sha256": SHA}}),
        "user.city_sha256: is not an allowed field",
    ),
    (
        "app event from the web",
        variant({"action_source": "web"}, minimal("app_opened")),
        "action_source: must be 'mobile_app', got 'web'",
    ),
    (
        "custom data setting a shape of its own",
        minimal("custom", {"type": "contents"}),
        "data.type: must be 'custom'",
    ),
    (
        "custom name that is a standard name in capitals",
        variant({"custom_event_name": "PAGE_VIEWED"}, minimal("custom")),
        "custom_event_name: 'PAGE_VIEWED' is not",
    ),
]


@pytest.mark.parametrize(
    ("name", "event", "expected"), INVALID, ids=[name for name, _, _ in INVALID]
)
def test_invalid_events_name_the_field(name: str, event: dict[str, Any], expected: str) -> None:
    problem = event_problem(event)
    assert problem is not None
    assert problem.startswith(expected), problem


def test_first_problem_follows_field_order() -> None:
    event = variant({"id": DELETE, "data.amount": "x", "user": {"email": "x"}})
    assert event_problem(event) == "id: is required"
    event = variant({"data.amount": "x", "user": {"email": "x"}})
    assert (
        event_problem(event)
        == "user.email: is not an allowed field (allowed: "
        + ", ".join(sorted(contract.USER_WIRE_FIELDS))
        + ")"
    )


def test_messages_never_echo_user_values() -> None:
    problem = event_problem(variant({"user": {"email_sha256": "jane@example.com"}}))
    assert problem is not None
    assert "jane" not in problem


def test_long_values_are_shortened() -> None:
    problem = event_problem(variant({"source_url": "/" + "x" * 500}))
    assert problem is not None
    assert len(problem) < 200
    assert "..." in problem


def test_a_long_text_shortened_keeps_its_closing_quote_so_the_log_can_hide_it() -> None:
    from target_openai_capi.log_safety import log_safe

    problem = event_problem(variant({"source_url": "Jane Doe lives at 742 Evergreen" * 9}))
    assert problem is not None
    assert "'Jane Doe lives at 742 Evergreen" in problem
    assert "...'" in problem
    assert "Jane" not in log_safe(problem)


def test_non_object_event() -> None:
    assert event_problem(["not", "an", "event"]) == "event: must be a JSON object, got list"  # type: ignore[arg-type]


def test_event_is_not_modified() -> None:
    event = variant({})
    event_problem(event)
    event_problem(variant({"data.amount": 1.5}))
    assert event == DOCS_EXAMPLE


@pytest.mark.parametrize(
    ("name", "event"),
    [(name, event) for name, event in VALID] + [(name, event) for name, event, _ in INVALID],
    ids=[name for name, _ in VALID] + [name for name, _, _ in INVALID],
)
def test_fast_path_agrees_with_the_schema(name: str, event: dict[str, Any]) -> None:
    """event_problem's compiled path must accept exactly what Draft 2020-12 says the schema does."""
    validator = explain._explainer()  # the strict Draft 2020-12 validator that explains problems
    assert (event_problem(event) is None) == validator.is_valid(event)


def test_schema_is_valid_draft_2020_12_and_ships_as_package_data() -> None:
    text = resources.files("target_openai_capi.contract").joinpath("event.schema.json")
    assert json.loads(text.read_text(encoding="utf-8")) == EVENT_SCHEMA
    jsonschema.Draft202012Validator.check_schema(EVENT_SCHEMA)


def _integer_locations(node: Any, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every property path whose schema says "type": "integer" ('*' for array items)."""
    found: set[tuple[str, ...]] = set()
    if isinstance(node, dict):
        if "$ref" in node:
            return _integer_locations(event_schema._resolve(node["$ref"]), path)
        if node.get("type") == "integer":
            found.add(path)
        for name, sub in node.get("properties", {}).items():
            found |= _integer_locations(sub, (*path, name))
        if "items" in node:
            found |= _integer_locations(node["items"], (*path, "*"))
        for key in ("allOf", "anyOf"):
            for sub in node.get(key, []):
                found |= _integer_locations(sub, path)
        for key in ("then", "else"):
            if key in node:
                found |= _integer_locations(node[key], path)
    return found


def test_float_guard_covers_every_integer_field() -> None:
    """_float_in_integer_field hard-codes the integer fields; keep it in step with the schema."""
    assert _integer_locations(EVENT_SCHEMA) == {
        ("timestamp_ms",),
        ("data", "amount"),
        ("data", "contents", "*", "amount"),
        ("data", "contents", "*", "quantity"),
    }


def test_constants_come_from_the_schema() -> None:
    assert EVENT_TYPES == (
        "order_created",
        "checkout_started",
        "items_added",
        "contents_viewed",
        "page_viewed",
        "lead_created",
        "registration_completed",
        "appointment_scheduled",
        "app_installed",
        "app_opened",
        "subscription_created",
        "trial_started",
        "custom",
    )
    assert set(DATA_SHAPE_BY_TYPE) == set(EVENT_TYPES)
    assert DATA_SHAPE_BY_TYPE["app_opened"] == "customer_action"
    assert DATA_SHAPE_BY_TYPE["trial_started"] == "plan_enrollment"
    assert dict(SHAPE_FIELDS) == {
        "contents": {"type", "amount", "currency", "contents"},
        "customer_action": {"type", "amount", "currency"},
        "plan_enrollment": {"type", "plan_id", "amount", "currency", "contents"},
        "custom": {"type", "plan_id", "amount", "currency", "contents"},
    }
    assert ACTION_SOURCES == (
        "web",
        "mobile_app",
        "offline",
        "physical_store",
        "phone_call",
        "email",
        "other",
    )


NOW = 1_773_892_800_000


@pytest.mark.parametrize(
    ("timestamp_ms", "expected"),
    [
        (NOW, None),
        (NOW - MAX_EVENT_AGE_MS, None),
        (NOW - MAX_EVENT_AGE_MS - 1, "timestamp_ms: older than 7 days"),
        (NOW + MAX_EVENT_FUTURE_MS, None),
        (NOW + MAX_EVENT_FUTURE_MS + 1, "timestamp_ms: more than 10 minutes in the future"),
        (NOW // 1000, "timestamp_ms: older than 7 days"),  # seconds instead of milliseconds
    ],
)
def test_window_problem(timestamp_ms: int, expected: str | None) -> None:
    assert window_problem(timestamp_ms, NOW) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("USD", None),
        ("JPY", None),
        ("BHD", None),
        ("ABC", "'ABC' is not a known ISO 4217 currency code"),
        ("XAU", "'XAU' has no minor unit"),
        ("usd", "'usd' is not a three-letter ISO 4217 code in upper case"),
        ("US", "'US' is not a three-letter"),
    ],
)
def test_currency_problem(code: str, expected: str | None) -> None:
    problem = currency_problem(code)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None
        assert problem.startswith(expected)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        ({"data.currency": "ABC"}, "data.currency: 'ABC' is not a known ISO 4217 currency code"),
        ({"data.currency": "usd"}, None),
        ({"data.currency": "abc"}, "data.currency: 'abc' is not a known ISO 4217 currency code"),
        ({"data.currency": "xau"}, "data.currency: 'xau' has no minor unit"),
        ({"data.contents.0.currency": "usd"}, "data.contents[0].currency: 'usd' is not a three"),
        ({"data.contents.0.currency": "XAU"}, "data.contents[0].currency: 'XAU' has no minor"),
        ({"data": "x"}, None),
    ],
)
def test_event_currency_problem(changes: dict[str, Any], expected: str | None) -> None:
    problem = event_currency_problem(variant(changes))
    if expected is None:
        assert problem is None
    else:
        assert problem is not None
        assert problem.startswith(expected)


def test_the_quick_ipv4_check_accepts_exactly_what_ipaddress_accepts():
    import ipaddress
    import random

    from target_openai_capi.contract.schema import is_ipv4_text

    samples = [
        "1.2.3.4", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5",
        "1.2.3.4 ", " 1.2.3.4", "1..3.4", "", ".", "1.2.3.-4", "+1.2.3.4", "1.2.3.4/32",
        "\u0661.\u0662.\u0663.\u0664", "1.2.3.\u2074", "0x1.2.3.4", "1.2.3.1000", "00.0.0.0",
        "10.0.0.010", "1.2.3.4\n",
    ]  # fmt: skip
    rng = random.Random(4)
    alphabet = "0123456789.0123456789.x /-+"
    samples += [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 16))) for _ in range(20_000)
    ]
    samples += [".".join(str(rng.randrange(0, 300)) for _ in range(4)) for _ in range(5_000)]
    for text in samples:
        try:
            ipaddress.IPv4Address(text)
        except ValueError:
            expected = False
        else:
            expected = True
        assert is_ipv4_text(text) is expected, text
