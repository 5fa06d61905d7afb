"""STATE is released only past settled records."""

from __future__ import annotations

from target_openai_capi.pipeline.checkpoint import Checkpoints


def test_state_waits_for_the_batch_holding_earlier_records():
    cp = Checkpoints()
    first = cp.next_seq()
    cp.hold("open:orders", first)
    cp.state_received({"s": 1})
    assert cp.releasable_state() is None  # record 0 is still in an open batch
    cp.release("open:orders")
    assert cp.releasable_state() == {"s": 1}
    assert cp.releasable_state() is None  # released once


def test_a_later_state_supersedes_an_earlier_one_and_waits_for_its_own_records():
    cp = Checkpoints()
    cp.hold("b1", cp.next_seq())
    cp.state_received({"s": 1})
    cp.hold("b2", cp.next_seq())
    cp.state_received({"s": 2})
    cp.release("b1")
    assert cp.releasable_state() is None  # {"s": 2} covers record 1, still in b2
    cp.release("b2")
    assert cp.releasable_state() == {"s": 2}


def test_records_after_a_state_do_not_hold_it_back():
    cp = Checkpoints()
    cp.next_seq()  # settled immediately (e.g. filtered)
    cp.state_received({"s": 1})
    cp.hold("b", cp.next_seq())  # arrives after the STATE
    assert cp.releasable_state() == {"s": 1}
    assert cp.low_water_mark() == 1


def test_in_flight_batches_out_of_order():
    cp = Checkpoints()
    cp.hold("b1", cp.next_seq())
    cp.hold("b2", cp.next_seq())
    cp.state_received({"s": 2})
    cp.release("b2")  # the later batch finished first
    assert cp.releasable_state() is None
    assert cp.low_water_mark() == 0
    cp.release("b1")
    assert cp.releasable_state() == {"s": 2}
