"""The pipeline's parts (events, batching, settling) driven directly, with a fake uploader.

The uploader is the only fake: it holds submitted batches "in flight" until drained and then
answers as the test says (accept all, or refuse named events), so these tests can ask what
the CLI tests cannot pin down cheaply: exactly when STATE goes out, which record a refusal
dead-letters, and how each outcome is counted.
"""

from __future__ import annotations

import json
import logging
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
from support import now_ms

from target_openai_capi.delivery import Batch, BatchResult
from target_openai_capi.mapping.stream_mapping import compile_stream_mapping
from target_openai_capi.pipeline import events as events_module
from target_openai_capi.pipeline.accounting import (
    DUPLICATE,
    FILTERED,
    REJECTED,
    SENT,
    STAGE_API,
    STAGE_MAPPING,
    STAGE_SCHEMA,
    STAGE_WINDOW,
    UNSETTLED,
)
from target_openai_capi.pipeline.dead_letter import DeadLetterError
from target_openai_capi.pipeline.events import Built, EventBuilder, Rejection, StreamInfo
from target_openai_capi.pipeline.log_limit import LimitedLog
from target_openai_capi.pipeline.run import Pipeline
from target_openai_capi.pipeline.settings import PipelineSettings
from target_openai_capi.pipeline.settling import RunFailed
from target_openai_capi.reading.envelope import RecordEnvelope

ORDERS = StreamInfo("orders", ("id",), {"type": "object", "properties": {}})
MAPPING = {
    "event_type": "order_created",
    "filter": "status != 'test'",
    "fields": {"timestamp_ms": "ts", "email": "email"},
}


class FakeUploader:
    """Keeps submitted batches in flight until drain(); refuses the event ids in `refuse`."""

    def __init__(self) -> None:
        self.in_flight: list[Batch] = []
        self.sent: list[Batch] = []
        self.refuse: set[str] = set()
        self.closed = False

    def submit(self, batch: Batch) -> list[BatchResult]:
        self.in_flight.append(batch)
        return []

    @property
    def busy(self) -> bool:
        return bool(self.in_flight)

    def drain(self) -> list[BatchResult]:
        results = []
        for batch in self.in_flight:
            result = BatchResult(batch, requests=1)
            for index, event in enumerate(batch.events):
                if event["id"] in self.refuse:
                    result.rejected.append((index, 400, f"event {event['id']} refused"))
                else:
                    result.accepted.append(index)
            results.append(result)
            self.sent.append(batch)
        self.in_flight = []
        return results

    def finished(self) -> list[BatchResult]:
        """Every batch in flight has ended (as the quiet-input thread finds them)."""
        return self.drain()

    def stop(self) -> None:
        pass

    requests_sent = 0

    def keep_unclaimed(self, results: list[BatchResult]) -> None:
        raise AssertionError("the fake uploader never fails")

    def finish_after_failure(self, *, wait: bool = True) -> list[BatchResult]:
        return self.drain()

    def close(self) -> None:
        self.closed = True


def order(rid: str, **changes: Any) -> dict[str, Any]:
    return {"id": rid, "ts": now_ms() - 60_000, "email": f"{rid}@example.com", **changes}


def make_pipeline(
    tmp_path: Path, *, batch_size: int = 2, on_rejected: str = "dead_letter"
) -> tuple[Pipeline, FakeUploader, list[object]]:
    settings = PipelineSettings(
        batch_size=batch_size,
        dry_run=False,
        user_field_style="plural",
        default_phone_region=None,
        on_rejected=on_rejected,
        dead_letter_path=str(tmp_path / "dead.jsonl"),
    )
    uploader = FakeUploader()
    states: list[object] = []
    pipeline = Pipeline(
        settings,
        {"orders": compile_stream_mapping("orders", MAPPING)},
        uploader,  # type: ignore[arg-type]
        emit_state=states.append,
        logger=logging.getLogger("test-pipeline"),
    )
    pipeline.open_dead_letters(None)
    return pipeline, uploader, states


def dead_letters(tmp_path: Path) -> list[dict[str, Any]]:
    """The dead-letter file's RECORD lines (a Singer stream), as {stage, reason, record, ...}."""
    path = tmp_path / "dead.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [
        {**line["dead_letter"], "record": line["record"]}
        for line in lines
        if line["type"] == "RECORD"
    ]


