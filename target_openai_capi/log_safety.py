"""Reasons made fit for a log line: values that may be personal data left out (pure).

Rejection reasons quote the value that failed (`timestamp 'jane@example.com' is not an ISO
8601 date-time`), which is what a person needs to fix the record, and the dead-letter file
(owner-only) keeps them so. A log is read by more people and kept longer: when a column is
mapped to the wrong field, every record's email would be logged. `log_safe` keeps the field and
the rule and leaves out what looks like personal data: email addresses, IP addresses (but
loopback ones), phone numbers written with their "+", and quoted values holding six digits or
more (a phone number, a date of birth; but a date with its time) or several words (a name).
In a rejection's reason (`reason_safe`), whose quoted values come from the record, one
capitalised word of letters (a surname) goes too, unless it is a code of two or three capitals.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import unicodedata
from collections.abc import Callable

from target_openai_capi.mapping.personal_text import AT_SIGNS, PHONE_SEPARATORS, PHONE_SIGN

# (the at sign full-width or small too, as input methods write it: personal_text.py)
_EMAIL = re.compile(rf"[^\s'\"<>()\[\],;:]+[{AT_SIGNS}][^\s'\"<>()\[\],;:]+")
# Candidates for an IP address, each checked with ipaddress (so "10:00:00" stays).
_IP_LIKE = re.compile(r"(?<![\w:.])[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*[0-9A-Fa-f](?![\w:.])")
# A phone number written with its "+" outside quotes (an API message: "invalid value +1415...").
_PLUS_PHONE = re.compile(rf"[{PHONE_SIGN}]\d[\d{PHONE_SEPARATORS}]{{5,}}\d")
# A quoted date and time (a timestamp that failed a rule) is no personal data; a bare date may
# be a date of birth.
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
# Where a quoted value may begin (quoted_values says where it ends).
_QUOTE = re.compile(r"['\"]")
_DIGIT = re.compile(r"\d")
_WORDS = re.compile(r"\w\s+\w")
# Several words with signs at a space (Jane "JJ" Doe, Doe, Jane, Dr. Smith, Doe; Jane (JJ)): a
# name too, unless the text holds signs of an expression (a function called, stripe_amount(em,
# 'USD'), brackets, pipes, backticks, =: the user's own).
_NAME_WORDS = re.compile(r"\w[^\w\s]*\s+[^\w\s]*\w")
_CODE_SIGNS = re.compile(r"\w\(|[\[\]{}|`&=<>]")
# One capitalised word of letters ("Smith", "Smith-Jones", "José"): a name, when a name column
# is mapped to the wrong field; unless it is a code ("USD", "GB"). (Lowercase words are the
# API's and the formats' own: 'custom', 'web', 'parquet'.)
_CODE = re.compile(r"[A-Z]{2,3}")

HIDDEN = "…"
# What joins the parts of one name: hyphens and apostrophes, ASCII and typographic (U+2019 and
# U+2018, the single quotation marks, U+00B4 the acute accent typed for one; the dashes U+2010
# to U+2015, the no-break hyphen and the en and em dashes among them, and the minus sign).
_JOINERS = "-'\u2019\u2018\u00b4\u2010\u2011\u2012\u2013\u2014\u2015\u2212"


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _after_a_word(text: str, at: int) -> bool:
    """True when a word ends just before `at` (so a single quote there is an apostrophe)."""
    return bool(at) and _is_word(text[at - 1])


def quoted_values(text: str) -> list[tuple[int, int]]:
    """Where the quoted values of the text are: (start, end) of each, quotes included, in one
    line. A double quote closes at the next one. A single quote opens only after no letter or
    digit and closes only before none, so the apostrophes of "the API's answer ... a proxy's
    page" quote nothing, and one inside a word ('O'Brien') is part of the value. One pass
    over the text (no regular expression that backtracks: hostile text cannot slow it)."""
    spans: list[tuple[int, int]] = []
    position, line_end, no_closing_single_quote_before = 0, -1, -1
    while (match := _QUOTE.search(text, position)) is not None:
        start, quote = match.start(), match.group()
        if start > line_end:  # (found once a line: the search stays one pass)
            line_end = text.find("\n", start)
            line_end = len(text) if line_end < 0 else line_end
        if quote == '"':
            end = text.find('"', start + 1, line_end)
        elif _after_a_word(text, start) or start < no_closing_single_quote_before:
            end = -1  # (an apostrophe; or no single quote after this one ends a value)
        else:
            end = text.find("'", start + 1, line_end)
            while end >= 0 and end + 1 < len(text) and _is_word(text[end + 1]):
                end = text.find("'", end + 1, line_end)  # (an apostrophe inside the value)
            if end < 0:  # none closes it, so none closes a later one on this line either
                no_closing_single_quote_before = line_end
        if end < 0:
            position = start + 1
            continue
        spans.append((start, end + 1))
        position = end + 1
    return spans


def _quoted(quote: str, text: str) -> str:
    """The quoted value as logged: itself, or hidden when it looks like personal data."""
    if _DATE_TIME.match(text) and not _EMAIL.search(text) and not _WORDS.search(text[16:]):
        return f"{quote}{text}{quote}"
    if is_loopback(text):
        return f"{quote}{text}{quote}"
    if (
        len(_DIGIT.findall(text)) >= 6
        or _WORDS.search(text)
        or (_NAME_WORDS.search(text) and not _CODE_SIGNS.search(text))
    ):
        return f"{quote}{HIDDEN}{quote}"
    return f"{quote}{text}{quote}"


def _one_word(text: str) -> bool:
    """Letters, with the marks scripts write on them (Devanagari, Thai and Arabic vowel signs:
    "राहुल", "محمّد"), in runs joined by one hyphen or apostrophe ("O'Brien", "Smith-Jones"),
    the typographic ones too ("O\u2019Brien", as word processors and phones write it)."""
    joined = True  # (no word begins with a mark, a hyphen or an apostrophe)
    for char in text:
        if char.isalpha():
            joined = False
        elif char in _JOINERS and not joined:
            joined = True
        elif not (unicodedata.category(char).startswith("M") and not joined):
            return False
    return bool(text) and not joined


def _quoted_value(quote: str, text: str) -> str:
    # One word written as a name is: capitalised, or in a script without case (王小明, 김민준,
    # محمد, כהן: no letter of theirs is upper or lower case).
    if _one_word(text) and not text[0].islower() and not _CODE.fullmatch(text):
        return f"{quote}{HIDDEN}{quote}"
    return _quoted(quote, text)


def is_loopback(host: str) -> bool:
    """True for localhost or a loopback address (the local sandbox's host): no one's personal
    data, and the only host plain http:// may reach (config.py)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ip(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text
    return text if address.is_loopback else HIDDEN


def log_safe(text: str) -> str:
    """The text with emails, IP addresses and personal-looking quoted values replaced by …."""
    return _masked(text, _quoted)


def reason_safe(reason: str) -> str:
    """log_safe for the reason a record was rejected, whose quoted values come from the record:
    one capitalised word is left out too (a surname in the currency column). Not for other
    messages, which quote stream names ('Account') and identifiers a person needs to see."""
    return _masked(reason, _quoted_value)


# A log line says at most this much of a reason or message (the dead-letter file keeps it
# whole): the searches below would take quadratic time over a hostile text of any length.
MAX_LOGGED_CHARS = 1000


# Names the user gave or the run is about, shown when quoted however they look: a stream's name
# ('Web Leads Sheet'), the pixel id, a file's path (a BATCH file's name holds a UUID), which the
# messages that name them exist to show. Not a record's values.
_shown: set[str] = set()
MAX_NAMES_SHOWN = 10_000


# A name longer than this (a stream named with a megabyte) is cut in every log line it is in;
# at most MAX_CUT_NAMES such names are looked for.
MAX_NAME_CHARS = 200
MAX_CUT_NAMES = 100
_cut_names: dict[str, str] = {}


def show_in_log(*names: object) -> None:
    """From now on, a quoted value equal to one of these names is logged as it is (a long one
    cut to MAX_NAME_CHARS)."""
    for name in names:
        if isinstance(name, str) and name and len(_shown) < MAX_NAMES_SHOWN:
            _shown.add(name)
            if len(name) > MAX_NAME_CHARS and len(_cut_names) < MAX_CUT_NAMES:
                # As a METRIC line's JSON writes it (a `"`, a backslash or Cyrillic escaped)
                # first: the name itself may be part of that form, and cut there breaks it.
                escaped = json.dumps(name)[1:-1]
                if escaped != name:
                    head = escaped[: MAX_NAME_CHARS - 1]
                    _cut_names[escaped] = head[: _escape_start(head)] + HIDDEN
                cut = _cut_names[name] = name[: MAX_NAME_CHARS - 1] + HIDDEN
                _shown.add(cut)


def _escape_start(head: str) -> int:
    """Where a JSON escape the cut would split begins (the whole head when none would be)."""
    backslash = head.rfind("\\", max(0, len(head) - 6))
    if backslash < 0:
        return len(head)
    run = len(head[: backslash + 1]) - len(head[: backslash + 1].rstrip("\\"))
    if run % 2 == 0:  # (an escaped backslash ends there: nothing split)
        return len(head)
    escape = head[backslash:]
    whole = len(escape) >= 2 and (escape[1] != "u" or len(escape) >= 6)
    if not whole or _HIGH_SURROGATE.fullmatch(escape):  # (an emoji's first half: not alone)
        return _escape_start(head[:backslash])  # (whose first half goes with a cut second)
    return len(head)


_HIGH_SURROGATE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}")


