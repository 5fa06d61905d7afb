"""log_safe: what a log line keeps of a reason, and what it leaves out (pure)."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from target_openai_capi import log_safety
from target_openai_capi.log_safety import OneLine, hide_in_every_log_line, log_safe, reason_safe


@pytest.mark.parametrize(
    ("reason", "logged"),
    [
        (
            "timestamp 'victim.person@example.com' is not an ISO 8601 date-time",
            "timestamp '…' is not an ISO 8601 date-time",
        ),
        ("amount 'Jane Q Doe' is not a number", "amount '…' is not a number"),
        # Several words with quotes or commas at their spaces: a name still.
        ("timestamp 'Jane \"JJ\" Doe' is not a date", "timestamp '…' is not a date"),
        ("amount 'Doe, Jane' is not a number", "amount '…' is not a number"),
        ("amount 'Dr. Smith' is not a number", "amount '…' is not a number"),
        ("amount 'J. Doe' is not a number", "amount '…' is not a number"),
        ("amount 'Doe; Jane' is not a number", "amount '…' is not a number"),
        ("amount 'Doe, Jane (JJ)' is not a number", "amount '…' is not a number"),
        ("amount 'Jane-Doe (guest)' is not a number", "amount '…' is not a number"),
        # (an expression, the user's own, is shown: a function called, brackets)
        (
            "phone: expression \"join('', [cc, num])\" failed",
            "phone: expression \"join('', [cc, num])\" failed",
        ),
        (
            "email: expression \"stripe_amount(em, 'USD')\" failed",
            "email: expression \"stripe_amount(em, 'USD')\" failed",
        ),
        ("phone '+1 (415) 555-2671' is not a number", "phone '…' is not a number"),
        ("invalid value +14155552671 for events[0]", "invalid value … for events[0]"),
        ("invalid value +1\u2011415\u2011555\u20112671 x", "invalid value … x"),  # (no-break -)
        (
            "events[0].user.ip_address: invalid ip 203.0.113.77",
            "events[0].user.ip_address: invalid ip …",
        ),
        ("invalid ip 2001:db8::1", "invalid ip …"),
        ("date_of_birth '1990-01-01' is not sent", "date_of_birth '…' is not sent"),
        ('contact "jane@example.com" unknown', 'contact "…" unknown'),
        # The at sign and the + as input methods write them, full-width (U+FF20, U+FF0B).
        ("timestamp 'hanako\uff20example.jp' is not", "timestamp '…' is not"),
        ("contact hanako\uff20example.jp unknown", "contact … unknown"),
        ("invalid value \uff0b14155552671 for events[0]", "invalid value … for events[0]"),
        # What is no personal data stays: the field, the rule, codes, times, loopback hosts.
        ("unknown currency 'XYZ'", "unknown currency 'XYZ'"),
        (
            "timestamp '2026-13-45T10:00:00Z' is not a date",
            "timestamp '2026-13-45T10:00:00Z' is not a date",
        ),
        ("timestamp_ms: older than 7 days", "timestamp_ms: older than 7 days"),
        ("record.createdAt: 12:30 at 10:00:00", "record.createdAt: 12:30 at 10:00:00"),
        (
            "HTTPConnection(host='127.0.0.1', port=9): refused",
            "HTTPConnection(host='127.0.0.1', port=9): refused",
        ),
        (
            "amount 25.99 has more decimals than JPY allows",
            "amount 25.99 has more decimals than JPY allows",
        ),
        ("custom event name 'custom' is refused", "custom event name 'custom' is refused"),
        ("action_source 'web' needs a source_url", "action_source 'web' needs a source_url"),
        ("data.type 'contents' for 'app_opened'", "data.type 'contents' for 'app_opened'"),
        ("unknown country 'ZZ'", "unknown country 'ZZ'"),
        ("amount '12.345' has 3 decimals", "amount '12.345' has 3 decimals"),
        ("source_url '/thanks' has no host", "source_url '/thanks' has no host"),
        (
            "encoding format 'parquet' is not supported",
            "encoding format 'parquet' is not supported",
        ),
    ],
)
def test_log_safe_keeps_the_rule_and_leaves_out_personal_values(reason: str, logged: str) -> None:
    assert log_safe(reason) == logged
    assert reason_safe(reason) == logged  # (a reason loses more: one capitalised word, below)


@pytest.mark.parametrize(
    ("reason", "logged"),
    [
        # One capitalised word: a surname in the wrong column, whatever field it reached.
        ("unknown currency 'Smith'", "unknown currency '…'"),
        ("amount 'Johnson' is not a number", "amount '…' is not a number"),
        ("timestamp 'Smith-Jones' is not a date", "timestamp '…' is not a date"),
        ("event type 'José' is unknown", "event type '…' is unknown"),
        ("unknown currency 'EURO'", "unknown currency '…'"),
        ("unknown currency 'USD '", "unknown currency 'USD '"),
        ("unknown currency 'ZZ'", "unknown currency 'ZZ'"),
        # A name in a script without case: no letter of it is capitalised, none is lower case.
        ("unknown currency '王小明'", "unknown currency '…'"),
        ("unknown currency '김민준'", "unknown currency '…'"),
        ("unknown currency 'محمد'", "unknown currency '…'"),
        ("unknown currency 'כהן'", "unknown currency '…'"),
        ("unknown currency 'สมชาย'", "unknown currency '…'"),
        # with the marks their scripts write on letters (vowel signs, a shadda)
        ("unknown currency 'राहुल'", "unknown currency '…'"),
        ("unknown currency 'প্রিয়া'", "unknown currency '…'"),
        ("unknown currency 'தமிழ்செல்வன்'", "unknown currency '…'"),
        ("unknown currency 'สมศักดิ์'", "unknown currency '…'"),
        ("unknown currency 'محمّد'", "unknown currency '…'"),
        ("unknown currency 'usdd'", "unknown currency 'usdd'"),  # (lower case: a typo shown)
        # An apostrophe inside a word is part of the quoted value, not its end.
        ("surname 'O'Brien' is not a currency", "surname '…' is not a currency"),
        # The apostrophe and hyphen of word processors and phones (U+2019, U+2011) too.
        ("unknown currency 'O\u2019Brien'", "unknown currency '…'"),
        ("timestamp 'D\u2019Angelo' is not a date", "timestamp '…' is not a date"),
        ("unknown currency 'Smith\u2011Jones'", "unknown currency '…'"),
        ("unknown currency 'O\u2018Brien'", "unknown currency '…'"),
        ("unknown currency 'O\u00b4Brien'", "unknown currency '…'"),
        ("unknown currency 'Smith\u2013Jones'", "unknown currency '…'"),
        ("unknown currency 'Smith\u2014Jones'", "unknown currency '…'"),
        # (a time with a space before its offset is a time: shown)
        (
            "timestamp '2026-12-05 10:00:00 +25:00' has an invalid UTC offset",
            "timestamp '2026-12-05 10:00:00 +25:00' has an invalid UTC offset",
        ),
        # An apostrophe after a one-letter word opens nothing before the value's own quote.
        ("grade B's: 'Smith' is not a currency", "grade B's: '…' is not a currency"),
    ],
)
def test_a_rejections_reason_leaves_out_one_capitalised_word_too(reason: str, logged: str) -> None:
    assert reason_safe(reason) == logged


@pytest.mark.parametrize(
    "message",
    [
        "BATCH message for stream 'Account' cannot be used",
        "SCHEMA for stream 'Opportunity' refused",
        "stream_maps expression failed (NameError: name 'Amount' is not defined)",
        # Apostrophes quote nothing: the words between two of them stay.
        "the API's answer of 200 is a web page (a proxy's sign-in page?), not the API's JSON",
        "stream 'orders' isn't mapped: it's sent nowhere",
    ],
)
def test_other_messages_keep_stream_names_and_identifiers(message: str) -> None:
    assert log_safe(message) == message


def test_a_long_text_is_cut_before_it_is_searched() -> None:
    """A hostile reason (100,000 characters an email or address search would crawl over) is
    logged cut, the cut said by …, whatever it holds."""
    logged = log_safe("a" * 100_000)
    assert logged == "a" * (log_safety.MAX_LOGGED_CHARS - 1) + "…"
    assert reason_safe("1." * 50_000).endswith("…")


@pytest.mark.parametrize("quote", ["'", '"'])
def test_a_value_whose_quote_the_cut_leaves_open_is_hidden(quote: str) -> None:
    """A reason quoting a long value past the cut lost its closing quote, and with it all that
    hides a quoted value: a customer's note went to the log, 1,000 characters of it."""
    note = "Jane Doe, 1 Main Street, Springfield asked to be called back. " + "x" * 1000
    for safe in (log_safe, reason_safe):
        logged = safe(f"Rejected a record of 'leads' at mapping: opt_out {quote}{note}{quote} is")
        assert logged == f"Rejected a record of 'leads' at mapping: opt_out {quote}…"
    # (a value quoting another inside it: hidden from its own quote on, the inner one too)
    inner = 'Jane Doe, 1 Main Street, Springfield says "call me" tomorrow. ' + "x" * 1100
    for safe in (log_safe, reason_safe):
        logged = safe(f"Rejected a record of 'c' at mapping: opt_out '{inner}' is not a boolean")
        assert logged == "Rejected a record of 'c' at mapping: opt_out '…"
    # (an apostrophe is no quote: the text is cut where it is)
    logged = log_safe("the API's answer " + "y" * 2000)
    assert logged == ("the API's answer " + "y" * 2000)[: log_safety.MAX_LOGGED_CHARS - 1] + "…"


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        ("a 'b' \"c d\" e", [(2, 5), (6, 11)]),
        ("the API's page, a proxy's", []),
        ("x 'O'Brien' y", [(2, 11)]),
        ("'open\n' closed'", [(6, 15)]),  # (a value is in one line)
        (" 'a" * 1000, []),  # (hostile: no value, and one pass over it)
        ("'a'" * 3, [(0, 3), (3, 6), (6, 9)]),
        ("'a'b'c' d", [(0, 7)]),  # (each inner quote is followed by a letter)
    ],
)
def test_quoted_values_are_found_in_one_line_each(text: str, spans: list[tuple[int, int]]) -> None:
    assert log_safety.quoted_values(text) == spans