def builder() -> EventBuilder:
    return EventBuilder(
        {"orders": compile_stream_mapping("orders", MAPPING)},
        user_field_style="plural",
        default_phone_region=None,
        log=LimitedLog(logging.getLogger("test-events"), dead_letters=False),
        now_ms=now_ms,
    )


# --- events.py --------------------------------------------------------------------------------


def test_a_good_record_is_built_into_an_event_with_its_dedup_name():
    built = builder().build(ORDERS, RecordEnvelope("orders", order("o1")))
    assert isinstance(built, Built)
    assert built.name == "order_created"
    assert built.event["id"] == "o1"
    assert built.event["type"] == "order_created"


def test_each_verdict_of_the_event_builder():
    events = builder()
    assert events.build(ORDERS, RecordEnvelope("orders", order("o1", status="test"))) == FILTERED
    missing_time = events.build(ORDERS, RecordEnvelope("orders", {"id": "o2"}))
    assert isinstance(missing_time, Rejection)
    assert missing_time.stage == STAGE_MAPPING
    stale = events.build(
        ORDERS, RecordEnvelope("orders", order("o3", ts=now_ms() - 8 * 86_400_000))
    )
    assert isinstance(stale, Rejection)
    assert (stale.stage, stale.event_id) == (STAGE_WINDOW, "o3")
    assert isinstance(events.build(ORDERS, RecordEnvelope("orders", order("o4"))), Built)
    assert events.build(ORDERS, RecordEnvelope("orders", order("o4"))) == DUPLICATE
    events.forget("order_created", "o4")  # refused by the API: a later copy is sent
    assert isinstance(events.build(ORDERS, RecordEnvelope("orders", order("o4"))), Built)


def test_a_later_copy_waits_for_a_first_copy_on_its_way_that_newer_keys_pushed_out(
    tmp_path, monkeypatch
):
    """The run remembers only so many keys; a first copy whose batch is still on its way (a
    long back-off) when newer keys pushed its key out was sent again beside it, and the API
    kept whichever came first (the later copy, when the first one's batch waited)."""
    monkeypatch.setattr(events_module, "FIRST_EVENT_KEYS", 2)
    monkeypatch.setattr(events_module, "RECENT_EVENT_KEYS", 3)
    pipeline, uploader, _ = make_pipeline(tmp_path, batch_size=1)
    for rid in ("f1", "f2"):  # (the first keys kept)
        pipeline.add(ORDERS, RecordEnvelope("orders", order(rid)))
    pipeline.add(ORDERS, RecordEnvelope("orders", order("x", email="first@example.com")))
    for rid in ("g1", "g2", "g3", "g4"):  # (the recent ones: x's key is pushed out)
        pipeline.add(ORDERS, RecordEnvelope("orders", order(rid)))
    pipeline.add(ORDERS, RecordEnvelope("orders", order("x", email="later@example.com")))
    pipeline.flush()
    copies = [e for b in uploader.sent for e in b.events if e["id"] == "x"]
    assert len(copies) == 1
    assert copies[0]["user"]["emails_sha256"] == [sha256(b"first@example.com").hexdigest()]
    assert pipeline.account.total(DUPLICATE) == 1
    assert pipeline.account.total(SENT) == 7


# --- batching and checkpoints ------------------------------------------------------------------


def test_state_waits_for_every_record_before_it_to_be_settled(tmp_path):
    pipeline, uploader, states = make_pipeline(tmp_path, batch_size=2)
    for rid in ("o1", "o2", "o3"):
        pipeline.add(ORDERS, RecordEnvelope("orders", order(rid)))
    assert [len(b.events) for b in uploader.in_flight] == [2]  # o3 waits in an open batch
    pipeline.state_received({"at": 3})
    assert states == []  # two in flight, one open
    pipeline.flush()
    assert states == [{"at": 3}]
    assert [e["id"] for b in uploader.sent for e in b.events] == ["o1", "o2", "o3"]
    assert pipeline.account.total(SENT) == 3


def test_a_record_settled_at_once_does_not_hold_state_back(tmp_path):
    pipeline, _, states = make_pipeline(tmp_path)
    pipeline.add(ORDERS, RecordEnvelope("orders", order("o1", status="test")))
    pipeline.state_received({"at": 1})
    assert states == [{"at": 1}]
    assert pipeline.account.total(FILTERED) == 1


# --- settling.py --------------------------------------------------------------------------------