def _with_long_names_cut(message: str) -> str:
    for name, cut in _cut_names.items():
        if name in message:
            message = message.replace(name, cut)
    return message


def _masked(text: str, quoted: Callable[[str, str], str]) -> str:
    if len(text) > MAX_LOGGED_CHARS:
        text = cut_text(text)
    text = _EMAIL.sub(HIDDEN, text)
    text = _IP_LIKE.sub(_ip, text)
    text = _PLUS_PHONE.sub(HIDDEN, text)
    parts, done = [], 0
    for start, end in quoted_values(text):
        value = text[start + 1 : end - 1]
        parts += [
            text[done:start],
            text[start:end] if value in _shown else quoted(text[start], value),
        ]
        done = end
    parts.append(text[done:])
    return "".join(parts)


def cut_text(text: str, limit: int = MAX_LOGGED_CHARS) -> str:
    """The text cut to `limit` characters (… the last), if longer; a value whose quote opens
    before the cut and would close after it is hidden from its quote on (left open, it would be
    no quoted value to the log's masking, and would be shown whatever it holds), values quoted
    inside it too."""
    if len(text) <= limit:
        return text
    text = text[: limit - 1]
    spans = iter(quoted_values(text))
    span = next(spans, None)
    for match in _QUOTE.finditer(text):
        start = match.start()
        while span is not None and span[1] <= start:
            span = next(spans, None)
        if span is not None and span[0] <= start:
            continue  # (a quote of a value closed before the cut)
        if match.group() == '"' or not _after_a_word(text, start):
            return text[: start + 1] + HIDDEN
    return text + HIDDEN