KEY = "sk-svcacct-" + "k3y" * 10


def _logged(secret: str, message: str, *args: object, exc: BaseException | None = None) -> str:
    """What a handler with OneLine writes for one record, once `secret` is to be hidden."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(OneLine())
    logger = logging.Logger("test-one-line")
    logger.addHandler(handler)
    hide_in_every_log_line(secret)
    if exc is None:
        logger.error(message, *args)
    else:
        try:
            raise exc
        except type(exc):
            logger.error(message, *args, exc_info=sys.exc_info())
    return out.getvalue()


@pytest.fixture(autouse=True)
def _no_secrets_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_safety, "_secrets", [])


def test_the_key_is_redacted_in_every_log_line_once_it_is_known() -> None:
    written = _logged(KEY, "server said %s for %r", f"bad key {KEY}", "https://h/" + KEY)
    assert KEY not in written
    assert written == "server said bad key [redacted] for 'https://h/[redacted]'\n"


def test_the_key_is_redacted_in_a_traceback_too() -> None:
    written = _logged(KEY, "Unexpected error", exc=ValueError(f"header Bearer {KEY}"))
    assert KEY not in written
    assert "ValueError: header Bearer [redacted]" in written
    assert written.startswith("Unexpected error\nTraceback")


def test_a_short_or_empty_key_hides_nothing() -> None:
    assert _logged("", "nothing to hide") == "nothing to hide\n"
    assert _logged("sk-1", "sk-1 is too short to look for") == "sk-1 is too short to look for\n"


def test_one_line_escapes_line_breaks_as_well_as_hiding_the_key() -> None:
    written = _logged(KEY, "stream %s", f"a\nb{KEY}\x1b[2J")
    assert written == "stream a\\nb[redacted]\\x1b[2J\n"


def test_one_line_escapes_direction_overrides() -> None:
    """U+202E shows the rest of a line backwards: a stream named with it showed a forged run
    summary on a terminal that honours it."""
    name = "orders\u202e 0=detcejer 001=tnes :yrammus nuR\u2066"
    written = _logged(KEY, "Stream '%s' has no entry", name)
    escaped = "orders\\u202e 0=detcejer 001=tnes :yrammus nuR\\u2066"
    assert written == f"Stream '{escaped}' has no entry\n"


def test_a_key_cut_short_is_redacted_from_its_first_characters_on() -> None:
    hide_in_every_log_line(KEY)
    cut = KEY[:40]
    assert log_safety.without_secrets(f"field 'x{cut}...' too long; {KEY}.") == (
        "field 'x[redacted]...' too long; [redacted]."
    )


def test_a_request_body_hides_the_key_as_a_dead_letter_does() -> None:
    """The request log hid the key only when it held the key's first characters: the rest of
    it, or all of it upper-cased, in a record's value was written as sent, where the dead-letter
    file writes [redacted]."""
    hide_in_every_log_line(KEY)
    for value in (KEY[11:], KEY.upper(), KEY[15:].upper()):
        text = f'{{"note":"token {value}"}}'
        expected = log_safety.without_secrets(text)
        assert "[redacted]" in expected
        assert log_safety.without_secrets_in_bytes(text.encode()) == expected.encode()
    untouched = b'{"note":"nothing secret here at all, only words"}'
    assert log_safety.without_secrets_in_bytes(untouched) is untouched


def test_a_traceback_without_the_key_keeps_its_exception_info() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    seen: list[object] = []
    handler.addFilter(OneLine())
    handler.addFilter(lambda record: seen.append(record.exc_info) or True)
    logger = logging.Logger("test-exc-info")
    logger.addHandler(handler)
    hide_in_every_log_line(KEY)
    try:
        raise ValueError("nothing secret")
    except ValueError:
        logger.exception("failed")
    assert seen[0] is not None  # (a structured formatter may read it)
    assert "ValueError: nothing secret" in out.getvalue()
