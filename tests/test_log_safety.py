"""log_safe: what a log line keeps of a reason, and what it leaves out (pure)."""

from __future__ import annotations

import pytest

from target_openai_capi.log_safety import log_safe


@pytest.mark.parametrize(
    ("reason", "logged"),
    [
        (
            "timestamp 'victim.person@example.com' is not an ISO 8601 date-time",
            "timestamp '…' is not an ISO 8601 date-time",
        ),
        ("amount 'Jane Q Doe' is not a number", "amount '…' is not a number"),
        ("phone '+1 (415) 555-2671' is not a number", "phone '…' is not a number"),
        ("invalid value +14155552671 for events[0]", "invalid value … for events[0]"),
        (
            "events[0].user.ip_address: invalid ip 203.0.113.77",
            "events[0].user.ip_address: invalid ip …",
        ),
        ("invalid ip 2001:db8::1", "invalid ip …"),
        ("date_of_birth '1990-01-01' is not sent", "date_of_birth '…' is not sent"),
        ('contact "jane@example.com" unknown', 'contact "…" unknown'),
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
    ],
)
def test_log_safe_keeps_the_rule_and_leaves_out_personal_values(reason: str, logged: str) -> None:
    assert log_safe(reason) == logged
