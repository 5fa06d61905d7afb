"""Shared fixtures: a fresh Conversions API sandbox on a free loopback port for each test."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from target_openai_capi.sandbox import Sandbox, start_sandbox

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
