"""Event names from the source (GA4, Segment, Meta, Shopify, ...) to Conversions API event types.

A name is normalised before lookup: CamelCase split into words ("AddToCart" -> "add_to_cart"),
casefolded, trimmed, runs of spaces / hyphens / dots / underscores turned into one "_"
("Order Completed" -> "order_completed"). The user's `event_types` table (normalised the same
way) is merged over the built-in table below: user entries win. A name found in neither is sent
as a `custom` event named by `custom_event_name()`.

Custom event names follow the official rule: 1-64 letters, digits, "_" or "-", a letter or digit
at both ends, not a standard event name (the API lowercases it). A name that keeps the rule is sent
as it is, so it deduplicates with the browser pixel's. One that breaks it is made valid: accents
folded to ASCII ("é" -> "e"), lowercased, each run of other characters turned into one "_", "_"
and "-" stripped from both ends, cut to 64 characters ("Demo Booked!" -> "demo_booked"). A name
that is then a standard event type becomes that type; one with no letter or digit, or the name
`custom` itself, cannot be sent and rejects its record.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from target_openai_capi.contract import EVENT_TYPES
from target_openai_capi.mapping.errors import MappingError, quote, type_name
from target_openai_capi.mapping.personal_text import holds_personal_text
from target_openai_capi.mapping.user_values import text_of_no_value

CUSTOM = "custom"

_BUILTIN: dict[str, str] = {
    # Each Conversions API type is its own name.
    **{t: t for t in EVENT_TYPES if t != CUSTOM},
    # The spec's list of names integrations map (Datalyr, Commanders Act, GA4).
    "purchase": "order_created",
    "order_completed": "order_created",
    "add_to_cart": "items_added",
    "begin_checkout": "checkout_started",
    "view_item": "contents_viewed",
    "page_view": "page_viewed",
    "lead": "lead_created",
    "generate_lead": "lead_created",
    "sign_up": "registration_completed",
    "complete_registration": "registration_completed",
    "subscribe": "subscription_created",
    "start_trial": "trial_started",
    # GA4 names with a matching type (the spec's list covers the rest of the e-commerce ones).
    # Other GA4 recommended events (view_cart, add_to_wishlist, add_payment_info, refund, ...)
    # have no matching type and go out as custom events.
    "first_open": "app_installed",
    "app_open": "app_opened",
    # Segment / RudderStack e-commerce and lifecycle specs.
    "product_added": "items_added",
    "wishlist_product_added_to_cart": "items_added",
    "product_viewed": "contents_viewed",
    "signed_up": "registration_completed",
    "application_installed": "app_installed",
    "application_opened": "app_opened",
    # Not in Segment's spec: the usual name for a new subscription in the style of "Trial Started".
    "subscription_started": "subscription_created",
    # Meta standard events (the others match names above once CamelCase is split).
    "initiate_checkout": "checkout_started",
    "view_content": "contents_viewed",
    "schedule": "appointment_scheduled",
    # Shopify Web Pixels standard events.
    "checkout_completed": "order_created",
    "product_added_to_cart": "items_added",
    # PostHog's page view event (its own destination for OpenAI maps it so).
    "$pageview": "page_viewed",
}

# Normalised name -> Conversions API event type.
BUILTIN_EVENT_NAMES: Mapping[str, str] = MappingProxyType(_BUILTIN)

# Lower-to-upper boundaries ("addTo") and the end of an acronym ("HTMLPage" -> "HTML_Page").
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[\s._-]+")
_KNOWN_TYPES = frozenset(EVENT_TYPES)


_CUSTOM_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9])?")
_NOT_NAME_CHARACTERS = re.compile(r"[^a-z0-9_-]+")
MAX_CUSTOM_NAME_LENGTH = 64


# Letters NFKD does not take apart into an ASCII letter and an accent, written as ASCII.
_LETTERS_AS_ASCII = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D",
     "þ": "th", "Þ": "Th", "œ": "oe", "Œ": "OE", "\u0131": "i", "ð": "d", "Ð": "D",
     # (dashes, quotes and dots as their ASCII forms: one name whichever the source typed)
     "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
     "\u2212": "-", "\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u00b7": ".",
     "\u2044": "/"}
)  # fmt: skip


def _ascii_folded(text: str) -> str:
    """The text in ASCII: accents left off ("é" -> "e"), letters written as ASCII ("ß" ->
    "ss": they were dropped, "Straße Kauf" made "strae_kauf", and "Øl" "l")."""
    if text.isascii():
        return text
    # (again after NFKD: "½" comes apart into 1, a fraction slash and 2)
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTERS_AS_ASCII))
    decomposed = decomposed.translate(_LETTERS_AS_ASCII)
    return decomposed.encode("ascii", "ignore").decode("ascii")


# Names longer than this are not cached (a free-text column mapped as the name by mistake:
# 4,096 cached names of 50 KB each held 200 MB a cache).
MAX_CACHED_NAME = 256


def custom_event(name: str) -> tuple[str, str | None]:
    """(event type, custom_event_name) for a custom event's name, made valid by the rule above."""
    if len(name) > MAX_CACHED_NAME:
        return _custom_event.__wrapped__(name)
    return _custom_event(name)


