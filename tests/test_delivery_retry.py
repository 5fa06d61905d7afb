"""Pure tests of the retry policy: statuses, Retry-After parsing, backoff and budget."""

from __future__ import annotations

import pytest

from target_openai_capi.delivery.retry import (
    MAX_RETRY_AFTER_S,
    RetryPolicy,
    backoff_delay,
    fits_budget,
    full_jitter,
    is_retryable_status,
    parse_retry_after,
    should_retry,
)

# 2015-10-21 07:28:00 GMT, the RFC 9110 example date, as epoch seconds.
NOW = 1445412480.0


@pytest.mark.parametrize(
    ("header", "now", "expected"),
    [
        (None, NOW, None),
        ("", NOW, None),
        ("0", NOW, 0.0),
        ("7", NOW, 7.0),
        ("  7 ", NOW, 7.0),
        ("1.5", NOW, 1.5),
        ("120", NOW, 120.0),
        ("-5", NOW, None),
        ("soon", NOW, None),
        ("1e3", NOW, None),
        ("inf", NOW, None),
        ("nan", NOW, None),
        ("7 seconds", NOW, None),
        ("99999999", NOW, MAX_RETRY_AFTER_S),
        # HTTP-date forms: IMF-fixdate, obsolete RFC 850 and asctime are all legal senders' forms.
        ("Wed, 21 Oct 2015 07:28:30 GMT", NOW, 30.0),
        ("Wed, 21 Oct 2015 07:28:30 -0000", NOW, 30.0),
        ("Wed, 21 Oct 2015 09:28:30 +0200", NOW, 30.0),
        ("Wednesday, 21-Oct-15 07:29:00 GMT", NOW, 60.0),
        ("Wed Oct 21 07:28:10 2015", NOW, 10.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", NOW, 0.0),
        ("Wed, 21 Oct 2015 07:00:00 GMT", NOW, 0.0),  # in the past: retry now
        ("Thu, 21 Oct 2055 07:28:00 GMT", NOW, MAX_RETRY_AFTER_S),
        ("Wed, 32 Oct 2015 07:28:00 GMT", NOW, None),
        ("Wed, 21 Oct 2015", NOW, None),
    ],
)
def test_parse_retry_after(header: str | None, now: float, expected: float | None) -> None:
    assert parse_retry_after(header, now) == expected


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (599, True),
        (501, False),
        (505, False),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (413, False),
        (422, False),
        (200, False),
        (301, False),
    ],
)
def test_is_retryable_status(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable


POLICY = RetryPolicy(max_attempts=3, max_total_seconds=60.0, base_delay_s=0.5, max_delay_s=4.0)


@pytest.mark.parametrize(
    ("status", "attempt", "expected"),
    [
        (None, 1, True),  # network error
        (None, 2, True),
        (None, 3, False),  # attempts used up
        (429, 1, True),
        (429, 3, False),
        (503, 2, True),
        (408, 1, True),
        (501, 1, False),
        (400, 1, False),
        (401, 1, False),
        (404, 1, False),
        (413, 1, False),
    ],
)
def test_should_retry(status: int | None, attempt: int, expected: bool) -> None:
    assert should_retry(status, attempt, POLICY) is expected


def test_single_attempt_policy_never_retries() -> None:
    assert should_retry(None, 1, RetryPolicy(max_attempts=1)) is False


def no_jitter(delay: float) -> float:
    return delay


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (1, None, 0.5),
        (2, None, 1.0),
        (3, None, 2.0),
        (4, None, 4.0),
        (5, None, 4.0),  # capped at max_delay_s
        (1000, None, 4.0),  # no overflow on absurd attempt numbers
        (1, 7.0, 7.0),  # Retry-After wins, even above max_delay_s
        (2, 0.2, 1.0),  # but never sooner than backoff: Retry-After 0 must not spend every
        (5, 0.0, 4.0),  # attempt in a fraction of a second
    ],
)
def test_backoff_delay(attempt: int, retry_after: float | None, expected: float) -> None:
    assert backoff_delay(attempt, retry_after, POLICY, jitter=no_jitter) == expected


def test_a_retry_after_of_zero_waits_at_least_half_the_backoff_whatever_the_jitter() -> None:
    assert backoff_delay(3, 0.0, POLICY, jitter=lambda delay: 0.0) == 1.0  # backoff 2.0 s
    assert backoff_delay(3, 0.0, POLICY, jitter=lambda delay: delay) == 2.0


def test_backoff_delay_applies_jitter_to_capped_delay() -> None:
    seen: list[float] = []

    def half(delay: float) -> float:
        seen.append(delay)
        return delay / 2

    assert backoff_delay(10, None, POLICY, jitter=half) == 2.0
    assert seen == [4.0]


def test_full_jitter_stays_within_bounds() -> None:
    draws = [full_jitter(2.0) for _ in range(200)]
    assert all(0.0 <= d <= 2.0 for d in draws)
    assert len(set(draws)) > 1  # it actually spreads


@pytest.mark.parametrize(
    ("elapsed", "delay", "fits"),
    [(0.0, 1.0, True), (59.0, 1.0, True), (59.5, 1.0, False), (0.0, 61.0, False)],
)
def test_fits_budget(elapsed: float, delay: float, fits: bool) -> None:
    assert fits_budget(elapsed, delay, POLICY) is fits


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_total_seconds": -1.0},
        {"base_delay_s": float("nan")},
        {"max_delay_s": float("inf")},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
