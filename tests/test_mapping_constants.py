"""Fields mapped to one value: refused at start-up when no event may carry it, never otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from target_openai_capi.mapping.constants import constant_problems
from target_openai_capi.mapping.expressions import literal
from target_openai_capi.mapping.stream_mapping import compile_stream_mapping
from target_openai_capi.presets import PRESETS, apply_preset


def problems(fields: dict[str, str], **entry: Any) -> list[str]:
    entry = {"event_type": "order_created", "fields": fields, **entry}
    if "event_type_from" in entry:
        del entry["event_type"]
    return constant_problems(compile_stream_mapping("s", entry), entry.get("event_type_from"))


# Constants every event may carry: refusing one would stop a correct config.
FINE: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "web": ({"action_source": "'web'"}, {}),
    "an action source written as a JSON literal": ({"action_source": '`"phone_call"`'}, {}),
    "a page": ({"source_url": "'https://shop.example/thank-you'"}, {}),
    "a page with a query, which is cut": ({"source_url": "'https://a.example/x?t=1'"}, {}),
    "a page with its query kept": (
        {"source_url": "'https://a.example/x?t=1'"},
        {"keep_source_url_query": True},
    ),
    "true": ({"opt_out": "`true`"}, {}),
    "'no'": ({"opt_out": "'no'"}, {}),
    "a currency in lowercase": ({"currency": "'usd'"}, {}),
    "a price and its currency": ({"amount": "'12.34'", "currency": "'USD'"}, {}),
    "three decimals in a currency of three": ({"amount": "'12.345'", "currency": "'KWD'"}, {}),
    # The currency comes from each record (a mapped or a `currency` property): KWD takes it.
    "three decimals, the currency from each record": ({"amount": "'12.345'"}, {}),
    "a price of a currency that is the currency's own problem": (
        {"amount": "'12.345'", "currency": "currency_code"},
        {},
    ),
    "a minor amount": ({"amount_minor": "`2599`"}, {}),
    "a custom name": ({"custom_event_name": "'Quiz Done!'"}, {"event_type": "custom"}),
    "a plan": ({"plan_id": "'pro'"}, {}),
    "custom data": ({"custom_data": '`{"tier": "gold"}`'}, {}),
    "a fixed event name": ({}, {"event_type_from": "'Order Completed'"}),
    "a fixed event name of a custom event": ({}, {"event_type_from": "'quiz_done'"}),
    "mobile_app with a space, as every record's is trimmed": (
        {"action_source": "'mobile_app '"},
        {"event_type": "app_opened"},
    ),
    "null: no value": ({"opt_out": "`null`", "source_url": "`null`"}, {}),
    "not a literal": ({"id": "order_id || 'x'", "source_url": "page || '/x'"}, {}),
}


@pytest.mark.parametrize("name", list(FINE))
def test_a_constant_an_event_may_carry_is_taken(name: str) -> None:
    fields, entry = FINE[name]
    assert problems(fields, **entry) == []


# Constants no event may carry: every record would be rejected, and the run exit 0.
REFUSED: dict[str, tuple[dict[str, str], dict[str, Any], str]] = {
    "an id": ({"id": "'lead'"}, {}, "fields.id: 'lead' would be the id of every event"),
    "a number as the id": ({"id": "`7`"}, {}, "fields.id: '7' would be the id of every event"),
    "no action source": (
        {"action_source": "'webb'"},
        {},
        "fields.action_source: 'webb' is not an action source",
    ),
    "a number as the action source": (
        {"action_source": "`1`"},
        {},
        "fields.action_source: '1' is not an action source",
    ),
    "a relative page": (
        {"source_url": "'/contact/thank-you'"},
        {},
        "fields.source_url: '/contact/thank-you' is not a URL with a scheme and a host",
    ),
    "a script": (
        {"source_url": "'javascript:alert(1)'"},
        {},
        "fields.source_url: source_url is a javascript: URL",
    ),
    "a page that is only a query": (
        {"source_url": "'?utm=1'"},
        {},
        "fields.source_url: source_url is empty without its query string",
    ),
    "a word that is no boolean": (
        {"opt_out": "'maybe'"},
        {},
        "fields.opt_out: opt_out 'maybe' is not a boolean",
    ),
    "no currency": ({"currency": "'usdd'"}, {}, "fields.currency: unknown currency 'usdd'"),
    "a price too precise for its currency": (
        {"amount": "'12.345'", "currency": "'USD'"},
        {},
        "fields.amount: amount 12.345 has more decimals than USD allows (2)",
    ),
    "a price that is no number": ({"amount": "'$12'"}, {}, "fields.amount: amount '$12' is not"),
    # (the currency comes from each record: every record was rejected, one by one)
    "a price below zero": ({"amount": "'-1'"}, {}, "fields.amount: amount '-1' is negative"),
    "a price over 10**15 in any currency": (
        {"amount": "`9999999999999999`"},
        {},
        "fields.amount: amount 9999999999999999 is too large to be money",
    ),
    "a price no currency has": (
        {"amount": "'1e999999'"},
        {},
        "fields.amount: amount '1e999999' is too large to be money",
    ),
    "a negative minor amount": (
        {"amount_minor": "`-1`"},
        {},
        "fields.amount_minor: amount_minor -1 is negative",
    ),
    "a time that is none": (
        {"timestamp": "'yesterday'"},
        {},
        "fields.timestamp: timestamp 'yesterday' is not",
    ),
    "epoch milliseconds that are none": (
        {"timestamp_ms": "'soon'"},
        {},
        "fields.timestamp_ms: timestamp_ms 'soon' is not",
    ),
    "the custom type as a name": (
        {"custom_event_name": "'custom'"},
        {"event_type": "custom"},
        "fields.custom_event_name: custom event name 'custom' is refused",
    ),
    "a name of no letter": (
        {"custom_event_name": "'!!'"},
        {"event_type": "custom"},
        "fields.custom_event_name: custom event name has no letter or digit of ASCII",
    ),
    "a plan that is an object": (
        {"plan_id": '`{"a": 1}`'},
        {},
        "fields.plan_id: plan_id must be a string or a number",
    ),
    "custom data that replaces the type": (
        {"custom_data": '`{"type": "x"}`'},
        {},
        "fields.custom_data: custom_data.type would replace the data shape",
    ),
    "an event name of nothing": ({}, {"event_type_from": "' '"}, "event_type_from: event name"),
    # (the API takes only mobile_app for app events: every record was a validation rejection)
    "a web source of app installs": (
        {"action_source": "'web'", "source_url": "'https://app.example/'"},
        {"event_type": "app_installed"},
        "fields.action_source: 'web' is no source of app_installed events",
    ),
    "a web source of an app event named by a fixed event_type_from": (
        {"action_source": "'web'", "source_url": "'https://app.example/'"},
        {"event_type_from": "'app_installed'"},
        "fields.action_source: 'web' is no source of app_installed events",
    ),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_constant_no_event_may_carry_is_a_config_error(name: str) -> None:
    fields, entry, words = REFUSED[name]
    found = problems(fields, **entry)
    assert len(found) == 1, found
    assert found[0].startswith(words), found


NOW_MS = 1_790_000_000_000  # 2026-09-21T14:13:20Z
DAY_MS = 86_400_000


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"timestamp": "'2020-01-01T00:00:00Z'"}, "fields.timestamp: '2020-01-01T00:00:00Z'"),
        (
            {"timestamp_ms": f"`{NOW_MS - 8 * DAY_MS}`"},
            f"fields.timestamp_ms: {NOW_MS - 8 * DAY_MS}",
        ),
        ({"timestamp": "'2026-09-22T14:13:20Z'"}, "fields.timestamp: '2026-09-22T14:13:20Z'"),
    ],
)
def test_a_fixed_time_outside_the_api_s_window_is_a_config_error(
    fields: dict[str, str], words: str
) -> None:
    """Older than 7 days or more than 10 minutes ahead (the official rule), a time mapped to one
    value made every record a window rejection, the run exiting 0 and STATE moving on."""
    mapping = compile_stream_mapping("s", {"event_type": "order_created", "fields": fields})
    found = constant_problems(mapping, None, NOW_MS)
    assert len(found) == 1, found
    assert found[0].startswith(f"{words} would be the time of every event, and the API refuses")


def test_a_fixed_time_inside_the_window_and_app_events_from_apps_are_taken() -> None:
    entry = {"event_type": "order_created", "fields": {"timestamp_ms": f"`{NOW_MS - DAY_MS}`"}}
    assert constant_problems(compile_stream_mapping("s", entry), None, NOW_MS) == []
    app = {"event_type": "app_opened", "fields": {"action_source": "'mobile_app'"}}
    assert constant_problems(compile_stream_mapping("s", app), None, NOW_MS) == []


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_s_own_constants_are_taken(preset: str) -> None:
    entry = apply_preset({"preset": preset})
    mapping = compile_stream_mapping("s", entry)
    assert constant_problems(mapping, entry.get("event_type_from")) == []


def test_a_literal_is_told_from_an_expression() -> None:
    assert literal("'web'") == ("web",)
    assert literal("`true`") == (True,)
    assert literal("`null`") == (None,)
    assert literal("web") is None
    assert literal("a || 'web'") is None
    assert literal("a.[b") is None  # (not an expression: named by the compiler)
    assert literal(7) is None
