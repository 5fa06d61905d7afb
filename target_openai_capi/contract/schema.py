"""The event JSON Schema (event.schema.json, the one place the rules live) and the constants
read from it: event types, data shapes, wire names of user fields, request limits."""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from importlib import resources
from typing import Any


def _load_schema() -> dict[str, Any]:
    """Read event.schema.json, which ships as package data next to this module."""
    text = resources.files(__package__).joinpath("event.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


EVENT_SCHEMA: dict[str, Any] = _load_schema()


def _resolve(ref: str) -> Any:
    """Follow a local '#/...' reference inside EVENT_SCHEMA."""
    node: Any = EVENT_SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _shapes_by_type() -> dict[str, str]:
    """Event type -> data.type, read from the schema's shape-dispatch entries."""
    shapes: dict[str, str] = {}
    for entry in EVENT_SCHEMA["allOf"]:
        data_ref = entry.get("then", {}).get("properties", {}).get("data", {}).get("$ref")
        if data_ref is None:
            continue
        shape = _resolve(data_ref)["properties"]["type"]["const"]
        for event_type in entry["if"]["properties"]["type"]["enum"]:
            shapes[event_type] = shape
    return shapes


# The rules live once, in event.schema.json; these constants are read from it.
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_SCHEMA["properties"]["type"]["enum"])
ACTION_SOURCES: tuple[str, ...] = tuple(EVENT_SCHEMA["properties"]["action_source"]["enum"])
DATA_SHAPE_BY_TYPE: dict[str, str] = _shapes_by_type()
SHAPE_FIELDS: dict[str, frozenset[str]] = {
    shape: frozenset(_resolve(f"#/$defs/data_{shape}")["properties"])
    for shape in dict.fromkeys(DATA_SHAPE_BY_TYPE.values())
}
# The user object's names on the wire (identity.USER_FIELDS are the friendly names a mapping maps).
USER_WIRE_FIELDS: frozenset[str] = frozenset(EVENT_SCHEMA["$defs"]["user"]["properties"])


def _app_event_types() -> tuple[str, ...]:
    """The event types whose action_source must be mobile_app, read from the schema's rule."""
    for entry in EVENT_SCHEMA["allOf"]:
        then = entry.get("then", {})
        if then.get("properties", {}).get("action_source", {}).get("const") == "mobile_app":
            return tuple(entry["if"]["properties"]["type"]["enum"])
    raise RuntimeError("event.schema.json: no action_source rule for app events")


APP_EVENT_TYPES: tuple[str, ...] = _app_event_types()
# The longest source_url the contract takes (our bound: the API's is not documented).
MAX_SOURCE_URL_CHARS: int = EVENT_SCHEMA["properties"]["source_url"]["maxLength"]

if set(DATA_SHAPE_BY_TYPE) != set(EVENT_TYPES):  # pragma: no cover - guards edits to the schema
    raise RuntimeError("event.schema.json: every event type needs exactly one data shape")

# Server-side limits the schema cannot express (they depend on the batch or on the clock).
MAX_EVENTS_PER_REQUEST = 1000
MAX_EVENT_AGE_MS = 7 * 24 * 3600 * 1000
MAX_EVENT_FUTURE_MS = 10 * 60 * 1000


def _is_ipv4(value: object) -> bool:
    """True for a dotted-quad IPv4 address (a format applies to strings only)."""
    return not isinstance(value, str) or _parses_as_ipv4(value)


def _is_ipv6(value: object) -> bool:
    """True for an IPv6 address without a zone id (a format applies to strings only)."""
    return not isinstance(value, str) or _parses_as_ipv6(value)


def is_ipv4_text(text: str) -> bool:
    """True for exactly the strings ipaddress.IPv4Address accepts: four decimal octets of at
    most three ASCII digits, each at most 255, with no leading zero (~0.6 µs; ipaddress ~3 µs).
    Such a string is also its own canonical form."""
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not (0 < len(part) <= 3 and part.isascii() and part.isdigit()):
            return False
        if part[0] == "0" and part != "0":
            return False
        if int(part) > 255:
            return False
    return True


def _parses_as_ipv4(value: str) -> bool:
    return is_ipv4_text(value)


@lru_cache(maxsize=4096)
def _parses_as_ipv6(value: str) -> bool:
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return not address.scope_id


# Both validators get the same format functions: their built-in ip checks differ, and an event the
# fast path rejects must also be one the explaining validator can explain.
_FORMATS = {"ipv4": _is_ipv4, "ipv6": _is_ipv6}
