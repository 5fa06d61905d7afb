"""Cost of each step of the target's hot path, per record, measured in-process without a profiler.

    python benchmarks/stages.py [--records 20000]

Each step runs over every record of a generated stream with the target's own functions and
settings (the tap-shopify/orders preset), timed with perf_counter around the whole loop; the
garbage collector is off while timing so the steps are not charged for each other's garbage
(run.py's `nogc` variant measures what the collector costs in a real run). cProfile adds
~1 µs per Python call, which distorts a path made of many small calls; this does not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import functools
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import generate  # noqa: E402

from target_openai_capi.contract import (  # noqa: E402
    built_event_problem,
    event_problem,
    window_problem,
)
from target_openai_capi.delivery.client import prepare_body  # noqa: E402
from target_openai_capi.mapping import user_values  # noqa: E402
from target_openai_capi.mapping.assembler import compile_assembler  # noqa: E402
from target_openai_capi.mapping.event import build_event, passes_filter  # noqa: E402
from target_openai_capi.mapping.stream_mapping import compile_stream_mapping  # noqa: E402
from target_openai_capi.reading.decoding import record_decoding  # noqa: E402
from target_openai_capi.reading.lines import _ENVELOPE_DECODER as _envelope_decoder  # noqa: E402
from target_openai_capi.reading.lines import WHOLE_LINE_DECODER as _decoder  # noqa: E402
from target_openai_capi.reading.schema_paths import prune_schema  # noqa: E402
from target_openai_capi.sink import FastRecordValidator  # noqa: E402


def clear_user_value_caches() -> None:
    """Empty the caches of normalised user values (and of national phone numbers)."""
    user_values._normalise_text.cache_clear()
    user_values._national_number_digits.cache_clear()


def each(step: Callable[[Any], Any], items: list[Any]) -> None:
    """Apply step to every item, keeping no result."""
    for item in items:
        step(item)


def timed(name: str, count: int, step: Callable[[], Any], results: dict[str, float]) -> Any:
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        value = step()
        took = time.perf_counter() - started
    finally:
        gc.enable()
    results[name] = took / count * 1e6
    print(f"  {name:<58} {results[name]:8.1f} µs/record")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shape", choices=["full", "sparse"], default="full")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    lines = list(generate.stream_lines(args.records, args.seed, shape=args.shape))
    schema_message = orjson.loads(lines[0])
    schema = schema_message["schema"]
    record_lines = [line for line in lines if line.startswith(b'{"type":"RECORD"')]
    n = len(record_lines)
    print(f"{n:,} records, {sum(map(len, record_lines)) / n / 1024:.1f} KiB each")
    results: dict[str, float] = {}
    mapping = compile_stream_mapping("orders", {"preset": "tap-shopify/orders"})
    reads = {**(mapping.reads or {}), "id": True}
    read_schema = prune_schema(schema, reads)
    decoding = record_decoding(reads, read_schema)
    assert decoding.checks_schema  # tap-shopify's schema says only types: checked while decoding

    def target_decode(line: bytes) -> bool:
        """The reader's one pass: the read paths only, their schema types checked."""
        assert decoding.message_decoder is not None
        return decoding.leaves_ok(decoding.message_decoder.decode(line).record)

    def target_decode_with_source(line: bytes) -> bool:
        """With a dead-letter file: the record's JSON is kept, so the line is read in two."""
        return decoding.leaves_ok(decoding.decoder.decode(_envelope_decoder.decode(line).record))

    # Each decoded line is dropped at once, as in the target, where a record's objects are
    # freed (and their memory reused) soon after; keeping 20,000 decoded records alive here
    # would add page faults and collector work that a real run does not have.
    decoders: list[tuple[str, Callable[[bytes], Any]]] = [
        ("the target's: read paths only, types checked", target_decode),
        ("the same, keeping the record's JSON (dead letters)", target_decode_with_source),
        ("msgspec, whole record, floats as Decimal", _decoder.decode),
        (
            "stdlib json, floats as Decimal (raw floor, SDK)",
            lambda line: json.loads(line, parse_float=decimal.Decimal),
        ),
        ("orjson, floats as float (for scale)", orjson.loads),
    ]
    for name, decode in decoders:
        timed(f"decode: {name}", n, functools.partial(each, decode, record_lines), results)
    records = [_decoder.decode(line)["record"] for line in record_lines]
    read_records = [
        decoding.decoder.decode(_envelope_decoder.decode(line).record) for line in record_lines
    ]

    full = FastRecordValidator(schema)
    timed(
        f"(validate record, fastjsonschema, whole schema: {len(schema['properties'])} props)",
        n,
        lambda: each(full.validate, records),
        results,
    )
    pruned = FastRecordValidator(read_schema)
    timed(
        "(validate record, the read paths: when the decoder cannot)",
        n,
        lambda: each(pruned.validate, read_records),
        results,
    )

    timed("filter (!test)", n, lambda: [passes_filter(mapping, r) for r in read_records], results)
    # Both builders start with empty caches of normalised user values, as a run does.
    clear_user_value_caches()
    timed(
        "(build_event: the mapping read at each record)",
        n,
        lambda: [build_event(mapping, r, ["id"], default_phone_region="US") for r in read_records],
        results,
    )
    clear_user_value_caches()
    assemble = compile_assembler(mapping, ["id"], "plural", "US")
    assert assemble is not None
    built = timed(
        "build: the stream's compiled builder (ids, time, money, ...)",
        n,
        lambda: [assemble(r, None) for r in read_records],
        results,
    )
    events = [event for event, _ in built]
    timed(
        "(event_problem: the CAPI schema, fastjsonschema)",
        n,
        lambda: [event_problem(e) for e in events],
        results,
    )
    timed(
        "(built_event_problem, its user values too)",
        n,
        lambda: [built_event_problem(e) for e in events],
        results,
    )
    timed(
        "built_event_problem (recognizer, then the schema)",
        n,
        lambda: [built_event_problem(e, normalised_user=True) for e in events],
        results,
    )
    now = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
    timed(
        "window_problem",
        n,
        lambda: [window_problem(e["timestamp_ms"], now) for e in events],
        results,
    )
    timed(
        "prepare_body (orjson, 1,000 a request)",
        n,
        lambda: [prepare_body(events[i : i + 1000], False) for i in range(0, n, 1000)],
        results,
    )
    steps = [
        "decode: the target's: read paths only, types checked",
        "filter (!test)",
        "build: the stream's compiled builder (ids, time, money, ...)",
        "built_event_problem (recognizer, then the schema)",
        "window_problem",
        "prepare_body (orjson, 1,000 a request)",
    ]
    total = sum(results[step] for step in steps)
    results["sum of the target's steps"] = total
    print(f"  {'sum of the target steps (no parenthesised rows)':<58} {total:8.1f} µs/record")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
