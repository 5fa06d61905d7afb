"""The server-side rules of POST /v1/events as pure functions: auth, pixel, body, batch."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fastjsonschema
import orjson

from target_openai_capi.contract import (
    EVENT_SCHEMA,
    MAX_EVENTS_PER_REQUEST,
    event_currency_problem,
    event_problem,
    window_problem,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

KEY_PREFIX = "sk-svcacct-"  # a Conversions API (service account) key
REQUIRED_SCOPE = "ads.third_party_events.write"
BODY_FIELDS = ("events", "validate_only", "integration_source")
# The official rule for integration_source, which the API then trims and lowercases.
_INTEGRATION_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# At most this many entries in an error body's `errors` list (one per bad event).
MAX_LISTED_ERRORS = 100
# The API uses this many values of a user list (capi-spec.md, The `user` object).
USER_LIST_VALUES_USED = 3


@dataclass(frozen=True)
class EventError:
    """One bad event of a batch: where (`events[3].data.type`), what, and a code."""

    param: str
    message: str
    code: str


@dataclass(frozen=True)
class Rejection:
    """A request the API refuses: the status, the message, and what it names."""

    status: int
    message: str
    code: str | None = None
    param: str | None = None
    errors: tuple[EventError, ...] = ()
    kind: str | None = None  # the error `type`; by default from the status


@dataclass(frozen=True)
class Body:
    """A well-formed request body."""

    events: list[Any]
    validate_only: bool
    integration_source: str | None = None


def error_body(rejection: Rejection, *, name_params: bool = True) -> dict[str, Any]:
    """The JSON error body, in the OpenAI shape the live API answers with (capi-spec.md, Errors):
    {"error": {"message", "type", "param", "code", "errors": [{"message", "param", "code"}]}}.

    name_params=False leaves every `param` out, as a server that names no field would.
    """
    kind = rejection.kind or "invalid_request_error"
    if rejection.kind is None and rejection.status == 429:
        kind = "rate_limit_error"
    elif rejection.kind is None and rejection.status >= 500:
        kind = "server_error"
    error: dict[str, Any] = {
        "message": rejection.message,
        "type": kind,
        "param": rejection.param if name_params else None,
        "code": rejection.code,
    }
    if rejection.errors:
        error["errors"] = [
            {"message": e.message, "param": e.param if name_params else None, "code": e.code}
            for e in rejection.errors
        ]
    return {"error": error}


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
    """400 without a pid; 403 `unknown pid` for one the key cannot write to, as the API answers."""
    if not pixel_id:
        return Rejection(400, "Missing required query parameter: pid", param="pid")
    if pixel_ids is not None and pixel_id not in pixel_ids:
        return Rejection(403, "403: unknown pid", kind="server_error")
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
    # (an empty list is accepted: the official page's own request sends `"events": []`)
    if len(events) > MAX_EVENTS_PER_REQUEST:
        return Rejection(
            400,
            f"events: at most {MAX_EVENTS_PER_REQUEST} events per request, got {len(events)}",
        )
    validate_only = payload.get("validate_only", False)
    if not isinstance(validate_only, bool):
        return Rejection(
            400,
            f"validate_only: must be true or false, got {validate_only!r}",
            param="validate_only",
        )
    source = payload.get("integration_source")
    if source is not None:
        if not isinstance(source, str) or not _INTEGRATION_SOURCE.fullmatch(source.strip()):
            return Rejection(
                400,
                "integration_source: must be 1-64 ASCII letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
                param="integration_source",
            )
        source = source.strip().lower()
    return Body(events=events, validate_only=validate_only, integration_source=source)


def _user_list_value_checks() -> dict[str, Callable[[Any], Any]]:
    """User field -> a check of one value of that list field, from the event schema's rule."""
    definitions = EVENT_SCHEMA["$defs"]
    checks = {}
    for name, rule in definitions["user"]["properties"].items():
        if "$ref" in rule:
            rule = definitions[rule["$ref"].rpartition("/")[2]]
        if rule.get("type") != "array":
            continue
        item = rule["items"]
        if "$ref" in item:
            item = definitions[item["$ref"].rpartition("/")[2]]
        checks[name] = fastjsonschema.compile(item)
    return checks


_USER_LIST_VALUE_CHECKS = _user_list_value_checks()


def _valid(check: Callable[[Any], Any], value: Any) -> bool:
    try:
        check(value)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def as_the_api_reads_it(event: dict[str, Any]) -> dict[str, Any]:
    """The event with each user list cut to the values the API uses: "the API uses the first
    three valid, unique values in order and ignores the rest without rejecting anything"
    (capi-spec.md, The `user` object). A list left with no valid value is ignored whole."""
    user = event.get("user")
    if not isinstance(user, dict) or not any(
        isinstance(user.get(name), list) for name in _USER_LIST_VALUE_CHECKS
    ):
        return event
    read = dict(user)
    for name, check in _USER_LIST_VALUE_CHECKS.items():
        values = user.get(name)
        if not isinstance(values, list):
            continue  # absent, or not a list at all: the schema says what is wrong
        used: list[Any] = []
        for value in values:
            if len(used) == USER_LIST_VALUES_USED:
                break
            if value not in used and _valid(check, value):
                used.append(value)
        if used:
            read[name] = used
        else:
            del read[name]
    return {**event, "user": read}


def _event_error(index: int, event: Any, now_ms: int) -> EventError | None:
    """What is wrong with one event of a batch, or None."""
    where = f"events[{index}]"
    if not isinstance(event, dict):
        return EventError(
            where, f"{where}: must be a JSON object, got {type(event).__name__}", "invalid_event"
        )
    event = as_the_api_reads_it(event)
    problem = event_problem(event)
    code = "invalid_event_field"
    if problem is None and (problem := window_problem(event["timestamp_ms"], now_ms)):
        code = "event_timestamp_too_old" if "older" in problem else "event_timestamp_too_new"
    if problem is None and (problem := event_currency_problem(event)):
        code = "invalid_currency"
    if problem is None:
        return None
    path, _, message = problem.partition(": ")
    param = where if path == "event" else f"{where}.{path}"
    return EventError(param, f"{param}: {message}", code)


def batch_rejection(events: Sequence[Any], now_ms: int) -> Rejection | None:
    """Why the batch fails, naming each bad event (`param` the first one), or None.

    One bad event fails the whole batch, as the real API does. A batch whose only problems are
    stale or future timestamps answers 422, as the live API does for a stale event; else 400.
    """
    errors = []
    for index, event in enumerate(events):
        error = _event_error(index, event, now_ms)
        if error is not None:
            errors.append(error)
    if not errors:
        return None
    first = errors[0]
    where = first.param.split(".", 1)[0]
    listed = tuple(errors[:MAX_LISTED_ERRORS])
    if all(e.code.startswith("event_timestamp_") for e in errors):
        return Rejection(422, first.message, code=first.code, param=first.param, errors=listed)
    return Rejection(
        400,
        f"Invalid event at {where}. See errors for details.",
        code="invalid_event",
        param=where,
        errors=listed,
    )
