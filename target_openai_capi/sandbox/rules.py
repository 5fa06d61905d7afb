"""The server-side rules of POST /v1/events as pure functions: auth, pixel, body, batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from target_openai_capi.contract import (
    MAX_EVENTS_PER_REQUEST,
    event_currency_problem,
    event_problem,
    window_problem,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

KEY_PREFIX = "sk-svcacct-"  # a Conversions API (service account) key
REQUIRED_SCOPE = "ads.third_party_events.write"
BODY_FIELDS = ("events", "validate_only")


@dataclass(frozen=True)
class Rejection:
    """A request the API refuses: the status and the message it answers with."""

    status: int
    message: str


@dataclass(frozen=True)
class Body:
    """A well-formed request body."""

    events: list[Any]
    validate_only: bool


def error_body(status: int, message: str) -> dict[str, Any]:
    """The JSON error body.

    ASSUMPTION: the real API's error format is not documented; this is OpenAI's usual shape.
    """
    kind = "invalid_request_error"
    if status == 429:
        kind = "rate_limit_error"
    elif status >= 500:
        kind = "server_error"
    return {"error": {"message": message, "type": kind, "code": status}}


def auth_rejection(authorization: str | None, api_keys: Collection[str] | None) -> Rejection | None:
    """401 unless the header carries a Conversions API key (one of api_keys, when given)."""
    if not authorization:
        return Rejection(401, "Missing Authorization header: send 'Authorization: Bearer <key>'")
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or " " in key:
        return Rejection(401, "Malformed Authorization header: expected 'Bearer <key>'")
    if not key.startswith(KEY_PREFIX):
        return Rejection(401, f"Missing scopes: {REQUIRED_SCOPE}")
    if api_keys is not None and key not in api_keys:
        return Rejection(401, "Invalid API key")
    return None


def pixel_rejection(pixel_id: str | None, pixel_ids: Collection[str] | None) -> Rejection | None:
    """400 without a pid, 404 for a pid the sandbox was not told about."""
    if not pixel_id:
        return Rejection(400, "Missing required query parameter: pid")
    if pixel_ids is not None and pixel_id not in pixel_ids:
        return Rejection(404, f"Pixel not found: {pixel_id}")
    return None


def parse_body(raw: bytes) -> Body | Rejection:
    """The request body, or why it is not a valid events request."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(400, f"Request body is not valid JSON: {exc}")
    if not isinstance(payload, dict):
        return Rejection(400, "Request body must be a JSON object with an 'events' array")
    unknown = sorted(set(payload) - set(BODY_FIELDS))
    if unknown:
        allowed = ", ".join(BODY_FIELDS)
        return Rejection(400, f"Unknown field(s) in request body: {unknown} (allowed: {allowed})")
    if "events" not in payload:
        return Rejection(400, "Missing required field: events")
    events = payload["events"]
    if not isinstance(events, list):
        return Rejection(400, "events: must be an array of events")
    if not events:
        return Rejection(400, "events: must not be empty")
    if len(events) > MAX_EVENTS_PER_REQUEST:
        return Rejection(
            400,
            f"events: at most {MAX_EVENTS_PER_REQUEST} events per request, got {len(events)}",
        )
    validate_only = payload.get("validate_only", False)
    if not isinstance(validate_only, bool):
        return Rejection(400, f"validate_only: must be true or false, got {validate_only!r}")
    return Body(events=events, validate_only=validate_only)


def batch_problem(events: Sequence[Any], now_ms: int) -> str | None:
    """The first problem in the batch, e.g. 'events[3].timestamp_ms: older than 7 days'.

    One bad event fails the whole batch, as the real API does.
    """
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            return f"events[{index}]: must be a JSON object, got {type(event).__name__}"
        problem = (
            event_problem(event)
            or window_problem(event["timestamp_ms"], now_ms)
            or event_currency_problem(event)
        )
        if problem:
            return f"events[{index}].{problem}"
    return None