def test_an_event_the_api_refuses_dead_letters_its_whole_record(tmp_path):
    pipeline, uploader, states = make_pipeline(tmp_path, batch_size=10)
    uploader.refuse = {"o2"}
    source = json.dumps(order("o2", note="not read")).encode()
    partial = {"id": "o2", "ts": json.loads(source)["ts"], "email": "o2@example.com"}
    pipeline.add(ORDERS, RecordEnvelope("orders", order("o1")))
    pipeline.add(ORDERS, RecordEnvelope("orders", partial, source=source))  # type: ignore[arg-type]
    pipeline.state_received({"at": 2})
    pipeline.flush()
    (dead,) = dead_letters(tmp_path)
    assert dead["stage"] == STAGE_API
    assert dead["record"]["note"] == "not read"  # the whole record, from its source
    assert "event o2 refused" in dead["reason"]
    assert pipeline.account.total(SENT) == 1
    assert pipeline.account.total(REJECTED) == 1
    assert states == [{"at": 2}]  # a rejection is settled too
    # Not sent, so not a duplicate: the same record later is sent.
    uploader.refuse = set()
    pipeline.add(ORDERS, RecordEnvelope("orders", order("o2")))
    pipeline.flush()
    assert pipeline.account.total(SENT) == 2


def test_the_sinks_verdict_rejects_the_record_without_mapping_it(tmp_path):
    pipeline, uploader, _ = make_pipeline(tmp_path)
    pipeline.add(
        ORDERS,
        RecordEnvelope("orders", order("o1")),
        Rejection(STAGE_SCHEMA, "record does not match its schema: record.ts must be integer"),
    )
    pipeline.flush()
    assert uploader.sent == []
    (dead,) = dead_letters(tmp_path)
    assert (dead["stage"], dead["record"]["id"]) == (STAGE_SCHEMA, "o1")
    assert pipeline.account.outcomes["orders"][REJECTED] == 1


def test_on_rejected_fail_stops_at_the_first_rejection(tmp_path):
    pipeline, _, _ = make_pipeline(tmp_path, on_rejected="fail")
    with pytest.raises(RunFailed, match="rejected at stage mapping"):
        pipeline.add(ORDERS, RecordEnvelope("orders", {"id": "o1"}))


def test_every_record_is_counted_once(tmp_path):
    pipeline, uploader, _ = make_pipeline(tmp_path, batch_size=3)
    uploader.refuse = {"o5"}
    records = [
        order("o1"),
        order("o1"),  # duplicate
        order("o2", status="test"),  # filtered
        {"id": "o3"},  # no time: mapping
        order("o4"),
        order("o5"),  # refused by the API
    ]
    for rec in records:
        pipeline.add(ORDERS, RecordEnvelope("orders", rec))
    pipeline.skip_unmapped("refunds")
    pipeline.reject_line(9, "not json", "input", "line is not valid JSON")
    pipeline.flush()
    account = pipeline.account
    assert account.received("orders") == len(records)
    assert account.total(SENT) == 2
    assert account.total(DUPLICATE) == 1
    assert account.total(FILTERED) == 1
    assert account.total(REJECTED) == 3  # mapping, api, the input line
    assert pipeline.checkpoints.numbered == len(records) + 2
    assert pipeline.count_unsettled() == 0  # (the held copy of o1 was settled as a duplicate)


def test_a_copy_batched_again_holds_state_back_until_its_dead_letter_is_written(
    tmp_path, monkeypatch
):
    """A copy of an event held behind its first copy is batched again when the API refuses that
    one, into the open batch of later records. STATE was held back there from that batch's
    first record on, and the copy's own hold was let go before its dead letter was written:
    when the write failed (a full disk), the run stopped with a STATE past a record neither
    sent nor in the file, which no rerun sends again."""
    pipeline, uploader, states = make_pipeline(tmp_path, batch_size=5)
    uploader.refuse = {"o0"}
    for n in range(5):
        pipeline.add(ORDERS, RecordEnvelope("orders", order(f"o{n}")))  # in flight
    pipeline.add(ORDERS, RecordEnvelope("orders", order("o0", note="again")))  # record 5: held
    pipeline.state_received({"at": 6})
    for n in range(6, 10):
        pipeline.add(ORDERS, RecordEnvelope("orders", order(f"o{n}")))  # an open batch
    pipeline.deliver_when_quiet()  # o0 refused: its copy joins the open batch
    assert [dead["record"].get("note") for dead in dead_letters(tmp_path)] == [None]
    assert states == []

    def full_disk(**_: object) -> None:
        raise DeadLetterError(tmp_path / "dead.jsonl", OSError(28, "No space left on device"))

    monkeypatch.setattr(pipeline.settler.dead_letters, "record", full_disk)
    with pytest.raises(DeadLetterError):
        pipeline.flush()  # the copy is refused too, and its dead letter cannot be written
    pipeline.settle_after_failure()  # (as the target does when it stops)
    assert states == []  # record 5 is neither sent nor in the file: no STATE past it
    assert [e["id"] for e in uploader.sent[1].events] == ["o6", "o7", "o8", "o9", "o0"]
    assert pipeline.count_unsettled() == 1  # (as the target counts them when it stops)
    account = pipeline.account
    assert (account.total(UNSETTLED), account.total(SENT), account.total(REJECTED)) == (1, 8, 1)
    assert account.received() == 10


