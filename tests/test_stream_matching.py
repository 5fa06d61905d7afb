"""Which arriving stream is a configured entry misspelt (stream_matching.py): a pure function.

A match stops the run at the stream's first record (tests/test_target_warehouse.py), so it must
catch the usual slips and nothing else: a stream a user leaves unmapped on purpose must not stop
a run because some entry waits for another stream.
"""

from __future__ import annotations

import pytest

from target_openai_capi.stream_matching import misspelt_entry


@pytest.mark.parametrize(
    ("stream", "entries", "entry"),
    [
        ("subscriptions", ["subscription"], "subscription"),  # a plural s
        ("order", ["orders"], "orders"),
        ("Orders", ["orders"], "orders"),  # case
        ("line-items", ["line_items"], "line_items"),  # separators
        ("public-conversions", ["conversions"], "conversions"),  # tap-postgres's schema prefix
        ("analytics.events", ["events"], "events"),
        ("abandoned_checkouts", ["abandonned_checkouts"], "abandonned_checkouts"),  # a typo
        ("charges", ["customers", "charge"], "charge"),
    ],
)
def test_a_slip_of_the_name_is_found(stream: str, entries: list[str], entry: str) -> None:
    assert misspelt_entry(stream, entries) == entry


@pytest.mark.parametrize(
    ("stream", "entries"),
    [
        ("customers", ["orders"]),
        ("subscriptions", ["subscription_items"]),  # another stream of the same tap
        ("order_refunds", ["refunds"]),
        ("events", ["public-events"]),  # the entry is the longer name: not a prefix slip
        ("orders", []),
    ],
)
def test_another_stream_is_not_an_entry_misspelt(stream: str, entries: list[str]) -> None:
    assert misspelt_entry(stream, entries) is None
