"""Fault injection: settings, seeded draws, and each fault as a client sees it over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from conftest import API_KEY, PIXEL_ID, recent_ms

from target_openai_capi.sandbox import FaultConfig, Sandbox
from target_openai_capi.sandbox.faults import Fault, FaultPlan


def event(event_id: str) -> dict[str, Any]:
    """A valid recent event."""
    return {
        "id": event_id,
        "type": "lead_created",
        "timestamp_ms": recent_ms(),
        "data": {"type": "customer_action"},
    }


def post(sandbox: Sandbox, event_id: str = "e1") -> requests.Response:
    """POST one event with a fresh connection."""
    return requests.post(
        sandbox.url,
        params={"pid": PIXEL_ID},
        json={"events": [event(event_id)]},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    )


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"rate_429": -0.1}, "rate_429 must be between 0 and 1, got -0.1"),
        ({"rate_500": 1.5}, "rate_500 must be between 0 and 1, got 1.5"),
        ({"rate_503": 0.7, "rate_drop": 0.4}, "the fault rates add up to more than 1"),
        ({"latency_ms": -1}, "latency_ms must be 0 or more, got -1"),
        ({"retry_after": -1}, "retry_after must be 0 or more seconds, got -1"),
    ],
)
def test_settings_that_mean_nothing_are_refused(settings: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError, match="^" + expected.replace("(", r"\(")):
        FaultConfig(**settings)


@pytest.mark.parametrize(
    ("settings", "fault"),
    [
        ({}, None),
        ({"rate_429": 1}, Fault.RATE_LIMITED),
        ({"rate_500": 1}, Fault.SERVER_ERROR),
        ({"rate_503": 1}, Fault.UNAVAILABLE),
        ({"rate_drop": 1}, Fault.DROP),
        ({"rate_drop_after": 1}, Fault.DROP_AFTER),
    ],
)
def test_a_rate_of_one_always_faults(settings: dict[str, Any], fault: Fault | None) -> None:
    plan = FaultPlan(FaultConfig(**settings))
    assert {plan.draw() for _ in range(50)} == {fault}


def test_a_seed_replays_the_same_faults() -> None:
    config = FaultConfig(rate_429=0.2, rate_500=0.2, rate_drop=0.2, seed=42)
    first = FaultPlan(config)
    draws = [first.draw() for _ in range(200)]
    assert len(set(draws)) == 4  # every kind occurs, so the comparison below means something
    again = FaultPlan(config)
    assert [again.draw() for _ in range(200)] == draws
    other = FaultPlan(FaultConfig(rate_429=0.2, rate_500=0.2, rate_drop=0.2, seed=43))
    assert [other.draw() for _ in range(200)] != draws


def test_429_carries_retry_after(sandbox: Sandbox) -> None:
    sandbox.set_faults(FaultConfig(rate_429=1))
    response = post(sandbox)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["type"] == "rate_limit_error"
    sandbox.set_faults(FaultConfig(rate_429=1, retry_after=0))
    assert post(sandbox).headers["Retry-After"] == "0"
    sandbox.set_faults(FaultConfig(rate_429=1, retry_after=None))
    assert "Retry-After" not in post(sandbox).headers
    assert sandbox.events() == []


def test_500_and_503(sandbox: Sandbox) -> None:
    sandbox.set_faults(FaultConfig(rate_500=1))
    assert post(sandbox).status_code == 500
    sandbox.set_faults(FaultConfig(rate_503=1, retry_after=3))
    unavailable = post(sandbox)
    assert unavailable.status_code == 503
    assert unavailable.headers["Retry-After"] == "3"
    assert sandbox.events() == []
    stats = sandbox.stats()
    assert stats["by_status"] == {"500": 1, "503": 1}
    assert stats["faults_injected"] == 2
    assert stats["faults_by_kind"] == {"500": 1, "503": 1}
    assert stats["rejected_batches"] == 0


def test_a_dropped_connection_raises_in_the_client_and_stores_nothing(sandbox: Sandbox) -> None:
    sandbox.set_faults(FaultConfig(rate_drop=1))
    with pytest.raises(requests.ConnectionError):
        post(sandbox)
    assert sandbox.events() == []
    stats = sandbox.stats()
    assert stats["requests"] == 1
    assert stats["by_status"] == {}
    assert stats["faults_by_kind"] == {"drop": 1}


def test_drop_after_stores_then_hangs_up_so_a_retry_is_a_duplicate(sandbox: Sandbox) -> None:
    sandbox.set_faults(FaultConfig(rate_drop_after=1))
    with pytest.raises(requests.ConnectionError):
        post(sandbox, "order-1")
    assert [e["id"] for e in sandbox.events(PIXEL_ID)] == ["order-1"]
    sandbox.set_faults(FaultConfig())
    retry = post(sandbox, "order-1")
    assert retry.status_code == 200
    assert retry.json()["duplicates"] == 1
    assert len(sandbox.events(PIXEL_ID)) == 1


def test_seeded_faults_replay_identically_over_http(sandbox: Sandbox) -> None:
    config = FaultConfig(rate_429=0.3, rate_503=0.3, retry_after=0, seed=7)

    def run() -> list[int]:
        sandbox.set_faults(config)  # restarts the generator from the seed
        return [post(sandbox, f"e{i}").status_code for i in range(20)]

    first = run()
    assert set(first) == {200, 429, 503}
    assert run() == first
