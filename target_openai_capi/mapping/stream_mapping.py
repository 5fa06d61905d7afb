"""A stream's `streams` config entry compiled once into a StreamMapping (its expressions too)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from target_openai_capi.contract import ACTION_SOURCES, EVENT_TYPES
from target_openai_capi.mapping.event_names import check_event_table, normalise_event_name
from target_openai_capi.mapping.expressions import (
    Getter,
    bare_names,
    compile_expression,
    gives_nothing,
)
from target_openai_capi.mapping.identity import USER_FIELDS
from target_openai_capi.mapping.reads import read_paths
from target_openai_capi.pipeline.coverage import DEFAULT_MATCH_IDENTIFIERS, KINDS
from target_openai_capi.presets import FIELDS_A_TABLE_MAY_LACK, apply_preset

# Friendly field names a stream's `fields` may map, with what each one means (shown in the docs).
EVENT_FIELDS: dict[str, str] = {
    "id": (
        "Event id, at most 256 characters (our bound; the page sets none); with the pixel and the "
        "event name (a custom event's own) it is OpenAI's dedup key, so it must be stable (an "
        "order id), and the pixel's event_id for the same conversion."
    ),
    "timestamp": "When it happened: ISO 8601 with any offset (no offset = UTC), or epoch seconds.",
    "timestamp_ms": "When it happened, as epoch milliseconds (instead of `timestamp`).",
    "custom_event_name": "Name of a custom event (type `custom`).",
    "oppref": "OpenAI's click id (`oppref` landing-page parameter or `__oppref` cookie).",
    "source_url": "Page URL of the conversion; required when action_source is `web`.",
    "action_source": "web, mobile_app, offline, physical_store, phone_call, email or other.",
    "opt_out": "True to opt the event out of future user-level personalisation (still sent).",
    "amount": (
        "Value in major units (25.99), converted exactly to minor units; Stripe's amounts: "
        "stripe_amount(amount, currency)."
    ),
    "amount_minor": "Value already in ISO 4217 minor units (2599; not Stripe's, see amount).",
    "currency": "ISO 4217 code; required whenever an amount is present.",
    "contents": (
        "Items: id, group_id, name, content_type, quantity, amount or amount_minor, currency, "
        "variant_dict."
    ),
    "plan_id": "Plan id (subscription_created, trial_started, custom).",
    "custom_data": (
        "Custom events only: an object whose properties go into the event's data as they are "
        "(strings, numbers, booleans, objects, arrays or null), but personal data (an email, a "
        "+phone, a value under a name such as email or customer_name) sent hashed. A number "
        "with a fraction goes as a double, as a JSON reader takes it (at most 17 significant "
        "digits: 0.123456789012345678 as 0.12345678901234568); integers go exact, within 64 "
        "bits."
    ),
    "email": "Customer email(s): trimmed, lowercased, SHA-256 hashed.",
    "phone": "Phone(s): digits with the country code (8-15), SHA-256 hashed.",
    "external_id": "Your stable customer id: trimmed, case kept, SHA-256 hashed.",
    "first_name": "Lowercased, whitespace and ASCII punctuation removed, SHA-256 hashed.",
    "last_name": "Lowercased, whitespace and ASCII punctuation removed, SHA-256 hashed.",
    "city": "City, sent raw (trimmed).",
    "state": "State, province or region, sent raw as `regions` (trimmed).",
    "zip": "Postal code, sent raw: letters, digits, spaces or hyphens, at most 32 characters.",
    "country": "ISO 3166-1 alpha-2 country code (or XK for Kosovo), sent raw in upper case.",
    "obref": "The pixel's `__obref` first-party cookie, raw; only with measurement consent.",
    "android_advertising_id": "Google advertising id (GAID, a UUID), raw; all-zero is left out.",
    "ip_address": (
        "Client IPv4/IPv6 address, raw: the first of an X-Forwarded-For list, ::ffff:a.b.c.d as "
        "IPv4."
    ),
    "user_agent": "Client user agent, sent as is (left out when it holds an email address).",
    "date_of_birth": "Not sent: no version of OpenAI's user object has a date of birth.",
}


@dataclass(frozen=True)
class StreamMapping:
    """A stream's mapping from records to events, compiled once from its config entry."""

    stream: str
    event_type: str | None
    event_type_from: Getter | None
    event_types: Mapping[str, str]
    filter: Getter | None
    dry_run: bool | None
    fields: Mapping[str, Getter]
    user_fields: tuple[str, ...] = field(default=tuple(USER_FIELDS))
    # The record paths the mapping reads (mapping/reads.py), or None: it may read anything.
    reads: Mapping[str, Any] | None = None
    # skip_unmatchable: events carrying none of these identifier kinds are skipped, not sent.
    match_identifiers: frozenset[str] | None = None
    # The JMESPath text of each mapped field (the compiled builder reads plain paths inline).
    texts: Mapping[str, str] = field(default_factory=dict)
    # keep_source_url_query: source_url is sent as mapped, its query string and fragment kept.
    keep_source_url_query: bool = False
    # Fields not read from the record's property of their name: mapped to `null` (a preset's
    # phone left out), or the other of their pair is mapped (a `timestamp_ms` column must not
    # replace the `timestamp` the user mapped).
    unread: frozenset[str] = frozenset()
    # The entry's own event_type_from (None: not set, the record's `type` names its event).
    event_type_from_text: str | None = None


