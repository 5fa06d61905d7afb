"""What the Conversions API accepts: the event JSON Schema and its constants (schema.py), the
check of every event (fast.py, and built.py in front of it for built events) with its
explanation (explain.py), and the rules the schema
cannot express (the time window, currencies with a minor unit (currencies.py), the dedup key)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from target_openai_capi.contract.built import built_event_problem
from target_openai_capi.contract.currencies import currency_problem
from target_openai_capi.contract.fast import event_problem
from target_openai_capi.contract.schema import (
    ACTION_SOURCES,
    APP_EVENT_TYPES,
    DATA_SHAPE_BY_TYPE,
    EVENT_SCHEMA,
    EVENT_TYPES,
    MAX_EVENT_AGE_MS,
    MAX_EVENT_FUTURE_MS,
    MAX_EVENTS_PER_REQUEST,
    MAX_SOURCE_URL_CHARS,
    SHAPE_FIELDS,
    USER_WIRE_FIELDS,
)


def dedup_name(event: Mapping[str, Any]) -> str:
    """The event name of the API's dedup key (pixel, name, id): a custom event's own name."""
    if event.get("type") == "custom":
        return str(event.get("custom_event_name", "")).lower()  # the API lowercases it
    return str(event.get("type"))


# Why an event older than the API's window is refused (pipeline/settling.py `is_too_old` reads it).
TOO_OLD = "timestamp_ms: older than 7 days"


def window_problem(timestamp_ms: int, now_ms: int) -> str | None:
    """'timestamp_ms: older than 7 days', '...: more than 10 minutes in the future', or None."""
    if timestamp_ms < now_ms - MAX_EVENT_AGE_MS:
        return TOO_OLD
    if timestamp_ms > now_ms + MAX_EVENT_FUTURE_MS:
        return "timestamp_ms: more than 10 minutes in the future"
    return None


def event_currency_problem(event: Mapping[str, Any]) -> str | None:
    """currency_problem for data.currency and each item's currency, with the field's path."""
    data = event.get("data")
    if not isinstance(data, dict):
        return None
    code = data.get("currency")
    if isinstance(code, str) and (problem := currency_problem(code, any_case=True)):
        return f"data.currency: {problem}"
    contents = data.get("contents")
    if isinstance(contents, list):
        for index, item in enumerate(contents):
            code = item.get("currency") if isinstance(item, dict) else None
            if isinstance(code, str) and (problem := currency_problem(code)):
                return f"data.contents[{index}].currency: {problem}"
    return None


__all__ = [
    "ACTION_SOURCES",
    "APP_EVENT_TYPES",
    "DATA_SHAPE_BY_TYPE",
    "EVENT_SCHEMA",
    "EVENT_TYPES",
    "MAX_EVENTS_PER_REQUEST",
    "MAX_EVENT_AGE_MS",
    "MAX_EVENT_FUTURE_MS",
    "MAX_SOURCE_URL_CHARS",
    "SHAPE_FIELDS",
    "TOO_OLD",
    "USER_WIRE_FIELDS",
    "built_event_problem",
    "currency_problem",
    "dedup_name",
    "event_currency_problem",
    "event_problem",
    "window_problem",
]
