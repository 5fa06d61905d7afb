"""Turn one source record into one CAPI event, through its stream's mapping (pure).

The mapping is compiled once per stream from its config entry (mapping/stream_mapping.py).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import jmespath
import simplejson
from jmespath.exceptions import JMESPathError

from target_openai_capi.contract import (
    APP_EVENT_TYPES,
    DATA_SHAPE_BY_TYPE,
    MAX_SOURCE_URL_CHARS,
    SHAPE_FIELDS,
)
from target_openai_capi.log_safety import reason_safe
from target_openai_capi.mapping.errors import MappingError, type_name
from target_openai_capi.mapping.errors import quote as quoted
from target_openai_capi.mapping.event_names import custom_event, resolve_event_type
from target_openai_capi.mapping.expression_functions import parse_json
from target_openai_capi.mapping.identity import DEFAULT_USER_FIELD_STYLE, build_user
from target_openai_capi.mapping.money import (
    MAX_MINOR_UNITS,
    currency_code,
    minor_units,
    money_value,
    to_minor_units,
)
from target_openai_capi.mapping.personal_text import (
    DOMAIN_ENDS,
    PHONE_DIGITS,
    PHONE_SEPARATORS,
    PHONE_SIGN,
    holds_email,
    holds_personal_text,
    may_hold_email,
)
from target_openai_capi.mapping.stream_mapping import StreamMapping
from target_openai_capi.mapping.timestamps import epoch_ms, to_epoch_ms
from target_openai_capi.mapping.user_values import blank, text_of_no_value

_CONTENT_FIELDS = frozenset(
    {
        "id",
        "group_id",
        "name",
        "content_type",
        "quantity",
        "amount",
        "amount_minor",
        "currency",
        "variant_dict",
    }
)
# Properties of data that custom_data may not set: they have their own fields.
_DATA_FIELDS = frozenset({"type", "amount", "currency", "contents", "plan_id"})
# Deepest nesting custom_data may have; deeper is a mapping mistake (or hostile input).
MAX_CUSTOM_DATA_DEPTH = 32
_TRUE_STRINGS = frozenset({"true", "1", "yes", "y", "t", "on"})  # ("on": a checkbox's value)
_FALSE_STRINGS = frozenset({"false", "0", "no", "n", "f", "off", ""})
# Bound on event ids: the API's limit is undocumented; ids this long are a mapping mistake.
MAX_ID_LENGTH = 256


def passes_filter(mapping: StreamMapping, record: Mapping[str, Any]) -> bool:
    """True when the stream has no filter or the filter is truthy (JMESPath truthiness)."""
    if mapping.filter is None:
        return True
    try:
        value = mapping.filter(record)
    except jmespath.exceptions.JMESPathError as exc:
        raise MappingError(f"filter failed on this record: {exc}") from exc
    if value is True:  # (the usual answer: no comparisons)
        return True
    return not (value is None or value is False or value in ("", [], {}))


def _value(mapping: StreamMapping, record: Mapping[str, Any], name: str) -> Any:
    """A mapped field, else the record's property of the same name; empty or blank strings are
    absent (a CHAR(n) column or a CSV cell of spaces: no value, as "" is), and so are an
    export's marks of a missing value (`\\N`, `NULL`, `N/A`: user_values.py NULL_MARKERS)."""
    getter = mapping.fields.get(name)
    if getter is not None:
        value = getter(record)
    elif name in mapping.unread:  # (mapped to null, or the other of its pair is mapped)
        return None
    else:
        value = record.get(name)
    if type(value) is str:  # the usual case, without comparing other types with ""
        return None if not value or text_of_no_value(value) else value
    return None if isinstance(value, str) and (not value or text_of_no_value(value)) else value


def _user_value(
    mapping: StreamMapping, record: Mapping[str, Any], name: str, notes: list[str]
) -> Any:
    """A user field's value, None with a note where its expression fails on this record
    (`lower(email)` of a number): a user field is optional, and one that fails its rule never
    costs the event (assembler.py `_user` does the same)."""
    try:
        return _value(mapping, record, name)
    except (MappingError, jmespath.exceptions.JMESPathError) as exc:
        notes.append(user_field_failed(name, exc, mapping.texts.get(name)))
        return None


# A function's complaint about the types it got ("lower() got number, expected string, null"):
# no quote and no digit, so no value of the record's.
_SAYS_NO_VALUE = re.compile(r"[\w.]+\(\) (?:got|expects?|expected) [^'\"\d\u2018\u2019]*")


def user_field_failed(name: str, exc: Exception, expression: object = None) -> str:
    """The note of a user field whose expression failed on a record, without the values it
    may quote (stripe_amount() of a name: the note is logged, a user field is personal): the
    expression, the user's own text, is shown."""
    reason = str(exc) if isinstance(exc, MappingError) else f"expression failed: {exc}"
    head, said, detail = reason.partition(" failed: ")
    if not said:  # (a function's own error: the expression it was called in, named)
        shown = f"expression {expression!r}" if isinstance(expression, str) else "its expression"
        head, said, detail = shown, " failed: ", reason
    if not _SAYS_NO_VALUE.fullmatch(detail):  # (a value, quoted or not, may be in it)
        detail = "(why is not logged: it may hold the value)"
    return f"{name}: {reason_safe(head + said)}{detail}; sent without it"


