"""Event names: normalisation, the built-in table, the user's table over it, custom events."""

from __future__ import annotations

import unicodedata
from decimal import Decimal

import pytest

from target_openai_capi.contract import EVENT_TYPES
from target_openai_capi.mapping.errors import MappingError
from target_openai_capi.mapping.event_names import (
    BUILTIN_EVENT_NAMES,
    check_event_table,
    custom_event,
    normalise_event_name,
    resolve_event_type,
)


@pytest.mark.parametrize(
    ("name", "normalised"),
    [
        ("order_completed", "order_completed"),
        ("Order Completed", "order_completed"),
        ("  Order   Completed  ", "order_completed"),
        ("ORDER_COMPLETED", "order_completed"),
        ("order-completed", "order_completed"),
        ("order.completed", "order_completed"),
        ("order__completed", "order_completed"),
        ("order - completed", "order_completed"),
        ("_order_completed_", "order_completed"),
        ("AddToCart", "add_to_cart"),
        ("addToCart", "add_to_cart"),
        ("InitiateCheckout", "initiate_checkout"),
        ("PageView", "page_view"),
        ("HTMLPageView", "html_page_view"),
        ("Step2Completed", "step2_completed"),
        ("Straße Gekauft", "strasse_gekauft"),  # casefold, not just lower
        ("purchase", "purchase"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_normalise_event_name(name: str, normalised: str) -> None:
    assert normalise_event_name(name) == normalised


@pytest.mark.parametrize(
    ("name", "event_type"),
    [
        # The spec's list.
        ("purchase", "order_created"),
        ("order_completed", "order_created"),
        ("add_to_cart", "items_added"),
        ("begin_checkout", "checkout_started"),
        ("checkout_started", "checkout_started"),
        ("view_item", "contents_viewed"),
        ("page_view", "page_viewed"),
        ("lead", "lead_created"),
        ("generate_lead", "lead_created"),
        ("sign_up", "registration_completed"),
        ("complete_registration", "registration_completed"),
        ("subscribe", "subscription_created"),
        ("start_trial", "trial_started"),
        # GA4.
        ("first_open", "app_installed"),
        ("app_open", "app_opened"),
        # Segment / RudderStack.
        ("Order Completed", "order_created"),
        ("Product Added", "items_added"),
        ("Wishlist Product Added to Cart", "items_added"),
        ("Checkout Started", "checkout_started"),
        ("Product Viewed", "contents_viewed"),
        ("Signed Up", "registration_completed"),
        ("Trial Started", "trial_started"),
        ("Subscription Started", "subscription_created"),
        ("Application Installed", "app_installed"),
        ("Application Opened", "app_opened"),
        # Meta.
        ("Purchase", "order_created"),
        ("AddToCart", "items_added"),
        ("InitiateCheckout", "checkout_started"),
        ("ViewContent", "contents_viewed"),
        ("Lead", "lead_created"),
        ("CompleteRegistration", "registration_completed"),
        ("Subscribe", "subscription_created"),
        ("StartTrial", "trial_started"),
        ("Schedule", "appointment_scheduled"),
        ("PageView", "page_viewed"),
        # Shopify Web Pixels.
        ("checkout_completed", "order_created"),
        ("product_added_to_cart", "items_added"),
        ("product_viewed", "contents_viewed"),
        ("page_viewed", "page_viewed"),
        # PostHog.
        ("$pageview", "page_viewed"),
        # Each type is its own name, in any spelling.
        ("order_created", "order_created"),
        ("Appointment Scheduled", "appointment_scheduled"),
        ("AppOpened", "app_opened"),
    ],
)
def test_builtin_names(name: str, event_type: str) -> None:
    assert resolve_event_type(name, {}) == (event_type, None)


def test_every_type_but_custom_is_its_own_name() -> None:
    for event_type in EVENT_TYPES:
        if event_type == "custom":
            assert "custom" not in BUILTIN_EVENT_NAMES
        else:
            assert BUILTIN_EVENT_NAMES[event_type] == event_type


def test_builtin_table_is_consistent() -> None:
    for name, event_type in BUILTIN_EVENT_NAMES.items():
        assert normalise_event_name(name) == name  # keys are stored normalised
        assert event_type in EVENT_TYPES
        assert event_type != "custom"
    with pytest.raises(TypeError):
        BUILTIN_EVENT_NAMES["x"] = "order_created"  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "custom_name"),
    [
        # A name within the official rule is sent lowercased: the supported-events page asks
        # for lowercase letters, and the API lowercases it anyway, so it still deduplicates
        # with the browser pixel's event of the same name in any case.
        ("view_cart", "view_cart"),  # GA4 name without a matching type
        ("refund", "refund"),
        ("QuizFinished", "quizfinished"),
        ("Sign-Up-2", "sign-up-2"),
        # Others are made valid by the documented rule.
        ("Demo Booked", "demo_booked"),
        ("  Quiz Finished ", "quiz_finished"),
        ("Newsletter Joined!", "newsletter_joined"),
        ("Café visité", "cafe_visite"),
        ("__internal__", "internal"),
        ("a" * 70, "a" * 64),
        ("x" + "_" * 63 + "yz", "x"),  # cut at 64, then the trailing underscores go
    ],
)
def test_unknown_names_are_custom_events(name: str, custom_name: str) -> None:
    assert resolve_event_type(name, {}) == ("custom", custom_name)


@pytest.mark.parametrize("name", ["Demo Booked", "Café visité", "a" * 70, "__x__", "Q&A-Done"])
def test_made_valid_names_keep_the_official_rule(name: str) -> None:
    import re

    _event_type, custom_name = resolve_event_type(name, {})
    assert custom_name is not None
    # The rule as the official pages state it, written out independently of the code.
    assert re.fullmatch(r"[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?", custom_name)


@pytest.mark.parametrize(
    ("name", "event_type"),
    [("Order Created!", "order_created"), ("PAGE_VIEWED", "page_viewed")],
)
def test_a_name_that_becomes_a_standard_type_is_that_type(name: str, event_type: str) -> None:
    assert custom_event(name) == (event_type, None)


@pytest.mark.parametrize("name", ["custom", " Custom ", "!!!", "   ", "日本語"])
def test_a_name_that_cannot_be_made_valid_rejects_the_record(name: str) -> None:
    with pytest.raises(MappingError, match="custom event name"):
        custom_event(name)


def test_user_table_wins_over_builtin_and_is_normalised() -> None:
    table = {"Order Completed": "checkout_started", "Quiz Finished": "lead_created"}
    assert resolve_event_type("order_completed", table) == ("checkout_started", None)
    assert resolve_event_type("ORDER-COMPLETED", table) == ("checkout_started", None)
    assert resolve_event_type("quiz finished", table) == ("lead_created", None)
    assert resolve_event_type("purchase", table) == ("order_created", None)  # built-in kept
    assert resolve_event_type("Order Completed", {}) == ("order_created", None)


def test_names_alike_but_for_how_unicode_writes_them_are_one_name() -> None:
    """An accent as its own character (NFD, as macOS and some exports write it), or a zero-width
    space pasted after a name: the table missed them, and they went out as custom events."""
    table = {"Démo Réservée": "appointment_scheduled"}
    decomposed = unicodedata.normalize("NFD", "Démo Réservée")
    assert decomposed != "Démo Réservée"
    assert resolve_event_type(decomposed, table) == ("appointment_scheduled", None)
    assert resolve_event_type("Purchase\u200b", {}) == ("order_created", None)
    assert resolve_event_type("\ufeffsign_up", {}) == ("registration_completed", None)


def test_letters_without_an_ascii_base_are_written_in_ascii_not_dropped() -> None:
    """NFKD leaves ß, æ, ø, ł whole, and encoding to ASCII dropped them: 'Straße Kauf' made
    'strae_kauf', 'Øl' made 'l' (names that could collide)."""
    assert custom_event("Straße Kauf") == ("custom", "strasse_kauf")
    assert custom_event("Ærø trip") == ("custom", "aero_trip")
    assert custom_event("Łódź lead") == ("custom", "lodz_lead")
    assert custom_event("Café Visit") == ("custom", "cafe_visit")  # (accents as before)
    # Dashes, quotes and dots beyond ASCII are their ASCII forms: one name whichever was typed.
    for dash in ("-", "\u2011", "\u2013"):
        assert custom_event(f"Check{dash}out started") == ("custom", "check-out_started")
    assert custom_event("Men\u2019s shoes viewed") == custom_event("Men's shoes viewed")
    assert custom_event("Trial \u00bd started") == ("custom", "trial_1_2_started")


def test_the_type_custom_itself_leaves_the_name_to_the_custom_event_name_field() -> None:
    assert resolve_event_type("custom", {}) == ("custom", None)
    assert resolve_event_type(" Custom ", {"Boring": "custom"}) == ("custom", None)
    assert resolve_event_type("custom", {"custom": "lead_created"}) == ("lead_created", None)


def test_user_table_can_send_a_builtin_name_as_custom() -> None:
    assert resolve_event_type("Lead", {"lead": "custom"}) == ("custom", "lead")


def test_different_tables_do_not_share_results() -> None:
    assert resolve_event_type("x", {"x": "lead_created"}) == ("lead_created", None)
    assert resolve_event_type("x", {"x": "order_created"}) == ("order_created", None)
    assert resolve_event_type("x", {}) == ("custom", "x")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (None, "event name is empty"),
        ("", "event name is empty"),
        ("   ", "event name is empty"),
        ("_-.", "event name is empty"),
        (42, "event name is a number, not text"),
        (Decimal("1"), "event name is a number, not text"),
        (["purchase"], "event name is an array, not text"),
        (True, "event name is a boolean, not text"),
    ],
)
def test_bad_names(name: object, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        resolve_event_type(name, {})
    assert str(caught.value) == message


def test_check_event_table_accepts_real_types() -> None:
    check_event_table({})
    check_event_table({"Order Completed": "order_created", "Boring": "custom"})
    check_event_table({"Order Completed": "order_created", "order_completed": "order_created"})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"Order Completed": "purchase"},
            "event_types entry 'Order Completed': 'purchase' is not a Conversions API event type",
        ),
        ({"x": "Order_Created"}, "'Order_Created' is not a Conversions API event type"),
        ({"x": None}, "None is not a Conversions API event type"),
        ({"": "order_created"}, "event_types has an empty event name (mapped to 'order_created')"),
        (
            {"Order Completed": "order_created", "order-completed": "checkout_started"},
            "event_types entries 'Order Completed' and 'order-completed' are the same name once "
            "normalised ('order_completed') but map to different types",
        ),
    ],
)
def test_check_event_table_rejects(table: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_event_table(table)
    assert message in str(caught.value)


def test_long_names_are_not_kept_in_the_caches() -> None:
    """A free-text column mapped as the name by mistake: each cache kept 4,096 names of any
    length (4,500 records of 50 KB names peaked at 536 MB, 62 MB without them)."""
    from target_openai_capi.mapping import event_names

    long_name = "note " + "x" * 50_000
    before = (
        event_names._custom_event.cache_info().currsize,
        event_names._normalised_name.cache_info().currsize,
    )
    assert event_names.resolve_event_type(long_name, {}) == ("custom", "note_" + "x" * 59)
    assert event_names.normalise_event_name(long_name) == "note_" + "x" * 50_000
    after = (
        event_names._custom_event.cache_info().currsize,
        event_names._normalised_name.cache_info().currsize,
    )
    assert after == before