# Two ways to give one value (major or minor units, ISO time or epoch milliseconds): where the
# user maps one, the other is not read from the record's property of its name.
PAIRED_FIELDS = (("amount", "amount_minor"), ("timestamp", "timestamp_ms"))


def compile_stream_mapping(stream: str, entry: Mapping[str, Any]) -> StreamMapping:
    """Compile one `streams` config entry; raises ValueError with every problem found."""
    problems: list[str] = []
    where = f"streams.{stream}"
    written = set(entry.get("fields") or {}) if isinstance(entry, Mapping) else set()
    try:
        entry = apply_preset(entry)
    except ValueError as exc:
        raise ValueError(f"{where}.{exc}") from None

    def compile_or_note(text: object, what: str) -> Getter | None:
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{where}.{what}: must be a non-empty JMESPath expression")
            return None
        try:
            return compile_expression(text)
        except ValueError as exc:
            problems.append(f"{where}.{what}: {exc}")
            return None

    event_type = entry.get("event_type")
    if event_type is not None and event_type not in EVENT_TYPES:
        problems.append(
            f"{where}.event_type: {event_type!r} is not a CAPI event type "
            f"(one of {', '.join(EVENT_TYPES)}); use event_type_from for names to translate"
        )
    type_from_text = entry.get("event_type_from")
    if event_type is not None and type_from_text is not None:
        problems.append(f"{where}: set event_type or event_type_from, not both")
    if event_type is None and type_from_text is None:
        # A warehouse model shaped like the event carries its type in a `type` column.
        type_from_text = "type"
    type_from = (
        None if type_from_text is None else compile_or_note(type_from_text, "event_type_from")
    )

    table = entry.get("event_types") or {}
    try:
        check_event_table(table)
    except ValueError as exc:
        problems.append(f"{where}.event_types: {exc}")
        table = {}
    table = {normalise_event_name(name): value for name, value in table.items()}

    filter_text = entry.get("filter")
    row_filter = None if filter_text is None else compile_or_note(filter_text, "filter")

    fields: dict[str, Getter] = {}
    nulls: set[str] = set()
    for name, text in (entry.get("fields") or {}).items():
        if name not in EVENT_FIELDS:
            problems.append(
                f"{where}.fields.{name}: not a field name (one of {', '.join(EVENT_FIELDS)})"
            )
            continue
        getter = compile_or_note(text, f"fields.{name}")
        if getter is not None and gives_nothing(text):
            nulls.add(name)  # `null`, '': no value, and not the record's property of its name
        elif getter is not None:
            fields[name] = getter
        word = text.strip() if isinstance(text, str) else None
        if name == "action_source" and word in ACTION_SOURCES and bare_names(text) == [word]:
            # `web` reads the property named web; the value is 'web'
            problems.append(
                f"{where}.fields.action_source: {word} reads a property named {word}; for the "
                f"value write '{word}' (in quotes)"
            )
    unread = set(nulls)
    for a, b in PAIRED_FIELDS:
        if a in fields and b in fields and (a in written) != (b in written):
            del fields[b if a in written else a]  # (the user's replaces the preset's other)
        if a in fields and b in fields:
            problems.append(f"{where}.fields: map {a} or {b}, not both")
        elif (a in fields and a in written) or (b in fields and b in written):
            # (a preset's `amount` reads a table's own amount column first: an amount_minor
            # column of a table shaped for this target is still read)
            unread.add(b if a in fields else a)

    if {"timestamp", "timestamp_ms"} <= nulls:
        problems.append(
            f"{where}.fields: timestamp and timestamp_ms are mapped to null, but every event "
            "needs its time: map one of them to the record's time"
        )

    match_identifiers = None
    if entry.get("skip_unmatchable"):
        wanted = entry.get("match_identifiers") or list(DEFAULT_MATCH_IDENTIFIERS)
        unknown = [kind for kind in wanted if kind not in KINDS]
        if unknown or not isinstance(wanted, list):
            problems.append(
                f"{where}.match_identifiers: {unknown[:1] or wanted!r} is not an identifier kind "
                f"(one of {', '.join(KINDS)})"
            )
        match_identifiers = frozenset(wanted)
    elif entry.get("match_identifiers") is not None:
        problems.append(f"{where}.match_identifiers has no effect without skip_unmatchable: true")

    keep_query = entry.get("keep_source_url_query")
    if keep_query is None:  # (null, as for every other setting of an entry: the default)
        keep_query = False
    elif not isinstance(keep_query, bool):
        problems.append(f"{where}.keep_source_url_query: must be true or false")

    if problems:
        raise ValueError("; ".join(problems))
    # (a preset's field the user's replaced is not read: its columns are not checked either)
    texts = [*((entry.get("fields") or {})[name] for name in fields), filter_text, type_from_text]
    # An event field that is not mapped is read from the record's property of the same name.
    reads = read_paths(
        [text for text in texts if isinstance(text, str)],
        sorted(set(EVENT_FIELDS) - set(fields) - unread),
    )
    return StreamMapping(
        stream=stream,
        event_type=event_type,
        event_type_from=type_from,
        event_types=table,
        filter=row_filter,
        dry_run=entry.get("dry_run"),
        fields=fields,
        reads=reads,
        match_identifiers=match_identifiers,
        texts={name: (entry.get("fields") or {})[name] for name in fields},
        keep_source_url_query=keep_query,
        unread=frozenset(unread),
        event_type_from_text=entry.get("event_type_from"),
    )


