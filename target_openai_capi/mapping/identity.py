"""The event's `user` object: identifiers named as the API's user object names them, in either
official shape (plural, the newest; singular, the earlier), each value normalised and hashed by
user_values.py (which documents the rules)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from target_openai_capi.mapping.user_fields import (
    DEFAULT_USER_FIELD_STYLE,
    USER_FIELD_STYLES,
    USER_FIELDS,
)
from target_openai_capi.mapping.user_values import (
    PHONE_REGIONS,
    Rejected,
    blank,
    normalised,
)

__all__ = [
    "DEFAULT_USER_FIELD_STYLE",
    "USER_FIELDS",
    "USER_FIELD_STYLES",
    "build_user",
    "check_user_settings",
    "unsendable_user_field",
]


# The API uses the first three valid, distinct values of a list and ignores the rest.
MAX_LIST_VALUES = 3

# One string in every style (the others are lists in the plural style).
_ONE_VALUE_FIELDS = frozenset({"obref", "android_advertising_id", "ip_address", "user_agent"})


def unsendable_user_field(name: str, style: str) -> str:
    """Why a mapped friendly field is not sent in this style (for the start-up warning)."""
    if not any(name in wire for wire in USER_FIELD_STYLES.values()):
        return f"no version of OpenAI's user object has a field for {name}"
    return (
        f"the {style} user_field_style has no field for it (OpenAI's earlier user object); "
        "the plural style, OpenAI's current one, sends it"
    )


def check_user_settings(style: str, default_phone_region: str | None) -> str | None:
    """The region in upper case; raises ValueError naming a setting that is not usable."""
    if style not in USER_FIELD_STYLES:
        raise ValueError(
            f"unknown user field style {style!r}; expected one of {list(USER_FIELD_STYLES)}"
        )
    region = default_phone_region.upper() if default_phone_region else None
    if region is not None and region not in PHONE_REGIONS:
        raise ValueError(
            f"default_phone_region {default_phone_region!r} is not a known region "
            "(use an ISO 3166-1 alpha-2 code such as 'US')"
        )
    return region


def build_user(
    values: Mapping[str, object],
    style: str = DEFAULT_USER_FIELD_STYLE,
    default_phone_region: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Build the event's `user` object from friendly-name values; return it and notes."""
    region = check_user_settings(style, default_phone_region)
    wire = USER_FIELD_STYLES[style]
    plural = style == "plural"
    user: dict[str, Any] = {}
    notes: list[str] = []
    for name, raw in values.items():
        if name not in USER_FIELDS:
            raise ValueError(
                f"unknown user field {name!r}; expected one of {', '.join(USER_FIELDS)}"
            )
        key = wire.get(name)
        if key is None or blank(raw):
            continue
        many = plural and name not in _ONE_VALUE_FIELDS
        if not isinstance(raw, (list, tuple)):  # one value: the common case, kept short
            try:
                result = normalised(name, raw, region)
            except Rejected as e:
                notes.append(f"{name} {e.reason}; sent without it")
                continue
            user[key] = [result] if many else result
            continue
        sent = _list_values(name, [v for v in raw if not blank(v)], region, many, notes)
        if sent:
            user[key] = sent if many else sent[0]
    return user, notes


def _list_values(
    name: str, items: list[object], region: str | None, many: bool, notes: list[str]
) -> list[str]:
    """The distinct values to send from a list (three at most, one when not `many`).

    Values past the ones sent are not normalised: a list of 100,000 emails costs three.
    """
    limit = MAX_LIST_VALUES if many else 1
    sent: list[str] = []
    seen: set[str] = set()
    reasons: list[str] = []
    for position, item in enumerate(items, 1):
        if len(sent) == limit:
            what = "one" if limit == 1 else f"the first {limit} distinct ones"
            if limit > 1:
                why = "the API uses at most three"
            elif name in _ONE_VALUE_FIELDS:
                why = "the field takes one value"
            else:
                why = "the singular user field style"
            notes.append(f"{name} has {len(items)} values; sent {what} ({why})")
            break
        try:
            result = normalised(name, item, region)
        except Rejected as e:
            reasons.append(e.reason)
            if len(items) > 1:
                notes.append(f"{name} value {position} of {len(items)} {e.reason}; sent without it")
            continue
        key = result.casefold()  # the API lowercases raw geography: "Paris" and "PARIS" are one
        if key not in seen:
            seen.add(key)
            sent.append(result)
    if not sent and len(items) == 1 and reasons:
        notes.append(f"{name} {reasons[0]}; sent without it")
    return sent
