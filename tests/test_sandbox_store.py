"""The sandbox's SQLite store: arrival order, dedup on (pixel, type, id), closing."""

from __future__ import annotations

import pytest

from target_openai_capi.sandbox.store import EventStore, StoreClosed


def ev(event_id: str, event_type: str = "lead_created") -> dict[str, object]:
    return {
        "id": event_id,
        "type": event_type,
        "timestamp_ms": 1,
        "data": {"type": "customer_action"},
    }


def test_dedup_on_pixel_type_and_id_and_arrival_order() -> None:
    store = EventStore()
    assert store.add("px", [ev("b"), ev("a")]) == (2, 0)
    assert store.add("px", [ev("a"), ev("a", "app_opened"), ev("c"), ev("c")]) == (2, 2)
    assert store.add("py", [ev("a")]) == (1, 0)
    assert [(e["id"], e["type"]) for e in store.events("px")] == [
        ("b", "lead_created"),
        ("a", "lead_created"),
        ("a", "app_opened"),
        ("c", "lead_created"),
    ]
    assert len(store.events()) == 5
    store.clear()
    assert store.events() == []


def test_bodies_come_back_unchanged() -> None:
    store = EventStore()
    body = {
        **ev("x"),
        "user": {"ip_address": "::1"},
        "data": {"type": "customer_action", "amount": 5, "currency": "EUR"},
    }
    store.add("px", [body])
    assert store.events("px") == [body]


def test_a_closed_store_says_so() -> None:
    store = EventStore()
    store.close()
    store.close()
    with pytest.raises(StoreClosed):
        store.events()
