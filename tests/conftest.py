"""Shared fixtures: a fresh Conversions API sandbox on a free loopback port for each test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from target_openai_capi.sandbox import Sandbox, start_sandbox

# The example event from OpenAI's Conversions API documentation (newest version), verbatim.
DOCS_TIMESTAMP = 1773892800000
DOCS_USER: dict[str, Any] = {
    "obref": "123e4567-e89b-42d3-a456-426614174000",
    "emails_sha256": ["b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"],
    "countries": ["US"],
    "cities": ["San Francisco"],
    "postal_codes": ["94107"],
    "ip_address": "203.0.113.1",
    "user_agent": "Mozilla/5.0",
}
# The user object of the earlier official version (mid-2026), verbatim.
DOCS_SINGULAR_USER: dict[str, Any] = {
    "email_sha256": "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514",
    "external_id_sha256": "73d83a078369bb4f0971b317aa7797a91cf5c0df1b62161c2e47d75c33ab5b6e",
    "country": "US",
    "city": "San Francisco",
    "zip_code": "94107",
    "ip_address": "203.0.113.1",
    "user_agent": "Mozilla/5.0",
}
DOCS_EXAMPLE: dict[str, Any] = {
    "id": "order_12345",
    "type": "order_created",
    "timestamp_ms": DOCS_TIMESTAMP,
    "oppref": "oppref_abc",
    "source_url": "https://shop.example.com/checkout/confirmation",
    "action_source": "web",
    "user": DOCS_USER,
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