def test_records_not_settled_when_a_run_stops_are_counted_as_unsettled(tmp_path):
    """What the target counts on a fatal stop: events in flight, in an open batch, and a copy
    held behind one in flight, each once; records settled already are not counted again."""
    pipeline, uploader, _ = make_pipeline(tmp_path, batch_size=2)
    for rec in [order("o1"), order("o1"), order("o2"), order("o3", status="test"), order("o4")]:
        pipeline.add(ORDERS, RecordEnvelope("orders", rec))
    assert [len(batch.events) for batch in uploader.in_flight] == [2]  # o1, o2; o4 still open
    assert pipeline.count_unsettled() == 4  # o1, its held copy, o2, o4
    account = pipeline.account
    assert (account.total(UNSETTLED), account.total(FILTERED), account.received()) == (4, 1, 5)
    assert "orders: received=5 filtered=1 unsettled=4" in account.summary_line()
    assert pipeline.count_unsettled() == 0  # (counted once)


@pytest.mark.parametrize(
    ("event", "kinds"),
    [
        ({"user": {"emails_sha256": ["a" * 64]}}, {"email"}),
        ({"user": {"emails_sha256": ["a" * 64]}, "oppref": "x"}, {"email", "oppref"}),
        ({"user": {"emails_sha256": ["a" * 64]}, "oppref": ""}, {"email"}),
        ({"user": {"emails_sha256": []}, "oppref": "x"}, {"oppref"}),
        ({"user": {"ip_address": "203.0.113.7"}}, set()),
        ({"user": {"ip_address": "203.0.113.7", "user_agent": "UA"}}, {"ip_address+user_agent"}),
        ({"user": {"ip_address": "203.0.113.7", "user_agent": ""}}, set()),
        ({"user": {"first_names_sha256": ["a" * 64], "cities": ["Paris"]}}, {"name", "geography"}),
        ({"user": {"email_sha256": "a" * 64, "country": "US"}}, {"email", "geography"}),
        ({"user": {"unknown_field": "x", "obref": "o"}}, {"obref"}),
        ({"user": None, "oppref": "x"}, {"oppref"}),
        ({"user": "not an object"}, set()),
        ({}, set()),
    ],
)
def test_identifier_kinds_of_an_event(event: dict[str, Any], kinds: set[str]) -> None:
    from target_openai_capi.pipeline.coverage import identifiers

    for _ in range(2):  # the second time from the cache of field combinations
        assert identifiers(event) == kinds


def test_after_a_stop_batches_accepted_whole_are_sent_and_the_rest_unsettled(tmp_path):
    """on_rejected: fail stops the run at a refused event of the first of three batches whose
    answers came together: the second (accepted whole) still counts as sent, the third (one
    event refused) stays unsettled, nothing more is dead-lettered, and STATE stays before the
    first batch."""
    pipeline, uploader, states = make_pipeline(tmp_path, batch_size=2, on_rejected="fail")
    uploader.refuse = {"o1", "o6"}
    for n in range(1, 7):
        pipeline.add(ORDERS, RecordEnvelope("orders", order(f"o{n}")))
        if n % 2 == 0:
            pipeline.state_received({"at": n})
    with pytest.raises(RunFailed, match="rejected at stage api"):
        pipeline.flush()
    pipeline.settle_after_failure()
    assert pipeline.count_unsettled() == 2  # o5 and o6 (o2 was counted sent before the stop)
    account = pipeline.account
    assert (account.total(SENT), account.total(REJECTED)) == (3, 1)  # o2; o3, o4; o1
    assert [line["record"]["id"] for line in dead_letters(tmp_path)] == ["o1"]
    assert states == []