# A preset's fields whose columns are checked against each SCHEMA (preset_expressions): what an
# event misses without them (its id, time, money, page, items). Its identifiers are not: a tap
# may well not select a customer's phone, and the match coverage line says what was sent.
PRESET_FIELDS_CHECKED = ("id", "timestamp", "amount", "currency", "source_url", "contents")


def preset_expressions(entry: Mapping[str, Any], mapping: StreamMapping) -> dict[str, str]:
    """The expressions of an entry's preset that the user did not replace, by where, for the
    fields that matter (PRESET_FIELDS_CHECKED), its filter and its event_type_from."""
    preset = entry.get("preset")
    if not isinstance(preset, str):
        return {}
    merged, written = apply_preset(entry), written_expressions(entry)
    may_lack = FIELDS_A_TABLE_MAY_LACK.get(preset, frozenset())
    found = {
        f"fields.{name}": text
        for name in PRESET_FIELDS_CHECKED
        if name in mapping.fields
        and name not in may_lack
        and f"fields.{name}" not in written
        and isinstance(text := mapping.texts.get(name), str)
    }
    for key in ("filter", "event_type_from"):
        if key not in written and isinstance(merged.get(key), str):
            found[key] = merged[key]
    return found


def written_expressions(entry: Mapping[str, Any]) -> dict[str, str]:
    """The expressions the user wrote in a `streams` entry, by where ('fields.currency',
    'filter', 'event_type_from'); a preset's own are not among them."""
    found = {f"fields.{name}": text for name, text in (entry.get("fields") or {}).items()}
    for key in ("filter", "event_type_from"):
        if isinstance(entry.get(key), str):
            found[key] = entry[key]
    return found