# Characters that end or rewrite a line: newlines, other controls (a terminal's ESC sequences
# move the cursor over earlier lines), Unicode's line and paragraph separators, and its
# direction marks and overrides (U+202E shows the rest of a line backwards: a stream's name
# could show as a forged summary). Tabs stay.
_LINE_BREAKERS = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]"
)

# Secrets shorter than this are not looked for in text: a short or empty value would hide
# ordinary words (the API's keys are far longer).
MIN_HIDDEN_LENGTH = 8
REDACTED = "[redacted]"
_secrets: list[str] = []


def hide_in_every_log_line(secret: str) -> None:
    """From now on, OneLine writes `secret` (the API key) as [redacted] in every log record,
    and the dead-letter file and request log (without_secrets) in every line: the places that
    build messages redact it already; this is what catches the one that forgot (an exception's
    text, a server echoing the key, a URL that held it, a record that holds it)."""
    if len(secret) >= MIN_HIDDEN_LENGTH and secret not in _secrets:
        _secrets.append(secret)


# A secret cut short (a message that shortens long values) is still found from this many of its
# first characters on: the key's own prefix (sk-svcacct-) and a dozen of its random ones.
_SECRET_HEAD = 24


def redact(text: str, secret: str) -> str:
    """The text with `secret` written as [redacted] wherever it appears, whole or cut short
    after its first _SECRET_HEAD characters (a message that shortens long values)."""
    if not secret:
        return text
    head = secret[:_SECRET_HEAD]
    start = text.find(head)
    while start >= 0:  # what is there of the secret, however much of it
        end, matched = start + len(head), len(head)
        while end < len(text) and matched < len(secret) and text[end] == secret[matched]:
            end, matched = end + 1, matched + 1
        text = text[:start] + REDACTED + text[end:]
        start = text.find(head, start + len(REDACTED))
    return _without_pieces(text, secret)


# A piece of the key's random part this long, in any case, is hidden too (a server that quotes
# the key from its 20th character on, or upper-cased): looked for at every _PIECE-th character
# of it, so any run of 2 * _PIECE - 1 characters of it holds one such piece.
_PIECE = 10
_KEY_PREFIX = re.compile(r"sk-(?:[a-z]+-)?")


