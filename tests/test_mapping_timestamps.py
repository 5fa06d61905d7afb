"""Exact time: ISO 8601, datetime, date and epoch values to epoch milliseconds."""

from __future__ import annotations

import random
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from target_openai_capi.mapping import timestamps
from target_openai_capi.mapping.errors import MappingError, TooOld
from target_openai_capi.mapping.timestamps import epoch_ms, to_epoch_ms

# 2026-11-20T10:00:00Z, worked out by hand: 56 years with 14 leap days (20,454 days) to
# 2026-01-01, 323 more days to 2026-11-20, plus ten hours.
TEN_UTC = (20_777 * 86_400 + 10 * 3600) * 1000
HOUR = 3_600_000


def test_reference_constant() -> None:
    assert datetime(2026, 11, 20, 10, tzinfo=timezone.utc).timestamp() * 1000 == TEN_UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T10:00:00Z", TEN_UTC),
        ("2026-11-20T10:00:00z", TEN_UTC),
        ("2026-11-20t10:00:00Z", TEN_UTC),
        ("2026-11-20T10:00:00+00:00", TEN_UTC),
        ("2026-11-20T10:00:00-00:00", TEN_UTC),
        ("2026-11-20T15:30:00+05:30", TEN_UTC),  # India
        ("2026-11-20T02:00:00-08:00", TEN_UTC),  # US Pacific
        ("2026-11-20T02:00:00-0800", TEN_UTC),
        ("2026-11-20T12:00:00+02", TEN_UTC),
        ("2026-11-20T23:45:00+13:45", TEN_UTC),  # Chatham Islands, DST
        ("2026-11-20T10:00:00", TEN_UTC),  # naive: UTC
        ("2026-11-20T10:00", TEN_UTC),
        ("2026-11-20 10:00:00", TEN_UTC),  # a space instead of T
        ("2026-11-20 10:00:00 UTC", TEN_UTC),  # BigQuery's text form
        ("2026-11-20 10:00:00+00", TEN_UTC),  # Postgres's text form
        ("2026-11-20T10:00:00 +00:00", TEN_UTC),
        (" 2026-11-20T10:00:00Z ", TEN_UTC),
        ("2026-11-20T10:00:00.1Z", TEN_UTC + 100),
        ("2026-11-20T10:00:00.12Z", TEN_UTC + 120),
        ("2026-11-20T10:00:00.123Z", TEN_UTC + 123),
        ("2026-11-20T10:00:00.123456Z", TEN_UTC + 123),
        ("2026-11-20T10:00:00.123999999Z", TEN_UTC + 123),  # truncated, never rounded
        ("2026-11-20T10:00:00,5Z", TEN_UTC + 500),  # ISO allows a comma
        ("2026-11-20T15:30:00.250+05:30", TEN_UTC + 250),
        ("2026-11-20", TEN_UTC - 10 * HOUR),  # a date alone is midnight UTC
        ("2026-11-21T00:00:00+14:00", TEN_UTC),  # Kiribati: already the next day
        ("1970-01-01T00:00:00Z", 0),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000),  # leap day
    ],
)
def test_iso_strings(value: str, expected: int) -> None:
    assert to_epoch_ms(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-20T10:00:00Z",
        "2026-11-20T15:30:00.123456+05:30",
        "2026-11-20 02:00:00-08:00",
        "2026-11-20T10:00:00.5",
        "2026-03-29T01:59:59.999+01:00",
    ],
)
def test_agrees_with_python_311_fromisoformat(value: str) -> None:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    expected = (parsed - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)
    assert to_epoch_ms(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 11, 20, 10, tzinfo=timezone.utc), TEN_UTC),
        (datetime(2026, 11, 20, 10), TEN_UTC),  # naive: UTC
        (datetime(2026, 11, 20, 2, tzinfo=timezone(timedelta(hours=-8))), TEN_UTC),
        (datetime(2026, 11, 20, 15, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))), TEN_UTC),
        (datetime(2026, 11, 20, 11, tzinfo=ZoneInfo("Europe/Paris")), TEN_UTC),
        (datetime(2026, 11, 20, 10, 0, 0, 123999, tzinfo=timezone.utc), TEN_UTC + 123),
        (date(2026, 11, 20), TEN_UTC - 10 * HOUR),
        (datetime(1970, 1, 1), 0),
    ],
)
def test_datetime_objects(value: object, expected: int) -> None:
    assert to_epoch_ms(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1773892800, 1773892800000),
        (Decimal("1773892800"), 1773892800000),
        (Decimal("1773892800.123"), 1773892800123),
        (Decimal("1773892800.1239"), 1773892800123),  # truncated
        (Decimal("1773892800.000000000000000000000000000000001"), 1773892800000),
        (1773892800.123, 1773892800123),  # float read as its repr: no 122.99999 trap
        (1773892800.5, 1773892800500),
        ("1773892800", 1773892800000),
        (" 1773892800.123 ", 1773892800123),
        ("1.7738928E9", 1773892800000),
        (0, 0),
        (10**11, 10**14),  # the largest value read as seconds
    ],
)
def test_epoch_seconds(value: object, expected: int) -> None:
    result = to_epoch_ms(value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("last tuesday", "timestamp 'last tuesday' is not an ISO 8601 date-time or epoch seconds"),
        ("", "timestamp '' is not an ISO 8601 date-time or epoch seconds"),
        ("20/11/2026", "timestamp '20/11/2026' is not an ISO 8601 date-time or epoch seconds"),
        ("2026-11-20T10", "is not an ISO 8601 date-time or epoch seconds"),
        ("2026-11-20T10:00:00+5:30", "is not an ISO 8601 date-time or epoch seconds"),
        ("2026-11-20T10:00:00 PST", "is not an ISO 8601 date-time or epoch seconds"),
        ("NaN", "timestamp 'NaN' is not an ISO 8601 date-time or epoch seconds"),
        (
            "2026-02-30",
            "timestamp '2026-02-30' is not a valid date (day is out of range for month)",
        ),
        ("2026-13-01T00:00:00Z", "is not a valid date"),
        ("2026-11-20T24:00:00Z", "timestamp '2026-11-20T24:00:00Z' is not a valid time of day"),
        ("2026-11-20T10:60:00Z", "is not a valid time of day"),
        ("2026-11-20T10:00:60Z", "is not a valid time of day"),
        ("2026-11-20T10:00:00+24:00", "has an invalid UTC offset"),
        ("1969-12-31T23:59:59Z", "timestamp '1969-12-31T23:59:59Z' is before 1970-01-01"),
        (datetime(1969, 12, 31, 23, 59, 59), "is before 1970-01-01"),
        (date(1969, 12, 31), "timestamp '1969-12-31' is before 1970-01-01"),
        (None, "timestamp is null, not an ISO 8601 date-time or epoch seconds"),
        (True, "timestamp is a boolean, not an ISO 8601 date-time or epoch seconds"),
        ([1773892800], "timestamp is an array, not an ISO 8601 date-time or epoch seconds"),
        ({"t": 1}, "timestamp is an object, not an ISO 8601 date-time or epoch seconds"),
        (-1, "timestamp -1 is negative"),
        ("-1773892800", "timestamp '-1773892800' is negative"),
        (Decimal("NaN"), "timestamp NaN is not a finite number"),
        (float("inf"), "timestamp inf is not a finite number"),
        (
            1773892800123,
            "timestamp 1773892800123 looks like epoch milliseconds, not seconds: "
            "map it to `timestamp_ms` instead",
        ),
        (Decimal("1773892800123"), "looks like epoch milliseconds"),
        ("1773892800123", "looks like epoch milliseconds"),
        (1773892800123456, "looks like epoch microseconds: map `micros_to_ms(...)` of it"),
        (1773892800123456789, "is too large for epoch milliseconds (nanoseconds?)"),
        # GA4's event_date, read as epoch seconds of 1970: "older than 7 days", no hint
        (20261205, "timestamp 20261205 looks like a date written YYYYMMDD (GA4's event_date)"),
        ("20261205", "looks like a date written YYYYMMDD"),
    ],
)
def test_to_epoch_ms_rejects(value: object, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        to_epoch_ms(value)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "value",
    ["0001-01-01T00:00:00Z", "1900-01-01", date(1969, 12, 31), datetime(1, 1, 1), -1, "-1.5"],
)
def test_a_time_before_1970_is_too_old_not_a_mapping_to_fix(value: object) -> None:
    """Refused at the window (pipeline/events.py): older than 7 days, as a time of 1971 is."""
    with pytest.raises(TooOld):
        to_epoch_ms(value)