@lru_cache(maxsize=4096)
def _custom_event(name: str) -> tuple[str, str | None]:
    text = name.strip()
    if holds_personal_text(text) is not None:  # (a name is sent as it is: not these)
        raise MappingError(
            "custom event name holds an email address or a phone number: a name is sent as it "
            "is, so map event_type_from (or custom_event_name) to the event's name, not to a "
            "text about a person",
            "custom_event_name",
        )
    if not _CUSTOM_NAME.fullmatch(text):
        text = _NOT_NAME_CHARACTERS.sub("_", _ascii_folded(text).lower()).strip("_-")
        text = text[:MAX_CUSTOM_NAME_LENGTH].strip("_-")
    if not text:
        raise MappingError(
            "custom event name has no letter or digit of ASCII (the API takes 1-64 of them, "
            "'_' or '-'; accents are folded, other scripts are not): map custom_event_name to "
            "a name in ASCII letters",
            "custom_event_name",
        )
    standard = text.lower()
    if standard == CUSTOM:
        raise MappingError(
            "custom event name 'custom' is refused by the API (it must not be an event type); "
            "name the event",
            "custom_event_name",
        )
    if standard in _KNOWN_TYPES:
        return standard, None
    # Sent in lowercase: the supported-events page asks for lowercase letters, the conversions
    # page says the API lowercases it (so "Demo-Booked" and "demo-booked" are one event).
    return CUSTOM, standard


def normalise_event_name(name: str) -> str:
    """Normalise an event name for lookup: "Order Completed" / "AddToCart" -> snake_case; its
    accents composed one way (NFC: "é" as one character or as e and an accent) and invisible
    characters (a zero-width space pasted after "Purchase") left out."""
    if len(name) > MAX_CACHED_NAME:
        return _normalised_name.__wrapped__(name)
    return _normalised_name(name)


@lru_cache(maxsize=4096)  # a stream carries few distinct names, each many times
def _normalised_name(name: str) -> str:
    if not name.isascii():
        name = "".join(
            ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch) != "Cf"
        )
    words = _CAMEL.sub("_", name.strip())
    return _SEPARATORS.sub("_", words.casefold()).strip("_")


def check_event_table(table: Mapping[str, str]) -> None:
    """Raise ValueError naming the first entry of a user's event table that is not usable."""
    seen: dict[str, str] = {}
    for name, event_type in table.items():
        if not isinstance(name, str) or not normalise_event_name(name):
            raise ValueError(f"event_types has an empty event name (mapped to {event_type!r})")
        if event_type not in _KNOWN_TYPES:
            raise ValueError(
                f"event_types entry {name!r}: {event_type!r} is not a Conversions API event "
                f"type (one of {', '.join(EVENT_TYPES)})"
            )
        key = normalise_event_name(name)
        other = seen.get(key)
        if other is not None and table[other] != event_type:
            raise ValueError(
                f"event_types entries {other!r} and {name!r} are the same name once normalised "
                f"({key!r}) but map to different types"
            )
        seen[key] = name


# Merged tables by the identity of the user's table: the config's table is built once and
# never changed, so it is normalised and merged once, not per record. The entry keeps the
# table alive, so its id cannot be reused by another object.
_MERGED: dict[int, tuple[Mapping[str, str], dict[str, str]]] = {}


def _merged(table: Mapping[str, str]) -> dict[str, str]:
    """The built-in table with the user's (normalised) entries over it."""
    entry = _MERGED.get(id(table))
    if entry is not None and entry[0] is table:
        return entry[1]
    merged = dict(_BUILTIN)
    merged.update({normalise_event_name(k): v for k, v in table.items()})
    if len(_MERGED) > 64:  # only a handful of tables exist; never grow without bound
        _MERGED.clear()
    _MERGED[id(table)] = (table, merged)
    return merged


def resolve_event_type(name: object, table: Mapping[str, str]) -> tuple[str, str | None]:
    """Map an event name to (event type, custom_event_name or None)."""
    if not isinstance(name, str):
        if name is None:
            raise MappingError("event name is empty", "event")
        raise MappingError(f"event name is {type_name(name)}, not text", "event")
    key = normalise_event_name(name)
    if not key:
        raise MappingError("event name is empty", "event")
    if len(name) <= 12 and text_of_no_value(name):  # (an export's NULL, \N: no name, as null)
        raise MappingError(
            f"event name {quote(name.strip())} is an export's mark of no value", "event"
        )
    event_type = _merged(table).get(key) if table else _BUILTIN.get(key)
    if key == CUSTOM and event_type in (None, CUSTOM):
        # The type itself (a table shaped like the event: type "custom" beside a
        # custom_event_name column): the name comes from the custom_event_name field.
        return CUSTOM, None
    if event_type is None or event_type == CUSTOM:
        return custom_event(name)
    return event_type, None
