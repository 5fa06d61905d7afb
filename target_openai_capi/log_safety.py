"""Reasons made fit for a log line: values that may be personal data left out (pure).

Rejection reasons quote the value that failed (`timestamp 'jane@example.com' is not an ISO
8601 date-time`), which is what a person needs to fix the record, and the dead-letter file
(owner-only) keeps them so. A log is read by more people and kept longer: when a column is
mapped to the wrong field, every record's email would be logged. `log_safe` keeps the field and
the rule and leaves out what looks like personal data: email addresses, IP addresses, and quoted
values holding six digits or more (a phone number, a date of birth) or several words (a name).
"""

from __future__ import annotations

import ipaddress
import logging
import re

_EMAIL = re.compile(r"[^\s'\"<>()\[\],;:]+@[^\s'\"<>()\[\],;:]+")
# Candidates for an IP address, each checked with ipaddress (so "10:00:00" stays).
_IP_LIKE = re.compile(r"(?<![\w:.])[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]*[0-9A-Fa-f](?![\w:.])")
_QUOTED = re.compile(r"'([^'\n]*)'|\"([^\"\n]*)\"")
_DIGIT = re.compile(r"\d")
_WORDS = re.compile(r"\w\s+\w")

HIDDEN = "…"


def _quoted(match: re.Match[str]) -> str:
    text = match.group(1) if match.group(1) is not None else match.group(2)
    if len(_DIGIT.findall(text)) >= 6 or _WORDS.search(text):
        quote = match.group(0)[0]
        return f"{quote}{HIDDEN}{quote}"
    return match.group(0)


def _ip(match: re.Match[str]) -> str:
    try:
        ipaddress.ip_address(match.group(0))
    except ValueError:
        return match.group(0)
    return HIDDEN


def log_safe(text: str) -> str:
    """The text with emails, IP addresses and personal-looking quoted values replaced by …."""
    text = _EMAIL.sub(HIDDEN, text)
    text = _IP_LIKE.sub(_ip, text)
    return _QUOTED.sub(_quoted, text)


class OneLine(logging.Filter):
    """Each log record on one line: a newline inside a value (a stream name, a server's
    message) is written as \\n, so what a tap or a server sends cannot forge log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "\n" in message or "\r" in message:
            record.msg = message.replace("\r", "\\r").replace("\n", "\\n")
            record.args = None
        return True