def test_a_negative_timestamp_ms_is_too_old_too() -> None:
    with pytest.raises(TooOld, match="timestamp_ms -5 is negative"):
        epoch_ms(-5, "timestamp_ms")


@pytest.mark.parametrize("value", [0, 1, 946_684_799])
def test_a_timestamp_ms_before_2000_read_either_way_is_too_old(value: int) -> None:
    with pytest.raises(TooOld, match="is before 2000, as milliseconds or seconds"):
        epoch_ms(value)


def test_epoch_seconds_given_as_timestamp_ms_are_a_mapping_to_fix() -> None:
    with pytest.raises(MappingError, match="looks like epoch seconds") as caught:
        epoch_ms(1_773_892_800)
    assert not isinstance(caught.value, TooOld)


def test_field_name_is_in_the_message() -> None:
    with pytest.raises(MappingError) as caught:
        to_epoch_ms("soon", field="createdAt")
    assert str(caught.value).startswith("createdAt 'soon' ")
    assert caught.value.field == "createdAt"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1773892800123, 1773892800123),
        (Decimal("1773892800123"), 1773892800123),
        (Decimal("1773892800123.0"), 1773892800123),
        ("1773892800123", 1773892800123),
        (" 1773892800123 ", 1773892800123),
        (1773892800123.0, 1773892800123),
        (10**11, 10**11),
        (10**14, 10**14),
    ],
)
def test_epoch_ms(value: object, expected: int) -> None:
    result = epoch_ms(value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            Decimal("1773892800123.5"),
            "timestamp_ms 1773892800123.5 is not a whole number of epoch milliseconds",
        ),
        ("1773892800123.5", "is not a whole number of epoch milliseconds"),
        ("2026-11-20T10:00:00Z", "timestamp_ms '2026-11-20T10:00:00Z' is not a number"),
        ("soon", "timestamp_ms 'soon' is not a number"),
        (None, "timestamp_ms is null, not epoch milliseconds"),
        (False, "timestamp_ms is a boolean, not epoch milliseconds"),
        ([1], "timestamp_ms is an array, not epoch milliseconds"),
        (-5, "timestamp_ms -5 is negative"),
        (
            1773892800,
            "timestamp_ms 1773892800 looks like epoch seconds, not milliseconds: "
            "map it to `timestamp` instead",
        ),
        (1773892800123456, "looks like epoch microseconds: map `micros_to_ms(...)` of it"),
        (1773892800123456789, "is too large for epoch milliseconds (nanoseconds?)"),
        (Decimal("1E+999999"), "is too large for epoch milliseconds"),
        (Decimal("NaN"), "timestamp_ms NaN is not a finite number"),
    ],
)
def test_epoch_ms_rejects(value: object, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        epoch_ms(value)
    assert message in str(caught.value)


def _arabic(text: str) -> str:
    """The text with Arabic-Indic digits: decimal digits to Python, and to the ISO pattern."""
    return "".join(chr(0x660 + int(c)) if c.isdigit() else c for c in text)


def _usual_form_corpus() -> list[str]:
    """Texts in and around the form read by position: every part varied, out of range, cut
    short, or written another way."""
    rng = random.Random(15)
    dates = ["2026-11-20", "2024-02-29", "2023-02-29", "1970-01-01", "1969-12-31", "0001-01-01",
             "9999-12-31", "2026-13-01", "2026-00-10", "2026-11-31", "2026-1-20",
             _arabic("2026-11-20"), "2026/11/20", "20261120xx", "2026-11-2x"]  # fmt: skip
    times = ["10:00:00", "00:00:00", "23:59:59", "24:00:00", "10:60:00", "10:00:60", "1:00:00",
             "10:00", "10:0a:00", _arabic("10:00:00"), "10-00-00"]  # fmt: skip
    fractions = ["", ".1", ".12", ".123", ".1239", ".123456789", ",5", ".", ".x", _arabic(".5")]
    zones = ["", "Z", "z", "+00:00", "-00:00", "+05:30", "-08:00", "+14:00", "+23:59", "+24:00",
             "-00:60", "+05:60", "+05:99", "+0530", "+05", " UTC", " +05:30", "+5:30", "+05:3",
             "+05:300", "GMT", "Q", _arabic("+05:30")]  # fmt: skip
    texts = [
        f"{day}{sep}{time}{fraction}{zone}"
        for day in dates
        for sep in "Tt x"
        for time in times[:3]
        for fraction in fractions[:3]
        for zone in zones
    ]
    for _ in range(20_000):
        texts.append(
            f"{rng.choice(dates)}{rng.choice('Tt x')}{rng.choice(times)}"
            f"{rng.choice(fractions)}{rng.choice(zones)}"
        )
    return texts


def test_timestamps_read_by_position_are_what_the_pattern_reads() -> None:
    """The usual form is read by position (timestamps._parse_usual); every value it returns is
    the one the ISO pattern gives, and it leaves every text it does not read to the pattern."""
    read = 0
    for text in _usual_form_corpus():
        usual = timestamps._parse_usual(text)
        if usual is None:
            continue
        read += 1
        assert timestamps._parse_iso_by_pattern(text, text, "timestamp") == usual, text
    assert read > 1_000  # the fast path is the one taken for the usual form
    assert timestamps._parse_usual("2026-11-20T10:00:00Z") == TEN_UTC
    # Out of range, or written another way: left to the pattern, which reads it or says why.
    for text in ["2026-02-30T10:00:00Z", "2026-11-20T24:00:00Z", "1969-12-31T23:59:59Z",
                 "2026-11-20T10:00:00+0530", "2026-11-20 10:00:00 UTC"]:  # fmt: skip
        assert timestamps._parse_usual(text) is None


def test_the_forms_datetime_reads_are_read_as_the_position_reader_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The commonest forms go to datetime.fromisoformat first: it gives what the position reader
    gives for every text of the corpus, and leaves it the texts it would read otherwise (an
    offset of 60 minutes, which it reads as an hour more)."""
    corpus = _usual_form_corpus()
    by_datetime = [timestamps._parse_usual(text) for text in corpus]

    def refuse(text: str) -> None:
        raise ValueError(text)

    monkeypatch.setattr(timestamps, "_FROM_ISO", refuse)
    by_position = [timestamps._parse_usual(text) for text in corpus]
    assert by_datetime == by_position
    taken = []
    monkeypatch.setattr(timestamps, "_FROM_ISO", lambda text: taken.append(text) or refuse(text))
    for text in corpus:
        timestamps._parse_usual(text)
    assert len(taken) > 1_000
    assert "2026-11-20T10:00:00+05:60" not in taken
    # Python 3.14's fromisoformat reads 24:00 as the next day's midnight: never asked.
    assert not [text for text in taken if text[10:13] in ("T24", "t24", " 24")]
    monkeypatch.setattr(timestamps, "_FROM_ISO", lambda text: datetime(2026, 11, 21))
    assert timestamps._parse_usual("2026-11-20T24:00:00Z") is None


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        (
            {"timestamp": "created_at"},
            "timestamp is missing: timestamp ('created_at') gave no value for this record",
        ),
        (
            {},
            "timestamp is missing: the record has no `timestamp` or `timestamp_ms` property, "
            "or an empty one; map one of them",
        ),
        # Mapped to null, timestamp is not read: "the record has no `timestamp`" was not so.
        (
            {"timestamp": "''"},
            "timestamp is missing: the record has no `timestamp_ms` property, or an empty one "
            "(timestamp mapped to null: not read); map timestamp to the record's time",
        ),
    ],
)
def test_a_missing_time_says_what_was_read(fields: dict[str, str], said: str) -> None:
    """A mapped timestamp that read nothing (createdAt mapped as created_at) names the
    expression; the message said `map timestamp`, which the user had done."""
    from target_openai_capi.mapping.assembler import compile_assembler
    from target_openai_capi.mapping.errors import MappingError
    from target_openai_capi.mapping.event import build_event
    from target_openai_capi.mapping.stream_mapping import compile_stream_mapping

    mapping = compile_stream_mapping("s", {"event_type": "lead_created", "fields": fields})
    record = {"id": "1", "createdAt": "2026-12-01T00:00:00Z"}
    with pytest.raises(MappingError, match=re.escape(said)):
        build_event(mapping, record, ["id"])
    assemble = compile_assembler(mapping, ["id"], "plural", None)
    assert assemble is not None
    with pytest.raises(MappingError, match=re.escape(said)):
        assemble(record, None)


def test_a_mapping_without_a_time_is_refused_at_start_up() -> None:
    """timestamp and timestamp_ms both mapped to null: every record was rejected, one by one."""
    from target_openai_capi.mapping.stream_mapping import compile_stream_mapping

    fields = {"timestamp": "`null`", "timestamp_ms": "''"}
    with pytest.raises(ValueError, match="timestamp and timestamp_ms are mapped to null"):
        compile_stream_mapping("s", {"event_type": "lead_created", "fields": fields})


def test_a_yyyymmdd_date_given_as_epoch_milliseconds_says_what_it_looks_like() -> None:
    """GA4's event_date mapped to timestamp_ms was told to be epoch seconds, for timestamp."""
    with pytest.raises(MappingError, match="looks like a date written YYYYMMDD"):
        epoch_ms(20261204)
