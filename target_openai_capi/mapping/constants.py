"""Fields mapped to one value (`'web'`, `` `true` ``), checked once at start-up (pure).

A value that no event may carry would reject every record of the stream, one by one, while the
run exits 0 and its STATE moves past them: it is a config error instead. Each value is checked
by the same function that converts it for every record, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from target_openai_capi.contract import ACTION_SOURCES, APP_EVENT_TYPES, window_problem
from target_openai_capi.contract.built import source_url_ok
from target_openai_capi.mapping.errors import MappingError, quote, type_name
from target_openai_capi.mapping.event import _as_bool, _as_text, source_url_text
from target_openai_capi.mapping.event import _custom_data as custom_data
from target_openai_capi.mapping.event_names import custom_event, resolve_event_type
from target_openai_capi.mapping.expressions import literal
from target_openai_capi.mapping.money import (
    MAX_MINOR_UNITS,
    currency_code,
    minor_units,
    parse_number,
    to_minor_units,
)
from target_openai_capi.mapping.stream_mapping import StreamMapping
from target_openai_capi.mapping.timestamps import epoch_ms, to_epoch_ms


def constant_problems(
    mapping: StreamMapping, event_type_from: object = None, now_ms: int | None = None
) -> list[str]:
    """Why fields mapped to one value would fail every event, as `fields.NAME: reason`.

    The fields are the mapping's (a preset's included); `event_type_from` is the entry's text;
    with `now_ms`, a fixed time is also checked against the API's window at that moment.
    """
    written: dict[str, object] = {f"fields.{n}": text for n, text in mapping.texts.items()}
    written["event_type_from"] = event_type_from
    values = {
        where: found[0]
        for where, text in written.items()
        if (found := literal(text)) is not None and found[0] not in (None, "")  # (no value)
    }
    currency = values.get("fields.currency")
    problems = []
    for where, value in values.items():
        check = _CHECKS.get(where.removeprefix("fields."))
        if check is None:
            continue
        try:
            reason = check(mapping, value, currency)
        except MappingError as exc:
            reason = str(exc)
        if reason is not None:
            problems.append(f"{where}: {reason}")
        elif where == "fields.action_source" and str(value).strip() != "mobile_app":
            app = _app_event_type(mapping, values.get("event_type_from"))
            if app is not None:
                problems.append(
                    f"{where}: {quote(value)} is no source of {app} events: the API takes only "
                    "'mobile_app' for them (leave action_source unmapped: it is sent so)"
                )
        elif now_ms is not None and where in _TIMES:
            problem = window_problem(_TIMES[where](value), now_ms)
            if problem is not None:  # (every event of the stream refused, as too old or early)
                problems.append(
                    f"{where}: {quote(value)} would be the time of every event, and the API "
                    f"refuses it ({problem}): map a property that holds each record's time"
                )
    return problems


def _app_event_type(mapping: StreamMapping, event_type_from: object) -> str | None:
    """The stream's one event type when it is an app event's: set, or an event name fixed by
    event_type_from (`'first_open'`); None otherwise."""
    event_type = mapping.event_type
    if event_type is None and event_type_from is not None:
        try:
            event_type = resolve_event_type(event_type_from, mapping.event_types)[0]
        except MappingError:  # (said as event_type_from's own problem)
            return None
    return event_type if event_type in APP_EVENT_TYPES else None


_TIMES: dict[str, Callable[[Any], int]] = {
    "fields.timestamp": to_epoch_ms,
    "fields.timestamp_ms": epoch_ms,
}


Check = Callable[[StreamMapping, Any, Any], "str | None"]


def _converts(convert: Callable[[Any], object]) -> Check:
    """A check that the value converts as every record's would (else MappingError)."""

    def check(mapping: StreamMapping, value: Any, currency: Any) -> None:
        convert(value)

    return check


def _id(mapping: StreamMapping, value: Any, currency: Any) -> str:
    return (
        f"{_as_text(value, 'id')!r} would be the id of every event, and the API keeps only the "
        "first event of an id (with its type, the dedup key): map a property that tells records "
        "apart (an order id)"
    )


def _event_type(mapping: StreamMapping, value: Any, currency: Any) -> None:
    resolve_event_type(value, mapping.event_types)


def _action_source(mapping: StreamMapping, value: Any, currency: Any) -> str | None:
    text = _as_text(value, "action_source")
    if text not in ACTION_SOURCES:
        return f"{text!r} is not an action source (one of {', '.join(ACTION_SOURCES)})"
    return None


def _source_url(mapping: StreamMapping, value: Any, currency: Any) -> str | None:
    url = source_url_text(value, mapping.keep_source_url_query)
    if source_url_ok(url):
        return None
    return f"{url!r} is not a URL with a scheme and a host, without spaces (https://shop.example/thank-you)"


def _amount(mapping: StreamMapping, value: Any, currency: Any) -> None:
    try:
        code = currency_code(currency)
    except MappingError:  # from each record (or the fixed currency's own problem)
        # A number, at least, and one some currency can carry: none below zero, nor one over
        # 10**15 minor units in every currency (so over 10**15 of a currency without decimals).
        number = Decimal(parse_number(value, "amount"))
        if number < 0:
            raise MappingError(f"amount {quote(value)} is negative", "amount") from None
        if number.adjusted() > 20 or number > MAX_MINOR_UNITS:  # (adjusted: 1e999999 at once)
            raise MappingError(
                f"amount {quote(value)} is too large to be money", "amount"
            ) from None
    else:
        to_minor_units(value, code, "amount")


def _contents(mapping: StreamMapping, value: Any, currency: Any) -> str | None:
    """A fixed contents that is no list of objects (JSON text of one is read per record)."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        return None
    if not isinstance(value, list):
        return f"contents must be a list of objects, not {type_name(value)}"
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            return f"contents[{index}] must be an object, not {type_name(item)}"
    return None


_CHECKS: dict[str, Check] = {
    "id": _id,
    "timestamp": _converts(to_epoch_ms),
    "timestamp_ms": _converts(epoch_ms),
    "custom_event_name": _converts(
        lambda value: custom_event(_as_text(value, "custom_event_name"))
    ),
    "event_type_from": _event_type,
    "source_url": _source_url,
    "action_source": _action_source,
    "opt_out": _converts(lambda value: _as_bool(value, "opt_out")),
    "amount": _amount,
    "amount_minor": _converts(minor_units),
    "currency": _converts(currency_code),
    "plan_id": _converts(lambda value: _as_text(value, "plan_id")),
    "custom_data": _converts(lambda value: custom_data(value, [])),
    "contents": _contents,
}
