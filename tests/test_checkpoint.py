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


def test_an_earlier_state_goes_out_once_its_records_are_settled_though_a_later_one_came():
    """With batches always in flight the latest STATE is seldom releasable: an earlier one goes
    out as soon as its own records are settled (keeping only the latest left long runs
    without any STATE)."""
    cp = Checkpoints()
    cp.hold("b1", cp.next_seq())
    cp.state_received({"s": 1})
    cp.hold("b2", cp.next_seq())
    cp.state_received({"s": 2})
    cp.release("b1")
    assert cp.releasable_state() == {"s": 1}  # {"s": 2} covers record 1, still in b2
    assert cp.releasable_state() is None
    cp.release("b2")
    assert cp.releasable_state() == {"s": 2}


def test_of_the_states_releasable_only_the_latest_goes_out():
    cp = Checkpoints()
    cp.hold("b1", cp.next_seq())
    for s in range(1, 4):
        cp.next_seq()  # (a settled record between STATEs)
        cp.state_received({"s": s})
    cp.state_received({"s": 4})  # no record since {"s": 3}: it replaces it
    cp.hold("b2", cp.next_seq())
    cp.state_received({"s": 5})
    cp.release("b1")
    assert cp.releasable_state() == {"s": 4}
    cp.release("b2")
    assert cp.releasable_state() == {"s": 5}
    assert cp.releasable_state() is None


def test_states_kept_waiting_are_bounded_never_released_early_and_the_latest_kept():
    from target_openai_capi.pipeline import checkpoint

    cp = Checkpoints()
    many = 3 * checkpoint.MAX_PENDING_STATES
    cp.hold("stuck", cp.next_seq())  # a batch retried for a long time
    for s in range(many):
        cp.hold(("r", s), cp.next_seq())
        cp.state_received({"s": s})  # covers the records up to ("r", s)
    assert len(cp._pending) <= checkpoint.MAX_PENDING_STATES
    half = many // 2
    for s in range(half):
        cp.release(("r", s))
    assert cp.releasable_state() is None  # the stuck batch holds every STATE back
    cp.release("stuck")
    released = cp.releasable_state()
    assert isinstance(released, dict)
    assert released["s"] < half  # never past a record not settled (thinned out: maybe earlier)
    for s in range(half, many):
        cp.release(("r", s))
    assert cp.releasable_state() == {"s": many - 1}


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


def test_states_kept_waiting_are_bounded_in_bytes_too():
    import msgspec

    from target_openai_capi.pipeline import checkpoint

    cp = Checkpoints()
    cp.hold("stuck", cp.next_seq())
    big = b'{"bookmark": "' + b"x" * (1024 * 1024) + b'"}'  # a STATE of 1 MiB
    for n in range(200):
        cp.next_seq()
        cp.state_received(msgspec.Raw(big.replace(b'"}', f'{n}"}}'.encode())))
    assert cp._pending_bytes <= checkpoint.MAX_PENDING_BYTES
    assert cp._pending_bytes == sum(len(entry[1]) for entry in cp._pending)
    cp.release("stuck")
    assert bytes(cp.releasable_state()).endswith(b'199"}')  # the latest is never dropped
    assert cp._pending_bytes == 0