def _as_bool(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE_STRINGS | _FALSE_STRINGS:
        return value.strip().lower() in _TRUE_STRINGS
    if blank(value):  # an export's mark of no value ('NULL', 'N/A'): none given, as for null
        return False
    raise MappingError(f"{name} {quoted(value)} is not a boolean")


MISSING_CUSTOM_NAME = (
    "custom_event_name is missing for a custom event "
    "(the type 'custom' is no name: the API refuses it as one)"
)
# Ids and names are at most 256 characters; a number of more digits is no id (and an int of a
# billion digits, from 1E+999999999, would take minutes to build).
MAX_TEXT_DIGITS = 256
_TEN_TO_MAX_DIGITS = 10**MAX_TEXT_DIGITS


def _as_text(value: object, name: str) -> str:
    """Ids and names as strings; integral numbers keep no decimal point."""
    if type(value) is str:  # (the usual value: what the rest of this function makes of it)
        text = value.strip()
        if not text:
            raise MappingError(f"{name} is empty")
        return text
    if isinstance(value, (bool, dict, list)):
        raise MappingError(f"{name} must be a string or a number, not {type_name(value)}")
    if isinstance(value, Decimal) and value.is_finite() and value.adjusted() >= MAX_TEXT_DIGITS:
        raise MappingError(
            f"{name} {quoted(value)} is a number of more than {MAX_TEXT_DIGITS} digits"
        )
    if isinstance(value, int) and abs(value) >= _TEN_TO_MAX_DIGITS:
        raise MappingError(f"{name} is a number of more than {MAX_TEXT_DIGITS} digits")
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    text = str(value).strip()
    if not text:
        raise MappingError(f"{name} is empty")
    return text


def source_url_text(value: object, keep_query: bool) -> str:
    """The page URL as sent: its query string and fragment removed unless `keep_query`.

    OpenAI's own implementation guide asks for "HTTP(S) origin plus pathname only. Strip query
    strings and fragments before sending": they carry tokens (Shopify's order status link has
    `?key=`, an access key to the order) and personal data (`?email=`); so do credentials before
    the host (`https://user:password@host/`), which go too. The oppref a landing page carries
    is read by its own field, not from source_url.
    """
    text = _as_text(value, "source_url")
    spaced = _WHITESPACE.search(text) is not None  # (one look a record; rarely true)
    if spaced:  # tabs and newlines dropped first, as a browser does; other whitespace encoded
        text = text.translate(_TABS_AND_NEWLINES).strip()
        if not text:
            raise MappingError("source_url is empty")
    if text[:1] in _SCHEMES_OF_NO_PAGE_START and text.lower().startswith(_SCHEMES_OF_NO_PAGE):
        raise MappingError(f"source_url is a {text.partition(':')[0].lower()}: URL, not a page's")
    if "[" in text:  # an IPv6 host, which urlsplit checks (the contract's pattern cannot)
        try:
            urlsplit(text)
        except ValueError as exc:
            raise MappingError(f"source_url is not a URL ({exc})") from None
    if not keep_query:
        text = without_query_and_credentials(text)
        if not text:
            raise MappingError("source_url is empty without its query string and fragment")
    if spaced and len(text) <= MAX_SOURCE_URL_CHARS and _WHITESPACE.search(text):
        # (not a longer one, which the contract refuses: encoded, 15 MB took 8 s)
        text = _with_whitespace_encoded(text)
    return text


# What a browser takes out of a URL before it reads it (the WHATWG URL standard).
_TABS_AND_NEWLINES = str.maketrans("", "", "\t\n\r")


_WHITESPACE = re.compile(r"\s")


def _with_whitespace_encoded(url: str) -> str:
    """The URL with whitespace after its host percent-encoded, as a browser sends the page's
    address (`/thank you` -> `/thank%20you`; tabs and newlines it drops, as source_url_text
    did first): the pixel reports it so, and the contract takes no URL with a space. Whitespace
    in the scheme or host is left, for the contract to refuse."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    cut = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    tail = _WHITESPACE.sub(lambda m: quote(m.group(), safe=""), tail)
    return f"{scheme}{separator}{authority}{tail}"


# URLs of no page a conversion happened on (a script, inline data, a local file): the contract's
# "scheme://host" lets javascript://alert(1) through.
_SCHEMES_OF_NO_PAGE = ("javascript:", "vbscript:", "data:", "file:", "blob:", "about:")
_SCHEMES_OF_NO_PAGE_START = frozenset("jJvVdDfFbBaA")


def without_query_and_credentials(url: str) -> str:
    """The URL up to its query string or fragment, without a user:password@ before its host,
    nor a session id a Java server writes into the path (`/cart;jsessionid=...`)."""
    url = url.partition("?")[0].partition("#")[0]  # up to the first of either
    scheme, separator, rest = url.partition("://")
    if separator and "@" in rest.partition("/")[0]:
        authority, slash, path = rest.partition("/")
        url = f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"
    if ";" in url:
        url = _PATH_SESSION_ID.sub("", url)
    if may_hold_email(url) or "+" in url or "\uff0b" in url:
        url = _without_personal_path(url)
    return url


def _without_personal_path(url: str) -> str:
    """The URL cut before the first part of its path that holds an email address or a +phone
    number (`/newsletter/confirm/jane@example.com` -> `/newsletter/confirm/`, `/orders;email=`
    -> `/orders`, percent-encoded too): a page's address as the guide asks, with no personal
    data sent raw. A + after a digit joins two ids (a bundle's), and a handle (`/@jane.doe/`)
    is no address."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url  # (no page's URL: the contract refuses it)
    authority, slash, path = rest.partition("/")
    if not slash or len(url) > MAX_SOURCE_URL_CHARS:  # (refused as too long: no part sent)
        return url
    kept: list[str] = []
    for segment in path.split("/"):
        if _personal_segment(segment):
            name = segment.partition(";")[0]  # (a parameter of the segment may be all it holds)
            if ";" in segment and name and not _personal_segment(name):
                return f"{scheme}://{authority}/{'/'.join([*kept, name])}"
            return f"{scheme}://{authority}/{'/'.join([*kept, ''])}"
        kept.append(segment)
    return url


# A + after a digit joins two ids (`4006381333931+4006381333948`): no phone number's sign (after
# a word it may be one: `/sms+14155552671`).
_JOINING_PLUS = re.compile(r"(?<=[0-9])\+")


def _personal_segment(segment: str) -> bool:
    """Whether one part of a URL's path holds an email address or a +phone number."""
    text = unquote(segment) if "%" in segment else segment
    if "+" in text:
        text = _JOINING_PLUS.sub(" ", text)
    return holds_personal_text(text) is not None


# A path segment's session id parameter: ";jsessionid=" (Java servlets), ";phpsessid=", ...
_PATH_SESSION_ID = re.compile(r";(?:jsessionid|phpsessid|sid|sessionid)=[^/;]*", re.IGNORECASE)


# Properties that taps, the SDK and loaders add about a read or a load, not about the row
# (`_sdc_extracted_at`, `_sdc_filename`; Fivetran's `_fivetran_synced`, Airbyte's
# `_airbyte_extracted_at`, dlt's `_dlt_load_id`, ...): never part of a record's hash, or a row
# synced again would be a new conversion.
METADATA_PREFIXES = ("_sdc_", "_fivetran_", "_airbyte_", "_dlt_")


def record_digest(record: Mapping[str, Any]) -> str:
    """A stable hash of a record's own data, used as its event id when nothing better is known:
    the same row read again (new extraction time, a touched file) gets the same id."""
    own = {k: v for k, v in record.items() if not str(k).startswith(METADATA_PREFIXES)}
    # (NaN and the infinities, which a stream map may make, written as their names)
    canonical = simplejson.dumps(own, sort_keys=True, use_decimal=True, default=str, allow_nan=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


# What exports write where an id is missing (GA4's "(not set)", NULL_MARKERS' "NULL", "N/A", ...):
# no id. Taken as one, it would make every such record one event, and all but the first would
# be dropped as duplicates, here and at OpenAI.
_NOT_SET = frozenset(
    {"(not set)", "(not_set)", "(none)", "null", "none", "nil", "nan", "undefined", "n/a", "#n/a"}
)


# What GA4 writes for an item's id or name it does not know: no value.
_PLACEHOLDERS = frozenset({"(not set)", "(not_set)", "(none)"})


def _no_id(value: object) -> bool:
    """An id value that is no id: null, empty, or a placeholder for a missing value (in any
    case: 'Null' too)."""
    return value is None or (
        type(value) is str and (blank(value) or value.strip().lower() in _NOT_SET)
    )


# An id holding an email address (a stream keyed by email, an id mapped from one) goes out as
# this prefix and the SHA-256 of the id: raw personal data never leaves the process, and the
# same record keeps the same id.
HASHED_ID_PREFIX = "sha256_"
# A phone number written in international form, as the id or one key property of it (a
# call-tracking table keyed by the caller's number): hashed like an email (personal_text.py).
_PHONE_ID = re.compile(rf"(?:^|(?<=:))[{PHONE_SIGN}]\d[\d{PHONE_SEPARATORS}]{{5,22}}\d(?=$|:)")


def _holds_phone(text: str) -> bool:
    """A phone number of 8 to 15 digits written with its +, as the id or a part of it."""
    low, high = PHONE_DIGITS
    return any(
        low <= sum(ch.isdigit() for ch in found.group()) <= high
        for found in _PHONE_ID.finditer(text)
    )


def id_key_properties(key_properties: Sequence[str]) -> tuple[str, ...]:
    """The key properties an event id is made of: the stream's, but tap and loader metadata
    (tap-csv-folder keys its rows by `_sdc_path` and `_sdc_line_number`: where a row was read,
    which a new row on top of the file changes, not which row it is)."""
    return tuple(k for k in key_properties if not k.startswith(METADATA_PREFIXES))


def event_id(
    mapping: StreamMapping,
    record: Mapping[str, Any],
    key_properties: Sequence[str],
    whole_record: Callable[[], Mapping[str, Any] | None] | None = None,
) -> str:
    """Stable event id: the mapped id, else the stream's key properties (id_key_properties),
    else a hash of the whole record (`whole_record()` when `record` holds only the paths the
    mapping reads). An `id` column is read as the mapped id unless it is one part of a key of
    several (`tenant_id, id`: alone it would make the rows of two tenants one event)."""
    keys = id_key_properties(key_properties)
    value = None if id_is_part_of_the_key(mapping, keys) else _value(mapping, record, "id")
    return event_id_from(value, record, keys, whole_record)


def id_is_part_of_the_key(mapping: StreamMapping, keys: Sequence[str]) -> bool:
    """True when `id` is not mapped and the record's `id` column is one of several key
    properties: the event id is then made of the whole key, not of that column alone."""
    return "id" not in mapping.fields and len(keys) > 1 and "id" in keys


def event_id_from(
    value: Any,
    record: Mapping[str, Any],
    key_properties: Sequence[str],
    whole_record: Callable[[], Mapping[str, Any] | None] | None = None,
) -> str:
    """event_id, given the value of the mapped `id` field (`_value`) and id_key_properties."""
    if not _no_id(value):
        text = _as_text(value, "id")
    elif key_properties and not any(_no_id(record.get(k)) for k in key_properties):
        parts = [_as_text(record[k], k) for k in key_properties]
        text = parts[0] if len(parts) == 1 else ":".join(_key_part(part) for part in parts)
    else:
        whole = record if whole_record is None else whole_record()
        if whole is None:  # (two rows alike in what was read would be one event)
            raise MappingError(
                "the record has no id, and a part of it cannot be read (a number too large to "
                "read exactly) to make one of its data: map an id"
            )
        return f"rec_{record_digest(whole)}"
    if len(text) > MAX_ID_LENGTH:
        raise MappingError(f"id is longer than {MAX_ID_LENGTH} characters")
    if (may_hold_email(text) and holds_email(text)) or (
        ("+" in text or "\uff0b" in text) and _holds_phone(text)
    ):
        return HASHED_ID_PREFIX + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return text


def _key_part(text: str) -> str:
    """One key property's value in an id of several, joined by `:`: a `:` or `\\` in it is
    escaped with a `\\`, so that ('a:b', 'c') and ('a', 'b:c') are two ids, not one. (Only where
    there is one: the ids of values without them are as they always were.)"""
    if ":" in text or "\\" in text:
        return text.replace("\\", "\\\\").replace(":", "\\:")
    return text


def _contents(items: object, event_currency: str | None) -> list[dict[str, Any]]:
    if isinstance(items, str) and items.lstrip().startswith("["):
        try:  # a warehouse column of line items kept as JSON text
            items = parse_json(items)
        except JMESPathError as exc:
            raise MappingError(f"contents is text that is not JSON ({exc})") from None
    if not isinstance(items, list):
        raise MappingError(f"contents must be a list of objects, not {type_name(items)}")
    result = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise MappingError(f"contents[{i}] must be an object")
        if not item.keys() <= _CONTENT_FIELDS:
            unknown = sorted(set(item) - _CONTENT_FIELDS)[0]
            raise MappingError(
                f"contents[{i}].{unknown} is not a content field "
                f"(allowed: {', '.join(sorted(_CONTENT_FIELDS))})"
            )
        get = item.get
        out: dict[str, Any] = {}
        for name in ("id", "group_id", "name", "content_type"):
            value = get(name)
            if value is not None:
                # An empty text is no value: every item field is optional, and an item without
                # a name must not cost the event. (No label built unless an error needs it.)
                text = (
                    value.strip()
                    if type(value) is str
                    else _as_text(value, f"contents[{i}].{name}")
                )
                if text and not (text[0] == "(" and text.lower() in _PLACEHOLDERS):
                    # (ids are a catalog's: `4006381333931+4006381333948` is a bundle's)
                    out[name] = item_text(text) if name == "name" else catalog_text(text)
        quantity = money_value(get("quantity"))
        if quantity is not None:
            if type(quantity) is int and 0 <= quantity <= MAX_MINOR_UNITS:
                out["quantity"] = quantity
            else:
                out["quantity"] = minor_units(quantity, f"contents[{i}].quantity", "items")
        item_currency = None
        raw_currency = money_value(get("currency"))
        if raw_currency is not None:
            try:
                item_currency = currency_code(raw_currency)
            except MappingError as exc:
                raise item_currency_error(i, exc) from None
            out["currency"] = item_currency
        currency = item_currency or event_currency
        amount, amount_minor = money_value(get("amount")), money_value(get("amount_minor"))
        if amount is not None and amount_minor is not None:
            raise both_item_amounts(i)
        if amount is not None or amount_minor is not None:
            if currency is None:
                raise no_item_currency(i)
            if amount_minor is not None:
                out["amount"] = minor_units(amount_minor, f"contents[{i}].amount_minor")
            else:
                out["amount"] = to_minor_units(amount, currency, f"contents[{i}].amount")
        variant = get("variant_dict")
        if variant is not None:
            variant = _variant_dict(variant, f"contents[{i}].variant_dict")
            if variant:
                out["variant_dict"] = variant
        result.append(out)
    return result


def amounts_both_read(mapping: StreamMapping) -> bool:
    """Neither amount nor amount_minor is mapped: both are read from the record's properties of
    their names (a table shaped like the event), and a record with both is ambiguous."""
    return "amount" not in mapping.fields and "amount_minor" not in mapping.fields


def agreed_amount(amount: object, amount_minor: object, currency: str) -> int:
    """The minor units of a record with both an amount and an amount_minor, neither mapped,
    when they say the same (25.99 and 2599 in USD); else a rejection (assembler.py too)."""
    minor = minor_units(amount_minor, "amount_minor")
    if to_minor_units(amount, currency, "amount") != minor:
        raise MappingError(
            f"the record's amount ({quoted(amount)}) and amount_minor ({quoted(amount_minor)}) "
            "disagree: give one, or map amount or amount_minor to the one to send"
        )
    return minor


def missing_currency(mapping: StreamMapping) -> MappingError:
    """The error for an amount without a currency (also raised by assembler.py): what was read."""
    if "currency" in mapping.texts:
        return MappingError(
            f"amount needs a currency, and currency ({mapping.texts['currency']!r}) gave no "
            "value for this record (a fixed currency is written quoted: \"'USD'\")"
        )
    if "currency" in mapping.unread:  # (mapped to `null`: not read, whatever the record has)
        return MappingError(
            "amount needs a currency, and currency is mapped to null (not read); map it to "
            "one, or to a fixed one such as \"'USD'\", or map amount to null too"
        )
    return MappingError(
        "amount needs a currency: the record has no `currency` property, or an empty one; map "
        "`currency` to one, or to a fixed one such as \"'USD'\""
    )


def event_time_ms(mapping: StreamMapping, record: Mapping[str, Any]) -> int:
    """The event's time: its mapped (or same-named) timestamp_ms, else timestamp, in epoch
    milliseconds; MappingError when there is none or it is no time."""
    ts_ms = _value(mapping, record, "timestamp_ms")
    if ts_ms is not None:
        return epoch_ms(ts_ms)
    ts = _value(mapping, record, "timestamp")
    if ts is None:
        raise missing_timestamp(mapping)
    return to_epoch_ms(ts)


def missing_timestamp(mapping: StreamMapping) -> MappingError:
    """The error for a record without a time (also raised by assembler.py): what was read."""
    mapped = [
        f"{name} ({mapping.texts[name]!r})"
        for name in ("timestamp", "timestamp_ms")
        if name in mapping.texts
    ]
    if mapped:
        return MappingError(
            f"timestamp is missing: {' and '.join(mapped)} gave no value for this record "
            "(JMESPath names a property exactly, case and all)"
        )
    read = [f"`{name}`" for name in ("timestamp", "timestamp_ms") if name not in mapping.unread]
    unread = [name for name in ("timestamp", "timestamp_ms") if name in mapping.unread]
    nulled = f" ({' and '.join(unread)} mapped to null: not read)" if unread else ""
    return MappingError(
        f"timestamp is missing: the record has no {' or '.join(read)} property, or an empty "
        f"one{nulled}; map {'one of them' if len(read) > 1 else 'timestamp'} to the record's "
        "time"
    )


def both_item_amounts(index: int) -> MappingError:
    """The error for a content item with both amount fields (also raised by assembler.py)."""
    return MappingError(f"contents[{index}]: give amount or amount_minor, not both")


def item_currency_error(index: int, error: MappingError) -> MappingError:
    """A content item's currency that is none, its place named (also raised by assembler.py)."""
    return MappingError(f"contents[{index}].currency: {error}", "currency")


def no_item_currency(index: int) -> MappingError:
    """The error for a content item's amount without a currency (also raised by assembler.py)."""
    return MappingError(f"contents[{index}].amount needs a currency (on the item or the event)")


def _variant_dict(value: object, where: str) -> dict[str, str]:
    """An item's variant as string keys to string values ({"size": "M"}); nulls and blank
    texts left out, a yes/no option as "true" or "false" ({"gift_wrap": true})."""
    if not isinstance(value, Mapping):
        raise MappingError(f"{where} must be an object of strings, not {type_name(value)}")
    variant = {}
    for key, item in value.items():
        if type(item) is bool:
            variant[str(key)] = "true" if item else "false"
        elif item is not None and (type(item) is not str or item.strip()):  # blank: no value
            variant[str(key)] = item_text(_as_text(item, f"{where}.{key}"))
    return variant


def item_text(text: str) -> str:
    """A content item's text as sent: one holding an email address or a +phone number (a gift
    message in a variant, an engraving) as its hash, as custom_data's texts are."""
    return text if holds_personal_text(text) is None else _hash_text(text)


def catalog_text(text: str) -> str:
    """A content item's id, group id or content type, or a plan id, as sent: one holding an
    email address (a column mapped by mistake, a gift card keyed by its recipient) as its hash,
    as an event id holding one is. An id that is one word, an @ and a name whose last part
    holds a digit (`plan@monthly.v2`, `SKU-1@WH.A1`: no top-level domain has one) is a
    catalog's, sent as it is. (A + with digits is no phone number here: a bundle's ids.)"""
    if not may_hold_email(text) or not holds_email(text):
        return text
    versioned = _VERSIONED_ID.fullmatch(text) if len(text) <= 256 else None  # (an id's length)
    if versioned is not None and not _COMMON_ENDS.search(versioned.group(1)):
        return text  # (but jane@example.com.1 is an address and a suffix)
    return _hash_text(text)


# One id written with an @ whose last dotted part is letters and digits with a digit (v2, A1):
# no domain ends so (a top-level domain is letters, or xn-- and letters and digits).
_VERSIONED_ID = re.compile(r"[\w.+-]+@[\w-]+((?:\.[\w-]+)*)\.[A-Za-z0-9]*\d[A-Za-z0-9]*")
# A domain's common last parts: one among the parts after the first is an address's end.
_COMMON_ENDS = re.compile(rf"\.(?i:{DOMAIN_ENDS})(?=\.|$)")


def _json_value(value: object, where: str, depth: int = 0) -> Any:
    """A custom property as plain JSON: exact integers, other numbers as floats, dates as text."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return _json_integer(value, where)
    if isinstance(value, (Decimal, float)):
        number = Decimal(repr(value)) if isinstance(value, float) else value
        if not number.is_finite():
            raise MappingError(f"{where} is not a finite number")
        if abs(number.adjusted()) <= 18 and number == number.to_integral_value():
            return _json_integer(int(number), where)
        as_float = float(number)
        if not math.isfinite(as_float):
            raise MappingError(f"{where} is too large for a JSON number")
        return as_float
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if depth >= MAX_CUSTOM_DATA_DEPTH:
        raise MappingError(f"{where} is nested more than {MAX_CUSTOM_DATA_DEPTH} levels deep")
    if isinstance(value, Mapping):
        return {
            str(key): _json_value(item, f"{where}.{key}", depth + 1) for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_json_value(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise MappingError(f"{where} is {type_name(value)}, not a JSON value")


def _json_integer(number: int, where: str) -> int:
    """An integer JSON carries exactly to the API: within 64 bits (what the request's encoder
    writes, and what a JSON parser reads as an integer); a larger one is refused, not rounded."""
    if -(2**63) <= number < 2**64:
        return number
    raise MappingError(f"{where} is beyond a 64-bit integer: map it as text (to_string(...))")


def _custom_data(value: object, notes: list[str]) -> dict[str, Any]:
    """custom_data's properties, checked: an object that sets none of data's own fields; its
    personal data hashed (`_hide_personal_data`), each place said in `notes`."""
    if not isinstance(value, Mapping):
        raise MappingError(f"custom_data must be an object, not {type_name(value)}")
    clash = sorted(set(map(str, value)) & _DATA_FIELDS)
    if clash:
        raise MappingError(
            f"custom_data.{clash[0]} is one of data's own fields; map it as `{clash[0]}`"
            if clash[0] != "type"
            else "custom_data.type would replace the data shape; rename that property"
        )
    result: dict[str, Any] = _json_value(value, "custom_data")
    hashed: dict[str, str] = {}
    _hide_personal_data(result, "custom_data", _NOT_NAMED, hashed)
    notes.extend(f"{where} {why}{HASHED_DATA_NOTE_END}" for where, why in hashed.items())
    return result


# How a note about personal data hashed in custom_data ends (logged once per stream and text).
HASHED_DATA_NOTE_END = ": sent as its SHA-256 hash (map it to a user field to be matched by it)"
# Property names (lowercased, without `_`, `-`, spaces) that say their value is about a person:
# as they are, or at their end (`customer_email`, `billing_phone`, `contact_first_name`).
_PERSONAL_NAME_ENDS = (
    "email",
    "emailaddress",
    "phone",
    "phonenumber",
    "mobilenumber",
    "mobilephone",
    "firstname",
    "lastname",
    "fullname",
    "surname",
    "givenname",
    "familyname",
    "customername",
    "contactname",
    # A person's address (Shopify's shipping_address, default_address and their parts,
    # address1), but those _NOT_A_PERSONS_ADDRESS names.
    "address",
    "addresses",  # (Shopify's customer has a list of them)
    "addr",
    "address1",
    "address2",
    "address3",
    "addressline1",
    "addressline2",
    "addressline3",
    "dateofbirth",
    "birthdate",
    "birthday",
    "dob",
)
# Addresses that are no person's: kept as they are in custom_data (an ip_address is sent raw
# in the user object too).
# (the word before `address`: `store_address`, `IPAddress`, `ipv6_address`)
_ADDRESS_WORDS = frozenset({"address", "addresses", "addr"})
_NOT_A_PERSONS_ADDRESS = frozenset(
    {
        "store",
        "shop",
        "merchant",
        "business",
        "company",
        "warehouse",
        "return",
        "wallet",
        "contract",
        "token",
        "crypto",
        "bitcoin",
        "btc",
        "eth",
        "ethereum",
        "deposit",
        "mac",
        "ip",
        "ipv",
        "network",
        "server",
        "web",
        "node",
        "memory",
    }
)
_NOT_IN_A_NAME = re.compile(r"[\s_.-]+")
# A property name shown as it is in a note: a word, not data (an email or a customer's name
# used as a key is shown as `*`).
# (a name beginning with a capital may be a person's: MariaGarcia; shown as `*`)
_SHOWN_NAME = re.compile(r"[a-z_][a-z0-9_]{0,39}|[a-z][A-Za-z0-9]{0,39}")
# What a property's name says of its value (_personal_name): nothing; a phone number when it
# holds one (`mobile` may be a platform too: "iOS"); personal data.
_NOT_NAMED, _PHONE_IF_DIGITS, _NAMED = 0, 1, 2  # (in order: a name for a person wins)
# At least this many digits make a value under a _PHONE_IF_DIGITS name a phone number.
_PHONE_DIGITS = 7


@lru_cache(maxsize=4096)
def _personal_name(key: str) -> int:
    """What a property's name says of its value: named for a person's email, phone, name,
    address or birth date (_NAMED), for a phone that may be a platform word (`mobile`, `cell`,
    `tel`: _PHONE_IF_DIGITS), or neither."""
    compact = _NOT_IN_A_NAME.sub("", key).lower()
    words = _WORD.findall(_CAMEL_BOUNDARY.sub("_", key).lower())
    if compact.endswith(_PERSONAL_NAME_ENDS) and not (
        (len(words) > 1 and words[-1] in _ADDRESS_WORDS and words[-2] in _NOT_A_PERSONS_ADDRESS)
        or _one_word_kind(compact) in _NOT_A_PERSONS_ADDRESS  # (IPAddress: one word)
    ):
        return _NAMED
    numbered = bool(words) and words[-1] in _NUMBER_WORDS
    if numbered:
        words = words[:-1]  # (phone_no, tel_number, contact_number: the word before)
    if words and (words[-1] in _PHONE_WORDS or (numbered and words[-1] == "contact")):
        return _PHONE_IF_DIGITS  # (work_cell, mobile; not mobile_order_id, last_contact)
    return _NOT_NAMED


def _one_word_kind(compact: str) -> str:
    """What kind of address a name of one word is (`ipaddress` -> `ip`), or the name."""
    for word in ("addresses", "address", "addr"):
        if compact.endswith(word):
            return compact.removesuffix(word)
    return compact


# Words of a property's name that say it may hold a phone number (phone_no, mobile, work_cell).
_PHONE_WORDS = frozenset({"phone", "mobile", "cell", "cellphone", "tel", "mob", "msisdn", "fax"})
_NUMBER_WORDS = frozenset({"no", "nr", "num", "number"})
_WORD = re.compile(r"[a-z]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _hash_text(text: str) -> str:
    return HASHED_ID_PREFIX + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _hide_personal_data(value: Any, where: str, personal: int, hashed: dict[str, str]) -> Any:
    """custom_data (as `_json_value` made it) with each personal value replaced by its hash, in
    place: a text holding an email address or a +phone number wherever it is (a property name
    too), and any text or number under a property named for one (`_personal_name`). The places
    are put in `hashed` with why (list items as `[]`, names that are data as `*`)."""
    if isinstance(value, dict):
        for key in list(value):
            item = value[key]
            why = holds_personal_text(key)
            place = f"{where}.{key if _SHOWN_NAME.fullmatch(key) else '*'}"
            if why is not None:  # (a property named by an email: the name is the data)
                del value[key]
                hashed.setdefault(f"{where}.*", f"has names that are personal data ({why[6:]})")
                key = _hash_text(key.strip())
            named = max(personal, _personal_name(key))  # (the stronger of the two)
            value[key] = _hide_personal_data(item, place, named, hashed)
        return value
    if isinstance(value, list):
        for i, item in enumerate(value):
            value[i] = _hide_personal_data(item, f"{where}[]", personal, hashed)
        return value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        why = holds_personal_text(value)
        if why is None and _named_value(personal, value):
            why = "is named for personal data"
        if why is None:
            return value
        hashed.setdefault(where, why)
        return _hash_text(value.strip())
    if isinstance(value, int) and _named_value(personal, value):  # (a phone kept as a number)
        hashed.setdefault(where, "is named for personal data")
        return _hash_text(str(value))
    return value


def _named_value(personal: int, value: str | int) -> bool:
    """Whether a value under a name that says what it is (`personal`) is personal data: any
    value for a _NAMED one but no value ('', 'n/a'); one of 7 digits or more for a
    _PHONE_IF_DIGITS one (a phone, not "iOS")."""
    if personal == _NOT_NAMED or (isinstance(value, str) and blank(value)):
        return False
    if personal == _NAMED:
        return True
    if isinstance(value, str) and _DATE_LIKE.match(value.strip()):
        return False  # (first_seen_on_mobile: 2024-05-12 is a date, not a number)
    digits = sum(ch.isdigit() for ch in value) if isinstance(value, str) else len(str(abs(value)))
    return digits >= _PHONE_DIGITS


_DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b")


def _event_type(mapping: StreamMapping, record: Mapping[str, Any]) -> tuple[str, str | None]:
    if mapping.event_type is not None:
        return mapping.event_type, None
    assert mapping.event_type_from is not None  # compile_stream_mapping guarantees one of them
    name = mapping.event_type_from(record)
    try:
        return resolve_event_type(name, mapping.event_types)
    except MappingError:
        if "custom_event_name" in mapping.fields and isinstance(name, str) and name.strip():
            # A name that makes no custom event's (no ASCII letter, personal data) is no
            # standard type's either: the mapped custom_event_name names the event.
            return "custom", None
        if name is None or (isinstance(name, str) and not name.strip()):
            raise MappingError(_no_event_name(mapping), "event") from None
        raise


def _no_event_name(mapping: StreamMapping) -> str:
    """Why a record has no event name: what was read for it, and what to set."""
    text = mapping.event_type_from_text
    if text is None:  # (neither setting: a table shaped like the event, its `type` column)
        return (
            "event name is empty: the record's `type` property, which names the event when the "
            "stream's entry sets neither event_type nor event_type_from, is missing or empty; "
            "set one of them (event_type: order_created, or event_type_from: the column of "
            "the name)"
        )
    return f"event name is empty: event_type_from {text!r} gave no value for this record"


# Mapped fields that only some data shapes take (`_data` leaves them out of the others), and
# the event types of those shapes, as a reason says it.
_SHAPE_ONLY_FIELDS = {
    "contents": ("contents", "only data of type contents, plan_enrollment or custom has it"),
    "plan_id": ("plan_id", "only subscription_created, trial_started and custom events have one"),
    "custom_data": (None, "only custom events have it"),
}


def carries(event_type: str, name: str) -> bool:
    """Whether events of a type have a place for the field (its data shape takes it)."""
    if name not in _SHAPE_ONLY_FIELDS:
        return True
    shape, key = DATA_SHAPE_BY_TYPE[event_type], _SHAPE_ONLY_FIELDS[name][0]
    return shape == "custom" if key is None else key in SHAPE_FIELDS[shape]


def fields_not_carried(mapping: StreamMapping | None) -> dict[str, str]:
    """The mapped fields that the stream's one event type (`event_type`) leaves out, each with
    why: its data shape has no place for it. (A stream of many types, `event_type_from`, may
    map them for some of its types: nothing is said of it.)"""
    event_type = None if mapping is None else mapping.event_type
    if mapping is None or event_type is None:
        return {}
    shape = DATA_SHAPE_BY_TYPE[event_type]
    dropped = {}
    for name, (_, which) in _SHAPE_ONLY_FIELDS.items():
        if name in mapping.fields and not carries(event_type, name):
            dropped[name] = (
                f"{event_type} events carry data of type {shape}, which has no {name} ({which})"
            )
    return dropped


def _data(
    mapping: StreamMapping, record: Mapping[str, Any], event_type: str, notes: list[str]
) -> dict[str, Any]:
    shape = DATA_SHAPE_BY_TYPE[event_type]
    data: dict[str, Any] = {"type": shape}
    raw_currency = money_value(_value(mapping, record, "currency"))
    currency = None if raw_currency is None else currency_code(raw_currency)
    amount = money_value(_value(mapping, record, "amount"))
    amount_minor = money_value(_value(mapping, record, "amount_minor"))
    if amount is not None or amount_minor is not None:
        if currency is None:
            raise missing_currency(mapping)
        if amount is not None and amount_minor is not None and amounts_both_read(mapping):
            data["amount"] = agreed_amount(amount, amount_minor, currency)
        elif amount_minor is not None:
            data["amount"] = minor_units(amount_minor, "amount_minor")
        else:
            data["amount"] = to_minor_units(amount, currency, "amount")
    if currency is not None:
        data["currency"] = currency
    # Each data shape takes only its documented fields (customer_action has no contents,
    # only plan_enrollment and custom take plan_id): a mapped field the shape does not
    # take is left out by design, so one mapping can serve a stream of mixed event types.
    if shape != "customer_action":
        items = _value(mapping, record, "contents")
        if items is not None and not (type(items) is str and blank(items)):  # (JSON text NULL)
            data["contents"] = _contents(items, currency)
    if shape in ("plan_enrollment", "custom"):
        plan_id = _value(mapping, record, "plan_id")
        if plan_id is not None:
            data["plan_id"] = catalog_text(_as_text(plan_id, "plan_id"))
    if shape == "custom":
        properties = _value(mapping, record, "custom_data")
        if properties is not None:
            data.update(_custom_data(properties, notes))
    return data


# An oppref holding an email address or a +phone number: left out, the event sent without it.
OPPREF_NOTE = "oppref {}; sent without it"


def build_event(
    mapping: StreamMapping,
    record: Mapping[str, Any],
    key_properties: Sequence[str],
    *,
    user_field_style: str = DEFAULT_USER_FIELD_STYLE,
    default_phone_region: str | None = None,
    whole_record: Callable[[], Mapping[str, Any] | None] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Build the wire event for a record; returns (event, notes) or raises MappingError.

    Notes are non-fatal: an identifier that could not be normalised and was left out.
    The event is not yet checked against the contract or the time window.
    """
    event: dict[str, Any] = {}
    try:
        event["id"] = event_id(mapping, record, key_properties, whole_record)
        event_type, custom_name = _event_type(mapping, record)
        # A name from event_type_from is not replaced by a record's custom_event_name property;
        # a mapped custom_event_name replaces it.
        if event_type == "custom" and (
            custom_name is None or "custom_event_name" in mapping.fields
        ):
            mapped_name = _value(mapping, record, "custom_event_name")
            if mapped_name is not None:
                event_type, custom_name = custom_event(_as_text(mapped_name, "custom_event_name"))
            elif custom_name is None:
                raise MappingError(MISSING_CUSTOM_NAME)
        event["type"] = event_type

        event["timestamp_ms"] = event_time_ms(mapping, record)

        if custom_name is not None:
            event["custom_event_name"] = custom_name
        oppref = _value(mapping, record, "oppref")
        early: list[str] = []  # (notes in the order the compiled builder makes them)
        if isinstance(oppref, str):
            if not blank(oppref):  # (nor "undefined", "null": what a missing cookie reads as)
                why = holds_personal_text(oppref)
                if why is None:
                    event["oppref"] = oppref  # the original string, unmodified, as the docs ask
                else:  # (a column mapped wrongly: no email or phone number is sent raw)
                    early.append(OPPREF_NOTE.format(why))
        elif oppref is not None:
            event["oppref"] = _as_text(oppref, "oppref")
        source_url = _value(mapping, record, "source_url")
        if source_url is not None:
            event["source_url"] = source_url_text(source_url, mapping.keep_source_url_query)
        action_source = _value(mapping, record, "action_source")
        if action_source is not None:
            event["action_source"] = _as_text(action_source, "action_source")
        if event_type in APP_EVENT_TYPES and "action_source" not in event:
            event["action_source"] = "mobile_app"  # the only source the API takes for app events
        opt_out = _value(mapping, record, "opt_out")
        if opt_out is not None and _as_bool(opt_out, "opt_out"):
            event["opt_out"] = True

        failed: list[str] = []
        raw_user = {
            name: _user_value(mapping, record, name, failed) for name in mapping.user_fields
        }
        user, notes = build_user(raw_user, user_field_style, default_phone_region)
        notes[:0] = [*early, *failed]
        if user:
            event["user"] = user
        event["data"] = _data(mapping, record, event_type, notes)
    except jmespath.exceptions.JMESPathError as exc:
        # A function applied to the wrong type of value in this record (e.g. url_param on a number).
        error = MappingError(f"expression failed on this record: {exc}")
        error.event_id = event.get("id")
        raise error from exc
    except MappingError as exc:
        exc.event_id = exc.event_id or event.get("id")  # for the dead letter, when it was read
        raise
    return event, notes
