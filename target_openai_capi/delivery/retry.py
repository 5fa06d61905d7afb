"""Retry policy as pure functions: whether to retry, and how long to wait first."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

# Retry-After values above this are treated as this: far beyond any sane per-request budget,
# so the budget check gives up at once instead of sleeping for a day.
MAX_RETRY_AFTER_S = 3600.0

# 408 timeout and 429 rate limit are transient by definition; so is most of 5xx. 501 (not
# implemented) and 505 (HTTP version) are answers about the request's shape, not the server's load.
RETRYABLE_4XX = frozenset({408, 429})
PERMANENT_5XX = frozenset({501, 505})

_DELTA_SECONDS = re.compile(r"\d+(\.\d+)?")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for retrying one request: attempts, total seconds, and the backoff curve."""

    max_attempts: int = 8
    max_total_seconds: float = 300.0
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def __post_init__(self) -> None:
        """Reject bounds that would make retrying loop forever or never happen by accident."""
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        for name in ("max_total_seconds", "base_delay_s", "max_delay_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status means "the same request may succeed later"."""
    return status in RETRYABLE_4XX or (500 <= status <= 599 and status not in PERMANENT_5XX)


def should_retry(status: int | None, attempt: int, policy: RetryPolicy) -> bool:
    """Whether failed attempt number `attempt` (1-based) may be followed by another.

    status None means no response (network error). Attempts left first, then the status table;
    the time budget is `fits_budget`, checked once the delay is known.
    """
    if attempt >= policy.max_attempts:
        return False
    return status is None or is_retryable_status(status)


def parse_retry_after(header: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), given epoch `now`.

    Negative or unparseable values give None; an HTTP-date in the past gives 0.0 (retry now);
    values above MAX_RETRY_AFTER_S are capped to it.
    """
    if header is None:
        return None
    value = header.strip()
    if _DELTA_SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            # A naive result means the zone was "-0000": UTC by RFC 5322.
            when = when.replace(tzinfo=timezone.utc)
        seconds = max(0.0, when.timestamp() - now)
    return min(seconds, MAX_RETRY_AFTER_S)


def full_jitter(delay: float) -> float:
    """Spread retries of many clients uniformly over [0, delay] (AWS "full jitter")."""
    return random.uniform(0.0, delay)


def backoff_delay(
    attempt: int,
    retry_after: float | None,
    policy: RetryPolicy,
    jitter: Callable[[float], float] = full_jitter,
) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): the backoff, or Retry-After
    when that asks for longer. The server knows its own load, so it is never retried sooner than
    it asks; but a Retry-After of 0 (or an HTTP-date in the past, a clock apart from ours) would
    spend every attempt in a fraction of a second, so it is never retried sooner than backoff."""
    exponent = min(max(attempt - 1, 0), 60)  # 2**60 s is already past any cap
    cap = min(policy.max_delay_s, policy.base_delay_s * 2.0**exponent)
    if retry_after is None:
        return jitter(cap)
    # At least half the backoff ("equal jitter"), so the floor is one even when jitter is ~0.
    return max(retry_after, cap / 2 + jitter(cap / 2))


def fits_budget(elapsed_s: float, delay_s: float, policy: RetryPolicy) -> bool:
    """Whether waiting delay_s more keeps one request's retries within max_total_seconds."""
    return elapsed_s + delay_s <= policy.max_total_seconds
