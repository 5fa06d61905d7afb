"""The one error type of the mapping functions: a record value that cannot become an event field."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import simplejson

# Longest quoted value in a message: enough to recognise it, short enough for a log line.
_MAX_QUOTED = 40


class MappingError(ValueError):
    """A record value that cannot become an event field; `str(e)` is the user-facing reason."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.event_id: str | None = None  # the record's event id, when it was read before


class TooOld(MappingError):
    """A time before 1970-01-01 (a placeholder such as 0001-01-01 or 1900-01-01, or a negative
    epoch value), or epoch milliseconds before 2000 read either as milliseconds or as seconds:
    older than the API's 7 days, so the record is refused at the window (no rerun sends it),
    not as a mapping a fix would make sendable."""


def quote(value: object) -> str:
    """Render a non-PII value (money, time, currency) for a message, cut to a short length."""
    if isinstance(value, str):
        if len(value) > _MAX_QUOTED - 2:
            # Cut inside its quotes: a quote left open would not be a quoted value to the log's
            # redaction (log_safety.py), which hides those that look personal.
            return repr(value[: _MAX_QUOTED - 5] + "...")
        return repr(value)
    if value is None or isinstance(value, (bool, list, tuple, Mapping)):
        # As the record wrote it (true, null, [1, "a"], {"k": 1}), not as Python shows it.
        try:
            text = str(simplejson.dumps(value, use_decimal=True, default=str, ensure_ascii=False))
        except (TypeError, ValueError, RecursionError):
            text = type_name(value)
    else:
        text = str(value)
    if len(text) > _MAX_QUOTED:
        return text[: _MAX_QUOTED - 3] + "..."
    return text


def type_name(value: object) -> str:
    """Name a value's type the way a data engineer reading JSON thinks of it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__} value"
