"""Exact time: record values to epoch milliseconds.

Rules (they go to the README):
- `timestamp` accepts an ISO 8601 date-time with any offset ("2026-11-20T10:00:00Z",
  "...+05:30", "...-0800", "...+05", " UTC"), fractional seconds of any length, a space instead
  of "T", a date alone (midnight UTC), `datetime` / `date` objects, or epoch seconds as a
  number or numeric string (Decimal("1773892800.123") -> 1773892800123).
- A date-time without an offset is taken as UTC (see NAIVE_IS_UTC below).
- Sub-millisecond digits are truncated, never rounded: .1239 s is 123 ms.
- An epoch value above 10**11 is milliseconds (or finer), not seconds: it is rejected with a
  hint to map it to `timestamp_ms`, because reading it as seconds would land in year 5000+.
- `timestamp_ms` accepts whole epoch milliseconds only; a value below 10**11 (before March 1973)
  is rejected as probably being seconds.
- Nothing before 1970-01-01 is accepted: such a time (a placeholder such as 0001-01-01) is
  older than the API's 7 days, and refused as such (TooOld).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_DOWN, Context, Decimal

from target_openai_capi.mapping.errors import MappingError, TooOld, quote, type_name
from target_openai_capi.mapping.money import parse_number

# NAIVE_IS_UTC: a date-time without an offset (naive `datetime`, or an ISO string with no "Z" or
# "+hh:mm") is read as UTC. Warehouses and most APIs store UTC without saying so; a source that
# stores local time must add the offset upstream or in the field expression.

# Epoch seconds above this are far in the future (year 5138): the value is milliseconds.
MAX_EPOCH_SECONDS = 10**11
# Epoch milliseconds outside this range are seconds (below) or micro/nanoseconds (above).
MIN_EPOCH_MS = 10**11
# 2000-01-01 in epoch seconds: a timestamp_ms below it is before 2000 read either way.
_Y2K_SECONDS = 946_684_800
MAX_EPOCH_MS = 10**14

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = Decimal("0.001")
_ONE_MS = timedelta(milliseconds=1)
# Python 3.11's reads "Z" and any separator; 3.10's refuses "Z" (the lines after it read it).
_FROM_ISO = datetime.fromisoformat
# Private context: results never depend on what other code does to decimal's global context.
_CTX = Context(prec=60)

# Our own parser rather than datetime.fromisoformat: Python 3.10's does not accept "Z", "-0800"
# or fractions that are not 3 or 6 digits long, and one parser behaves the same on every Python.
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r" ?(?:([Zz]|UTC|GMT)|([+-])(\d{2})(?::?(\d{2}))?)?)?"
)


def _parse_iso(text: str, value: object, field: str) -> int | None:
    """Epoch ms of an ISO 8601 string, or None when the text is not ISO 8601 at all."""
    result = _parse_usual(text)
    return result if result is not None else _parse_iso_by_pattern(text, value, field)


# Days since the epoch of the dates seen lately ("2026-11-20"): a stream's timestamps share few.
_DAYS: dict[str, int] = {}
_DAYS_KEPT = 4096


# A run of digits (str.isdecimal's, category Nd), read at C speed: a fraction may be long.
_DIGITS = re.compile(r"\d*")


def _parse_usual(text: str) -> int | None:
    """Epoch ms of the form nearly every source writes, "2026-11-20T10:00:00" with an optional
    fraction and "Z" or "+05:30", read by position (a third of the pattern's cost); None for any
    other text, and for any value out of range: `_parse_iso_by_pattern` then reads it, or says
    what is wrong. What it does return, the pattern returns too (tests/test_mapping_timestamps)."""
    if (
        len(text) < 19
        or text[4] != "-"
        or text[7] != "-"
        or text[10] not in "Tt "
        or text[13] != ":"
        or text[16] != ":"
    ):
        return None
    length = len(text)
    if (
        length == 19
        or (length == 20 and text[19] == "Z")
        or (length == 25 and text[19] in "+-" and text[22] == ":" and text[23] < "6")
    ) and (text[11] != "2" or text[12] < "4"):  # (Python 3.14 reads 24:00 as the next day)
        # The forms nearly every source writes, read by datetime's C parser (a third of the cost
        # of the lines below); anything it refuses is read by them, which say why.
        try:
            moment = _FROM_ISO(text)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            result: int = (moment - _EPOCH) // _ONE_MS
            if result >= 0:
                return result
    date_text = text[:10]
    days = _DAYS.get(date_text)
    if days is None:
        year, month, day = text[:4], text[5:7], text[8:10]
        if not (year.isdecimal() and month.isdecimal() and day.isdecimal()):
            return None
        try:
            days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
        except ValueError:
            return None
        if len(_DAYS) >= _DAYS_KEPT:
            _DAYS.clear()
        _DAYS[date_text] = days
    hour, minute, second = text[11:13], text[14:16], text[17:19]
    if not (hour.isdecimal() and minute.isdecimal() and second.isdecimal()):
        return None
    hours, minutes, whole_seconds = int(hour), int(minute), int(second)
    if hours > 23 or minutes > 59 or whole_seconds > 59:
        return None
    seconds = days * 86_400 + hours * 3600 + minutes * 60 + whole_seconds
    millis = 0
    rest = text[19:]
    if rest[:1] in (".", ","):
        end = _DIGITS.match(rest, 1).end()  # type: ignore[union-attr]  # (\d* always matches)
        if end == 1:
            return None
        millis = int(rest[1:end][:3].ljust(3, "0"))  # (sub-millisecond digits cut off)
        rest = rest[end:]
    if rest in ("Z", "z", ""):
        offset = 0
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
        off_hours, off_minutes = rest[1:3], rest[4:6]
        if not (off_hours.isdecimal() and off_minutes.isdecimal()):
            return None
        if int(off_hours) > 23 or int(off_minutes) > 59:
            return None
        offset = int(off_hours) * 3600 + int(off_minutes) * 60
        if rest[0] == "+":
            offset = -offset
    else:
        return None
    result = (seconds + offset) * 1000 + millis
    return result if result >= 0 else None


def _parse_iso_by_pattern(text: str, value: object, field: str) -> int | None:
    """_parse_iso by the ISO pattern: every form it reads, and a reason for each value out of
    range (MappingError)."""
    match = _ISO.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = match.groups()
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError as e:
        raise MappingError(f"{field} {quote(value)} is not a valid date ({e})", field) from None
    seconds = days * 86_400
    millis = 0
    if hour is not None:
        h, m, s = int(hour), int(minute), int(second or 0)
        if h > 23 or m > 59 or s > 59:
            raise MappingError(f"{field} {quote(value)} is not a valid time of day", field)
        seconds += h * 3600 + m * 60 + s
        if fraction:
            millis = int(fraction[:3].ljust(3, "0"))
        if sign is not None:
            oh, om = int(off_h), int(off_m or 0)
            if oh > 23 or om > 59:
                raise MappingError(f"{field} {quote(value)} has an invalid UTC offset", field)
            offset = oh * 3600 + om * 60
            seconds += -offset if sign == "+" else offset
    result = seconds * 1000 + millis
    if result < 0:
        raise TooOld(f"{field} {quote(value)} is before 1970-01-01", field)
    return result


def _from_seconds(number: Decimal | int, value: object, field: str) -> int:
    """Epoch ms of a number of epoch seconds, exactly, sub-ms digits truncated."""
    if number < 0:
        raise TooOld(f"{field} {quote(value)} is negative (before 1970-01-01)", field)
    if number > MAX_EPOCH_MS:
        raise MappingError(f"{field} {quote(value)} {_finer_than_ms(number)}", field)
    if number > MAX_EPOCH_SECONDS:
        raise MappingError(
            f"{field} {quote(value)} looks like epoch milliseconds, not seconds: "
            "map it to `timestamp_ms` instead",
            field,
        )
    if _a_yyyymmdd_date(number):  # (epoch seconds of 1970: the window refuses them anyway)
        raise MappingError(
            f"{field} {quote(value)} looks like a date written YYYYMMDD (GA4's event_date), "
            "not epoch seconds: map the event's time, or the date as text (2026-12-05)",
            field,
        )
    if type(number) is int:
        return number * 1000
    assert isinstance(number, Decimal)  # for mypy: parse_number returns int or Decimal
    return int(number.quantize(_MS, rounding=ROUND_DOWN, context=_CTX).scaleb(3, _CTX))


def _a_yyyymmdd_date(number: Decimal | int) -> bool:
    """A whole number of 8 digits that is a date of this millennium written YYYYMMDD."""
    if not 20_000_101 <= number <= 29_991_231 or number != int(number):
        return False
    year, month, day = int(number) // 10_000, int(number) // 100 % 100, int(number) % 100
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _finer_than_ms(number: Decimal | int) -> str:
    """What a number too large for epoch milliseconds most likely is, and what to map."""
    if number <= MAX_EPOCH_MS * 1000:
        return (
            "looks like epoch microseconds: map `micros_to_ms(...)` of it to `timestamp_ms` "
            "(GA4's event_timestamp is one)"
        )
    return (
        "is too large for epoch milliseconds (nanoseconds?): convert it to milliseconds "
        "upstream and map it to `timestamp_ms`"
    )


def _from_datetime(value: datetime, field: str) -> int:
    """Epoch ms of a datetime; a naive one is UTC (NAIVE_IS_UTC)."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - _EPOCH
    if delta.days < 0:
        raise TooOld(f"{field} {quote(value.isoformat())} is before 1970-01-01", field)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def to_epoch_ms(value: object, field: str = "timestamp") -> int:
    """Convert an ISO 8601 date-time, date or epoch seconds to epoch milliseconds (naive = UTC)."""
    if isinstance(value, str):
        text = value.strip()
        result = _parse_iso(text, value, field)
        if result is not None:
            return result
        try:
            number = parse_number(text, field)
        except MappingError:
            raise MappingError(
                f"{field} {quote(value)} is not an ISO 8601 date-time or epoch seconds", field
            ) from None
        return _from_seconds(number, value, field)
    if isinstance(value, datetime):
        return _from_datetime(value, field)
    if isinstance(value, date):
        days = value.toordinal() - _EPOCH_ORDINAL
        if days < 0:
            raise TooOld(f"{field} {quote(value.isoformat())} is before 1970-01-01", field)
        return days * 86_400_000
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise MappingError(
            f"{field} is {type_name(value)}, not an ISO 8601 date-time or epoch seconds", field
        )
    return _from_seconds(parse_number(value, field), value, field)


def epoch_ms(value: object, field: str = "timestamp_ms") -> int:
    """Read whole epoch milliseconds (int, integral Decimal or numeric string) as an int."""
    if value is None or isinstance(value, (bool, list, dict)):
        raise MappingError(f"{field} is {type_name(value)}, not epoch milliseconds", field)
    number = parse_number(value, field)
    if isinstance(number, Decimal):
        if number.adjusted() > 20:  # checked first so int() never builds a huge number
            raise MappingError(f"{field} {quote(value)} {_finer_than_ms(number)}", field)
        elif number != number.to_integral_value(context=_CTX):
            raise MappingError(
                f"{field} {quote(value)} is not a whole number of epoch milliseconds", field
            )
        else:
            number = int(number)
    whole = int(number)
    if whole < 0:
        raise TooOld(f"{field} {quote(value)} is negative (before 1970-01-01)", field)
    if _a_yyyymmdd_date(whole):
        raise MappingError(
            f"{field} {quote(value)} looks like a date written YYYYMMDD (GA4's event_date), "
            "not epoch milliseconds: map the event's time, or the date as text (2026-12-05) "
            "to `timestamp`",
            field,
        )
    if whole < _Y2K_SECONDS:  # (0, or a small number: a time of 1970 read either way)
        raise TooOld(f"{field} {quote(value)} is before 2000, as milliseconds or seconds", field)
    if whole < MIN_EPOCH_MS:
        raise MappingError(
            f"{field} {quote(value)} looks like epoch seconds, not milliseconds: "
            "map it to `timestamp` instead",
            field,
        )
    if whole > MAX_EPOCH_MS:
        raise MappingError(f"{field} {quote(value)} {_finer_than_ms(whole)}", field)
    return whole
