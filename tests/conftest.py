"""Shared fixtures: a fresh Conversions API sandbox on a free loopback port for each test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from target_openai_capi.sandbox import Sandbox, start_sandbox

# The example event from OpenAI's Conversions API documentation, verbatim.
DOCS_TIMESTAMP = 1773892800000
DOCS_EXAMPLE: dict[str, Any] = {
    "id": "order_12345",
    "type": "order_created",
    "timestamp_ms": DOCS_TIMESTAMP,
    "oppref": "oppref_abc",
    "source_url": "https://shop.example.com/checkout/confirmation",
    "action_source": "web",
    "data": {
        "type": "contents",
        "amount": 2599,
        "currency": "USD",
        "contents": [
            {"id": "sku_123", "name": "Starter bundle", "content_type": "product", "quantity": 1}
        ],
    },
}

PIXEL_ID = "px_test_123"
API_KEY = "sk-svcacct-test-0123456789abcdef"


def recent_ms(minutes_ago: float = 5) -> int:
    """Epoch milliseconds `minutes_ago` minutes before now (inside the API's 7-day window)."""
    return int(time.time() * 1000 - minutes_ago * 60_000)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A sandbox that accepts API_KEY for PIXEL_ID only; stopped after the test."""
    with start_sandbox(api_keys={API_KEY}, pixel_ids={PIXEL_ID}) as running:
        yield running


DAY_MS = 24 * 3600 * 1000


@pytest.fixture
def skewed_sandbox() -> Iterator[Sandbox]:
    """A sandbox whose clock runs 7 days minus 1 hour ahead: events older than an hour are
    stale there, yet pass the target's own window check. The API rejects them, not the target."""
    skew = 7 * DAY_MS - 3600 * 1000
    with start_sandbox(
        api_keys={API_KEY}, pixel_ids={PIXEL_ID}, now_ms=lambda: int(time.time() * 1000) + skew
    ) as running:
        yield running