def _without_pieces(text: str, secret: str) -> str:
    """The text with each run of the secret's random part that is 2 * _PIECE - 1 characters or
    longer, in any case, written as [redacted]."""
    prefix = _KEY_PREFIX.match(secret)
    start_of_random = prefix.end() if prefix else 0
    if len(secret) - start_of_random < 2 * _PIECE or len(text) < _PIECE:
        return text
    lowered, key = text.lower(), secret.lower()
    if len(lowered) != len(text):  # ("İ" lower-cased is two characters: positions kept)
        lowered = "".join(ch if len(low := ch.lower()) != 1 else low for ch in text)
    spans = []
    for at in range(start_of_random, len(key) - _PIECE + 1, _PIECE):
        piece = key[at : at + _PIECE]
        found = lowered.find(piece)
        while found >= 0:
            begin, end, k_begin, k_end = found, found + _PIECE, at, at + _PIECE
            while begin > 0 and k_begin > 0 and lowered[begin - 1] == key[k_begin - 1]:
                begin, k_begin = begin - 1, k_begin - 1
            while end < len(lowered) and k_end < len(key) and lowered[end] == key[k_end]:
                end, k_end = end + 1, k_end + 1
            spans.append((begin, end))
            found = lowered.find(piece, end)
    if not spans:
        return text
    out, last = [], 0
    for begin, end in sorted(spans):
        if begin < last:  # (overlapping the run before: it is one run)
            last = max(last, end)
            continue
        out += [text[last:begin], REDACTED]
        last = end
    out.append(text[last:])
    return "".join(out)


def _redacted(text: str) -> str:
    for secret in _secrets:
        text = redact(text, secret)
    return text


def without_secrets(text: str) -> str:
    """The text with the secrets given to hide_in_every_log_line as [redacted]: for the files
    the target writes (a record may hold the key: a BATCH file that was a config file)."""
    return _redacted(text) if _secrets else text


def without_secrets_in_bytes(data: bytes) -> bytes:
    """without_secrets, for bytes (a request body as sent): decoded only when it may hold one
    (its start, or a piece of its random part in any case, as `_without_pieces` finds them)."""
    if not _secrets:
        return data
    lowered = b""
    for secret in _secrets:
        if secret[:_SECRET_HEAD].encode() in data:
            break
        pieces = _pieces(secret)
        if pieces:
            lowered = lowered or data.lower()
            if any(piece in lowered for piece in pieces):
                break
    else:
        return data
    return _redacted(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def _pieces(secret: str) -> list[bytes]:
    """The pieces of the secret's random part that `_without_pieces` looks for, lower-cased."""
    prefix = _KEY_PREFIX.match(secret)
    start_of_random = prefix.end() if prefix else 0
    if len(secret) - start_of_random < 2 * _PIECE:
        return []
    key = secret.lower().encode("utf-8", "surrogateescape")
    return [key[at : at + _PIECE] for at in range(start_of_random, len(key) - _PIECE + 1, _PIECE)]


class OneLine(logging.Filter):
    """Each log record on one line, without the API key: a control character inside a value
    (a stream name, a server's message) is written escaped (\\n, \\x1b), so what a tap or a
    server sends cannot forge log lines or rewrite them on a terminal; the secrets given to
    hide_in_every_log_line are [redacted], in the message and in a traceback; a library's
    notice (INFO, WARNING) comes without its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.exc_info
            and logging.INFO <= record.levelno <= logging.WARNING
            and not record.name.startswith(("target-openai-capi", "target_openai_capi"))
        ):
            # A library's notice with a traceback (urllib3 warns of an answer's malformed
            # headers with its parser's): the message says it, and what failed is reported by
            # the target in its own words. (Tracebacks stay at DEBUG level, and with errors.)
            record.exc_info, record.exc_text = None, None
        message = record.getMessage()
        shown = _redacted(message) if _secrets else message
        if _cut_names and len(shown) > MAX_NAME_CHARS:
            shown = _with_long_names_cut(shown)
        if _LINE_BREAKERS.search(shown):
            shown = _LINE_BREAKERS.sub(lambda m: repr(m.group())[1:-1], shown)
        if shown != message:
            record.msg, record.args = shown, None
        if _secrets and record.exc_info:  # (a traceback that holds the key: kept as text)
            formatted = logging.Formatter().formatException(record.exc_info)
            redacted = _redacted(formatted)
            if redacted != formatted:
                record.exc_text, record.exc_info = redacted, None
        return True
