"""The reader decodes a mapped stream's records only where the mapping reads them, exactly."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from target_openai_capi.mapping.reads import read_paths
from target_openai_capi.reading.decoding import record_decoding
from target_openai_capi.reading.envelope import RecordEnvelope
from target_openai_capi.reading.line_chunks import split_lines
from target_openai_capi.reading.reader import BadLine, TolerantReader

WHOLE = msgspec.json.Decoder(float_hook=Decimal)


def pruned(value: Any, tree: Any) -> Any:
    """What a whole decode holds at the read paths: the reference the partial decode must equal."""
    if tree is True:
        return value
    if isinstance(value, dict):
        return {k: pruned(value[k], tree[k]) for k in tree if k != "[]" and k in value}
    if isinstance(value, list) and "[]" in tree:
        return [pruned(item, tree["[]"]) for item in value]
    return value


TREE = read_paths(
    [
        "id",
        "customer.email",
        "totalPriceSet.shopMoney.amount",
        "lineItems[].{sku: sku, price: price.amount}",
        "attrs[?key == 'oppref'].value | [0]",
    ]
)

RECORDS = [
    {"id": "1", "unread": {"deep": [1, 2, {"x": "y"}]}, "customer": {"email": "a@b.c", "x": 1}},
    {"id": 2, "customer": None, "totalPriceSet": {"shopMoney": {"amount": 10.10, "cc": "EUR"}}},
    {"id": "3", "lineItems": [{"sku": "A", "price": {"amount": 1.005, "cur": "X"}, "other": 7}]},
    # Flatten splices nested lists: items of items are read too.
    {"id": "4", "lineItems": [[{"sku": "B", "junk": 1}], {"sku": "C"}, None]},
    {"id": "5", "attrs": [{"key": "oppref", "value": "abc", "extra": True}], "lineItems": []},
    {"id": "6", "customer": {"email": None}, "attrs": None},
    {},
]


@pytest.mark.parametrize(
    ("chunk", "lines"),
    [
        (b"", []),
        (b"\n", [b""]),
        (b"a\n", [b"a"]),
        (b"a\nb\n", [b"a", b"b"]),
        (b"a\n\nb\n", [b"a", b"", b"b"]),
        (b"a\r\nb\x0b\x0c\x1c\xe2\x80\xa8c\n", [b"a\r", b"b\x0b\x0c\x1c\xe2\x80\xa8c"]),
        (b"a\nno newline yet", [b"a"]),  # (what follows the last newline is no line)
    ],
)
def test_a_chunk_is_cut_into_lines_at_each_newline_only(chunk: bytes, lines: list[bytes]) -> None:
    """As iterating a binary file cuts lines (on b"\\n" alone), without the newlines."""
    assert split_lines(chunk) == lines


@pytest.mark.parametrize("record", RECORDS)
def test_the_partial_decode_equals_the_whole_decode_at_every_read_path(record):
    line = json.dumps(record).encode()
    decoded = record_decoding(TREE).decoder.decode(line)
    assert decoded == pruned(WHOLE.decode(line), TREE)
    assert "unread" not in decoded


def test_numbers_at_read_paths_stay_exact():
    line = b'{"totalPriceSet": {"shopMoney": {"amount": 10.10}}, "id": 12345678901234567890}'
    decoded = record_decoding(TREE).decoder.decode(line)
    assert decoded["totalPriceSet"]["shopMoney"]["amount"] == Decimal("10.10")
    assert str(decoded["totalPriceSet"]["shopMoney"]["amount"]) == "10.10"
    assert decoded["id"] == 12345678901234567890


@pytest.mark.parametrize(
    "record",
    [
        {"customer": "a@b.c"},  # a string where the mapping reads a field of an object
        {"lineItems": {"sku": 1}, "customer": 5},
        {"totalPriceSet": [1, 2]},
    ],
)
def test_a_record_shaped_differently_along_a_read_path_is_refused(record):
    with pytest.raises(msgspec.ValidationError):
        record_decoding(TREE).decoder.decode(json.dumps(record).encode())


GOOD_ORDER = b'{"type": "RECORD", "stream": "orders", "record": {"id": "o0", "x": 1}}'


def read(
    lines: list[bytes], decoders: dict[str, Any], *, keep_sources: bool = True
) -> tuple[list[Any], list[tuple]]:
    """Run the reader over lines; return the messages it dispatched (RECORDs as envelopes) and
    the lines it rejected."""
    reader = TolerantReader()
    reader.keep_sources = keep_sources
    for stream, decoding in decoders.items():
        reader.set_record_decoding(stream, decoding)
    bad: list[tuple] = []
    reader.on_bad_line = lambda number, text, stage, reason: bad.append((number, stage, reason))
    seen: list[Any] = []
    callbacks = {kind: seen.append for kind in ("RECORD", "SCHEMA", "STATE", "ACTIVATE_VERSION")}
    reader.process_lines(io.BytesIO(b"\n".join(lines) + b"\n"), callbacks)
    return seen, bad


def test_records_of_a_stream_with_a_decoder_are_decoded_in_part_and_keep_their_source():
    decoders = {"orders": record_decoding({"id": True, "email": True})}
    record = b'{"id": "o1", "email": "x@y.z", "big": [1, 2, 3], "amount": 1.50}'
    line = b'{"type": "RECORD", "stream": "orders", "record": ' + record + b', "version": 3}'
    (message,), bad = read([line], decoders)
    assert bad == []
    assert (message.stream, message.record) == ("orders", {"id": "o1", "email": "x@y.z"})
    assert bytes(message.source) == record
    assert message.whole()["amount"] == Decimal("1.50")
    assert message.json() == record


def test_other_streams_and_messages_are_decoded_whole():
    decoders = {"orders": record_decoding({"id": True})}
    lines = [
        b'{"type": "SCHEMA", "stream": "orders", "schema": {"properties": {}}}',
        b'{"type": "RECORD", "stream": "refunds", "record": {"id": 1, "x": 2}}',
        b'{"type": "STATE", "value": {"bookmarks": {"orders": 1}}}',
    ]
    messages, bad = read(lines, decoders)
    assert bad == []
    assert messages[1].record == {"id": 1, "x": 2}
    assert not messages[1].partial
    # A STATE's value is kept as the tap's JSON text, to be written back out exactly.
    assert bytes(messages[2]["value"]) == b'{"bookmarks": {"orders": 1}}'


def test_a_record_not_shaped_as_read_is_decoded_whole_for_the_schema_check_to_explain():
    decoders = {"orders": record_decoding({"customer": {"email": True}})}
    line = b'{"type": "RECORD", "stream": "orders", "record": {"customer": "x", "other": 1}}'
    (message,), bad = read([line], decoders)
    assert bad == []
    assert message.record == {"customer": "x", "other": 1}
    assert not message.partial


@pytest.mark.parametrize(
    ("line", "words"),
    [
        # Invalid UTF-8 in a property the mapping never reads is still a bad line.
        (b'{"type": "RECORD", "stream": "orders", "record": {"id": 1, "x": "\xff"}}', "UTF-8"),
        (b'{"type": "RECORD", "stream": "orders", "record": [1, 2]}', "not a JSON object"),
        (
            b'{"type": "RECORD", "stream": "orders", "record": {"id": 1, "x": tru}}',
            "not valid JSON",
        ),
        (b'{"type": "RECORD", "stream": "orders", "record": {"id": 1}} trailing', "not valid JSON"),
        (b'["RECORD"]', "not a Singer message"),
        (b'{"type": 7, "stream": "orders", "record": {}}', "not a Singer message"),
    ],
)
@pytest.mark.parametrize("keep_sources", [True, False])
def test_bad_lines_are_rejected_as_when_decoded_whole(line, words, keep_sources):
    for decoders in ({}, {"orders": record_decoding({"id": True})}):
        # After a good record the reader decodes the next line as that stream's, in one pass.
        messages, bad = read([GOOD_ORDER, line], decoders, keep_sources=keep_sources)
        assert [m.record["id"] for m in messages] == ["o0"]
        ((number, stage, reason),) = bad
        assert (number, stage) == (2, "input")
        assert words in reason


def test_without_sources_interleaved_streams_are_each_decoded_with_their_own_reads():
    decoders = {
        "orders": record_decoding({"id": True}),
        "refunds": record_decoding({"amount": True}),
    }
    lines = [
        b'{"type": "RECORD", "stream": "orders", "record": {"id": "o1", "amount": 5}}',
        b'{"type": "RECORD", "stream": "orders", "record": {"id": "o2", "amount": 6}}',
        b'{"type": "RECORD", "stream": "refunds", "record": {"id": "r1", "amount": 1.5}}',
        b'{"type": "STATE", "value": {"at": 1}}',
        b'{"type": "RECORD", "stream": "orders", "record": {"id": "o3"}, "version": 2}',
        b'{"type": "RECORD", "stream": "other", "record": {"id": "x", "amount": 7}}',
        b'{"type": "RECORD", "stream": "orders", "record": {"id": {"odd": 1}}}',
        b'{"type": "RECORD", "stream": "other", "record": {"id": "y"}}',
        b'{"type": "RECORD", "stream": "orders", "record": {"id": "o4", "amount": 8}}',
        b'{"type": "RECORD", "stream": "orders", "record": "not an object"}',
    ]
    messages, bad = read(lines, decoders, keep_sources=False)
    assert [m.record if isinstance(m, RecordEnvelope) else None for m in messages] == [
        {"id": "o1"},
        {"id": "o2"},
        {"amount": Decimal("1.5")},
        None,
        {"id": "o3"},
        {"id": "x", "amount": 7},
        {"id": {"odd": 1}},
        {"id": "y"},
        {"id": "o4"},
    ]
    # Each record decoded in part can be had whole: from its JSON, or from its line (one pass).
    for message, line in zip(messages, lines, strict=False):
        if not isinstance(message, RecordEnvelope) or message.stream == "other":
            continue
        assert message.whole() == WHOLE.decode(line)["record"]
        assert WHOLE.decode(message.json()) == WHOLE.decode(line)["record"]
    # One pass for a record that follows one of its own stream (o2); after a record of a stream
    # decoded whole ("other"), the next line is decoded whole, with no envelope scan first, and
    # a record of a planned stream then decoded as its plan reads after all (in part, in one
    # pass: as a worker needs it), as the odd id and o4 are.
    lines_kept = [m.record for m in messages if isinstance(m, RecordEnvelope) and m.line]
    assert lines_kept == [{"id": "o2"}, {"id": {"odd": 1}}, {"id": "o4"}]
    assert [(number, reason) for number, _, reason in bad] == [
        (10, "RECORD message's 'record' is not a JSON object")
    ]


def test_a_new_decoding_for_a_stream_applies_to_its_next_record():
    reader = TolerantReader()
    reader.keep_sources = False
    reader.set_record_decoding("orders", record_decoding({"id": True}))
    line = b'{"type": "RECORD", "stream": "orders", "record": {"id": 1, "email": "e"}}'
    assert reader.deserialize_json(line).record == {"id": 1}  # type: ignore[union-attr]
    reader.set_record_decoding("orders", record_decoding({"email": True}))
    assert reader.deserialize_json(line).record == {"email": "e"}  # type: ignore[union-attr]
    reader.set_record_decoding("orders", None)
    assert reader.deserialize_json(line).record == {"id": 1, "email": "e"}  # type: ignore[union-attr]


def test_strict_mode_raises_for_a_bad_line():
    reader = TolerantReader()
    reader.strict = True
    reader.set_record_decoding("orders", record_decoding({"id": True}))
    with pytest.raises(BadLine):
        reader.deserialize_json(b'{"type": "RECORD", "stream": "orders", "record": [1]}')


class _Stopped(Exception):
    """What the test's signal handler raises, as the target's ends the run."""


@pytest.mark.parametrize("with_workers", [False, True], ids=["one process", "worker pool"])
def test_a_signal_caught_just_before_the_read_of_a_quiet_tap_is_handled_at_once(with_workers):
    """A signal that arrives after the interpreter last looked for one and before the main
    thread's read of the input (here: caught by another thread while the main one waits, the
    same state) must not wait for the tap's next line: the target's handler ends the run
    (delivers, writes STATE, exits). Seen as a SIGTERM'd run that never stopped."""
    import contextlib
    import logging
    import os
    import signal
    import threading
    import time

    from target_openai_capi.parallel.pool import WorkerPool

    assert threading.current_thread() is threading.main_thread()  # (where handlers run)
    read_end, write_end = os.pipe()  # the tap's pipe: open, and quiet
    handled: list[tuple[int, float]] = []
    started = time.monotonic()

    def handler(signum: int, frame: object) -> None:
        handled.append((signum, time.monotonic() - started))
        raise _Stopped

    main_stat = Path(f"/proc/self/task/{threading.main_thread().native_id}/stat")

    def main_thread_sleeps() -> bool:  # (its state follows its name, in parentheses)
        return main_stat.read_text().rsplit(")", 1)[1].split()[0] == "S"

    def signal_then_write() -> None:
        try:
            time.sleep(0.2)
            deadline = time.monotonic() + 5
            while main_stat.exists() and not main_thread_sleeps() and time.monotonic() < deadline:
                time.sleep(0.01)  # until the main thread waits for input
            signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # caught here, in C
            test_over.wait(5)
            with contextlib.suppress(BrokenPipeError):  # (the reader may be gone)
                os.write(write_end, b'{"type": "STATE", "value": {}}\n')  # the tap's next line
        finally:
            os.close(write_end)  # the tap ends: a reader still waiting (the bug) returns

    reader = TolerantReader()
    if with_workers:  # (no plan is set, so none is started: the reader's own read is tested)
        reader.pool = WorkerPool(1, logging.getLogger("test-reader"))
        reader.on_prepared = lambda *_: None
    seen: list[Any] = []
    callbacks = {kind: seen.append for kind in ("RECORD", "SCHEMA", "STATE", "ACTIVATE_VERSION")}
    wakeup_before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup_before)
    previous = signal.signal(signal.SIGUSR1, handler)
    test_over = threading.Event()
    writer = threading.Thread(target=signal_then_write, daemon=True)
    try:
        with os.fdopen(read_end, "rb") as tap:
            writer.start()
            with pytest.raises(_Stopped):
                reader.process_lines(tap, callbacks)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        test_over.set()
        writer.join()
    assert signal.set_wakeup_fd(wakeup_before) == wakeup_before  # (the reader put it back)
    assert [signum for signum, _ in handled] == [signal.SIGUSR1]
    assert handled[0][1] < 4, "the handler waited for the tap's next line"
    assert seen == []
