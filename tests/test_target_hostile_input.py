"""The real CLI on hostile and unusual input, as a production pipeline meets it.

Each case asserts what a user sees: the exit code, the message, what the sandbox stored, the
STATE written, and that no traceback, "This is a bug", key or PII reaches the output.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import simplejson
from conftest import API_KEY, PIXEL_ID
from support import TARGET_CMD, iso_minutes_ago, record, run_target, schema, state, target_config

from target_openai_capi.mapping.timestamps import to_epoch_ms
from target_openai_capi.sandbox import start_sandbox

NOW = iso_minutes_ago(3)
SCHEMA = schema("c", {"id": {"type": "string"}, "amount": {"type": ["number", "null"]}}, ["id"])


def rec(n: int, **extra: Any) -> str:
    return record("c", {"id": f"r{n}", "timestamp": NOW, "type": "lead_created", **extra})


def config(url: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return target_config(url, tmp_path, extra.pop("streams", {"c": {}}), **extra)


def stored(sandbox: Any) -> list[str]:
    return sorted(e["id"] for e in sandbox.events(PIXEL_ID))


def assert_clean(run: Any) -> None:
    assert "Traceback" not in run.output
    assert "This is a bug" not in run.output
    assert API_KEY not in run.output


DEEP = "[" * 1000 + "]" * 1000
HUGE = "1e99999999999999999999"


def _schema_line(properties: Any, key_properties: Any = None) -> str:
    return json.dumps(
        {
            "type": "SCHEMA",
            "stream": "c",
            "schema": {"type": "object", "properties": properties},
            "key_properties": ["id"] if key_properties is None else key_properties,
        }
    )


# Lines that break one record or message: each is rejected with a reason, the run goes on.
HOSTILE_LINES = {
    "a number too large for a mapped field": (
        '{"type": "RECORD", "stream": "c", "record": {"id": "r2", "timestamp": "'
        + NOW
        + '", "type": "lead_created", "amount": '
        + HUGE
        + ', "currency": "USD"}}',
        "number too large",
    ),
    "an integer of 5,000 digits in a mapped field": (
        '{"type": "RECORD", "stream": "c", "record": {"id": "r2", "timestamp": "'
        + NOW
        + '", "type": "lead_created", "amount": '
        + "9" * 5000
        + ', "currency": "USD"}}',
        "number too large",  # (it was 'not valid JSON (Integer value out of range ...)')
    ),
    "arrays nested 1,000 deep in a record": (
        '{"type": "RECORD", "stream": "c", "record": {"id": "r2", "x": ' + DEEP + "}}",
        "nested too deeply",
    ),
    "arrays nested 1,000 deep in a STATE": (
        '{"type": "STATE", "value": {"x": ' + DEEP + "}}",
        "nested too deeply",
    ),
    "a lone UTF-16 surrogate escape in a string": (
        '{"type": "RECORD", "stream": "c", "record": {"id": "r2\\ud800", "timestamp": "'
        + NOW
        + '", "type": "lead_created"}}',
        "a lone UTF-16 surrogate escape",
    ),
    "a lone low surrogate in a field nobody reads": (
        '{"type": "RECORD", "stream": "c", "record": {"id": "r2", "note": "x\\udc00", '
        '"timestamp": "' + NOW + '", "type": "lead_created"}}',
        "a lone UTF-16 surrogate escape",
    ),
    # Python's json.dumps writes them (the SDK's reader takes them): no JSON, said so.
    "NaN in a column nobody reads": (
        '{"type": "RECORD", "stream": "c", "record": {"id": "r2", "ratio": NaN, '
        '"timestamp": "' + NOW + '", "type": "lead_created"}}',
        "holds NaN or Infinity, which JSON does not allow",
    ),
    "-Infinity as an amount": (
        '{"type": "RECORD", "stream": "c", "record": {"id": "r2", "amount": -Infinity, '
        '"timestamp": "' + NOW + '", "type": "lead_created"}}',
        "holds NaN or Infinity, which JSON does not allow",
    ),
    "ACTIVATE_VERSION without a version": (
        '{"type": "ACTIVATE_VERSION", "stream": "c"}',
        "has no integer version",
    ),
    "ACTIVATE_VERSION for an unknown stream": (
        '{"type": "ACTIVATE_VERSION", "stream": "zz", "version": 1}',
        "which has no SCHEMA",
    ),
    "a BATCH before its stream's SCHEMA": (
        '{"type": "BATCH", "stream": "zz", "encoding": {"format": "jsonl"}, "manifest": []}',
        "came before its SCHEMA",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_LINES))
def test_a_hostile_line_is_a_recorded_rejection_and_the_run_goes_on(case, sandbox, tmp_path):
    line, reason = HOSTILE_LINES[case]
    lines = [SCHEMA, rec(1), line, rec(3), state({"bookmark": 3})]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert stored(sandbox) == ["r1", "r3"]
    assert run.stdout.splitlines()[-1] == '{"bookmark": 3}'
    dead = (tmp_path / "dead.jsonl").read_text()
    assert reason in dead
    assert "rejected=1" in run.stderr


@pytest.mark.parametrize(
    "dropped", ["no entry", "a stream map drops it", "maps of another", "its own map keeps it"]
)
def test_a_schema_no_validator_can_use_of_a_stream_never_sent_is_no_rejection(
    dropped, sandbox, tmp_path
):
    """A tap's other table, which no entry maps, with a pattern Python cannot compile (\\p{L}:
    JSON Schema's regexes are ECMA-262's): its SCHEMA was refused, its rows went to the
    dead-letter file as input rejections, and on_rejected: fail stopped the run at it. (No
    pattern refuses a SCHEMA now, of any stream: test_a_pattern_python_cannot_compile_...)"""
    other = json.dumps(
        {
            "type": "SCHEMA",
            "stream": "customers",
            "schema": {"properties": {"id": {}, "name": {"type": "string", "pattern": "\\p{L}"}}},
            "key_properties": ["id"],
        }
    )
    customer = record("customers", {"id": "c1", "name": "Jane Doe"})
    extra: dict[str, Any] = {"on_rejected": "fail", "allow_unmatched_streams": True}
    if dropped == "a stream map drops it":
        extra = {"on_rejected": "fail", "stream_maps": {"customers": None}}
    elif dropped == "maps of another":  # (a map of another stream: this one still has none)
        extra["stream_maps"] = {"c": {"extra": "'x'"}}
    elif dropped == "its own map keeps it":  # (a map that neither renames nor copies it)
        extra["stream_maps"] = {"customers": {"extra": "'x'"}}
    cfg = config(sandbox.url, tmp_path, **extra)
    run = run_target(cfg, [SCHEMA, other, customer, rec(1), customer, state({"s": 1})], tmp_path)
    assert run.returncode == 0, run.output
    assert run.states == [{"s": 1}]
    assert stored(sandbox) == ["r1"]
    outcome = "filtered=2" if dropped == "a stream map drops it" else "skipped_stream=2"
    assert f"customers: received=2 {outcome}" in run.stderr
    dead = tmp_path / "dead.jsonl"
    assert not dead.exists() or "Jane" not in dead.read_text()  # (no rejection: no file)
    assert "Rejected" not in run.stderr


# SCHEMAs that a validator could not use: the SCHEMA is refused, its records say why.
HOSTILE_SCHEMAS = {
    "properties not an object": (_schema_line([1]), "properties is not a JSON object"),
    "key_properties not strings": (_schema_line({"id": {}}, [1]), "key_properties is not a list"),
    "a dangling $ref": (_schema_line({"id": {"$ref": "#/$defs/nope"}}), "points to nothing"),
    "a remote $ref": (
        _schema_line({"id": {"$ref": "http://127.0.0.1:9/evil.json"}}),
        "remote references are never fetched",
    ),
    "a number too large in the schema": (
        _schema_line({"id": {"type": "string", "maxLength": HUGE}}).replace(f'"{HUGE}"', HUGE),
        "number too large",
    ),
    "a property that is not a schema": (_schema_line({"id": 5}), "is not a schema"),
    "not of objects": (
        json.dumps({"type": "SCHEMA", "stream": "c", "schema": {"type": ["string", "null"]}}),
        "schema describes no object (a RECORD's record is a JSON object)",
    ),
    "a $schema that is not a string": (
        _schema_line({"id": {"type": "string"}}).replace(
            '"schema": {', '"schema": {"$schema": 5, '
        ),
        "$schema is not a string",
    ),
}


@pytest.mark.parametrize("workers", [0, 2])
def test_a_pattern_python_cannot_compile_refuses_nothing(workers, sandbox, tmp_path):
    """JSON Schema's regexes are ECMA-262's: `\\p{L}` (a letter) is one Python's re cannot
    compile. No pattern is checked, yet such a SCHEMA was refused: every record of the stream
    was rejected at input, the run ended 0 with its STATE past them, and a replay of the
    dead-letter file could not send them. Its records go out as any other stream's."""
    props = {
        "id": {"type": "string", "pattern": "^[\\p{L}\\d]+$"},
        "notes": {"type": "string", "pattern": "\\p{L}+"},
        "amount": {"type": ["number", "null"]},
        "extra": {"type": "object", "patternProperties": {"\\p{Lu}": {"type": "string"}}},
    }
    lines = [_schema_line(props), rec(1, notes="gift"), rec(2, extra={"A": 1}), state({"b": 1})]
    run = run_target(config(sandbox.url, tmp_path, worker_processes=workers), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert stored(sandbox) == ["r1", "r2"]
    assert run.states == [{"b": 1}]
    assert "Rejected" not in run.stderr
    assert not (tmp_path / "dead.jsonl").exists()


@pytest.mark.parametrize("case", list(HOSTILE_SCHEMAS))
def test_a_schema_that_cannot_be_used_is_refused_with_its_reason(case, sandbox, tmp_path):
    bad_schema, reason = HOSTILE_SCHEMAS[case]
    other = schema("ok", {"id": {"type": "string"}}, ["id"])
    good = record("ok", {"id": "g1", "timestamp": NOW, "type": "lead_created"})
    lines = [other, good, state({"bookmark": 1}), bad_schema, rec(2), state({"bookmark": 2})]
    cfg = config(sandbox.url, tmp_path, streams={"c": {}, "ok": {}})
    run = run_target(cfg, lines, tmp_path)
    assert_clean(run)
    assert stored(sandbox) == ["g1"]
    dead = (tmp_path / "dead.jsonl").read_text()
    assert reason in dead
    if "number too large" not in reason:  # (that SCHEMA line cannot even be read)
        assert "RECORD for stream 'c', whose SCHEMA was refused" in dead
        # The end of the run says why the entry matched nothing (not "no records").
        assert "streams.c matched nothing; its SCHEMA was refused (see above)" in run.stderr
        # `c` has an entry: its record, which no replay can send, fails the run, and no STATE
        # goes past it (the run went on, exit 0, STATE past the record: lost for good).
        assert run.returncode == 1, run.output
        assert run.states == [{"bookmark": 1}]
        assert "Stream 'c': 1 record came under a SCHEMA that was refused (" in run.stderr
    else:  # (its record comes before any SCHEMA of `c` was read: no stream the run knows)
        assert run.returncode == 0, run.output
        assert run.states[-1] == {"bookmark": 2}


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("schemaless", [{"type": "object"}, {}, {"type": ["object", "null"]}])
def test_a_schemaless_stream_is_mapped_like_any_other(schemaless, workers, sandbox, tmp_path):
    """A tap that knows no columns (JSON lines, a document store) writes `{"type": "object"}`
    or `{}`: any object is a record. Its records were all rejected ("schema has no
    properties"); now they map as those of a schema with no properties declared do."""
    line = json.dumps({"type": "SCHEMA", "stream": "c", "schema": schemaless})
    lines = [line, *[rec(n, amount=n) for n in range(3)], rec(3, amount="x"), state({"b": 1})]
    streams = {"c": {"fields": {"amount": "amount", "currency": "'USD'"}}}
    run = run_target(
        config(sandbox.url, tmp_path, streams=streams, worker_processes=workers), lines, tmp_path
    )
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert stored(sandbox) == ["r0", "r1", "r2"]
    assert "c: received=4 sent=3 rejected=1 (mapping=1)" in run.stderr
    assert run.stdout.splitlines()[-1] == '{"b": 1}'
    # With on_rejected: fail, it stops the run, as in the SDK's targets (its standard target
    # tests, tests/test_target_standard.py, call `{"type": "object"}` an invalid schema).
    strict = config(sandbox.url, tmp_path, streams=streams, on_rejected="fail")
    run = run_target(strict, lines, tmp_path)
    assert run.returncode == 1
    assert_clean(run)
    assert "schema declares no properties" in run.stderr
    assert stored(sandbox) == ["r0", "r1", "r2"]


@pytest.mark.parametrize(
    "amount_schema",
    [
        # What SQL taps write for a NUMERIC column: its precision as a float multipleOf, and
        # draft-4 boolean exclusive bounds (pipelinewise); and a draft-4 schema saying so.
        {"type": ["null", "number"], "multipleOf": 0.01},
        {"type": ["null", "number"], "multipleOf": 1e-38},
        {
            "type": ["null", "number"],
            "exclusiveMaximum": True,
            "maximum": 1e38,
            "exclusiveMinimum": True,
            "minimum": -1e38,
            "multipleOf": 1e-38,
        },
        {"type": ["null", "number"], "exclusiveMaximum": True, "maximum": 100},
    ],
)
def test_numeric_column_schemas_of_sql_taps_check_their_records(amount_schema, sandbox, tmp_path):
    """A float multipleOf once crashed every run at the first amount (the validator divided
    the exact decimal by a float), and draft-4's `exclusiveMaximum: true` rejected every record
    ("must be smaller than True"): the amounts now arrive, exactly, and a bound still holds."""
    line = _schema_line({"id": {"type": "string"}, "amount": amount_schema})
    lines = [line, rec(1, amount=10.07, currency="USD"), rec(2, amount=19.99, currency="EUR")]
    lines += [rec(3, amount=100, currency="USD"), state({"bookmark": 3})]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    amounts = {e["id"]: e["data"].get("amount") for e in sandbox.events(PIXEL_ID)}
    if amount_schema.get("maximum") == 100:  # exclusive: 100 itself is over
        assert amounts == {"r1": 1007, "r2": 1999}
        assert "record.amount must be smaller than 100" in (tmp_path / "dead.jsonl").read_text()
    else:
        assert amounts == {"r1": 1007, "r2": 1999, "r3": 10000}
    assert run.stdout.splitlines()[-1] == '{"bookmark": 3}'


def test_properties_named_like_schema_keywords_are_properties(sandbox, tmp_path):
    """Columns named `pattern`, `$ref`, `multipleOf`, `maximum`, `exclusiveMaximum` (a CSV's
    header, say) and an object property named `properties` (Segment-style events): the SCHEMA
    was refused ("schema.properties.pattern is not a string") and every record of the stream
    lost. They are property names, not keywords: the records arrive, and the schema's own
    rules still hold (`additionalProperties`, each column's type)."""
    string_or_null = {"type": ["string", "null"]}
    properties = {
        "id": {"type": "string"},
        "type": {"type": "string"},
        "timestamp": {"type": "string"},
        "pattern": string_or_null,
        "$ref": string_or_null,
        "multipleOf": {"type": ["number", "null"]},
        "exclusiveMaximum": {"type": ["boolean", "null"]},
        "maximum": {"type": ["integer", "null"]},
        "properties": {
            "type": ["object", "null"],
            "properties": {"type": {"type": "string"}, "pattern": {"type": "string"}},
        },
    }
    line = json.dumps(
        {
            "type": "SCHEMA",
            "stream": "c",
            "schema": {"type": "object", "properties": properties, "additionalProperties": False},
            "key_properties": ["id"],
        }
    )
    columns = {"pattern": "x", "$ref": "y", "multipleOf": 0.5, "exclusiveMaximum": True}
    good = rec(1, **columns, maximum=3, properties={"type": "t", "pattern": "p"})
    also_good = rec(2, **columns, maximum=None, properties=None)
    # (the target checks the properties it reads against their types)
    wrong_type = record("c", {"id": "r3", "type": "lead_created", "timestamp": 5, **columns})
    lines = [line, good, also_good, wrong_type, state({"bookmark": 3})]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert stored(sandbox) == ["r1", "r2"]
    [letter] = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()[1:]]
    assert letter["dead_letter"]["stage"] == "schema"
    assert "record.timestamp must be string" in letter["dead_letter"]["reason"]
    assert run.stdout.splitlines()[-1] == '{"bookmark": 3}'


@pytest.mark.parametrize(
    "value",
    ['{"bm": 1.5}', '{"bm": 0.1000000000000000055511151231257827}', '{"x": ' + HUGE + "}"],
)
def test_state_is_passed_on_exactly_as_the_tap_wrote_it(value, sandbox, tmp_path):
    lines = [SCHEMA, rec(1), '{"type": "STATE", "value": ' + value + "}"]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert run.stdout.splitlines() == [value]
    assert stored(sandbox) == ["r1"]


def test_a_utf8_bom_before_the_first_line_is_skipped(sandbox, tmp_path):
    data = b"\xef\xbb\xbf" + "\n".join([SCHEMA, rec(1), rec(2)]).encode() + b"\n"
    run = run_target(config(sandbox.url, tmp_path), data, tmp_path)
    assert run.returncode == 0, run.output
    assert stored(sandbox) == ["r1", "r2"]


def test_a_stream_map_that_fails_on_one_record_rejects_that_record(sandbox, tmp_path):
    lines = [SCHEMA, rec(1, k=1), rec(2, k=0), rec(3, k=4)]
    cfg = config(sandbox.url, tmp_path, stream_maps={"c": {"ratio": "str(100 // k)"}})
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert stored(sandbox) == ["r1", "r3"]
    [line] = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()[1:]]
    assert line["record"]["id"] == "r2"
    assert line["dead_letter"]["stage"] == "mapping"
    assert (
        "stream_maps expression failed on this record (ZeroDivisionError"
        in (line["dead_letter"]["reason"])
    )


def test_a_stream_map_naming_no_property_says_which(sandbox, tmp_path):
    """`amont * 2` for `amount * 2`: the reason said only that simpleeval failed to evaluate
    the expression; the SDK's own cause (what is not defined) was left out."""
    cfg = config(sandbox.url, tmp_path, stream_maps={"c": {"doubled": "amont * 2"}})
    run = run_target(cfg, [SCHEMA, rec(1, amount=2)], tmp_path)
    assert run.returncode == 0, run.output
    [line] = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()[1:]]
    assert "amont" in line["dead_letter"]["reason"].split("amont * 2", 1)[1]


@pytest.mark.parametrize(
    ("stream_map", "words"),
    [
        ({"ratio": "str(100 // k"}, "Failed to parse expression str(100 // k"),
        ({"id": None}, "Removing key property 'id' is not permitted"),
    ],
)
def test_a_stream_map_that_cannot_be_applied_stops_the_run_before_its_records(
    stream_map, words, sandbox, tmp_path
):
    """A stream map that does not parse, or removes a key property, is the config's fault: its
    stream's records were rejected at input, as if the tap's SCHEMA were bad, the run ended 0
    and its STATE moved past them (and a replay of dead letters of that kind sends nothing)."""
    other = schema("ok", {"id": {"type": "string"}}, ["id"])
    good = record("ok", {"id": "g1", "timestamp": NOW, "type": "lead_created"})
    lines = [other, good, state({"b": 1}), SCHEMA, rec(1, k=1), state({"b": 2})]
    streams = {"c": {}, "ok": {}}
    cfg = config(
        sandbox.url, tmp_path, streams=streams, stream_maps={"c": stream_map}, batch_size=1
    )
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 1
    assert_clean(run)
    assert f"stream_maps cannot be applied to stream 'c': {words}" in run.stderr
    assert "Fix the stream map and run again" in run.stderr
    assert stored(sandbox) == ["g1"]
    assert run.states == [{"b": 1}]


def test_a_schema_lacking_its_key_property_is_mapped_as_without_stream_maps(sandbox, tmp_path):
    """The SDK's stream maps refuse a SCHEMA whose key property it does not declare, as if the
    map were wrong: its records were rejected as raw lines no replay reads, and STATE passed
    them, where without maps they were sent. The key is declared (any value), as the target
    takes it without maps; the map applies. A schemaless one is mapped alike."""
    keyed_wrong = json.dumps(
        {"type": "SCHEMA", "stream": "c", "schema": {"properties": {}}, "key_properties": ["id"]}
    )
    schemaless = json.dumps(
        {"type": "SCHEMA", "stream": "s", "schema": {"type": "object"}, "key_properties": ["id"]}
    )
    lines = [keyed_wrong, rec(1), schemaless, record("s", json.loads(rec(2))["record"])]
    maps = {"c": {"extra": "'x'"}, "s": {"extra": "'x'"}}
    cfg = config(sandbox.url, tmp_path, streams={"c": {}, "s": {}}, stream_maps=maps)
    run = run_target(cfg, [*lines, state({"b": 1})], tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert "stream_maps cannot be applied" not in run.stderr
    assert "refused" not in run.stderr
    assert stored(sandbox) == ["r1", "r2"]
    assert run.states == [{"b": 1}]
    # A map that does not parse is the map's fault, whatever the SCHEMA lacks: the run stops.
    broken = {"c": {"ratio": "str(100 // k"}}
    cfg = config(sandbox.url, tmp_path, streams={"c": {}, "s": {}}, stream_maps=broken)
    run = run_target(cfg, [keyed_wrong, rec(1), state({"b": 2})], tmp_path)
    assert run.returncode == 1
    assert "stream_maps cannot be applied to stream 'c': Failed to parse" in run.stderr
    assert run.states == []


def _batch_file(path: Path, records: list[dict[str, Any]], *, gzipped: bool = True) -> str:
    text = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(text) if gzipped else text)
    return path.as_uri()


def _batch(manifest: list[str], compression: str = "gzip") -> str:
    encoding = {"format": "jsonl", "compression": compression}
    return json.dumps({"type": "BATCH", "stream": "c", "encoding": encoding, "manifest": manifest})


ORDERS = [
    {"id": f"b{n}", "timestamp": NOW, "type": "order_created", "amount": 19.99 + n}
    for n in range(9)
]


def test_batch_messages_arrive_exactly_as_the_same_records_sent_as_record_messages(
    sandbox, tmp_path
):
    cfg = config(sandbox.url, tmp_path, streams={"c": {"fields": {"currency": "'EUR'"}}})
    plain = [SCHEMA, *(record("c", r) for r in ORDERS), state({"bookmark": 9})]
    run = run_target(cfg, plain, tmp_path)
    assert run.returncode == 0, run.output
    as_records = sandbox.events(PIXEL_ID)
    assert len(as_records) == 9
    sandbox.reset()

    first = _batch_file(tmp_path / "part-1.jsonl.gz", ORDERS[:5])
    second = _batch_file(tmp_path / "part-2.jsonl", ORDERS[5:], gzipped=False)
    lines = [SCHEMA, _batch([first]), _batch([second], "none"), state({"bookmark": 9})]
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert sandbox.events(PIXEL_ID) == as_records
    assert "received=9 sent=9" in run.stderr
    assert run.stdout.splitlines() == ['{"bookmark": 9}']


@pytest.mark.parametrize("compression", [None, "none", "gzip"])
def test_a_gzip_batch_file_whatever_its_message_says_is_read(compression, sandbox, tmp_path):
    """singer-sdk's JSONL batches are always gzip, and its taps' BATCH messages say no
    compression (or 'none'): every line was rejected as binary, the run ended 0 and its STATE
    passed them all. A file that begins with a byte order mark loses no first record either;
    and a plain file said to be gzip stopped the run ("Not a gzipped file")."""
    cfg = config(sandbox.url, tmp_path, streams={"c": {"fields": {"currency": "'EUR'"}}})
    gzipped = _batch_file(tmp_path / "b-tap--c-1.json.gz", ORDERS[:5])
    marked = tmp_path / "b-2.jsonl"
    marked.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in ORDERS[5:]).encode())
    encoding = {"format": "jsonl"} if compression is None else {
        "format": "jsonl", "compression": compression}  # fmt: skip
    batches = [
        json.dumps({"type": "BATCH", "stream": "c", "encoding": encoding, "manifest": [url]})
        for url in (gzipped, marked.as_uri())
    ]
    run = run_target(cfg, [SCHEMA, *batches, state({"bookmark": 9})], tmp_path)
    assert run.returncode == 0, run.output
    assert "received=9 sent=9" in run.stderr
    assert stored(sandbox) == sorted(f"b{n}" for n in range(9))


def test_batch_files_are_found_as_the_sdk_that_wrote_them_reads_their_urls(sandbox, tmp_path):
    """The SDK writes a manifest's URL as root + file name, escaping nothing, and reads it so:
    a folder named with a literal `%20` (or a `#`) was looked for as `x y` (or cut at the #),
    stopping every run. A URL escaped by the book (`my%20dir` for `my dir`) is read too."""
    cfg = config(sandbox.url, tmp_path, streams={"c": {"fields": {"currency": "'EUR'"}}})
    manifest = []
    for n, folder in enumerate(["x%20y", "a#b", "my dir"]):
        (tmp_path / folder).mkdir()
        uri = _batch_file(tmp_path / folder / "part.json.gz", ORDERS[3 * n : 3 * n + 3])
        manifest.append(f"file://{tmp_path}/{folder}/part.json.gz" if "%" in folder or "#"
                        in folder else uri)  # fmt: skip
    assert manifest[2].endswith("/my%20dir/part.json.gz")  # (as_uri escapes: by the book)
    run = run_target(cfg, [SCHEMA, _batch(manifest), state({"bookmark": 9})], tmp_path)
    assert run.returncode == 0, run.output
    assert stored(sandbox) == sorted(f"b{n}" for n in range(9))
    assert run.states == [{"bookmark": 9}]


def test_a_batch_before_its_schema_stops_the_run_without_state_past_it(sandbox, tmp_path):
    """Its records are in files the tap may delete: rejected as one line (a replay skips it),
    the run went on, wrote the STATE after it, and counted one record for them all."""
    cfg = config(sandbox.url, tmp_path, streams={"c": {"fields": {"currency": "'EUR'"}}})
    uri = _batch_file(tmp_path / "early.json.gz", ORDERS[:2])
    lines = [SCHEMA, rec(1), state({"s": 1}), _batch([uri]).replace('"c"', '"later"'),
             schema("later", {"id": {"type": "string"}}, ["id"]), state({"s": 2})]  # fmt: skip
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 1, run.output
    assert "BATCH message for stream 'later' came before its SCHEMA" in run.stderr
    assert run.states == [{"s": 1}]
    assert stored(sandbox) == ["r1"]


def test_a_batch_of_a_stream_whose_schema_was_refused_stops_the_run(sandbox, tmp_path):
    """A SCHEMA sent again and refused (a $ref to nowhere), then a BATCH of the stream: its
    records were rejected as one line (a replay skips it) and the STATE after it written."""
    cfg = config(sandbox.url, tmp_path, streams={"c": {"fields": {"currency": "'EUR'"}}})
    uri = _batch_file(tmp_path / "after.json.gz", ORDERS[:2])
    refused = schema("c", {"id": {"$ref": "#/nowhere"}}, ["id"])
    lines = [SCHEMA, rec(1), state({"s": 1}), refused, _batch([uri]), state({"s": 2})]
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 1, run.output
    assert "BATCH message for stream 'c' has a refused SCHEMA (" in run.stderr
    assert run.states == [{"s": 1}]
    assert stored(sandbox) == ["r1"]


@pytest.mark.parametrize(
    ("maps", "dropped"),
    [
        ({"later": None}, True),
        ({"c": {}, "__else__": None}, True),
        # another entry takes its records: not dropped, the run stops as for any stream
        ({"later": None, "copy": {"__source__": "later"}}, False),
        ({"c": {}, "copy": {"__source__": "later"}, "__else__": None}, False),
        ({"c": {}, "lat*": {"__alias__": "copy"}, "__else__": None}, False),
    ],
)
def test_a_batch_before_the_schema_of_a_stream_the_maps_drop_is_one_rejected_line(
    maps, dropped, sandbox, tmp_path
):
    """None of its records would be sent: it stopped every run, at the same place, where a
    RECORD of the stream is one rejected line. One whose records a map sends elsewhere still
    stops the run (a rejected line lost them)."""
    cfg = config(sandbox.url, tmp_path, streams={"c": {"fields": {"currency": "'EUR'"}}})
    cfg["stream_maps"] = maps
    uri = _batch_file(tmp_path / "early.json.gz", ORDERS[:2])
    lines = [SCHEMA, rec(1), _batch([uri]).replace('"c"', '"later"'), state({"s": 2})]
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == (0 if dropped else 1), run.output
    assert run.states == ([{"s": 2}] if dropped else [])
    assert stored(sandbox) == ["r1"]


def test_a_bad_line_in_a_batch_file_is_rejected_and_the_rest_arrive(sandbox, tmp_path):
    path = tmp_path / "part.jsonl"
    odd = ['{"id": "b2", "ratio": NaN}', '{"id": "b3\\ud800"}']  # (JSON to Python's json)
    path.write_text(
        "\n".join([json.dumps(ORDERS[0]), "[1, 2]", "{not json", *odd, json.dumps(ORDERS[1])])
        + "\n"
    )
    cfg = config(sandbox.url, tmp_path, streams={"c": {"fields": {"currency": "'EUR'"}}})
    run = run_target(cfg, [SCHEMA, _batch([path.as_uri()], "none")], tmp_path)
    assert run.returncode == 0, run.output
    assert stored(sandbox) == ["b0", "b1"]
    dead = (tmp_path / "dead.jsonl").read_text()
    assert "line 2 of BATCH file 'part.jsonl' is not a JSON object" in dead
    assert "line 3 of BATCH file 'part.jsonl' is not a JSON record" in dead
    # What the same line as a RECORD message is refused for, the BATCH file's line is too.
    assert "line 4 of BATCH file 'part.jsonl' holds NaN or Infinity, which JSON" in dead
    assert "line 5 of BATCH file 'part.jsonl' holds a string with a lone UTF-16 surrogate" in dead
    # The log names the file's line, not "input line 2" (stdin's line 2 is the BATCH message).
    assert "Rejected a line of a BATCH file: line 2 of BATCH file 'part.jsonl'" in run.stderr
    assert "Rejected input line" not in run.stderr


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_line_over_the_limit_in_a_batch_file_is_rejected_and_the_rest_arrive(
    gzipped, sandbox, tmp_path
):
    """As on standard input, a line over 16 MiB is rejected, its first bytes kept: in a BATCH
    file it stopped the run (exit 1, no STATE past it), and every rerun again, for good."""
    huge = json.dumps({**ORDERS[1], "notes": "x" * (16 * 1024 * 1024)})
    text = "\n".join([json.dumps(ORDERS[0]), huge, json.dumps(ORDERS[2])]) + "\n"
    path = tmp_path / ("part.jsonl.gz" if gzipped else "part.jsonl")
    path.write_bytes(gzip.compress(text.encode()) if gzipped else text.encode())
    cfg = config(sandbox.url, tmp_path, streams={"c": {"fields": {"currency": "'EUR'"}}})
    run = run_target(cfg, [SCHEMA, _batch([path.as_uri()], "none"), state({"s": 1})], tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    assert stored(sandbox) == ["b0", "b2"]
    assert run.states == [{"s": 1}]
    [letter] = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert letter["dead_letter"]["reason"].startswith(
        f"line 2 of BATCH file '{path.name}' is {len(huge):,} bytes long, over the limit of "
        "16,777,216"
    )
    assert "rejected=1" in run.stderr


MIB16 = 16 * 1024 * 1024


def _record_of(size: int, order: dict[str, Any]) -> bytes:
    """The order as a JSON line of exactly `size` bytes (a `notes` property fills it)."""
    bare = json.dumps({**order, "notes": ""}).encode()
    return json.dumps({**order, "notes": "x" * (size - len(bare))}).encode()


@pytest.mark.parametrize(
    ("first", "end", "size", "sent"),
    [
        (False, b"\n", MIB16, True),  # at the limit: a record like any other
        (False, b"\r\n", MIB16 - 1, True),  # (the \r is the line's, as on stdin)
        (False, b"\n", MIB16 + 1, False),
        (True, b"\n", MIB16, True),  # the first line, after a BOM (which is not counted)
        (True, b"\n", MIB16 + 100, False),
    ],
    ids=["at the limit", "at the limit, CRLF", "one over", "first, BOM", "first, BOM, over"],
)
def test_a_batch_file_s_lines_are_held_to_the_limit_as_standard_input_s(
    first, end, size, sent, sandbox, tmp_path
):
    """A line of exactly 16 MiB was rejected in a BATCH file (its newline was counted) though
    standard input takes it; a first line after a BOM, over the limit, was cut in two and made
    two rejections, every later line's number off by one."""
    big = _record_of(size, ORDERS[1]) + end
    lines = [json.dumps(ORDERS[0]).encode() + b"\n", json.dumps(ORDERS[2]).encode() + b"\n"]
    lines.insert(0 if first else 1, (b"\xef\xbb\xbf" if first else b"") + big)
    path = tmp_path / "part.jsonl"
    path.write_bytes(b"".join(lines))
    cfg = config(sandbox.url, tmp_path, streams={"c": {"fields": {"currency": "'EUR'"}}})
    run = run_target(cfg, [SCHEMA, _batch([path.as_uri()], "none"), state({"s": 1})], tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    assert run.states == [{"s": 1}]
    assert stored(sandbox) == (["b0", "b1", "b2"] if sent else ["b0", "b2"])
    dead = tmp_path / "dead.jsonl"
    if sent:
        assert not dead.exists()
    else:
        [letter] = [json.loads(line) for line in dead.read_text().splitlines()]
        where = 1 if first else 2
        assert letter["dead_letter"]["reason"].startswith(
            f"line {where} of BATCH file 'part.jsonl' is {size + len(end) - 1:,} bytes long"
        )


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (_batch(["file:///nonexistent/part-9.jsonl.gz"]), "cannot be read (No such file"),
        (
            json.dumps({"type": "BATCH", "stream": "c", "encoding": {"format": "parquet"}}),
            "encoding format 'parquet' is not supported",
        ),
        (_batch(["https://127.0.0.1:9/part.jsonl.gz"]), "nothing is fetched from a URL"),
        (_batch(["file://127.0.0.1:9/part.jsonl.gz"]), "nothing is fetched from a URL"),
        (_batch(["file:///proc/self/environ"]), "a system file, not a tap's batch file"),
        (_batch(["/proc/self/../self/cmdline"]), "a system file, not a tap's batch file"),
        (_batch(["file:///tmp/part%00.jsonl.gz"]), "no usable file name (embedded null byte)"),
    ],
    ids=[
        "missing file",
        "unknown encoding",
        "remote URL",
        "file URL with a port",
        "proc file",
        "proc path",
        "NUL",
    ],
)
def test_a_batch_that_cannot_be_read_stops_cleanly_after_what_came_before(
    message, expected, sandbox, tmp_path
):
    lines = [SCHEMA, rec(1), state({"bookmark": 1}), message, rec(3), state({"bookmark": 3})]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 1
    assert_clean(run)
    assert expected in run.stderr
    assert "Stopping without STATE past it" in run.stderr
    assert stored(sandbox) == ["r1"]  # delivered before the stop
    assert run.stdout.splitlines() == ['{"bookmark": 1}']  # and no STATE past the batch


class _Gateway:
    """A real HTTP server answering every POST as `answer` says (a proxy, a slow server...)."""

    def __init__(self, answer: Any) -> None:
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests += 1
                answer(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1/events"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _run_through(answer: Any, lines: list[str], tmp_path: Path, **settings: Any) -> Any:
    """The real CLI on these lines, its API a server answering every POST as `answer` says."""
    gateway = _Gateway(answer)
    try:
        return run_target(config(gateway.url, tmp_path, **settings), lines, tmp_path)
    finally:
        gateway.close()


def _answer(handler: BaseHTTPRequestHandler, status: int, body: bytes, kind: str) -> None:
    """Send one whole answer: status, content type and length, body."""
    handler.send_response(status)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _api_error(handler: BaseHTTPRequestHandler, error: dict[str, Any]) -> None:
    """A 400 in the API's error shape."""
    body = json.dumps({"error": {**error, "type": "invalid_request_error"}}).encode()
    _answer(handler, 400, body, "application/json")


def _page(status: int, page: bytes) -> Any:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        _answer(handler, status, page, "text/html")

    return answer


_SIGN_IN_PAGE = _page(200, b"<!DOCTYPE html><html><title>Sign in</title></html>")


@pytest.mark.parametrize(
    ("answer", "said", "requests"),
    [
        # A 400 not in the API's error format: not bisected (into 5 requests, for 3 events).
        (
            _page(400, b"<html><body><h1>400 Bad Request</h1>nginx</body></html>"),
            "the answer is not the API's error format",
            1,
        ),
        # Each event alone refused with the same 413 page: a proxy's body limit, not events
        # too large (they were all dead-lettered as such, the run ended 0, STATE moved on).
        (
            _page(413, b"<html><h1>413 Request Entity Too Large</h1>nginx</html>"),
            "all 3 events of a batch were refused alone with the same message",
            5,
        ),
        # A sign-in page, or a website at a wrong api_url, answering 200: the events were
        # counted sent and STATE moved past them, though they never reached the API.
        (_SIGN_IN_PAGE, "with a web page, not an answer of the API (<!DOCTYPE html>", 1),
        # A gateway that answers its errors with 200 and the API's error shape.
        (
            _page(200, b'{"error": {"message": "Invalid api key", "type": "auth"}}'),
            "with an error in its body (Invalid api key)",
            1,
        ),
    ],
    ids=["400", "413", "200", "200 error"],
)
def test_a_web_page_for_an_answer_stops_the_run_and_rejects_nothing(
    answer, said, requests, tmp_path
):
    gateway = _Gateway(answer)
    try:
        lines = [SCHEMA, *(rec(n) for n in range(3)), state({"bookmark": 3})]
        run = run_target(config(gateway.url, tmp_path), lines, tmp_path)
    finally:
        gateway.close()
    assert run.returncode == 1
    assert_clean(run)
    assert said in run.stderr
    assert "Stopping without advancing STATE past these events" in run.stderr
    assert "sent=0" in run.stderr
    assert gateway.requests == requests
    assert run.stdout == ""  # no STATE past the unsent events
    assert not (tmp_path / "dead.jsonl").exists()  # no good event dead-lettered


def test_the_credential_check_fails_when_a_web_page_answers(tmp_path):
    gateway = _Gateway(_SIGN_IN_PAGE)
    try:
        check = run_target(config(gateway.url, tmp_path), [], tmp_path, extra_args=["--test"])
    finally:
        gateway.close()
    assert check.returncode == 1
    assert check.stdout.startswith("FAILED: a web page answered at http://127.0.0.1:")
    gateway = _Gateway(_page(200, b'{"error": {"message": "Invalid api key"}}'))
    try:
        check = run_target(config(gateway.url, tmp_path), [], tmp_path, extra_args=["--test"])
    finally:
        gateway.close()
    assert check.returncode == 1
    assert "with an error in its body (Invalid api key)" in check.stdout


def _busy_then(status: int, busy_answers: int) -> Any:
    """503 (Retry-After: 0) for the first `busy_answers` requests, then `status` with {}."""
    answered = []

    def answer(handler: BaseHTTPRequestHandler) -> None:
        answered.append(1)
        if len(answered) <= busy_answers:
            handler.send_response(503)
            handler.send_header("Retry-After", "0")
            handler.send_header("Content-Length", "11")
            handler.end_headers()
            handler.wfile.write(b"overloaded.")
        else:
            _answer(handler, status, b"{}", "application/json")

    return answer


def test_the_credential_check_asks_a_busy_api_again(tmp_path):
    """One 503 before the answer is a busy API, not a failed check: asked again, as a run would."""
    gateway = _Gateway(_busy_then(200, busy_answers=1))
    try:
        check = run_target(config(gateway.url, tmp_path), [], tmp_path, extra_args=["--test"])
    finally:
        gateway.close()
    assert check.returncode == 0, check.output
    assert check.stdout.startswith("OK: the key, pixel id")
    assert gateway.requests == 2


def test_the_credential_check_gives_up_on_an_api_that_stays_busy(tmp_path):
    """At most four attempts (max_attempts 8 by default), then one line saying it is busy."""
    gateway = _Gateway(_busy_then(200, busy_answers=100))
    try:
        check = run_target(config(gateway.url, tmp_path), [], tmp_path, extra_args=["--test"])
        fewer = run_target(
            config(gateway.url, tmp_path, max_attempts=2), [], tmp_path, extra_args=["--test"]
        )
    finally:
        gateway.close()
    assert check.returncode == 1
    assert check.stdout.strip() == (
        f"FAILED: HTTP 503 for pixel id {PIXEL_ID!r} at {gateway.url} (overloaded.): the API is "
        "busy or failing; try again later (4 attempts)."
    )
    assert fewer.returncode == 1
    assert fewer.stdout.strip().endswith("(2 attempts).")
    assert gateway.requests == 4 + 2


# The proxy tests' api_url: on loopback (no test reaches another host), port 10, where nothing
# listens and nothing is sent (the proxy is contacted instead); the target run with
# `_proxied_on_loopback` takes the environment's proxy for it, as for any other host (it
# reaches a loopback api_url directly, which is the local sandbox's case).
PROXIED_API_URL = "https://127.0.0.1:10/v1/events"


def _proxied_on_loopback(monkeypatch, tmp_path) -> None:
    hook = tmp_path / "proxy-hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(
        "import target_openai_capi.delivery.client as client\n"
        "client.is_loopback = lambda host: False\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(hook))


def test_a_proxy_that_cannot_be_reached_is_named_without_its_password(monkeypatch, tmp_path):
    """HTTPS_PROXY with a user and password: a failure printed them (`--test`, the request
    log) and blamed api_url alone. Port 9 on loopback: nothing listens there."""
    _proxied_on_loopback(monkeypatch, tmp_path)
    cfg = config(PROXIED_API_URL, tmp_path, max_attempts=1)
    log = tmp_path / "requests.jsonl"
    said = []
    # (a `#` in the password: no URL parser reads it, and its error quoted the part before; a
    # `[`: Python's parser raised, and the run ended "This is a bug"; no scheme: the user and
    # password were printed whole)
    proxies = (
        "http://puser:SeCrEtPw99@127.0.0.1:9",
        "http://puser:SeCrEt#Pw99@127.0.0.1:9",
        "http://puser:SeCrEt[Pw99@127.0.0.1:9",
        "puser:SeCrEt;Pw99@127.0.0.1:9",
    )
    for proxy in proxies:
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        check = run_target(cfg, [], tmp_path, extra_args=["--test"])
        run = run_target({**cfg, "request_log_path": str(log)}, [SCHEMA, rec(1)], tmp_path)
        assert check.returncode == 1
        assert run.returncode == 1
        for text in (check.output, run.output, log.read_text()):
            assert "SeCrEt" not in text
            assert "Pw99" not in text
            assert "puser" not in text
            assert "Traceback" not in text
            assert "This is a bug" not in text
        said.append(check.stdout)
    assert said[0].startswith(
        f"FAILED: {PROXIED_API_URL} cannot be reached (network error "
        f"talking to {PROXIED_API_URL} through the proxy "
        "http://127.0.0.1:9: "
    )
    for number in (1, 2, 3):
        assert (
            "is not a URL that can be read: write it as http://user:password@host:port"
            in (said[number])
        ), said[number]


def test_a_proxy_asking_for_credentials_at_connect_is_said_to_be_one(monkeypatch, tmp_path):
    """An https api_url goes through a proxy by CONNECT; a proxy that wants credentials
    answers that 407: it was retried for half a minute as a network error, then 'Check
    api_url'."""
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()

        def answer() -> None:
            while True:
                try:
                    conn, _ = proxy.accept()
                except OSError:
                    return
                with conn:
                    conn.recv(65536)
                    conn.sendall(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b'Proxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n'
                    )

        threading.Thread(target=answer, daemon=True).start()
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
        _proxied_on_loopback(monkeypatch, tmp_path)
        cfg = config(PROXIED_API_URL, tmp_path)  # (via the proxy only)
        started = time.monotonic()
        run = run_target(cfg, [SCHEMA, rec(1)], tmp_path)
        check = run_target(cfg, [], tmp_path, extra_args=["--test"])
        took = time.monotonic() - started
    assert run.returncode == 1
    assert "407 Proxy Authentication Required). Check the proxy settings" in run.stderr
    assert "407 Proxy Authentication Required). Check the proxy settings" in check.stdout
    assert "attempts" not in check.stdout
    assert took < 20  # (not retried)


def test_the_local_sandbox_is_reached_without_the_environments_proxy(
    monkeypatch, sandbox, tmp_path
):
    """A proxy in HTTP_PROXY (a CI runner's) took the loopback api_url's requests, the key in
    them in plain http://, to another host; and a proxy that is down failed the run."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    run = run_target(config(sandbox.url, tmp_path, max_attempts=1), [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 0, run.output
    assert stored(sandbox) == ["r1"]


def test_a_debug_log_shows_no_query_string_of_api_url(monkeypatch, sandbox, tmp_path):
    """LOGLEVEL=DEBUG, as one troubleshoots: urllib3's lines showed every request's URL with
    api_url's query string (a gateway's access code)."""
    monkeypatch.setenv("LOGLEVEL", "DEBUG")
    url = sandbox.url + "?code=QSSECRET"
    run = run_target(config(url, tmp_path), [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 0, run.output
    assert stored(sandbox) == ["r1"]
    assert "DEBUG" in run.stderr  # (the log is a debug one)
    assert "QSSECRET" not in run.output


def test_a_server_quoting_part_of_the_key_or_in_other_case_shows_none_of_it(tmp_path):
    """A 400 naming the event whose message quotes the key from its 20th character on, and
    upper-cased: both reached the log and the dead letter (only the key's first 24 characters
    were looked for, in its own case)."""
    key = "sk-svcacct-TESTKEY1234567890abcdefSECRETxyz"
    message = f"bad token {key[20:]} / BEARER {key.upper()} (city İzmir)"

    def answer(handler: BaseHTTPRequestHandler) -> None:
        _api_error(handler, {"message": message, "param": "events[0]"})

    gateway = _Gateway(answer)
    try:
        cfg = config(gateway.url, tmp_path, api_key=key, max_attempts=1)
        run = run_target(cfg, [SCHEMA, rec(1)], tmp_path)
    finally:
        gateway.close()
    assert "bad token [redacted] / BEARER [redacted]" in run.stderr
    written = run.output + (tmp_path / "dead.jsonl").read_text()
    assert "bad token" in (tmp_path / "dead.jsonl").read_text()
    for piece in ("4567890abcdefSEC", "SECRETxyz", "SECRETXYZ", "TESTKEY1234"):
        assert piece not in written


def test_a_proxy_asking_for_credentials_is_said_to_be_one(tmp_path):
    """A 407 comes from a proxy, not the API: it was reported as an API status to report."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        _answer(handler, 407, b"Proxy Authentication Required", "text/plain")

    run = _run_through(answer, [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 1
    assert "A proxy between the target and" in run.stderr
    assert "Check the proxy settings (HTTPS_PROXY, HTTP_PROXY)" in run.stderr
    assert "please report it" not in run.stderr


def test_an_echoed_proxy_authorization_header_is_hidden(tmp_path):
    """A proxy's 502 page that echoes the request head showed Proxy-Authorization: Basic
    (the proxy's user and password in base64) in the log."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        page = b"Bad gateway. Request was: POST /v1/events Proxy-Authorization: Basic cHVzZXI6UA=="
        _answer(handler, 502, page, "text/plain")

    run = _run_through(answer, [SCHEMA, rec(1)], tmp_path, max_attempts=1)
    assert run.returncode == 1
    assert "Proxy-Authorization: Basic ***" in run.stderr
    assert "cHVzZXI6UA" not in run.output


def _drip(handler: BaseHTTPRequestHandler, byte: bytes) -> None:
    """A byte every 0.2 s for a minute, or until the client hangs up."""
    for _ in range(300):
        try:
            handler.wfile.write(byte)
            handler.wfile.flush()
        except OSError:
            return
        time.sleep(0.2)


def _trickle(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    _drip(handler, b" ")


def _trickled_head(handler: BaseHTTPRequestHandler) -> None:
    """The status line, then headers that never end, a byte at a time."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    _drip(handler, b"X")


@pytest.mark.parametrize("answer", [_trickle, _trickled_head], ids=["body", "headers"])
def test_a_trickling_answer_cannot_hold_a_request_past_its_deadline(answer, tmp_path):
    """A body, or a status line and headers, sent a byte at a time: requests' timeout bounds
    each read of the socket, so the headers held one request for minutes (past 100 of them
    http.client gives up), and a SIGTERM waited."""
    gateway = _Gateway(answer)
    try:
        cfg = config(gateway.url, tmp_path, request_timeout_seconds=2, max_attempts=2)
        started = time.monotonic()
        run = run_target(cfg, [SCHEMA, rec(1)], tmp_path)
        elapsed = time.monotonic() - started
    finally:
        gateway.close()
    assert run.returncode == 1
    assert_clean(run)
    assert "took longer than 2 s (request_timeout_seconds)" in run.stderr
    assert gateway.requests == 2
    assert elapsed < 20  # two attempts of 2 s and a backoff, not 40 s of trickle each


def _endless(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b" " * 65536
    try:
        for _ in range(4096):  # 256 MiB if read whole
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except OSError:
        return


def test_an_endless_answer_is_read_only_up_to_its_cap(tmp_path):
    run = _run_through(_endless, [SCHEMA, rec(1), rec(2)], tmp_path)
    assert run.returncode == 0, run.output
    assert "sent=2" in run.stderr


def test_a_replay_of_the_dead_letter_file_writes_elsewhere_and_ends(sandbox, tmp_path):
    stale = record("c", {"id": "old", "timestamp": iso_minutes_ago(8 * 1440), "type": "x"})
    run = run_target(config(sandbox.url, tmp_path), [SCHEMA, stale, rec(1)], tmp_path)
    assert run.returncode == 0, run.output
    dead = tmp_path / "dead.jsonl"
    before = dead.read_bytes()
    # As the README says: replay it with the same config (the record is still stale).
    replay = run_target(
        config(sandbox.url, tmp_path), [], tmp_path, extra_args=["--input", str(dead)], timeout=60
    )
    assert replay.returncode == 0, replay.output
    assert "The input is the dead-letter file itself" in replay.stderr
    assert dead.read_bytes() == before  # never appended to while being read
    [sibling] = tmp_path.glob("dead.replay-*.jsonl")
    assert "older than 7 days" in sibling.read_text()


def test_a_replay_of_another_file_writes_where_the_config_says(sandbox, tmp_path):
    """`--input first-run.jsonl` with dead_letter_path another file: it cannot be the file being
    read, so the rejections go where the config says (they went to a sibling of that file
    that nothing watched)."""
    stale = record("c", {"id": "old", "timestamp": iso_minutes_ago(8 * 1440), "type": "x"})
    run = run_target(config(sandbox.url, tmp_path), [SCHEMA, stale, rec(1)], tmp_path)
    assert run.returncode == 0, run.output
    first = tmp_path / "first-run.jsonl"
    (tmp_path / "dead.jsonl").rename(first)
    replay = run_target(
        config(sandbox.url, tmp_path), [], tmp_path, extra_args=["--input", str(first)], timeout=60
    )
    assert replay.returncode == 0, replay.output
    assert "replay" not in replay.stderr
    assert list(tmp_path.glob("*.replay-*")) == []
    assert "older than 7 days" in (tmp_path / "dead.jsonl").read_text()


def _rewritten(lines: bytes, how: str) -> bytes:
    """The dead-letter file's lines as a tool rewrites them: `jq -c .`, or sorted keys."""
    if how == "as written":
        return lines
    decoded = [json.loads(line) for line in lines.splitlines()]
    if how == "compact":
        return b"".join(json.dumps(m, separators=(",", ":")).encode() + b"\n" for m in decoded)
    return b"".join(json.dumps(m, sort_keys=True).encode() + b"\n" for m in decoded)


@pytest.mark.parametrize("how", ["as written", "compact", "sorted keys"])
@pytest.mark.parametrize("workers", [0, 2])
def test_a_replay_of_the_dead_letter_file_through_a_pipe_writes_elsewhere(
    workers, how, sandbox, tmp_path
):
    # `cat dead.jsonl | target-openai-capi ...` (or `jq -c . dead.jsonl | ...`): the input is
    # a pipe, not the file, so only its lines say it is a replay; appending to the file being
    # read would never end.
    stale = record("c", {"id": "old", "timestamp": iso_minutes_ago(8 * 1440), "type": "x"})
    cfg = config(sandbox.url, tmp_path, worker_processes=workers)
    run = run_target(cfg, [SCHEMA, stale, rec(1)], tmp_path)
    assert run.returncode == 0, run.output
    dead = tmp_path / "dead.jsonl"
    before = dead.read_bytes()
    replay = run_target(cfg, _rewritten(before, how), tmp_path, timeout=60)
    assert replay.returncode == 0, replay.output
    assert "The input holds dead letters (a replay)" in replay.stderr
    assert dead.read_bytes() == before
    [sibling] = tmp_path.glob("dead.replay-*.jsonl")
    assert "older than 7 days" in sibling.read_text()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_record_with_a_dead_letter_property_of_its_own_is_no_replay(workers, sandbox, tmp_path):
    """A tap's record that has a `dead_letter` object with `stage` and `rejected_at` (a queue's
    own bookkeeping) is a record: its run's rejections go to dead_letter_path, not to a replay's
    sibling file that nothing watches."""
    own = {"dead_letter": {"stage": "queue-3", "rejected_at": None}}
    stale = record("c", {"id": "old", "timestamp": iso_minutes_ago(8 * 1440), "type": "x", **own})
    cfg = config(sandbox.url, tmp_path, worker_processes=workers)
    run = run_target(cfg, [SCHEMA, rec(1, **own), stale], tmp_path)
    assert run.returncode == 0, run.output
    assert "replay" not in run.stderr
    assert list(tmp_path.glob("dead.replay-*")) == []
    assert "older than 7 days" in (tmp_path / "dead.jsonl").read_text()


@pytest.mark.parametrize("kind", ["a directory", "under a file"])
def test_a_dead_letter_file_that_cannot_be_written_stops_at_start_up(kind, sandbox, tmp_path):
    if kind == "a directory":
        path = tmp_path / "dead-dir"
        path.mkdir()
    else:  # (unwritable even for root, unlike a read-only directory)
        (tmp_path / "plain-file").write_text("x")
        path = tmp_path / "plain-file" / "dead.jsonl"
    run = run_target(
        config(sandbox.url, tmp_path, dead_letter_path=str(path)), [SCHEMA, rec(1)], tmp_path
    )
    assert run.returncode == 1
    assert_clean(run)
    assert f"dead_letter_path {str(path)!r} cannot be written" in run.stderr
    if kind == "under a file":  # (it said 'File exists', of a file that does not)
        # (the path is hidden in the log when it holds six digits or more, as pytest's tmp_path
        # comes to, after a thousand runs: "pytest-1021/popen-gw0/..._c1")
        shown = re.escape(repr(str(tmp_path / "plain-file")))
        assert re.search(rf"\((?:{shown}|'…') is a file, not a folder\)", run.stderr), run.stderr
    assert sandbox.stats()["requests"] == 0


def test_a_variable_in_a_file_path_is_said_not_to_be_expanded(sandbox, tmp_path):
    """`"dead_letter_path": "$HOME/dl.jsonl"` in a JSON config made a folder named `$HOME`
    without a word (only a leading ~ is expanded, as the README says)."""
    path = f"{tmp_path}/${{HOME}}/dead.jsonl"
    run = run_target(
        config(sandbox.url, tmp_path, dead_letter_path=path), [SCHEMA, rec(1)], tmp_path
    )
    assert run.returncode == 0, run.output
    assert (
        "dead_letter_path holds ${HOME}, which is not expanded (only a leading ~ is; Meltano "
        "expands $VARIABLES in meltano.yml)"
    ) in run.stderr


def test_a_replay_whose_own_dead_letter_file_cannot_be_made_names_that_file(sandbox, tmp_path):
    """Replaying dead.jsonl writes its rejections beside it (dead.replay-<time>.jsonl); where
    that cannot be made, the run blamed `dead_letter_path` (a file it can write) and hid the
    path it could not, its time taken for a number to hide."""
    import datetime as dt

    dead = tmp_path / "dead.jsonl"
    first = run_target(config(sandbox.url, tmp_path), [SCHEMA, rec(1, timestamp="x")], tmp_path)
    assert first.returncode == 0, first.output
    # Each name the replay's file may take in the next two minutes is a folder (root or not).
    now = dt.datetime.now(dt.timezone.utc)
    for second in range(120):
        stamp = (now + dt.timedelta(seconds=second)).strftime("%Y%m%dT%H%M%SZ")
        (tmp_path / f"dead.replay-{stamp}.jsonl").mkdir()
    replay = run_target(config(sandbox.url, tmp_path), dead.read_bytes(), tmp_path)
    assert replay.returncode == 1
    [said] = [line for line in replay.stderr.splitlines() if "cannot be written" in line]
    assert f"the replay's dead-letter file '{tmp_path}/dead.replay-" in said
    assert "dead_letter_path" not in said


def test_an_api_key_read_with_a_trailing_newline_works_and_is_never_printed(sandbox, tmp_path):
    run = run_target(
        config(sandbox.url, tmp_path, api_key=API_KEY + "\n"), [SCHEMA, rec(1)], tmp_path
    )
    assert run.returncode == 0, run.output
    assert stored(sandbox) == ["r1"]
    assert API_KEY not in run.output


_MALFORMED = "api_key holds whitespace or characters a key never has"
_WRONG_TYPE = "is not of type 'string' in config['api_key']"  # (the SDK's check quotes the value)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            {"pixel_id": None},
            "'pixel_id' is a required property: set it in the config file, or "
            "as TARGET_OPENAI_CAPI_PIXEL_ID",
        ),
        ({"api_key": None}, "as TARGET_OPENAI_CAPI_API_KEY (read with --config ENV"),
        (
            {"api_url": "htps://127.0.0.1:8799/v1/events"},
            "api_url must be an https:// URL, got 'htps://127.0.0.1:8799/v1/events'",
        ),
        (
            {"api_url": "ftp://u:secret@[::1]:21/x?q=1"},
            "api_url must be an https:// URL, got 'ftp://[::1]:21/x'",
        ),
        # (a key with capitals pasted as the host: the message quotes the host lower-cased,
        # which was shown in full)
        (
            {
                "api_key": "sk-svcacct-MixedCase0123456789",
                "api_url": "ftp://sk-svcacct-MixedCase0123456789/v1/events",
            },
            "api_url must be an https:// URL, got 'ftp://***/v1/events'",
        ),
    ],
)
def test_a_setting_error_says_where_to_set_it_and_shows_the_url_it_read(
    change, said, sandbox, tmp_path
):
    cfg = {**config(sandbox.url, tmp_path), **change}
    cfg = {name: value for name, value in cfg.items() if value is not None}
    run = run_target(cfg, [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 1
    assert said in run.stderr
    assert "secret" not in run.output
    assert API_KEY not in run.output
    assert "mixedcase0123456789" not in run.output.lower()


@pytest.mark.parametrize(
    ("key", "said"),
    [
        (API_KEY[:12] + " " + API_KEY[12:], _MALFORMED),
        (API_KEY + "é", _MALFORMED),
        (API_KEY + "\x00", _MALFORMED),
        ([API_KEY], _WRONG_TYPE),
        ({"value": API_KEY}, _WRONG_TYPE),
        ([[" " + API_KEY]], _WRONG_TYPE),
        ({API_KEY: True}, _WRONG_TYPE),
    ],
)
def test_a_malformed_api_key_is_a_config_error_that_does_not_show_it(key, said, sandbox, tmp_path):
    run = run_target(config(sandbox.url, tmp_path, api_key=key), [SCHEMA, rec(1)], tmp_path)
    assert run.returncode != 0
    assert said in run.output
    assert API_KEY[12:] not in run.output
    assert "Traceback" not in run.output
    assert sandbox.stats()["requests"] == 0


def test_credentials_in_api_url_are_refused_and_never_echoed(sandbox, tmp_path):
    url = sandbox.url.replace("http://", "http://admin:hunter2@")
    run = run_target(config(url, tmp_path), [SCHEMA, rec(1)], tmp_path)
    assert run.returncode != 0
    assert "api_url must not carry credentials" in run.output
    assert "hunter2" not in run.output
    assert sandbox.stats()["requests"] == 0


@pytest.mark.parametrize("where", ["/v1/events/{key}", "/v1/events?token={key}", "/{quoted}/x"])
def test_the_api_key_in_api_url_is_refused_and_never_echoed(where, sandbox, tmp_path):
    # In the URL the key would reach every message that shows the URL (a 404 names it).
    path = where.format(key=API_KEY, quoted=API_KEY.replace("-", "%2D"))
    url = sandbox.url.replace("/v1/events", "") + path
    run = run_target(config(url, tmp_path), [SCHEMA, rec(1)], tmp_path)
    assert run.returncode != 0
    assert "api_url holds the API key" in run.output
    assert API_KEY[12:] not in run.output
    assert "Traceback" not in run.output
    assert sandbox.stats()["requests"] == 0


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ({"fields": {"id": "{key} ||"}}, "is not valid JMESPath"),
        ({"filter": "{key}"}, "is not valid JMESPath"),
        ({"preset": "{key}"}, "unknown preset"),
        ({"fields": {"email": "url_param('{key}')"}}, "url_param() takes 2 argument(s)"),
        # A constant holding the key would go to the API in every event (and the request log).
        (
            {"event_type": "custom", "fields": {"custom_event_name": "'{key}'"}},
            "streams.c holds an API key (in a field, the filter or an event name)",
        ),
        ({"fields": {"plan_id": "'{key}'"}}, "streams.c holds an API key"),
        ({"fields": {"custom_data": "{note: '{key}'}"}}, "streams.c holds an API key"),
        ({"event_type_from": "'{key}'"}, "streams.c holds an API key"),
        (
            {"fields": {"custom_data": "{note: 'sk-admin-FUZZSECRET1234567890_x'}"}},
            "streams.c holds an API key",
        ),
    ],
)
def test_the_api_key_pasted_into_a_streams_entry_is_not_echoed(entry, said, sandbox, tmp_path):
    """A config error quotes the entry's expression or preset: one that holds the key (pasted
    in the wrong place) is shown with the key hidden; one the entry would send is refused."""
    pasted = json.loads(json.dumps(entry).replace("{key}", API_KEY))
    run = run_target(config(sandbox.url, tmp_path, streams={"c": pasted}), [SCHEMA], tmp_path)
    assert run.returncode == 1
    assert said in run.output
    assert API_KEY[12:] not in run.output
    assert "Traceback" not in run.output
    assert sandbox.stats()["requests"] == 0


KEY_ELSEWHERE = "sk-svcacct-FUZZSECRET1234567890"


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        # (Meltano's .env lines for DRY_RUN and API_KEY swapped: the key is in dry_run)
        ({"api_key": "true", "dry_run": KEY_ELSEWHERE}, "dry_run is '***': use true or false"),
        ({"api_key": "", "api_url": KEY_ELSEWHERE}, "api_url must be an https:// URL, got '***'"),
        ({"default_phone_region": KEY_ELSEWHERE}, "'***' is too long in config"),
        ({"user_field_style": KEY_ELSEWHERE}, "'***' is not one of"),
        ({"api_key": ["FUZZSECRET" + "Q" * 500]}, "['***'] is not of type 'string'"),
        # (an admin's or a user's key too: the shapes the API hands out)
        ({"batch_size": "sk-admin-FUZZSECRET1234567890_x"}, "'***' is not of type 'integer'"),
        ({"batch_size": "sk-None-FUZZSECRET1234567890"}, "'***' is not of type 'integer'"),
    ],
)
def test_a_key_given_in_another_setting_is_never_shown(settings, said, sandbox, tmp_path):
    """Also when api_key holds something else (a short word hides nothing: 'true' stays); and a
    long key a message quotes is hidden before the message is cut (cut, it was not found)."""
    cfg = {**config(sandbox.url, tmp_path), **settings}
    run = run_target(cfg, [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 1, run.output
    assert said in run.stderr
    assert "FUZZSECRET" not in run.output
    assert "Traceback" not in run.output


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        # (os.path.realpath raised ValueError: a traceback, or "a bug in target-openai-capi")
        ({"request_log_path": "r\x00.jsonl"}, "request_log_path holds a NUL character"),
        (
            {"dead_letter_path": "d.jsonl", "request_log_path": "r\x00.jsonl"},
            "request_log_path holds a NUL character",
        ),
        # (a file named `newdir` was written, the log speaking of the dead-letter file)
        ({"dead_letter_path": "newdir/"}, "dead_letter_path ends with a slash, so it names a"),
        # (a 404 on /v1/events%20 at the first request, after start-up passed it)
        ({"api_url_padded": True}, "api_url has spaces or line breaks around it"),
        # (no event may have it: every record was rejected, the run exiting 0 with STATE)
        (
            {"streams": {"c": {"fields": {"contents": "'sku-1'"}}}},
            "streams.c.fields.contents: contents must be a list of objects, not a string",
        ),
    ],
)
def test_settings_no_run_can_use_are_config_errors(settings, said, sandbox, tmp_path):
    cfg = config(sandbox.url, tmp_path)
    if settings.pop("api_url_padded", False):
        settings["api_url"] = sandbox.url + " "
    run = run_target({**cfg, **settings}, [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 1, run.output
    assert said in run.stderr
    assert "Traceback" not in run.output
    assert "This is a bug" not in run.output
    assert sandbox.stats()["requests"] == 0
    assert not (tmp_path / "newdir").exists()


def test_values_that_begin_with_sk_are_no_api_key(sandbox, tmp_path):
    """A product (SK-II), a SKU or a page whose name begins with sk- is no key: refused as one
    after 1f310f5, with advice to rotate a key never shared."""
    entry = {
        "event_type": "custom",
        "filter": "sku != 'SK-TEST-001'",
        "event_types": {"SK-Telecom-Signup": "lead_created"},
        "fields": {
            "custom_event_name": "'sk-ii-essence-sample'",
            "source_url": "'https://shop.example.com/products/sk-ii-facial-treatment'",
        },
    }
    run = run_target(
        config(sandbox.url, tmp_path, streams={"c": entry}), [SCHEMA, rec(1)], tmp_path
    )
    assert run.returncode == 0, run.output
    [event] = sandbox.events(PIXEL_ID)
    assert event["custom_event_name"] == "sk-ii-essence-sample"


def test_settings_written_as_meltano_passes_them_are_read_as_meant(sandbox, tmp_path):
    """flattening_enabled "false" (text: Meltano passes a setting it does not know so) turned
    flattening on for the SDK's checks; keep_source_url_query null was refused where every
    other setting of an entry takes null for its default."""
    streams = {"c": {"keep_source_url_query": None}}
    cfg = {**config(sandbox.url, tmp_path, streams=streams), "flattening_enabled": "false"}
    run = run_target(cfg, [SCHEMA, rec(1, source_url="https://shop.example/p?q=1")], tmp_path)
    assert run.returncode == 0, run.output
    assert [e.get("source_url") for e in sandbox.events(PIXEL_ID)] == ["https://shop.example/p"]


def test_number_settings_are_read_and_said_as_json_writes_them(sandbox, tmp_path):
    """batch_size 2.0 (a whole number, to JSON Schema) was refused as "Decimal('2.0') is not of
    type 'integer'"; a wrong value is quoted as the file wrote it, and a long one cut."""
    cfg = {**config(sandbox.url, tmp_path), "batch_size": Decimal("2.0")}
    (tmp_path / "config-2.0.json").write_text(simplejson.dumps(cfg, use_decimal=True))
    run = run_target(cfg | {"batch_size": 2}, [SCHEMA, rec(1), rec(2), rec(3)], tmp_path)
    assert run.returncode == 0, run.output  # (the same config, written as 2.0 below)
    proc = subprocess.run(
        [*TARGET_CMD, "--config", str(tmp_path / "config-2.0.json")],
        input=("\n".join([SCHEMA, rec(4), rec(5), rec(6)]) + "\n").encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert sandbox.stats()["largest_batch"] == 2
    bad = {**config(sandbox.url, tmp_path), "pixel_id": 1.5, "user_field_style": "x" * 10_000}
    run = run_target(bad, [SCHEMA], tmp_path)
    assert run.returncode == 1
    assert "1.5 is not of type 'string' in config['pixel_id']" in run.stderr
    assert "Decimal(" not in run.stderr
    assert "xxx... (10,000 characters)' is not one of ['plural', 'singular'] in config" in (
        run.stderr
    )
    assert max(len(line) for line in run.stderr.splitlines()) < 1_000
    # A long list of short values is cut too (no one of them is long).
    run = run_target(
        {**bad, "pixel_id": PIXEL_ID, "on_rejected": [f"x{n}" for n in range(3000)]},
        [SCHEMA],
        tmp_path,
    )
    assert run.returncode == 1
    assert max(len(line) for line in run.stderr.splitlines()) < 1_200
    assert "characters) ..." in run.stderr
    # A message with no long value is kept whole (the values allowed, all of them).
    entry = {"event_types": {"Checkout Completed (Web Store, European storefront)": "purchase"}}
    run = run_target(config(sandbox.url, tmp_path, streams={"c" * 60: entry}), [SCHEMA], tmp_path)
    assert run.returncode == 1
    assert "'trial_started', 'custom'] in config['streams']" in run.stderr


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[["pixel_id", "px"], ["api_key", "sk-svcacct-0123456789"]]', "must hold a JSON object"),
        ("", "cannot be read: Expecting value"),
    ],
)
def test_a_config_file_that_is_no_object_of_settings_is_named(text, said, tmp_path):
    """A JSON array was taken as pairs of settings; a file of several that is not JSON was not
    named."""
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"pixel_id": PIXEL_ID, "api_key": API_KEY}))
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    proc = subprocess.run(
        [*TARGET_CMD, "--config", str(good), "--config", str(bad)],
        input=b"",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert f"the config file {str(bad)!r} {said}" in proc.stderr.decode()
    assert b"Traceback" not in proc.stderr


def test_an_expression_reference_outside_a_function_is_a_config_error(sandbox, tmp_path):
    """`&test` as a filter was always true (a test order sent for real), and `&id` as the id
    sent `<jmespath.visitor._Expression object at 0x...>`, a new id each run, one address
    reused making two orders one duplicate."""
    entry = {"filter": "&test", "fields": {"id": "&id", "plan_id": "max_by(plans, &n).id"}}
    run = run_target(
        config(sandbox.url, tmp_path, streams={"c": entry}), [SCHEMA, rec(1)], tmp_path
    )
    assert run.returncode == 1, run.output
    assert "streams.c.filter: expression '&test': & makes an expression reference" in run.stderr
    assert "streams.c.fields.id: expression '&id': & makes" in run.stderr
    assert "plan_id" not in run.stderr  # (as a function's argument, as JMESPath means it)
    assert "Traceback" not in run.output
    assert sandbox.stats()["requests"] == 0


@pytest.mark.parametrize(
    ("keep_query", "shown"), [(False, "'/thanks'"), (True, "'/thanks?<query hidden>'")]
)
def test_a_relative_source_url_is_rejected_without_its_query_in_any_output(
    sandbox, tmp_path, keep_query, shown
):
    # By default the query is cut before the check; kept, the reason hides it.
    bad = rec(2, source_url="/thanks?email=jane@example.com", action_source="web")
    streams = {"c": {"keep_source_url_query": keep_query}}
    run = run_target(
        config(sandbox.url, tmp_path, streams=streams), [SCHEMA, rec(1), bad], tmp_path
    )
    assert run.returncode == 0, run.output
    assert "jane@example.com" not in run.output
    [line] = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()[1:]]
    assert line["dead_letter"]["reason"].startswith(
        f"source_url: {shown} is not a URL with a scheme and a host"
    )
    assert stored(sandbox) == ["r1"]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"pixel_id": ', "the config file cannot be read: Expecting value: line 1 column 14"),
        ("[1, 2]", "the config file must hold a JSON object of settings"),
        ("5", "the config file must hold a JSON object of settings"),
        ('"settings"', "the config file must hold a JSON object of settings"),
    ],
)
def test_a_config_file_that_is_no_json_object_is_one_clear_line(text, said, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(text)
    proc = subprocess.run(
        [*TARGET_CMD, "--config", str(path)], input=b"", capture_output=True, check=False
    )
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert "Traceback" not in err
    assert said.replace("the config file", f"the config file {str(path)!r}") in err


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("TARGET_OPENAI_CAPI_BATCH_SIZE", "abc", "TARGET_OPENAI_CAPI_BATCH_SIZE is 'abc': use a"),
        ("TARGET_OPENAI_CAPI_MAX_ATTEMPTS", "2.5", "MAX_ATTEMPTS is '2.5': use a whole number"),
        ("TARGET_OPENAI_CAPI_REQUEST_TIMEOUT_SECONDS", "soon", "is 'soon': use a number"),
        # (the SDK took any word but true/1/yes/on for false: a typo sent for real)
        ("TARGET_OPENAI_CAPI_DRY_RUN", "ture", "DRY_RUN is 'ture': use true or false"),
        ("TARGET_OPENAI_CAPI_DRY_RUN", "true\r", "DRY_RUN is 'true\\r': use true or false"),
        # (the SDK's own settings too: validation was turned off)
        ("TARGET_OPENAI_CAPI_VALIDATE_RECORDS", "maybe", "RECORDS is 'maybe': use true or false"),
        # (the variable named: it said "a TARGET_OPENAI_CAPI_* environment variable")
        ("TARGET_OPENAI_CAPI_STREAMS", "{not json", "TARGET_OPENAI_CAPI_STREAMS cannot be read"),
        ("TARGET_OPENAI_CAPI_STREAM_MAPS", "[1,", "_STREAM_MAPS cannot be read as its setting"),
        # (an object setting given as a word, not JSON: no variable was named)
        ("TARGET_OPENAI_CAPI_STREAMS", "orders", "TARGET_OPENAI_CAPI_STREAMS cannot be read"),
        ("TARGET_OPENAI_CAPI_STREAM_MAPS", "orders", "_STREAM_MAPS cannot be read as its"),
        ("TARGET_OPENAI_CAPI_FAKER_CONFIG", "abc", "_FAKER_CONFIG cannot be read as its"),
        # (the key in the wrong variable: its first 40 characters were quoted)
        ("TARGET_OPENAI_CAPI_DRY_RUN", API_KEY, "DRY_RUN is a value like an API key (not shown)"),
        ("TARGET_OPENAI_CAPI_BATCH_SIZE", API_KEY, "SIZE is a value like an API key (not shown)"),
        ("TARGET_OPENAI_CAPI_BATCH_SIZE", "task-1", "BATCH_SIZE is 'task-1': use a whole number"),
    ],
)
def test_an_environment_variable_of_the_wrong_type_is_one_clear_line(name, value, said):
    env = {
        **os.environ,
        "TARGET_OPENAI_CAPI_PIXEL_ID": PIXEL_ID,
        "TARGET_OPENAI_CAPI_API_KEY": API_KEY,
        name: value,
    }
    proc = subprocess.run(
        [*TARGET_CMD, "--config", "ENV"], input=b"", capture_output=True, check=False, env=env
    )
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert "Traceback" not in err
    assert said in err
    assert API_KEY[:16] not in err


def _environment_for(sandbox: Any, **settings: str) -> dict[str, str]:
    """The environment of a run that reads its config from it (--config ENV), into the
    sandbox, with these settings' variables (FLATTENING_ENABLED="true") too."""
    return {
        **os.environ,
        "TARGET_OPENAI_CAPI_PIXEL_ID": PIXEL_ID,
        "TARGET_OPENAI_CAPI_API_KEY": API_KEY,
        "TARGET_OPENAI_CAPI_API_URL": sandbox.url,
        "TARGET_OPENAI_CAPI_STREAMS": json.dumps({"c": {}}),
        **{f"TARGET_OPENAI_CAPI_{name}": value for name, value in settings.items()},
    }


def test_settings_from_environment_variables_are_read_as_their_types(sandbox, tmp_path):
    """Numbers were left as text ("'60' is not of type 'number'"): those two settings could not
    be set from the environment at all."""
    env = _environment_for(
        sandbox,
        MAX_RETRY_SECONDS="60",
        REQUEST_TIMEOUT_SECONDS=" 30.5 ",
        DRY_RUN="Yes",
        BATCH_SIZE="7",
    )
    data = ("\n".join([SCHEMA, rec(1), rec(2)]) + "\n").encode()
    proc = subprocess.run(
        [*TARGET_CMD, "--config", "ENV"], input=data, capture_output=True, check=False, env=env
    )
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "received=2 sent=0 validated=2" in err
    assert sandbox.stats()["validate_only_requests"] == 1
    assert stored(sandbox) == []


def _run_with_environment(cfg: dict[str, Any], tmp_path: Path, env: dict[str, str], *args: str):
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    data = ("\n".join([SCHEMA, rec(1), rec(2)]) + "\n").encode()
    proc = subprocess.run(
        [*TARGET_CMD, "--config", *args],
        input=data,
        capture_output=True,
        check=False,
        env={**os.environ, **env},
    )
    return proc.returncode, proc.stderr.decode()


def test_a_pixel_id_read_from_a_secret_file_is_trimmed_and_a_blank_one_refused(sandbox, tmp_path):
    cfg = config(sandbox.url, tmp_path, pixel_id=f"{PIXEL_ID}\n")
    run = run_target(cfg, [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 0, run.output
    assert stored(sandbox) == ["r1"]
    for pixel, said in (
        ("  ", "non-empty in config['pixel_id']"),
        ("px 1", "'px 1' holds whitespace"),
    ):
        run = run_target(config(sandbox.url, tmp_path, pixel_id=pixel), [SCHEMA, rec(2)], tmp_path)
        assert run.returncode == 1
        assert said in run.stderr
    assert sandbox.stats()["requests"] == 1


def test_a_file_s_path_starting_with_a_tilde_is_in_the_home_directory(sandbox, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    cfg = config(sandbox.url, tmp_path, dead_letter_path="~/dead.jsonl")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    data = ("\n".join([SCHEMA, rec(1, amount="x")]) + "\n").encode()
    proc = subprocess.run(
        [*TARGET_CMD, "--config", str(tmp_path / "config.json")],
        input=data,
        capture_output=True,
        check=False,
        cwd=work,
        env={**os.environ, "HOME": str(home)},
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert "rejected=1" in proc.stderr.decode()
    assert (home / "dead.jsonl").exists()
    assert list(work.iterdir()) == []  # (no directory named ~ here)


def test_a_dry_run_asked_for_in_the_environment_beside_a_config_file_is_one(sandbox, tmp_path):
    """A Meltano loader that declares no settings gets a config without dry_run: the dry run
    its environment asks for sent for real. A config file's own dry_run is the one read."""
    cfg = config(sandbox.url, tmp_path)
    path = str(tmp_path / "config.json")
    code, err = _run_with_environment(cfg, tmp_path, {"TARGET_OPENAI_CAPI_DRY_RUN": "true"}, path)
    assert code == 0, err
    assert "received=2 sent=0 validated=2" in err
    assert stored(sandbox) == []
    code, err = _run_with_environment(cfg, tmp_path, {"TARGET_OPENAI_CAPI_DRY_RUN": "ture"}, path)
    assert code == 1
    assert "TARGET_OPENAI_CAPI_DRY_RUN is 'ture': use true or false" in err
    assert sandbox.stats()["requests"] == 1
    cfg["dry_run"] = False
    env = {"TARGET_OPENAI_CAPI_DRY_RUN": "true", "TARGET_OPENAI_CAPI_BATCH_SIZE": "1"}
    code, err = _run_with_environment(cfg, tmp_path, env, path)
    assert code == 0, err
    assert "but the config file's dry_run is False, which is the one read" in err
    assert "TARGET_OPENAI_CAPI_BATCH_SIZE is set in the environment but not read" in err
    assert stored(sandbox) == ["r1", "r2"]
    assert sandbox.stats()["requests"] == 2  # (one batch: the batch size was not read)


@pytest.mark.parametrize("source", ["file", "ENV"])
@pytest.mark.parametrize(
    "name",
    [
        "TARGET_OPENAI_CAPI_VALIDATE_ONLY",
        "TARGET_OPENAI_CAPI_DRYRUN",
        "TARGET_OPENAI_CAPI_dry_run",  # (the setting's own name, in lower case: never read)
        "TARGET_OPENAI_CAPI_IS_DRY_RUN",
        "TARGET_OPENAI_CAPI_DRY_RUN_MODE",
    ],
)
def test_a_variable_meant_as_a_dry_run_stops_the_run(name, source, sandbox, tmp_path):
    env = {name: "true"}
    if source == "ENV":
        env |= {
            "TARGET_OPENAI_CAPI_PIXEL_ID": PIXEL_ID,
            "TARGET_OPENAI_CAPI_API_KEY": API_KEY,
            "TARGET_OPENAI_CAPI_API_URL": sandbox.url,
            "TARGET_OPENAI_CAPI_STREAMS": json.dumps({"c": {}}),
        }
    where = str(tmp_path / "config.json") if source == "file" else "ENV"
    code, err = _run_with_environment(config(sandbox.url, tmp_path), tmp_path, env, where)
    assert code == 1
    assert f"{name} is not a setting of target-openai-capi: for a dry run" in err
    assert "set TARGET_OPENAI_CAPI_DRY_RUN=true" in err
    assert sandbox.stats()["requests"] == 0


def test_variables_that_only_hold_dry_run_in_their_name_are_no_dry_run(sandbox, tmp_path):
    """Meltano passes a stream's own dry_run as TARGET_OPENAI_CAPI_STREAMS_C_DRY_RUN, and a
    loader inheriting from this one, named target-openai-capi-dry-run, its settings as
    TARGET_OPENAI_CAPI_DRY_RUN_API_KEY: both were refused as a dry run meant."""
    env = {
        "TARGET_OPENAI_CAPI_STREAMS_C_DRY_RUN": "true",
        "TARGET_OPENAI_CAPI_DRY_RUN_API_KEY": API_KEY,
        "TARGET_OPENAI_CAPI_DRY_RUN_STREAM_MAPS": "{}",  # (the SDK's settings too)
    }
    cfg = config(sandbox.url, tmp_path)
    code, err = _run_with_environment(cfg, tmp_path, env, str(tmp_path / "config.json"))
    assert code == 0, err
    assert "for a dry run" not in err
    assert stored(sandbox) == ["r1", "r2"]


@pytest.mark.parametrize(
    "key",
    [
        "DRY_RUN",
        "Dry_Run",
        "dry_run ",
        "Dry Run",
        "dry_runs",
        "is_dry_run",
        "validateOnly",
        "dry_run_enabled",
        "enable_dry_run",
    ],
)
def test_a_setting_meant_as_a_dry_run_in_any_spelling_stops_the_run(key, sandbox, tmp_path):
    """`DRY_RUN: true` (or `Dry Run`, `dry_runs`) in a config file: a warning, and the run sent
    for real what was meant to be validated only."""
    cfg = {**config(sandbox.url, tmp_path), key: True}
    run = run_target(cfg, [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 1, run.output
    assert f"{key!r} is not a setting of target-openai-capi: for a dry run" in run.stderr
    assert sandbox.stats()["requests"] == 0


@pytest.mark.parametrize("source", ["file", "ENV"])
def test_streams_misspelt_stops_the_run_before_state_passes_every_record(source, sandbox, tmp_path):
    """`stream:` (or `Streams:`, TARGET_OPENAI_CAPI_STREAM) for `streams`: every record was
    skipped as of a stream without an entry, exit 0, and STATE went past them all."""
    entries = {"c": {}}
    if source == "file":
        cfg = {**config(sandbox.url, tmp_path), "stream": entries}
        del cfg["streams"]
        run = run_target(cfg, [SCHEMA, rec(1), state({"b": 1})], tmp_path)
        code, err, stdout = run.returncode, run.stderr, run.stdout
        said = "'stream' is not a setting of target-openai-capi: the setting that maps streams"
    else:
        env = {
            "TARGET_OPENAI_CAPI_PIXEL_ID": PIXEL_ID,
            "TARGET_OPENAI_CAPI_API_KEY": API_KEY,
            "TARGET_OPENAI_CAPI_API_URL": sandbox.url,
            "TARGET_OPENAI_CAPI_STREAM": json.dumps(entries),
            "TARGET_OPENAI_CAPI_BATCHSIZE": "5",
        }
        code, err = _run_with_environment({}, tmp_path, env, "ENV")
        stdout = ""
        said = "TARGET_OPENAI_CAPI_STREAM is no setting's variable: the one that maps streams"
        assert (
            "TARGET_OPENAI_CAPI_BATCHSIZE is no setting's variable: ignored (did you mean "
            "TARGET_OPENAI_CAPI_BATCH_SIZE?)"
        ) in err
    assert code == 1, err
    assert said in err
    assert stdout == ""
    assert sandbox.stats()["requests"] == 0


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://[::1/v1/events", "Invalid IPv6 URL"),
        ("http://127.0.0.1:99999/v1/events?token=s3cr3t", "Port out of range"),
    ],
)
def test_an_api_url_that_cannot_be_parsed_is_a_config_error(url, said, tmp_path):
    run = run_target(config(url, tmp_path), [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 1
    assert_clean(run)
    assert f"api_url is not a URL ({said}" in run.stderr
    assert "s3cr3t" not in run.output


def test_a_dead_letter_file_that_fills_up_stops_with_one_clear_line(sandbox, tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    cfg = config(sandbox.url, tmp_path, dead_letter_path="/dev/full")
    run = run_target(cfg, [SCHEMA, rec(1), rec(2, timestamp="yesterday")], tmp_path)
    assert run.returncode == 1
    assert_clean(run)
    assert "dead_letter_path '/dev/full' cannot be written (No space left on device)" in run.stderr
    assert run.stdout == ""
    # Not written, so not 'rejected' (which says it is in the file): unsettled, STATE before it.
    assert "rejected=0 unsettled=2 requests=0; c: received=2 unsettled=2" in run.stderr
    # A line that is no message alike.
    run = run_target(cfg, [SCHEMA, rec(1), state({"b": 1}), "not json"], tmp_path)
    assert run.returncode == 1
    assert "dead_letter_path '/dev/full' cannot be written" in run.stderr
    assert "rejected=0" in run.stderr
    assert "(input): received=1 unsettled=1" in run.stderr


@pytest.mark.parametrize("log", ["dead_letter_path", "request_log_path"])
def test_a_file_that_fills_up_mid_line_keeps_whole_lines_only(log, sandbox, tmp_path):
    """A full disk in the middle of a line (here: a file size limit, as a quota gives) left
    that line's first part; the next run appended its lines to it, and a replay could read
    neither. A line is now written whole or not at all; a part an earlier run left (killed
    mid-write) is ended before a new line starts."""
    path = tmp_path / "out.jsonl"
    cfg = config(sandbox.url, tmp_path, **{log: str(path)})
    # Rejected records fill the dead-letter file; sent ones the request log.
    stale = iso_minutes_ago(8 * 1440) if log == "dead_letter_path" else NOW
    lines = [SCHEMA, *(rec(n, timestamp=stale, pad="x" * 400) for n in range(40))]
    # (a file size limit: the run's own files only, its pipes have no size)
    run = run_target({**cfg, "batch_size": 1}, lines, tmp_path, limits=["--fsize=6000:6000"])
    stderr = run.stderr
    assert run.returncode == 1, stderr
    assert "cannot be written (File too large)" in stderr
    written = path.read_bytes()
    assert written.endswith(b"\n")
    for line in written.splitlines():
        json.loads(line)  # every line whole
    # A part of a line left by a run killed mid-write: this run's lines start on a line of
    # their own.
    path.write_bytes(written + b'{"type": "RECORD", "stream": "c", "rec')
    sandbox.reset()
    again = run_target(cfg, [SCHEMA, rec(1, timestamp=stale)], tmp_path)
    assert again.returncode == 0, again.output
    after = path.read_bytes().splitlines()
    assert after[len(written.splitlines())] == b'{"type": "RECORD", "stream": "c", "rec'
    for line in after[len(written.splitlines()) + 1 :]:
        json.loads(line)


def _started(cfg: dict[str, Any], tmp_path: Path) -> subprocess.Popen[bytes]:
    """The real CLI started on `cfg`, its standard streams pipes (the test writes as it goes)."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return subprocess.Popen(
        [*TARGET_CMD, "--config", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_quiet_tap_gets_its_batch_delivered_and_its_state_written(sandbox, tmp_path):
    proc = _started(config(sandbox.url, tmp_path), tmp_path)
    assert proc.stdin is not None
    proc.stdin.write(
        ("\n".join([SCHEMA, rec(1), rec(2), rec(3), state({"bm": 3})]) + "\n").encode()
    )
    proc.stdin.flush()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and len(sandbox.events(PIXEL_ID)) < 3:
        time.sleep(0.2)
    arrived_while_quiet = stored(sandbox)
    assert proc.poll() is None  # the input is still open: the tap is only quiet
    stdout, _ = proc.communicate(b"", timeout=60)
    assert arrived_while_quiet == ["r1", "r2", "r3"]
    assert stdout.decode().splitlines() == ['{"bm": 3}']


def test_a_batch_manifest_naming_a_device_stops_cleanly(sandbox, tmp_path):
    lines = [SCHEMA, rec(1), _batch(["file:///dev/zero"]), rec(3)]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path, timeout=60)
    assert run.returncode == 1
    assert_clean(run)
    assert "'/dev/zero', a system file, not a tap's batch file" in run.stderr
    assert stored(sandbox) == ["r1"]


def test_a_batch_manifest_naming_a_fifo_stops_cleanly(sandbox, tmp_path):
    fifo = tmp_path / "part.jsonl"
    os.mkfifo(fifo)  # (reading it would wait for a writer forever)
    lines = [SCHEMA, rec(1), _batch([fifo.as_uri()], "none"), rec(3)]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path, timeout=60)
    assert run.returncode == 1
    assert_clean(run)
    assert f"{str(fifo)!r} is not a regular file" in run.stderr
    assert stored(sandbox) == ["r1"]


def test_a_schema_pattern_cannot_hang_the_run(sandbox, tmp_path):
    # ^(a+)+$ takes exponential time on "aaaa...!": 2**40 steps here if it were evaluated.
    evil = schema("c", {"id": {"type": "string", "pattern": "^(a+)+$"}}, ["id"])
    slow = record("c", {"id": "a" * 40 + "!", "timestamp": NOW, "type": "lead_created"})
    run = run_target(config(sandbox.url, tmp_path), [evil, slow, rec(2)], tmp_path, timeout=60)
    assert run.returncode == 0, run.output
    assert stored(sandbox) == ["a" * 40 + "!", "r2"]


def test_an_oppref_goes_out_exactly_as_the_record_holds_it(sandbox, tmp_path):
    cfg = config(sandbox.url, tmp_path, streams={"c": {"fields": {"oppref": "click"}}})
    run = run_target(cfg, [SCHEMA, rec(1, click=" Opp_Ref-AbC.123 ")], tmp_path)
    assert run.returncode == 0, run.output
    [event] = sandbox.events(PIXEL_ID)
    assert event["oppref"] == " Opp_Ref-AbC.123 "


def test_an_unknown_default_phone_region_is_a_config_error_not_a_crash(sandbox, tmp_path):
    run = run_target(
        config(sandbox.url, tmp_path, default_phone_region="ZZ"), [SCHEMA, rec(1)], tmp_path
    )
    assert run.returncode != 0
    assert "default_phone_region 'ZZ' is not a known region" in run.output
    assert "This is a bug" not in run.output
    assert "Traceback" not in run.output
    assert sandbox.stats()["requests"] == 0


# --- found by review of the record path (issue 13) ------------------------------------------


def _dead_lines(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "dead.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize(
    "refused",
    [
        _schema_line({"id": {"type": "strin"}}),  # the SDK's validator refuses it
        _schema_line({"id": {"$ref": "#/definitions/missing"}}),  # refused before the SDK sees it
        '{"type": "SCHEMA", "stream": "c", "schema": "x", "key_properties": ["id"]}',
        '{"type": "SCHEMA", "stream": "c", "key_properties": ["id"]}',
    ],
    ids=["sdk-refused", "checked-first", "schema-not-an-object", "schema-missing"],
)
def test_records_after_a_refused_schema_are_rejected_not_sent_under_the_old_one(
    sandbox, tmp_path, refused
):
    lines = [SCHEMA, rec(1), state({"b": 0}), refused, rec(2), rec(3), state({"b": 1})]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    # The stream has an entry: its records, which no replay can send (their SCHEMA would be
    # refused again), fail the run at its end, no STATE past the first of them.
    assert run.returncode == 1, run.stderr
    assert_clean(run)
    assert stored(sandbox) == ["r1"]
    assert "received=4 sent=1 " in run.stderr
    assert "rejected=3 " in run.stderr
    reasons = [line["dead_letter"]["reason"] for line in _dead_lines(tmp_path)]
    assert sum("whose SCHEMA was refused" in reason for reason in reasons) == 2
    assert run.states == [{"b": 0}]
    assert "Stream 'c': 2 records came under a SCHEMA that was refused (" in run.stderr
    # A SCHEMA that is accepted again makes the stream's records go out again.
    lines = [SCHEMA, rec(1), refused, rec(2), SCHEMA, rec(4), state({"b": 2})]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    assert "received=4 sent=2 " in run.stderr
    assert stored(sandbox) == ["r1", "r4"]


def _as_src(line: str) -> str:
    """A line of stream `c` as one of stream `src` (which stream maps then route)."""
    return line.replace('"stream": "c"', '"stream": "src"')


@pytest.mark.parametrize(
    "maps",
    [
        {"c": {"__source__": "src"}, "src": None},  # a copy made under the entry's name
        {"sr*": {"__alias__": "c"}},  # a map named by a pattern
        {"src": {"__alias__": "c"}},  # its own map's alias
        {"c": {"__source__": "sr*"}},  # a copy of every stream a pattern names
        {"src": {"__alias__": "'c'"}},  # an alias written as an expression... (a name)
    ],
    ids=["source", "pattern", "alias", "source pattern", "alias expression"],
)
def test_records_for_an_entry_through_stream_maps_under_a_refused_schema_fail_the_run(
    maps, sandbox, tmp_path
):
    """The stream reaches its entry through a stream map only: its records under a refused
    SCHEMA went unnoticed (exit 0, STATE past them) where the stream's own name has no entry."""

    src, refused = _as_src, _as_src(_schema_line({"id": {"$ref": "#/definitions/missing"}}))
    lines = [src(SCHEMA), src(rec(1)), state({"n": 1}), refused, src(rec(2)), state({"n": 2})]
    cfg = config(sandbox.url, tmp_path, stream_maps=maps)
    run = run_target(cfg, lines, tmp_path)
    assert_clean(run)
    assert run.returncode == 1, run.output
    assert stored(sandbox) == ["r1"]
    assert run.states == [{"n": 1}]
    assert "Stream 'src': 1 record came under a SCHEMA that was refused (" in run.stderr


@pytest.mark.parametrize(
    "maps",
    [
        {"sr*": None},  # dropped by a pattern
        {"src": None},  # dropped by its own map
        {"audit": {"__source__": "src"}},  # copied to a stream with no entry
        {"sr*": {"__alias__": "zzz"}},  # renamed to a stream with no entry
    ],
    ids=["dropped by a pattern", "dropped", "copied elsewhere", "renamed elsewhere"],
)
def test_records_for_no_entry_under_a_refused_schema_do_not_fail_the_run(maps, sandbox, tmp_path):
    """Stream maps that send the stream's records to no entry: they are rejected, as any of a
    refused SCHEMA, and the run goes on (they would not be sent anyway); a check that took any
    map naming the stream for one that sends it failed these runs, and every rerun."""

    src, refused = _as_src, _as_src(_schema_line({"id": {"$ref": "#/definitions/missing"}}))
    lines = [SCHEMA, rec(1), refused, src(rec(2)), rec(3), state({"n": 3})]
    cfg = config(sandbox.url, tmp_path, stream_maps=maps)
    run = run_target(cfg, lines, tmp_path)
    assert_clean(run)
    assert run.returncode == 0, run.output
    assert stored(sandbox) == ["r1", "r3"]
    assert run.states == [{"n": 3}]


def test_a_number_too_large_for_a_decimal_in_an_unread_field_is_kept_exactly(sandbox, tmp_path):
    def huge(n: int, extra: str = "") -> str:
        head = f'{{"type":"RECORD","stream":"c","record":{{"id":"r{n}","timestamp":"{NOW}",'
        return head + f'"type":"lead_created","x":{HUGE}{extra}}}}}'

    lines = [SCHEMA, huge(1, ',"amount":"bad"'), huge(2), state({"b": 1})]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 0, run.stderr
    assert_clean(run)
    assert stored(sandbox) == ["r2"]
    raw = (tmp_path / "dead.jsonl").read_text()
    assert f'"x":{HUGE}' in raw  # the record's JSON as it arrived, not a rounded number
    (dead,) = [line for line in _dead_lines(tmp_path) if line["type"] == "RECORD"]
    assert dead["dead_letter"]["stage"] == "schema"
    assert dead["dead_letter"]["key"] == {"id": "r1"}
    # Without key properties the event id is a hash of the record: no crash either.
    no_keys = schema("c", {"id": {"type": "string"}})
    lines = [no_keys, huge(1), huge(2), state({"b": 2})]
    streams = {"c": {"fields": {"id": "no_such_field"}}}
    run = run_target(config(sandbox.url, tmp_path, streams=streams), lines, tmp_path)
    assert run.returncode == 0, run.stderr
    assert_clean(run)


def test_a_stream_map_failure_is_dead_lettered_under_its_own_stream_for_replay(sandbox, tmp_path):
    maps = {"c": {"__alias__": "cc", "newid": "'n' + str(100 // k)"}}
    streams = {"cc": {"fields": {"id": "newid"}}}
    lines = [SCHEMA, rec(1, k=1), rec(2, k=0), state({"b": 1})]
    run = run_target(
        config(sandbox.url, tmp_path, streams=streams, stream_maps=maps), lines, tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert_clean(run)
    assert stored(sandbox) == ["n100"]
    assert "c: received=1 rejected=1 (mapping=1)" in run.stderr
    dead = _dead_lines(tmp_path)
    assert [(line["type"], line["stream"]) for line in dead] == [("SCHEMA", "c"), ("RECORD", "c")]
    assert dead[0]["schema"]["properties"].keys() == {"id", "amount"}  # the stream's own
    assert dead[1]["record"]["k"] == 0  # as it arrived, not as the map would have made it
    # The map fixed, the replay runs it again: the event gets the map's id.
    fixed = {"c": {"__alias__": "cc", "newid": "'n' + str(k)"}}
    replay = (tmp_path / "dead.jsonl").read_bytes()
    replay_dir = tmp_path / "replay"
    replay_dir.mkdir()
    run = run_target(
        config(sandbox.url, replay_dir, streams=streams, stream_maps=fixed), replay, replay_dir
    )
    assert run.returncode == 0, run.stderr
    assert stored(sandbox) == ["n0", "n100"]


@pytest.mark.parametrize("rejected_by", ["mapping", "api"])
def test_a_record_the_stream_maps_made_is_dead_lettered_as_it_arrived(
    rejected_by, sandbox, tmp_path
):
    """Rejected after the maps made it (by the mapping, or by the API), its dead letter is the
    record as it arrived under its own stream: a replay through the same maps makes the same
    record again (the map applied twice sent a hundredth of the amount)."""
    maps = {"c": {"__alias__": "cc", "amount": "float(amount) / 100"}}
    currency = "cur" if rejected_by == "mapping" else "currency"
    streams = {"cc": {"fields": {"currency": currency, "amount": "amount"}}}
    props = {"id": {"type": "string"}, "amount": {"type": "integer"}}
    lines = [schema("c", props, ["id"]), rec(1, amount=250000, currency="USD"), state({"b": 1})]

    def refuse(handler: BaseHTTPRequestHandler) -> None:
        error = {"message": "invalid amount", "param": "events[0].data.amount", "code": "x"}
        body = json.dumps({"error": {**error, "type": "invalid_request_error"}}).encode()
        _answer(handler, 422, body, "application/json")

    gateway = _Gateway(refuse)
    try:
        url = sandbox.url if rejected_by == "mapping" else gateway.url
        cfg = config(url, tmp_path, streams=streams, stream_maps=maps)
        run = run_target(cfg, lines, tmp_path)
    finally:
        gateway.close()
    assert run.returncode == 0, run.stderr
    assert "cc: received=1 rejected=1" in run.stderr
    assert stored(sandbox) == []
    dead = _dead_lines(tmp_path)
    assert [(line["type"], line["stream"]) for line in dead] == [("SCHEMA", "c"), ("RECORD", "c")]
    assert dead[0]["schema"]["properties"] == props  # the stream's own, not the map's
    assert dead[1]["record"]["amount"] == 250000  # as it arrived, not as the map made it
    assert dead[1]["dead_letter"]["key"] == {"id": "r1"}
    assert dead[1]["dead_letter"]["stage"] == rejected_by
    # The cause fixed, the replay through the same maps sends what the first run would have.
    fixed = {"cc": {"fields": {"currency": "'USD'", "amount": "amount"}}}
    replay = (tmp_path / "dead.jsonl").read_bytes()
    replay_dir = tmp_path / "replay"
    replay_dir.mkdir()
    cfg = config(sandbox.url, replay_dir, streams=fixed, stream_maps=maps)
    run = run_target(cfg, replay, replay_dir)
    assert run.returncode == 0, run.stderr
    [event] = sandbox.events(PIXEL_ID)
    assert event["data"]["amount"] == 250000  # $2,500.00


def test_tap_metadata_stays_in_the_dead_letter_of_a_record_decoded_whole(sandbox, tmp_path):
    streams = {"c": {"fields": {"custom_data": "@"}}}  # `@` reads the whole record
    line = rec(1, amount="x", _sdc_extracted_at="2020-01-01T00:00:00Z", _sdc_sequence=5)
    run = run_target(config(sandbox.url, tmp_path, streams=streams), [SCHEMA, line], tmp_path)
    assert run.returncode == 0, run.stderr
    (dead,) = [line for line in _dead_lines(tmp_path) if line["type"] == "RECORD"]
    assert dead["record"]["_sdc_sequence"] == 5
    assert dead["record"]["_sdc_extracted_at"] == "2020-01-01T00:00:00Z"


def test_numbers_with_huge_exponents_are_rejections_not_a_hung_or_crashed_run(sandbox, tmp_path):
    # 1e999999999 as an id: writing it out as an integer takes minutes and gigabytes; 1e5000 is
    # past what Python writes out. Each such record is rejected at mapping, and the run goes on.
    numeric = schema(
        "n",
        {"id": {"type": ["string", "number"]}, "x": {"type": ["string", "number", "null"]}},
        ["id"],
    )
    lines = [
        numeric,
        record("n", {"id": "ok", "timestamp": NOW, "type": "lead_created"}),
        record("n", {"id": 1e999999999, "timestamp": NOW, "type": "lead_created"}),
        record("n", {"id": 1e999999999, "timestamp": NOW, "type": "lead_created"}).replace(
            "Infinity", "1e5000"
        ),
        record("n", {"id": "f", "x": 1e999999999, "timestamp": NOW, "type": "trial_started"}),
        record("n", {"id": "t", "x": "9" * 5000, "timestamp": NOW, "type": "lead_created"}),
    ]
    # (json.dumps writes 1e999999999 as Infinity: write it as the tap would)
    lines[2] = lines[2].replace("Infinity", "1e999999999")
    lines[4] = lines[4].replace("Infinity", "1e999999999")
    streams = {
        "n": {"fields": {"external_id": "to_number(x)", "plan_id": "to_string(floor(x))"}},
    }
    run = run_target(config(sandbox.url, tmp_path, streams=streams), lines, tmp_path, timeout=60)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert stored(sandbox) == ["f", "ok", "t"]
    letters = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()]
    reasons = [m["dead_letter"]["reason"] for m in letters if m["type"] == "RECORD"]
    assert reasons == [
        "id 1E+999999999 is a number of more than 256 digits",
        "id 1E+5000 is a number of more than 256 digits",
    ]
    assert "received=5 sent=3" in run.stderr
    by_id = {event["id"]: event for event in sandbox.events(PIXEL_ID)}
    assert by_id["f"]["data"] == {"type": "plan_enrollment", "plan_id": "1E+999999999"}
    assert "user" not in by_id["t"]  # to_number gave a number of 5,000 digits: no external id


@pytest.mark.parametrize("batch_size", [1, 100])
def test_a_later_copy_of_an_event_the_api_refused_is_sent_not_dropped_as_a_duplicate(
    batch_size, tmp_path
):
    # The API's clock runs two days ahead of the target's here, so a six-day-old copy passes the
    # target's window check and is refused by the API (422). The corrected copy behind it, with
    # the same id, must then go out; a third copy behind that one is the duplicate.
    ahead_ms = 2 * 24 * 3600 * 1000
    clock = lambda: int(time.time() * 1000) + ahead_ms  # noqa: E731
    with start_sandbox(api_keys={API_KEY}, pixel_ids={PIXEL_ID}, now_ms=clock) as sandbox:
        lines = [
            SCHEMA,
            record("c", {"id": "x", "timestamp": iso_minutes_ago(8640), "type": "lead_created"}),
            rec(1),
            record("c", {"id": "x", "timestamp": NOW, "type": "lead_created"}),
            record("c", {"id": "x", "timestamp": iso_minutes_ago(5), "type": "lead_created"}),
            state({"bookmark": 4}),
        ]
        cfg = config(sandbox.url, tmp_path, batch_size=batch_size)
        run = run_target(cfg, lines, tmp_path)
        events = {event["id"]: event for event in sandbox.events(PIXEL_ID)}
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert sorted(events) == ["r1", "x"]
    assert events["x"]["timestamp_ms"] == to_epoch_ms(NOW)  # the copy behind the refused one
    letters = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()]
    [refused] = [m for m in letters if m["type"] == "RECORD"]
    assert refused["dead_letter"]["stage"] == "api"
    assert "older than 7 days" in refused["dead_letter"]["reason"]
    assert "received=4 sent=2 validated=0 duplicate=1" in run.stderr
    assert "rejected=1" in run.stderr
    assert run.states == [{"bookmark": 4}]


def _refusal_naming_nothing(handler: BaseHTTPRequestHandler) -> None:
    # The API's error shape, naming no event, and worded differently each time.
    _api_error(
        handler, {"message": f"invalid pixel configuration (request id {time.monotonic_ns()})"}
    )


def test_refusals_count_in_a_row_in_the_order_sent_not_the_order_answered(tmp_path):
    """Every fourth event accepted at once, the others refused after a while, naming no event:
    never more than three refusals in a row as sent. With four requests in flight the
    acceptances came back first, and the refusals, counted as answered, made a false stop."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        [event] = json.loads(handler.body)["events"]
        if int(event["id"][1:]) % 4 == 3:
            _answer(handler, 200, b"{}", "application/json")
        else:
            time.sleep(0.3)
            _refusal_naming_nothing(handler)

    run, _ = _run_against(answer, 24, tmp_path, batch_size=1, max_concurrent_requests=4)
    assert run.returncode == 0, run.output
    assert "in a row" not in run.stderr
    assert "received=24 sent=6" in run.stderr
    assert "rejected=18" in run.stderr
    assert run.states == [{"bookmark": 24}]


def _run_against(answer: Any, records: int, tmp_path: Path, **settings: Any) -> Any:
    """The run of `records` records (then STATE {"bookmark": records}) against a server that
    answers as `answer` says, with these settings; and the number of requests it took."""
    gateway = _Gateway(answer)
    try:
        lines = [SCHEMA, *(rec(n) for n in range(records)), state({"bookmark": records})]
        cfg = config(gateway.url, tmp_path, **settings)
        return run_target(cfg, lines, tmp_path), gateway.requests
    finally:
        gateway.close()


def test_one_slow_batch_before_refusals_in_a_row_does_not_hold_back_the_stop(tmp_path):
    """The first event is accepted after 2 s; every later one is refused at once, naming no
    event. Five refusals of consecutive batches are in a row whatever the first one does: the
    run stops there, not after dead-lettering everything sent while the first was slow; the
    first, accepted meanwhile, is counted as sent."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        [event] = json.loads(handler.body)["events"]
        if event["id"] == "r0":
            time.sleep(2)
            _answer(handler, 200, b"{}", "application/json")
        else:
            _refusal_naming_nothing(handler)

    run, requests = _run_against(answer, 200, tmp_path, batch_size=1, max_concurrent_requests=4)
    assert run.returncode == 1
    assert_clean(run)
    # (5, or up to four more: refusals answered out of order join up when the one between
    # them is answered, four requests in flight)
    assert re.search(r"The API refused [5-9] events in a row, each sent alone", run.stderr)
    assert run.stdout == ""
    assert "sent=1 " in run.stderr
    letters = (tmp_path / "dead.jsonl").read_text().splitlines()
    assert 4 <= len([m for m in letters if '"RECORD"' in m]) <= 8
    assert requests < 20


def test_refusals_of_every_event_one_at_a_time_stop_the_run_instead_of_rejecting_all(tmp_path):
    # With batches of one event the uploader's own check (one batch, one message) cannot see it.
    gateway = _Gateway(_refusal_naming_nothing)
    try:
        lines = [SCHEMA, *(rec(n) for n in range(30)), state({"bookmark": 30})]
        cfg = config(gateway.url, tmp_path, batch_size=1, max_concurrent_requests=1)
        run = run_target(cfg, lines, tmp_path)
    finally:
        gateway.close()
    assert run.returncode == 1
    assert_clean(run)
    assert "The API refused 5 events in a row, each sent alone" in run.stderr
    assert run.stdout == ""  # no STATE past the refused events
    letters = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert len([m for m in letters if m["type"] == "RECORD"]) == 4
    assert gateway.requests < 30


def test_values_that_may_be_personal_data_stay_out_of_the_log(sandbox, tmp_path):
    # A column mapped to the wrong field: the reason quotes the value, which the dead-letter
    # file (owner-only) keeps and the log leaves out.
    lines = [
        SCHEMA,
        rec(1, timestamp="victim.person@example.com"),
        rec(2, timestamp="Jane Q Doe"),
        rec(3, timestamp="+1 (415) 555-2671"),
        rec(4, timestamp="203.0.113.77"),
        rec(5, currency="XYZ", amount=1),
    ]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    for value in ("victim.person", "Jane Q Doe", "555-2671", "203.0.113.77"):
        assert value not in run.output
    assert "timestamp '…' is not an ISO 8601 date-time" in run.stderr
    assert "'XYZ'" in run.stderr  # (a currency code is no personal data: still named)
    dead = (tmp_path / "dead.jsonl").read_text()
    assert "timestamp 'victim.person@example.com' is not" in dead
    assert "Jane Q Doe" in dead


def _refusal_quoting_an_ip(handler: BaseHTTPRequestHandler) -> None:
    _api_error(
        handler, {"message": "invalid ip 203.0.113.77", "param": "events[0].user.ip_address"}
    )


def test_a_server_message_quoting_an_identifier_is_logged_without_it(tmp_path):
    gateway = _Gateway(_refusal_quoting_an_ip)
    try:
        lines = [SCHEMA, rec(1, ip_address="203.0.113.77")]
        run = run_target(config(gateway.url, tmp_path), lines, tmp_path)
    finally:
        gateway.close()
    assert run.returncode == 0, run.output
    assert "203.0.113.77" not in run.output
    assert "invalid ip …" in run.stderr
    [letter] = [
        json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines() if '"RECORD"' in x
    ]
    assert letter["dead_letter"]["server_message"] == "invalid ip 203.0.113.77"


@pytest.mark.parametrize("named", ["alike", "through a link", "through a hard link"])
def test_the_request_log_and_the_dead_letter_file_cannot_be_one_file(named, sandbox, tmp_path):
    """Also when one is a link to the other: the request log's lines went into the dead-letter
    file, breaking its replay."""
    same = str(tmp_path / "out.jsonl")
    other = same
    if named != "alike":
        other = str(tmp_path / "link.jsonl")
        Path(same).touch()
        (os.symlink if named == "through a link" else os.link)(same, other)
    cfg = config(sandbox.url, tmp_path, dead_letter_path=same, request_log_path=other)
    run = run_target(cfg, [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 1
    assert_clean(run)
    assert "dead_letter_path and request_log_path name the same file" in run.stderr
    assert sandbox.stats()["requests"] == 0


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"),
    reason="needs root and setpriv (util-linux): a user without a home",
)
def test_a_file_in_a_home_directory_there_is_none_of_is_refused():
    """`~/dead.jsonl` where HOME is unset and the user has no home (a uid without a passwd
    entry, as containers run): a folder named ~ was made in the working directory."""
    import tempfile

    where = Path(tempfile.mkdtemp(prefix="capi-nohome-"))  # (pytest's own is root's alone)
    where.chmod(0o777)
    path = where / "config.json"
    path.write_text(
        json.dumps(config("http://127.0.0.1:9/v1/events", where, dead_letter_path="~/d.jsonl"))
    )
    path.chmod(0o644)
    env = {k: v for k, v in os.environ.items() if k != "HOME"}
    done = subprocess.run(
        ["setpriv", "--reuid", "54324", "--regid", "54324", "--clear-groups", *TARGET_CMD,
         "--config", str(path)],
        input=f"{SCHEMA}\n{rec(1)}\n".encode(), capture_output=True, timeout=120, check=False,
        cwd=where, env=env,
    )  # fmt: skip
    err = done.stderr.decode(errors="replace")
    assert done.returncode == 1, err
    assert "dead_letter_path starts with ~/, but there is no home directory here" in err
    assert "Traceback" not in err
    assert not (where / "~").exists()
    shutil.rmtree(where)


@pytest.mark.parametrize("how", ["--input", "stdin"])
def test_the_request_log_cannot_be_the_file_the_run_reads(how, sandbox, tmp_path):
    """A request log there appended a line to the input while it was read."""
    data = tmp_path / "input.singer"
    data.write_text("\n".join([SCHEMA, rec(1), state({"b": 1})]) + "\n")
    before = data.read_bytes()
    cfg = config(sandbox.url, tmp_path, request_log_path=str(data))
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    command = [*TARGET_CMD, "--config", str(tmp_path / "config.json")]
    with data.open("rb") as stdin:
        if how == "--input":
            command += ["--input", str(data)]
            stdin = None  # type: ignore[assignment]
        proc = subprocess.run(command, stdin=stdin, capture_output=True, timeout=60, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert "Traceback" not in err
    assert "it is the file the run reads its input from" in err
    assert data.read_bytes() == before
    assert sandbox.stats()["requests"] == 0


def test_a_stream_name_cannot_forge_log_lines(sandbox, tmp_path):
    # (a newline, a terminal's "cursor up, erase line", Unicode's line separator)
    forged = "c\n2026-12-02 16:00:00,000 | ERROR    | target-openai-capi | FORGED\x1b[1A\u2028"
    lines = [
        schema(forged, {"id": {"type": "string"}}, ["id"]),
        record(forged, {"id": "a", "timestamp": NOW, "type": "lead_created"}),
    ]
    cfg = config(sandbox.url, tmp_path, allow_unmatched_streams=True)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "FORGED" in run.stderr  # named, escaped, on the line that names it
    assert not [line for line in run.stderr.split("\n") if line.startswith("2026-12-02 16:00:00")]
    assert "\x1b" not in run.stderr
    assert "\u2028" not in run.stderr


def test_bad_events_in_a_row_named_only_in_the_message_are_rejections_not_a_stop(tmp_path):
    # A server that names no `param` but says which event in its message ("events[0]..."), as
    # the sandbox does with name_params=False: five stale events in a row are bad data, each
    # dead-lettered, and the run goes on (its clock runs two days ahead of the target's).
    ahead_ms = 2 * 24 * 3600 * 1000
    clock = lambda: int(time.time() * 1000) + ahead_ms  # noqa: E731
    with start_sandbox(
        api_keys={API_KEY}, pixel_ids={PIXEL_ID}, now_ms=clock, name_params=False
    ) as sandbox:
        stale = [
            record("c", {"id": f"s{n}", "timestamp": iso_minutes_ago(8640), "type": "lead_created"})
            for n in range(5)
        ]
        lines = [SCHEMA, rec(1), *stale, rec(2), state({"bookmark": 7})]
        run = run_target(config(sandbox.url, tmp_path, batch_size=1), lines, tmp_path)
        stored_ids = stored(sandbox)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert stored_ids == ["r1", "r2"]
    assert "received=7 sent=2" in run.stderr
    assert "rejected=5" in run.stderr
    assert run.states == [{"bookmark": 7}]


@pytest.mark.parametrize(
    ("setting", "device", "said"),
    [
        ("dead_letter_path", "/dev/stdout", "standard output, which carries its STATE"),
        ("request_log_path", "/dev/stderr", "standard error, which carries its log"),
    ],
)
def test_an_output_file_that_is_the_targets_own_stdout_or_stderr_is_refused(
    setting, device, said, sandbox, tmp_path
):
    # (run_target reads both through pipes, as Meltano does)
    run = run_target(config(sandbox.url, tmp_path, **{setting: device}), [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 1
    assert_clean(run)
    assert f"{setting} '{device}' cannot be written" in run.stderr
    assert said in run.stderr
    assert run.stdout == ""


@pytest.mark.parametrize("setting", ["dead_letter_path", "request_log_path"])
def test_an_output_file_that_is_the_config_file_is_refused(setting, sandbox, tmp_path):
    """The config file (run_target writes tmp_path/config.json and passes it as --config) is
    read, never appended to: the next run would find it broken."""
    cfg = config(sandbox.url, tmp_path, **{setting: str(tmp_path / "config.json")})
    lines = [SCHEMA, rec(1), "not json"]  # (a rejection: something to write)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 1
    assert_clean(run)
    assert f"{setting} '{tmp_path / 'config.json'}' cannot be written (it is the config file" in (
        run.stderr
    )
    assert json.loads((tmp_path / "config.json").read_text()) == cfg
    assert stored(sandbox) == []


NULLABLE = [
    "batch_size",
    "max_attempts",
    "max_concurrent_requests",
    "max_retry_seconds",
    "request_timeout_seconds",
    "stream_maps",
    "dry_run",
    "worker_processes",
    "dead_letter_path",
    "on_rejected",
    "user_field_style",
    "default_phone_region",
]


@pytest.mark.parametrize("name", NULLABLE)
def test_a_setting_given_as_null_takes_its_default(name, sandbox, tmp_path):
    # (a config written from a template: every optional setting present, unset ones null)
    run = run_target(config(sandbox.url, tmp_path, **{name: None}), [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert stored(sandbox) == ["r1"]


def test_an_empty_api_url_is_a_config_error(sandbox, tmp_path):
    run = run_target(config(sandbox.url, tmp_path, api_url=" "), [SCHEMA, rec(1)], tmp_path)
    assert run.returncode != 0
    assert "api_url is empty" in run.output
    assert_clean(run)


def test_the_api_key_never_reaches_the_files_the_target_writes(sandbox, tmp_path):
    """A BATCH file that is a config file (a tap's mistake, or a hostile one): its record holds
    the key, and is rejected (no timestamp) into the dead-letter file; another record carries
    it in its source_url, which is sent. The dead-letter file and the request log hold
    [redacted]."""
    leaked = tmp_path / "leaked.jsonl"
    leaked.write_text(json.dumps({"api_key": API_KEY, "pixel_id": PIXEL_ID}) + "\n")
    request_log = tmp_path / "requests.jsonl"
    cfg = config(sandbox.url, tmp_path, request_log_path=str(request_log))
    page = f"https://shop.example.com/key/{API_KEY}"
    lines = [SCHEMA, rec(1, source_url=page), _batch([leaked.as_uri()], "none")]
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    dead = (tmp_path / "dead.jsonl").read_text()
    assert '"api_key": "[redacted]"' in dead
    logged = request_log.read_text()
    assert "key/[redacted]" in logged
    for written in (dead, logged, run.stdout):
        assert API_KEY not in written


def test_a_javascript_source_url_is_rejected_not_sent(sandbox, tmp_path):
    # The contract's "scheme://host" lets javascript://alert(1) through; no page has that URL.
    bad = rec(2, source_url="javascript://alert(document.cookie)", action_source="web")
    run = run_target(config(sandbox.url, tmp_path), [SCHEMA, rec(1), bad], tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert stored(sandbox) == ["r1"]
    [line] = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()[1:]]
    assert line["dead_letter"]["stage"] == "mapping"
    assert line["dead_letter"]["reason"] == "source_url is a javascript: URL, not a page's"


def test_a_source_url_with_spaces_is_sent_as_a_browser_writes_it(sandbox, tmp_path):
    """A page named with a space (`/thank you`) was refused, as 'not a URL with a scheme and a
    host': the web order was lost. It is sent percent-encoded, as the pixel reports it; a host
    with a space is no URL, and the reason says what is wrong."""
    lines = [
        SCHEMA,
        rec(1, source_url="https://shop.example/thank you", action_source="web"),
        rec(2, source_url="https://shop example/thanks", action_source="web"),
    ]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    [event] = sandbox.events(PIXEL_ID)
    assert (event["id"], event["source_url"]) == ("r1", "https://shop.example/thank%20you")
    [line] = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()[1:]]
    assert line["dead_letter"]["stage"] == "validation"
    assert line["dead_letter"]["reason"].endswith(
        "is not a URL with a scheme and a host, without spaces"
    )


def test_a_closed_standard_output_is_named_not_called_a_bug(sandbox, tmp_path):
    """What reads the target's STATE went away (`target ... | head -1`): the first STATE
    write fails; the run stops with one line that says so, no traceback."""
    lines = [SCHEMA, rec(1), state({"bm": 1}), rec(2), state({"bm": 2})]
    proc = _started(config(sandbox.url, tmp_path), tmp_path)
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the first STATE
    _, err = proc.communicate(("\n".join(lines) + "\n").encode(), timeout=60)
    text = err.decode()
    assert proc.returncode == 1, text
    assert "The STATE output (standard output) was closed by what reads it" in text
    assert "This is a bug" not in text
    assert "Traceback" not in text
    assert "BrokenPipeError" not in text


def test_a_full_standard_output_is_named_not_called_a_bug(sandbox, tmp_path):
    """STATE goes to a file on a full disk (here /dev/full): the run stops saying STATE could
    not be written and why, after delivering; not 'Unexpected error ... a bug'."""
    lines = [SCHEMA, rec(1), state({"bm": 1})]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config(sandbox.url, tmp_path)))
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [*TARGET_CMD, "--config", str(path)],
            input=("\n".join(lines) + "\n").encode(),
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    text = done.stderr.decode()
    assert done.returncode == 1, text
    assert "STATE could not be written to standard output (No space left on device)" in text
    assert "This is a bug" not in text
    assert "Traceback" not in text
    assert stored(sandbox) == ["r1"]


@pytest.mark.parametrize("one_at_a_time", [False, True])
def test_a_request_log_that_cannot_be_written_stops_the_run_but_counts_what_was_sent(
    one_at_a_time, sandbox, tmp_path
):
    """The request log's disk is full (/dev/full): the run stops naming the log, but the batch
    the API accepted counts as sent and its STATE goes out (it said sent=0, unsettled=2)."""
    lines = [SCHEMA, rec(1), rec(2), state({"bm": 2})]
    cfg = config(sandbox.url, tmp_path, request_log_path="/dev/full")
    if one_at_a_time:  # (a second request of the batch: the run says why it stopped, still)
        cfg.update(max_concurrent_requests=1, validate_first=True)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 1, run.output
    assert "request_log_path '/dev/full' cannot be written (No space left on device)" in run.stderr
    assert "delivery was stopped" not in run.stderr
    assert_clean(run)
    if one_at_a_time:  # validated, never sent: nothing counts as sent
        assert stored(sandbox) == []
        assert run.states == []
        return
    assert stored(sandbox) == ["r1", "r2"]
    assert "received=2 sent=2" in run.stderr
    assert run.states == [{"bm": 2}]


def test_a_batch_delivered_before_another_failed_is_counted_and_bookmarked(tmp_path):
    """One request at a time, two streams: at the end of input the first stream's batch is
    accepted, the second's refused (401, fatal). The accepted one counts as sent and the STATE
    that covers only it is written (its result was dropped with the error before)."""

    def answer(handler: Any) -> None:
        if b'"id":"b1"' in handler.body:
            body = json.dumps({"error": {"message": "Invalid API key", "type": "auth"}})
            _answer(handler, 401, body.encode(), "application/json")
        else:
            _answer(handler, 200, b"{}", "application/json")

    gateway = _Gateway(answer)
    try:
        lines = [
            schema("a", {"id": {"type": "string"}}, ["id"]),
            record("a", {"id": "a1", "timestamp": NOW, "type": "lead_created"}),
            state({"s": 1}),
            schema("b", {"id": {"type": "string"}}, ["id"]),
            record("b", {"id": "b1", "timestamp": NOW, "type": "lead_created"}),
            state({"s": 2}),
        ]
        cfg = config(gateway.url, tmp_path, streams={"a": {}, "b": {}}, max_concurrent_requests=1)
        run = run_target(cfg, lines, tmp_path)
    finally:
        gateway.close()
    assert run.returncode == 1
    assert_clean(run)
    assert "a: received=1 sent=1" in run.stderr
    assert "b: received=1 unsettled=1" in run.stderr
    assert run.states == [{"s": 1}]


def test_a_surname_mapped_to_the_currency_stays_out_of_the_log(sandbox, tmp_path):
    streams = {"c": {"fields": {"amount": "amount", "currency": "last_name"}}}
    bad = record(
        "c",
        {"id": "r2", "timestamp": NOW, "type": "order_created", "amount": 5, "last_name": "Smith"},
    )
    run = run_target(config(sandbox.url, tmp_path, streams=streams), [SCHEMA, bad], tmp_path)
    assert run.returncode == 0, run.output
    assert "Smith" not in run.stderr
    assert "Rejected a record of 'c' at mapping" in run.stderr
    [line] = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()[1:]]
    assert "'Smith'" in line["dead_letter"]["reason"]  # (the file keeps what to fix)


def test_a_long_personal_value_cut_short_in_a_reason_stays_out_of_the_log(sandbox, tmp_path):
    """A value cut to its first characters in a reason is still quoted, so the log hides it."""
    streams = {"c": {"fields": {"amount": "amount", "currency": "'USD'"}}}
    address = "Janelle Marie Doe-Smith, 742 Evergreen Terrace, Springfield IL"
    bad = record("c", {"id": "r3", "timestamp": NOW, "type": "order_created", "amount": address})
    lines = [schema("c", {"id": {"type": "string"}}, ["id"]), bad]
    run = run_target(config(sandbox.url, tmp_path, streams=streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "Janelle" not in run.stderr
    assert "Rejected a record of 'c' at mapping" in run.stderr
    [line] = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()[1:]]
    assert "'Janelle Marie Doe-Smith, 742 Evergr...'" in line["dead_letter"]["reason"]


def test_a_batch_file_in_shared_memory_is_read(tmp_path):
    import shutil
    import tempfile

    from target_openai_capi.reading.batch_files import check_batch_message, read_lines

    message = json.loads(_batch(["file:///dev/shm/tap-orders/part-1.jsonl.gz"]))
    paths = check_batch_message(message)
    assert [str(p) for p in paths] == ["/dev/shm/tap-orders/part-1.jsonl.gz"]
    if not Path("/dev/shm").is_dir():
        return
    where = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="capi-"))  # (gzip, as said: read so)
    try:
        uri = _batch_file(where / "part-1.jsonl.gz", ORDERS[:2])
        [path] = check_batch_message(json.loads(_batch([uri])))
        assert [json.loads(line)["id"] for _, line in read_lines(path)] == ["b0", "b1"]
    finally:
        shutil.rmtree(where)


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize(
    "value", [2**64, -(2**63) - 1, "-9999999999999999999.0"], ids=["2**64", "-2**63-1", "-1e19"]
)
def test_an_integer_beyond_64_bits_in_custom_data_rejects_its_record_only(
    value, workers, sandbox, tmp_path
):
    """The request's encoder writes integers of 64 bits: a larger one in custom_data crashed the
    run ("This is a bug") at every rerun. It is the record's problem: rejected with a reason."""
    line = record("c", {"id": "big", "timestamp": NOW, "type": "custom", "nm": "q", "v": 0})
    line = line.replace('"v": 0', f'"v": {value}')  # (as the tap writes it: a JSON number)
    streams = {"c": {"fields": {"custom_event_name": "nm", "custom_data": "{v: v}"}}}
    cfg = config(sandbox.url, tmp_path, streams=streams, worker_processes=workers)
    good = record("c", {"id": "ok", "timestamp": NOW, "type": "custom", "nm": "q", "v": 2**63})
    run = run_target(cfg, [SCHEMA, line, good, state({"b": 2})], tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert stored(sandbox) == ["ok"]
    assert sandbox.events(PIXEL_ID)[0]["data"]["v"] == 2**63  # (within 64 bits: exact)
    assert run.states == [{"b": 2}]
    [letter] = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()[1:]]
    assert letter["dead_letter"]["stage"] == "mapping"
    assert "custom_data.v is beyond a 64-bit integer" in letter["dead_letter"]["reason"]


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("keyed", [True, False], ids=["keyed, dead letters", "unkeyed, none"])
def test_a_stream_map_that_makes_nan_or_infinity_rejects_the_record(
    keyed, workers, sandbox, tmp_path
):
    """`float(price)` on "NaN" or "inf": the record is rejected with its reason; the dead letter
    (which JSON writes no NaN into) and an unkeyed record's id (a hash) crashed the run. The
    dead letter holds the record as it arrived, which the map makes again on a replay."""
    streams = {"c": {"event_type": "order_created", "fields": {"currency": "'USD'"}}}
    extra: dict[str, Any] = {"worker_processes": workers}
    if not keyed:
        extra["dead_letter_path"] = None
    cfg = config(sandbox.url, tmp_path, streams=streams, **extra)
    cfg["stream_maps"] = {"c": {"amount": "float(price)"}}
    keys = ["id"] if keyed else []  # (unkeyed and without an id: the id is the record's hash)
    lines = [schema("c", {"id": {"type": "string"}, "price": {"type": "string"}}, keys)]
    lines += [
        record("c", {"timestamp": NOW, "price": price, **({"id": f"x{n}"} if keyed else {})})
        for n, price in enumerate(["NaN", "inf", "-inf", "1.50"])
    ]
    run = run_target(cfg, [*lines, state({"b": 4})], tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    [event] = sandbox.events(PIXEL_ID)
    assert event["data"]["amount"] == 150
    assert run.states == [{"b": 4}]
    assert "rejected=3" in run.stderr
    if keyed:
        letters = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()]
        records = [m["record"] for m in letters if m["type"] == "RECORD"]
        assert records == [
            {"timestamp": NOW, "price": price, "id": f"x{n}"}
            for n, price in enumerate(["NaN", "inf", "-inf"])
        ]
        assert all(
            "is not a finite number" in m["dead_letter"]["reason"]
            for m in letters
            if m["type"] == "RECORD"
        )


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize(
    ("over", "how"),
    [(1024 * 1024, "stdin"), (200_000, "--input")],
    ids=["1 MiB over, piped", "just over, a file"],
)
def test_a_line_over_16_mib_is_rejected_and_the_run_goes_on(over, how, workers, sandbox, tmp_path):
    """A broken tap's endless line was read whole (gigabytes, then the dead letter held all of
    it): it is skipped to its end, rejected at input with its length, its first bytes kept.
    One just over the limit, read whole with its end, is rejected too (a worker sent it)."""
    huge = rec(2, note="y" * (16 * 1024 * 1024 + over))
    cfg = config(sandbox.url, tmp_path, worker_processes=workers)
    lines = [SCHEMA, rec(1), huge, rec(3), state({"b": 3})]
    if how == "stdin":
        run = run_target(cfg, lines, tmp_path)
    else:
        (tmp_path / "input.jsonl").write_text("\n".join(lines) + "\n")
        args = ["--input", str(tmp_path / "input.jsonl")]
        run = run_target(cfg, b"", tmp_path, extra_args=args)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert stored(sandbox) == ["r1", "r3"]
    assert run.states == [{"b": 3}]
    [letter] = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert letter["dead_letter"]["stage"] == "input"
    assert (
        f"line of {len(huge.encode()):,} bytes, over the limit of 16,777,216"
        in (letter["dead_letter"]["reason"])
    )
    assert huge.startswith(letter["dead_letter"]["raw_line"])
    assert len(letter["dead_letter"]["raw_line"]) == 65_536


def test_a_server_naming_an_event_a_request_does_not_have_refuses_everything(tmp_path):
    """Every request answered 400 naming `events[7]`, however many events it holds: each event,
    sent alone, was dead-lettered for it, and STATE moved past them all. The event of a request
    of one is `events[0]`: such an answer says nothing of events, and the run stops."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        _api_error(handler, {"message": "Invalid event at events[7].", "param": "events[7]"})

    run, _ = _run_against(answer, 12, tmp_path)
    assert run.returncode == 1
    assert_clean(run)
    assert (
        "the answer to a request of one event names events[7], which it did not have"
    ) in run.stderr
    assert run.stdout == ""
    assert not (tmp_path / "dead.jsonl").exists()


def test_a_413_that_names_its_small_event_rejects_that_event(tmp_path):
    """A 413 in the API's own format naming the event (`param` events[0]) is about that event,
    however small: it is rejected as too large, the others sent, the run goes on."""
    accepted: list[str] = []

    def answer(handler: BaseHTTPRequestHandler) -> None:
        events = json.loads(handler.body)["events"]
        ids = [event["id"] for event in events]
        if "r2" in ids:
            error = {"message": "Event too large.", "param": f"events[{ids.index('r2')}]"}
            body = json.dumps({"error": {**error, "type": "invalid_request_error"}}).encode()
            _answer(handler, 413, body, "application/json")
        else:
            accepted.extend(ids)
            _answer(handler, 200, b"{}", "application/json")

    run, _ = _run_against(answer, 4, tmp_path)
    assert run.returncode == 0, run.output
    assert sorted(accepted) == ["r0", "r1", "r3"]
    assert run.states == [{"bookmark": 4}]
    [letter] = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()[1:]]
    assert letter["record"]["id"] == "r2"
    assert "the event alone is too large for one request" in letter["dead_letter"]["reason"]


def test_input_that_looks_like_the_overlong_line_mark_is_a_bad_line(sandbox, tmp_path):
    """The mark that stands for a skipped line starts with a NUL, as no JSON line does; input
    that copies it is rejected as what it is, not a crash ("This is a bug") at every rerun."""
    fake = "\x00overlong line of abc:zz"
    run = run_target(config(sandbox.url, tmp_path), [SCHEMA, fake, rec(1)], tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert stored(sandbox) == ["r1"]
    [letter] = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert letter["dead_letter"]["stage"] == "input"
    assert "over the limit" not in letter["dead_letter"]["reason"]


def test_a_replay_says_it_skips_the_lines_that_never_were_records(sandbox, tmp_path):
    """A line that was no usable message is kept as a DEAD_LETTER line; a replay skips it, and
    says so (it counted nothing for it before, silently)."""
    cfg = config(sandbox.url, tmp_path)
    run = run_target(cfg, [SCHEMA, "{not json", rec(1)], tmp_path)
    assert run.returncode == 0, run.output
    dead = tmp_path / "dead.jsonl"
    replay = run_target(cfg, [], tmp_path, extra_args=["--input", str(dead)])
    assert replay.returncode == 0, replay.output
    assert "Line 1 and any like it are DEAD_LETTER lines" in replay.stderr
    assert "a replay skips them" in replay.stderr


def test_the_credential_check_hides_personal_data_a_server_echoes(tmp_path):
    """--test prints its line rather than logging it: the server's message is hidden alike."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        error = {"message": "unknown pid for jane.doe@example.com at 203.0.113.9", "code": "x"}
        body = json.dumps({"error": {**error, "type": "invalid_request_error"}}).encode()
        _answer(handler, 403, body, "application/json")

    gateway = _Gateway(answer)
    try:
        run = run_target(config(gateway.url, tmp_path), [], tmp_path, extra_args=["--test"])
    finally:
        gateway.close()
    assert run.returncode == 1
    assert run.stdout.startswith("FAILED: the key cannot write to pixel id")
    assert "jane.doe" not in run.output
    assert "203.0.113.9" not in run.output


def test_a_pixel_id_holding_the_key_is_refused_before_it_goes_in_a_url(sandbox, tmp_path):
    for pixel in (API_KEY, f"{API_KEY}-2", "sk-proj-abcdefghijklmnop"):
        cfg = config(sandbox.url, tmp_path, pixel_id=pixel)
        run = run_target(cfg, [], tmp_path, extra_args=["--test"])
        assert run.returncode == 1
        assert "pixel_id holds an API key" in run.stderr
        assert pixel not in run.output
        assert API_KEY not in run.output
    assert sandbox.stats()["requests"] == 0


def test_an_integration_source_holding_the_key_is_refused_before_it_goes_in_a_body(
    sandbox, tmp_path
):
    """The key pasted into integration_source was sent in every request's body, which the API
    keeps per integration."""
    for source in (API_KEY, "sk-svcacct-otherkey123456", "sk-T3BlbkFJ4f9aQ2xZpL8mN1vB7cR0sW6"):
        run = run_target(config(sandbox.url, tmp_path, integration_source=source), [], tmp_path)
        assert run.returncode == 1
        assert "integration_source holds an API key" in run.stderr
        assert source not in run.output
    assert sandbox.stats()["requests"] == 0
    # A name that only begins like a key ("sk-" for a company's initials) is a name.
    for name in ("sk-planet-connector", "sk-shopify_connector_prod"):
        cfg = config(sandbox.url, tmp_path, integration_source=name)
        run = run_target(cfg, [SCHEMA, rec(1)], tmp_path)
        assert run.returncode == 0, run.output
    assert sandbox.stats()["integration_sources"] == {
        "sk-planet-connector": 1,
        "sk-shopify_connector_prod": 1,
    }


@pytest.mark.parametrize("quote", ['"', "'"])
def test_a_key_written_in_quotes_is_said_to_be(quote, sandbox, tmp_path):
    """A .env line's quotes kept (docker --env-file): the API's 401 was read as 'not a
    Conversions API key', and the quotes could not be seen in a key never shown."""
    run = run_target(
        config(sandbox.url, tmp_path, api_key=f"{quote}{API_KEY}{quote}"),
        [],
        tmp_path,
        extra_args=["--test"],
    )
    assert run.returncode == 1
    assert "api_key is written in quotes" in run.stderr
    assert API_KEY not in run.output
    assert sandbox.stats()["requests"] == 0


def test_an_event_that_ages_past_7_days_while_it_waits_is_not_sent(tmp_path):
    """Its record was within the window when read; its batch waited for a free request (one
    in flight, held by a slow server): it is dead-lettered at the window stage, not sent."""
    first_answered = threading.Event()

    def answer(handler: BaseHTTPRequestHandler) -> None:
        if first_answered.is_set():
            time.sleep(7)
        _answer(handler, 200, b"{}", "application/json")
        first_answered.set()

    gateway = _Gateway(answer)
    proc = _started(
        config(gateway.url, tmp_path, batch_size=1, max_concurrent_requests=1), tmp_path
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(f"{SCHEMA}\n{rec(1)}\n{state({'s': 1})}\n".encode())
        proc.stdin.flush()
        assert first_answered.wait(60)  # (the run has started: what comes next is read at once)
        time.sleep(0.5)
        # Three seconds inside the window now; seven seconds later, once the request before it
        # is answered, it is not.
        edge = int(time.time() * 1000) - 7 * 86_400_000 + 3_000
        late = record("c", {"id": "r3", "timestamp_ms": edge, "type": "lead_created"})
        lines = f"{rec(2)}\n{late}\n{state({'s': 2})}\n"
        out, err = proc.communicate(lines.encode(), timeout=60)
    finally:
        gateway.close()
    assert proc.returncode == 0, err.decode()
    assert gateway.requests == 2
    [dead] = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()[1:]]
    assert dead["record"]["id"] == "r3"
    assert dead["dead_letter"]["stage"] == "window"
    assert "older than 7 days when its request was to be made" in dead["dead_letter"]["reason"]
    assert "rejected=1 (window=1)" in err.decode()
    assert [json.loads(line) for line in out.decode().splitlines()] == [{"s": 1}, {"s": 2}]


def test_with_on_rejected_fail_a_record_lacking_its_key_is_counted_and_dead_lettered(
    sandbox, tmp_path
):
    """It stopped the run before it was counted (received=1 of 2) or dead-lettered."""
    cfg = config(sandbox.url, tmp_path, on_rejected="fail", batch_size=1)
    lines = [SCHEMA, rec(1), state({"b": 1}), record("c", {"timestamp": NOW, "type": "x"})]
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 1
    assert_clean(run)
    assert "lacks key properties ['id']" in run.stderr
    assert "c: received=2 sent=1 rejected=1 (schema=1)" in run.stderr
    [dead] = [line for line in _dead_lines(tmp_path) if line["type"] == "RECORD"]
    assert dead["record"] == {"timestamp": NOW, "type": "x"}
    assert dead["dead_letter"]["stage"] == "schema"
    assert stored(sandbox) == ["r1"]
    assert run.states == [{"b": 1}]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_ref_whose_pointer_is_percent_encoded_is_followed(workers, sandbox, tmp_path):
    """`#/definitions/a%20b` names the definition `a b` (a URI fragment, as jsonschema reads
    it): the SCHEMA was refused as pointing to nothing, and its every record with it."""
    text = {"$ref": "#/definitions/a%20b"}
    line = json.dumps(
        {
            "type": "SCHEMA",
            "stream": "c",
            "schema": {
                "type": "object",
                "definitions": {"a b": {"type": "string"}},
                "properties": {"id": text, "ext": text},
            },
            "key_properties": ["id"],
        }
    )
    streams = {"c": {"fields": {"external_id": "ext"}}}
    cfg = config(sandbox.url, tmp_path, streams=streams, worker_processes=workers)
    run = run_target(cfg, [line, rec(1, ext="x"), rec(2, ext=5)], tmp_path)
    assert run.returncode == 0, run.output
    assert "refused" not in run.stderr
    assert stored(sandbox) == ["r1"]
    assert "c: received=2 sent=1 rejected=1 (schema=1)" in run.stderr


@pytest.mark.parametrize("dead_letters", [True, False])
@pytest.mark.parametrize("workers", [0, 2])
def test_a_line_of_bad_utf8_is_said_to_be_so_whatever_reads_it(
    workers, dead_letters, sandbox, tmp_path
):
    """Read in one pass (no workers, no dead letters), it was 'not valid JSON'."""
    cfg = config(sandbox.url, tmp_path, worker_processes=workers)
    if not dead_letters:
        cfg["dead_letter_path"] = None
    bad = rec(2).encode().replace(b'"r2"', b'"r\xff2"')
    data = "\n".join([SCHEMA, rec(1)]).encode() + b"\n" + bad + b"\n"
    run = run_target(cfg, data, tmp_path)
    assert run.returncode == 0, run.output
    assert "Rejected input line 3: line is not valid UTF-8" in run.stderr
    assert stored(sandbox) == ["r1"]


def test_rows_without_an_id_holding_a_number_beyond_reading_are_not_one_event(sandbox, tmp_path):
    """Two rows without an id, alike in what the mapping reads, each holding an integer of
    5,000 digits where it does not read: the id, a hash of the record, was made of the read
    part only (the rest cannot be decoded), so the second was dropped as a duplicate of the
    first. Such a record is rejected, saying why; a row without one is sent."""
    props = {"ts": {"type": "string"}, "total": {"type": "number"}}
    cfg = config(
        sandbox.url,
        tmp_path,
        worker_processes=0,
        streams={"o": {"event_type": "order_created", "fields": {
            "timestamp": "ts", "amount": "total", "currency": "'USD'",
            "action_source": "'other'"}}},
    )  # fmt: skip

    def row(note: str, x: str) -> str:
        return (
            '{"type": "RECORD", "stream": "o", "record": {"ts": "' + NOW + '", "total": 5, '
            f'"note": "{note}", "x": {x}}}}}'
        )

    lines = [schema("o", props, []), row("row A", "9" * 5000), row("row B", "9" * 5000)]
    lines.append(row("row C", "7"))
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "duplicate=0" in run.stderr
    assert len(sandbox.events(PIXEL_ID)) == 1
    dead_text = (tmp_path / "dead.jsonl").read_text().splitlines()[1:]
    dead = [json.loads(x, parse_int=str) for x in dead_text]  # (5,000 digits: kept as text)
    assert [line["dead_letter"]["stage"] for line in dead] == ["mapping", "mapping"]
    assert (
        "a part of it cannot be read (a number too large to read exactly)"
        in (dead[0]["dead_letter"]["reason"])
    )
    # Such a number beside the record, not in it (read in one pass, no dead letters kept):
    # the record itself is whole, and is sent.
    sandbox.reset()
    beside = row("row D", "7").replace('"record": {', '"version": ' + "9" * 5000 + ', "record": {')
    run = run_target({**cfg, "dead_letter_path": None}, [lines[0], lines[3], beside], tmp_path)
    assert run.returncode == 0, run.output
    assert len(sandbox.events(PIXEL_ID)) == 2


@pytest.mark.parametrize("whole", [False, True])
def test_surrogate_bytes_in_a_line_are_bad_utf8_not_an_escape(whole, sandbox, tmp_path):
    """The bytes of a surrogate (ED A0 80, as a CESU-8 writer makes them) in a record decoded
    whole (its mapping reads a name outside ASCII): it was said to hold a 'lone UTF-16
    surrogate escape', which the line does not; decoded in part, 'not valid UTF-8'."""
    entry = {"filter": '"numéro" || `true`'} if whole else {}
    cfg = config(sandbox.url, tmp_path, worker_processes=0, streams={"c": entry})
    bad = rec(2).encode().replace(b'"r2"', b'"r\xed\xa0\x802"')
    data = b"\n".join([SCHEMA.encode(), rec(1).encode(), bad, rec(3).encode()])
    run = run_target(cfg, data + b"\n", tmp_path)
    assert run.returncode == 0, run.output
    assert "Rejected input line 3: line is not valid UTF-8" in run.stderr
    assert "surrogate escape" not in run.stderr
    assert stored(sandbox) == ["r1", "r3"]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_dead_letter_s_key_holds_a_key_property_of_tap_metadata(workers, sandbox, tmp_path):
    """`_sdc_sequence` among the key properties was written null in the key (taken out of the
    record before mapping), beside its value in the record itself."""
    cfg = config(sandbox.url, tmp_path, worker_processes=workers)
    keyed = schema(
        "c",
        {"id": {"type": "string"}, "_sdc_sequence": {"type": "integer"}},
        ["id", "_sdc_sequence"],
    )
    run = run_target(cfg, [keyed, rec(1, amount="x", _sdc_sequence=7)], tmp_path)
    assert run.returncode == 0, run.output
    [dead] = [line for line in _dead_lines(tmp_path) if line["type"] == "RECORD"]
    assert dead["record"]["_sdc_sequence"] == 7
    assert dead["dead_letter"]["key"] == {"id": "r1", "_sdc_sequence": 7}


@pytest.mark.parametrize("workers", [0, 2])
def test_long_generated_expressions_within_the_bound_work(workers, sandbox, tmp_path):
    """A filter of 150 alternatives (a generated list of names) and a path of 120 steps (past
    what the compiled builder nests: built by build_event) are mapped like any other."""
    names = [f"r{n}" for n in range(150)]
    path = ".".join(["a"] * 120)
    nested: Any = "deep@example.com"
    for _ in range(120):
        nested = {"a": nested}
    streams = {
        "c": {
            "filter": " || ".join(f"id == '{name}'" for name in names),
            "fields": {"email": path},
        }
    }
    cfg = config(sandbox.url, tmp_path, streams=streams, worker_processes=workers)
    lines = [SCHEMA, record("c", {"id": "r7", "timestamp": NOW, "type": "lead_created", **nested})]
    lines.append(record("c", {"id": "x1", "timestamp": NOW, "type": "lead_created"}))
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    [event] = sandbox.events(PIXEL_ID)
    assert event["id"] == "r7"
    assert event["user"]["emails_sha256"] == [hashlib.sha256(b"deep@example.com").hexdigest()]
    assert "filtered=1" in run.stderr


def test_a_field_mapped_to_the_empty_text_is_no_value_not_a_config_error(sandbox, tmp_path):
    """`''` is no value, as `null` is (an empty text is none): the start-up check of fixed
    values refused it ('source_url is empty')."""
    fields = {"source_url": "''", "id": "''", "plan_id": "''"}
    cfg = config(sandbox.url, tmp_path, streams={"c": {"fields": fields}})
    run = run_target(cfg, [SCHEMA, rec(1, source_url="https://a.example/x")], tmp_path)
    assert run.returncode == 0, run.output
    [event] = sandbox.events(PIXEL_ID)
    assert event["id"] == "r1"  # (from the key property)
    assert "source_url" not in event


def test_a_record_sent_to_two_streams_and_refused_in_both_is_dead_lettered_once(sandbox, tmp_path):
    """Stream maps that send one stream to two: refused in both, the record as it arrived was
    written twice, and its replay through the maps made each event twice."""
    maps = {"a": {"__source__": "c"}, "b": {"__source__": "c"}, "c": None}
    streams = {"a": {"fields": {"currency": "cur"}}, "b": {"fields": {"currency": "cur"}}}
    cfg = config(sandbox.url, tmp_path, streams=streams, stream_maps=maps)
    lines = [SCHEMA, rec(1, amount=5, cur="usdd"), rec(2, amount=5, cur="usdd")]
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert "a: received=2 rejected=2 (mapping=2)" in run.stderr
    assert "b: received=2 rejected=2 (mapping=2)" in run.stderr
    dead = [line for line in _dead_lines(tmp_path) if line["type"] == "RECORD"]
    assert [(line["stream"], line["record"]["id"]) for line in dead] == [("c", "r1"), ("c", "r2")]


def test_a_batch_waiting_out_a_429_does_not_hold_up_the_others(tmp_path):
    """A tap slower than the target: between its messages, the quiet-input delivery waited
    for every batch in flight, holding the input's lock, so one batch told to wait 6 s by a
    429 held every other (and the tap's pipe) for those 6 s."""
    order: list[str] = []
    told_to_wait = threading.Event()

    def answer(handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.body)
        order.append(body["events"][0]["id"])
        if not told_to_wait.is_set():
            told_to_wait.set()
            handler.send_response(429)
            handler.send_header("Retry-After", "6")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        _answer(handler, 200, b"{}", "application/json")

    gateway = _Gateway(answer)
    proc = _started(
        config(gateway.url, tmp_path, batch_size=1, max_concurrent_requests=16), tmp_path
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(f"{SCHEMA}\n{rec(0)}\n".encode())
        proc.stdin.flush()
        assert told_to_wait.wait(60)
        for n in range(1, 16):  # (a record every 0.2 s: the input is quiet in between)
            time.sleep(0.2)
            proc.stdin.write(f"{rec(n)}\n".encode())
            proc.stdin.flush()
        _, err = proc.communicate(timeout=60)
    finally:
        gateway.close()
    assert proc.returncode == 0, err.decode()
    assert sorted(order) == sorted(["r0", *[f"r{n}" for n in range(16)]])
    assert order.index("r0", 1) > 10, order  # (the others went while r0 waited)


def test_a_stream_map_failing_on_a_record_sends_none_of_its_copies(sandbox, tmp_path):
    """Maps that send one stream to two, the second failing on a record: the record was
    rejected and its first copy sent anyway, the record counted three times."""
    maps = {"copy": {"__source__": "c", "n": "int(code)"}}
    streams = {"c": {}, "copy": {"event_type": "registration_completed"}}
    cfg = config(sandbox.url, tmp_path, streams=streams, stream_maps=maps)
    run = run_target(cfg, [SCHEMA, rec(1, code="x"), rec(2, code="7")], tmp_path)
    assert run.returncode == 0, run.output
    assert sorted((e["type"], e["id"]) for e in sandbox.events(PIXEL_ID)) == [
        ("lead_created", "r2"),
        ("registration_completed", "r2"),
    ]
    assert "c: received=2 sent=1 rejected=1 (mapping=1)" in run.stderr
    assert "copy: received=1 sent=1" in run.stderr


@pytest.mark.parametrize("workers", [0, 2])
def test_a_property_of_no_type_takes_any_value(workers, sandbox, tmp_path):
    """`type: []` (a tap that knows no type for a column): every record was refused, with the
    reason 'record.total must be ', a reason of nothing; a column never read no less."""
    props = {"id": {"type": "string"}, "total": {"type": []}, "legacy": {"type": []}}
    fields = {"custom_event_name": "'quiz_done'", "custom_data": "{t: total}"}
    streams = {"c": {"event_type": "custom", "fields": fields}}
    cfg = config(sandbox.url, tmp_path, streams=streams, worker_processes=workers)
    lines = [schema("c", props, ["id"]), rec(1, total=5, legacy="x"), rec(2, total="five")]
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert sorted(repr(e["data"]["t"]) for e in sandbox.events(PIXEL_ID)) == ["'five'", "5"]


def test_a_batch_file_url_relative_to_the_working_directory_is_read(sandbox, tmp_path):
    """`file://batches/part.jsonl` (the SDK's own target test streams are written so): the SDK
    reads it from the working directory; it was refused as 'not a local file'."""
    (tmp_path / "batches").mkdir()
    _batch_file(tmp_path / "batches" / "part.jsonl", ORDERS[:2], gzipped=False)
    lines = [SCHEMA, _batch(["file://batches/part.jsonl"], compression="none")]
    cfg = config(sandbox.url, tmp_path, streams={"c": {"fields": {"currency": "'EUR'"}}})
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    proc = subprocess.run(
        [*TARGET_CMD, "--config", str(tmp_path / "config.json")],
        input=("\n".join(lines) + "\n").encode(),
        capture_output=True,
        cwd=tmp_path,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert stored(sandbox) == ["b0", "b1"], proc.stderr.decode()


@pytest.mark.parametrize("workers", [0, 2])
def test_large_records_kept_for_dead_letters_go_in_smaller_batches(tmp_path, workers):
    """Each batched event keeps its record's line for a dead letter: 1,000 records of 1 MiB
    kept 1 GiB a batch (the main process peaked at 1.2 GiB on 3,000 of them). A batch now goes
    once it keeps 16 MiB; without dead letters nothing is kept and the batch fills."""
    blob = "x" * (1024 * 1024)
    lines = [SCHEMA, *(rec(n, blob=blob) for n in range(40)), state({"at": 40})]
    for dead_letters, largest in ((True, 16), (False, 40)):
        with start_sandbox(api_keys=[API_KEY], pixel_ids=[PIXEL_ID]) as sandbox:
            cfg = config(sandbox.url, tmp_path, batch_size=1000, worker_processes=workers)
            if not dead_letters:
                del cfg["dead_letter_path"]
            run = run_target(cfg, lines, tmp_path)
            assert run.returncode == 0, run.output
            assert_clean(run)
            assert "sent=40" in run.stderr
            assert run.states == [{"at": 40}]
            assert stored(sandbox) == sorted(f"r{n}" for n in range(40))
            assert sandbox.stats()["largest_batch"] == largest, dead_letters


def test_a_long_text_refused_as_a_boolean_is_not_logged(sandbox, tmp_path):
    """opt_out mapped to a text column: the refusal quoted the whole value, and past the log's
    cut at 1,000 characters its quote was left open, so nothing hid it: a customer's note went
    to the log."""
    note = "Jane Doe, 1 Main Street, Springfield asked to be called back. " + "x" * 1000
    lines = [SCHEMA, rec(1, consent_note=note), rec(2, consent_note="no")]
    cfg = config(sandbox.url, tmp_path, streams={"c": {"fields": {"opt_out": "consent_note"}}})
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert stored(sandbox) == ["r2"]
    assert "Rejected a record of 'c' at mapping: opt_out '…' is not a boolean" in run.stderr
    for raw in ("Jane", "Main Street", "Springfield", "xxxxxxxx"):
        assert raw not in run.output
    [dead] = (tmp_path / "dead.jsonl").read_text().splitlines()[1:]
    assert "opt_out 'Jane Doe, 1 Main Street, Springfiel...' is not a boolean" in dead


@pytest.mark.parametrize(
    ("word", "dry"), [("true", True), ("Yes ", True), ("false", False), ("", False)]
)
def test_dry_run_written_as_a_word_is_read_as_one(word, dry, sandbox, tmp_path):
    """Meltano passes dry_run as written (it is declared a string, so that a typo is not read
    as false): the words the environment takes are read as the boolean they say (an empty one,
    a .env template's, as false, as the SDK reads the variable)."""
    run = run_target(config(sandbox.url, tmp_path, dry_run=word), [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 0, run.output
    assert stored(sandbox) == ([] if dry else ["r1"])
    assert sandbox.stats()["validate_only_requests"] == (1 if dry else 0)


def test_dry_run_written_as_another_word_stops_the_run_saying_so(sandbox, tmp_path):
    run = run_target(config(sandbox.url, tmp_path, dry_run="ture"), [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 1
    assert "dry_run is 'ture': use true or false (under Meltano, TARGET_OPENAI_CAPI_DRY_RUN" in (
        run.stderr
    )
    assert sandbox.stats()["requests"] == 0


@pytest.mark.parametrize(
    ("stream_maps", "where"),
    [
        ({"__else__": "__null__"}, "config['stream_maps']['__else__']"),
        ({"__else__": False}, "config['stream_maps']['__else__']"),
        ({"c": {"__else__": "drop"}}, "config['stream_maps']['c']"),
    ],
)
def test_a_stream_maps_else_that_is_no_null_is_a_config_error(
    stream_maps, where, sandbox, tmp_path
):
    """The SDK's schema lists a bare "null" among `__else__`'s alternatives: any other value
    crashed the schema check with a traceback (AttributeError from the JSON Schema library)."""
    run = run_target(config(sandbox.url, tmp_path, stream_maps=stream_maps), [SCHEMA], tmp_path)
    assert run.returncode == 1
    assert_clean(run)
    assert f"is not valid under any of the given schemas in {where}" in run.stderr


@pytest.mark.parametrize("workers", [0, 2])
def test_an_amount_whose_currency_is_mapped_to_null_says_so(workers, sandbox, tmp_path):
    """`currency: null` (the cookbook's way to drop a field) with an amount: the reason said
    the record had no currency property, though it had one and the mapping left it unread."""
    streams = {"c": {"fields": {"amount": "amount", "currency": "`null`"}}}
    cfg = config(sandbox.url, tmp_path, streams=streams, worker_processes=workers)
    run = run_target(cfg, [SCHEMA, rec(1, amount=12.5, currency="USD")], tmp_path)
    assert run.returncode == 0, run.output
    assert stored(sandbox) == []
    assert (
        "at mapping: amount needs a currency, and currency is mapped to null (not read); map it "
        "to one" in run.stderr
    )


def test_names_with_dots_that_meltano_split_are_joined_back(sandbox, tmp_path):
    """Meltano reads a dot in a key of an object setting as nesting (meltano.yml, `meltano
    config set`): Stripe's `customer.subscription.created` under event_types reached the target
    nested, and the run stopped on "{'subscription': ...} is not of type 'string'". This is the
    config Meltano writes. A stream's name with a dot is not joined (a misspelt setting looks
    the same, and a guess would send with the wrong mapping): its error says what happened."""
    event_types = {"customer": {"subscription": {"created": "subscription_created"}}}
    streams = {"sales": {"event_type_from": "kind", "event_types": event_types}}
    stream_schema = schema("sales", {"id": {"type": "string"}, "kind": {"type": "string"}})
    row = {"id": "s1", "timestamp": NOW, "kind": "customer.subscription.created"}
    lines = [stream_schema, record("sales", row)]
    run = run_target(config(sandbox.url, tmp_path, streams=streams), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [(e["id"], e["type"]) for e in sandbox.events(PIXEL_ID)] == [
        ("s1", "subscription_created")
    ]
    # `sales` and `sales.orders`, as Meltano passes them:
    streams["sales"]["orders"] = {"event_type": "order_created"}
    run = run_target(config(sandbox.url, tmp_path, streams=streams), lines, tmp_path)
    assert run.returncode == 1
    assert (
        "('orders' was unexpected) in config['streams']['sales']: if `sales.orders` is a "
        "stream's name, Meltano read its dot as nesting"
    ) in run.stderr


def test_one_record_rejected_without_dead_letters_is_said_in_the_singular(sandbox, tmp_path):
    cfg = config(sandbox.url, tmp_path)
    del cfg["dead_letter_path"]
    run = run_target(cfg, [SCHEMA, rec(1, amount="x"), rec(2)], tmp_path)
    assert run.returncode == 0, run.output
    assert "1 record was rejected; set dead_letter_path to keep it for replay." in run.stderr


def test_a_ca_bundle_the_environment_names_that_is_not_there_is_said_once(
    monkeypatch, sandbox, tmp_path
):
    """REQUESTS_CA_BUNDLE pointing nowhere: --test ended in a traceback, and a run called it 'a
    bug in target-openai-capi' (requests raises a plain OSError before connecting)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    cfg = config("https://127.0.0.1:10/v1/events", tmp_path, max_attempts=3)
    check = run_target(cfg, [], tmp_path, extra_args=["--test"])
    run = run_target(cfg, [SCHEMA, rec(1)], tmp_path)
    said = "Check REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE in the environment"
    assert check.returncode == 1
    assert check.stdout.startswith("FAILED: https://127.0.0.1:10/v1/events cannot be reached")
    assert said in check.stdout
    assert "Check api_url" not in check.stdout
    assert run.returncode == 1
    assert said in run.stderr
    assert run.stderr.count(said) == 1  # (not retried)
    for done in (check, run):
        assert_clean(done)


def _wait_forever_echoing_the_key(handler: BaseHTTPRequestHandler) -> None:
    body = b'{"error": {"message": "slow down"}}'
    handler.send_response(429)
    handler.send_header("Content-Type", "application/json")
    handler.send_header(
        "Retry-After", f"Fri, 31 Dec 9999 23:59:59 GMT {handler.headers['Authorization']}"
    )
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def test_a_retry_after_that_echoes_the_key_is_quoted_without_it(tmp_path):
    """The give-up message quotes Retry-After as the server wrote it: a server that echoed
    the request's Authorization there had 23 of a 26-character key logged."""
    key = "sk-svcacct-SECRETKEY123456"  # (short: the log's own filter misses a part of it)
    run = _run_through(_wait_forever_echoing_the_key, [SCHEMA, rec(1)], tmp_path, api_key=key)
    assert run.returncode == 1
    assert "the server asked to wait (Retry-After: Fri, 31 Dec 9999 23:59:59 GMT Bearer" in (
        run.stderr
    )
    assert "SECRETKEY" not in run.output
    assert_clean(run)


def test_an_https_url_at_a_plain_http_port_is_said_once(sandbox, tmp_path):
    """TLS spoken to a plain-HTTP port: 'wrong version number' was retried as a network error
    (about a minute by default), then 'rerun to resume', which fails the same way."""
    url = sandbox.url.replace("http://", "https://")
    cfg = config(url, tmp_path, max_attempts=4)
    run = run_target(cfg, [SCHEMA, rec(1)], tmp_path)
    check = run_target(cfg, [], tmp_path, extra_args=["--test"])
    said = "does not answer in TLS: its port speaks plain HTTP, not https"
    assert run.returncode == 1
    assert run.stderr.count(said) == 1
    assert "Check the scheme and the port of api_url." in run.stderr
    assert check.returncode == 1
    assert said in check.stdout
    assert sandbox.stats()["requests"] == 0
    for done in (check, run):
        assert_clean(done)


def test_a_proxy_that_never_answers_is_named_in_the_timeout(monkeypatch, tmp_path):
    """A proxy that takes the connection and never answers CONNECT: the timeout named only
    api_url, though the README says a failure through a proxy names it."""
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()
        port = proxy.getsockname()[1]
        monkeypatch.setenv("HTTPS_PROXY", f"http://puser:SeCrEtPw99@127.0.0.1:{port}")
        _proxied_on_loopback(monkeypatch, tmp_path)
        cfg = config(PROXIED_API_URL, tmp_path, request_timeout_seconds=1, max_attempts=1)
        run = run_target(cfg, [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 1
    assert (
        f"the answer from {PROXIED_API_URL} through the proxy http://127.0.0.1:{port} took "
        "longer than 1 s (request_timeout_seconds)"
    ) in run.stderr
    assert "SeCrEt" not in run.output
    assert_clean(run)


def test_a_log_file_of_the_targets_own_logger_is_filtered_too(monkeypatch, sandbox, tmp_path):
    """A logging config (SINGER_SDK_LOG_CONFIG) that gives the target's logger a handler of its
    own: its lines went unfiltered, so a stream named with a newline forged a log line there."""
    log_file = tmp_path / "target.log"
    log_config = tmp_path / "logging.yml"
    log_config.write_text(
        "version: 1\n"
        "disable_existing_loggers: false\n"
        "formatters:\n  plain:\n    format: '%(levelname)s | %(message)s'\n"
        f"handlers:\n  file:\n    class: logging.FileHandler\n    filename: {log_file}\n"
        "    formatter: plain\n"
        "loggers:\n  target-openai-capi:\n    level: INFO\n    handlers: [file]\n"
    )
    monkeypatch.setenv("SINGER_SDK_LOG_CONFIG", str(log_config))
    forged = "evil\nINFO | Run summary: received=0 sent=0"
    lines = [schema(forged, {"id": {"type": "string"}}), record(forged, {"id": "x"})]
    cfg = config(sandbox.url, tmp_path, allow_unmatched_streams=True)
    run = run_target(cfg, [SCHEMA, rec(1), *lines], tmp_path)
    assert run.returncode == 0, run.output
    written = log_file.read_text()
    assert "evil\\nINFO | Run summary: received=0 sent=0" in written
    assert "\nINFO | Run summary: received=0 sent=0" not in written  # (no line forged)


@pytest.mark.parametrize("letter", ["x", "ж", "\\", "\U0001f600"])
def test_a_stream_named_with_a_megabyte_is_logged_cut(letter, sandbox, tmp_path):
    """Stream names were never cut in log lines: a name of 1 MB and five bad records made 9 MB
    of stderr, 1 MB a line (each rejection, the summary, each METRIC line, whose JSON writes a
    Cyrillic name escaped)."""
    name = "orders_" + letter * 1_000_000
    lines = [schema(name, {"id": {"type": "string"}, "n": {"type": "integer"}}, ["id"])]
    lines += [record(name, {"id": f"r{n}", "n": "not a number"}) for n in range(5)]
    cfg = config(sandbox.url, tmp_path, streams={name: {"event_type": "lead_created"}})
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output[-2000:]
    assert "rejected=5" in run.stderr
    assert len(run.stderr) < 100_000
    if letter == "x":
        assert "orders_" + letter * 192 + "…" in run.stderr
    metrics = [line.split("METRIC: ", 1)[1] for line in run.stderr.splitlines() if "METRIC" in line]
    assert metrics
    for metric in metrics:  # (cut, each is JSON still, with no half of an emoji's pair)
        assert '\\ud83d"' not in metric
        assert "\\ud83d…" not in metric
        json.loads(metric)


def test_a_setting_misspelt_in_an_entry_is_not_taken_for_a_stream_s_name(sandbox, tmp_path):
    """`orders: {mapping: {...}}` (no such setting) was read, for a while, as a stream named
    `orders.mapping` (a name Meltano split at its dot): the orders were skipped and the STATE
    after them written. It is a config error, as it was."""
    lead = schema("leads", {"id": {"type": "string"}}, ["id"])
    order = schema("orders", {"id": {"type": "string"}}, ["id"])
    lines = [lead, record("leads", {"id": "l1", "timestamp": NOW, "type": "lead_created"})]
    lines += [order, record("orders", {"id": "o1", "timestamp": NOW}), state({"at": 2})]
    entry = {"event_type": "order_created"}
    for orders in ({"mapping": entry}, {**entry, "options": {"dry_run": True}}):
        cfg = config(sandbox.url, tmp_path, streams={"leads": {}, "orders": orders})
        run = run_target(cfg, lines, tmp_path)
        assert run.returncode == 1
        assert run.states == []
        assert "was unexpected) in config['streams']['orders']" in run.stderr
        assert_clean(run)
    assert sandbox.stats()["requests"] == 0


def _refuse_quoting_a_long_note(handler: BaseHTTPRequestHandler) -> None:
    note = "Jane Doe, 1 Main Street, Springfield says call me tomorrow. " + "x" * 1100
    message = f"events[0].custom_data.note: '{note}' is too long"
    error = {
        "message": "Invalid event at events[0]. See errors for details.",
        "type": "invalid_request_error",
        "param": "events[0]",
        "code": "invalid_event",
        "errors": [{"message": message, "param": "events[0].custom_data.note", "code": "x"}],
    }
    _answer(handler, 400, json.dumps({"error": error}).encode(), "application/json")


def test_an_api_message_quoting_a_long_value_is_logged_without_it(tmp_path):
    """The API's message was cut at 500 characters before the log hid quoted values: the quote
    left open past the cut, a customer's note went to the log."""
    run = _run_through(_refuse_quoting_a_long_note, [SCHEMA, rec(1)], tmp_path)
    assert "Rejected a record of 'c' at api" in run.stderr
    for raw in ("Jane", "Main Street", "Springfield", "xxxxxxxx"):
        assert raw not in run.output
    assert_clean(run)


def test_a_proxy_written_https_that_speaks_plain_http_is_said_once(monkeypatch, sandbox, tmp_path):
    """HTTPS_PROXY=https://proxy:3128 for a plain-HTTP proxy (a common slip): TLS's 'wrong
    version number' came wrapped as a proxy error, retried, then 'rerun to resume'."""
    monkeypatch.setenv("HTTPS_PROXY", sandbox.url.rsplit("/v1", 1)[0].replace("http:", "https:"))
    _proxied_on_loopback(monkeypatch, tmp_path)
    run = run_target(config(PROXIED_API_URL, tmp_path, max_attempts=3), [SCHEMA, rec(1)], tmp_path)
    said = "does not answer in TLS: its port speaks plain HTTP. Write it with http://"
    assert run.returncode == 1
    assert run.stderr.count(said) == 1
    assert "rerun to resume" not in run.stderr
    assert_clean(run)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_mapped_custom_event_name_names_events_whose_read_name_cannot(workers, sandbox, tmp_path):
    """event_type_from giving a name no custom event can have (no ASCII letter, an email in
    it), with custom_event_name mapped: the record was rejected on the read name, though the
    mapped one names the event (and the reason advised mapping custom_event_name)."""
    props = {"id": {"type": "string"}, "name": {"type": "string"}, "label": {"type": "string"}}
    rows = [("1", "購入完了", "purchase_done"), ("2", "Invite to jo@example.com", "invite_sent")]
    rows += [("3", "!!!", "bang"), ("4", "Quiz Done", "quiz_v2"), ("5", "Purchase", "ignored")]
    lines = [schema("ev", props, ["id"])]
    lines += [
        record("ev", {"id": i, "timestamp": NOW, "name": name, "label": label})
        for i, name, label in rows
    ]
    entry = {"event_type_from": "name", "fields": {"custom_event_name": "label"}}
    cfg = config(sandbox.url, tmp_path, streams={"ev": entry}, worker_processes=workers)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    sent = {e["id"]: (e["type"], e.get("custom_event_name")) for e in sandbox.events(PIXEL_ID)}
    assert sent == {
        "1": ("custom", "purchase_done"),
        "2": ("custom", "invite_sent"),
        "3": ("custom", "bang"),
        "4": ("custom", "quiz_v2"),
        "5": ("order_created", None),
    }
    assert "example" not in run.output


@pytest.mark.parametrize("workers", [0, 2])
def test_a_record_whose_amount_and_amount_minor_disagree_is_rejected(workers, sandbox, tmp_path):
    """A table shaped like the event with both columns: amount_minor won without a word (25.99
    sent as 9.99). Both saying the same is no question (a table keeping both)."""
    props = {"id": {"type": "string"}, "amount": {"type": "number"}, "amount_minor": {}}
    both = rec(1, type="order_created", amount=25.99, amount_minor=999, currency="USD")
    one = rec(2, type="order_created", amount_minor=999, currency="USD")
    agree = rec(3, type="order_created", amount=25.99, amount_minor=2599, currency="USD")
    lines = [schema("c", props, ["id"]), both, one, agree]
    cfg = config(sandbox.url, tmp_path, worker_processes=workers)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert [(e["id"], e["data"]["amount"]) for e in sandbox.events(PIXEL_ID)] == [
        ("r2", 999),
        ("r3", 2599),
    ]
    assert "the record's amount (25.99) and amount_minor (999) disagree: give one" in run.stderr


def test_a_page_url_too_long_is_said_to_be_too_long(sandbox, tmp_path):
    """A 9,000-character URL was refused as 'not a URL with a scheme and a host, without
    spaces', which it is: it is longer than the contract's bound."""
    url = "https://shop.example.com/" + "a" * 9000
    entry = {"fields": {"source_url": "url", "action_source": "'web'"}}
    cfg = config(sandbox.url, tmp_path, streams={"c": entry})
    run = run_target(cfg, [SCHEMA, rec(1, url=url)], tmp_path)
    assert run.returncode == 0, run.output
    assert "at validation: source_url: is longer than 8192 characters" in run.stderr


def test_flattening_set_in_the_environment_is_refused_or_named(sandbox, tmp_path):
    """TARGET_OPENAI_CAPI_FLATTENING_ENABLED=true went without a word (--config ENV), where
    `flattening_enabled: true` in a file is refused; beside a file it was not named as unread."""
    env = _environment_for(sandbox, FLATTENING_ENABLED="true")
    data = ("\n".join([SCHEMA, rec(1)]) + "\n").encode()
    from_env = subprocess.run(
        [*TARGET_CMD, "--config", "ENV"], input=data, capture_output=True, check=False, env=env
    )
    assert from_env.returncode == 1
    assert "flattening_enabled is not supported" in from_env.stderr.decode()
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text(json.dumps(config(sandbox.url, tmp_path)))
    beside = subprocess.run(
        [*TARGET_CMD, "--config", str(cfg_path)], input=data, capture_output=True, check=False,
        env=env,
    )  # fmt: skip
    assert beside.returncode == 0, beside.stderr.decode()[-2000:]
    assert (
        "TARGET_OPENAI_CAPI_FLATTENING_ENABLED is set in the environment and not read: the "
        "target does not flatten records"
    ) in beside.stderr.decode()
    assert stored(sandbox) == ["r1"]


def _refuse_in_plain_text_quoting_a_long_value(handler: BaseHTTPRequestHandler) -> None:
    value = "Jane Doe lives at 1 Main Street Springfield, call her on weekends " + "y" * 300
    body = f"field note has value '{value}' which is not allowed".encode()
    _answer(handler, 400, body, "text/plain")


def test_a_plain_text_refusal_quoting_a_long_value_is_logged_without_it(tmp_path):
    """The uploader cut an answer's text at 200 characters before the log hid quoted values
    (a refusal of everything, in plain text): the value's quote left open, it was shown."""
    run = _run_through(_refuse_in_plain_text_quoting_a_long_value, [SCHEMA, rec(1)], tmp_path)
    assert run.returncode == 1
    assert "field note has value '…" in run.stderr
    for raw in ("Jane", "Main Street", "Springfield", "yyyyyyyy"):
        assert raw not in run.output
    assert_clean(run)


_STALE = json.dumps(  # the API's answer to a stale event: its words name no event (no param)
    {
        "error": {
            "message": "event_timestamp_ms must be within the last 7 days.",
            "type": "invalid_request_error",
            "code": "event_timestamp_too_old",
        }
    }
).encode()


def _aged_in_their_requests(
    tmp_path: Path, seconds_left: list[int], refusal: bytes = _STALE, **settings: Any
) -> tuple[Any, list[dict[str, Any]]]:
    """The real CLI on events with these seconds left in the 7 days, through a server that
    refuses a request of several at once (stale, it says) and answers one alone once its event
    is past the line (a slow API); the run and its dead letters. `refusal`: its answer."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        events = json.loads(handler.body)["events"]
        if len(events) == 1:
            past = events[0]["timestamp_ms"] + 7 * 86_400_000 - time.time() * 1000
            time.sleep(max(past, 0) / 1000 + 0.3)
        _answer(handler, 422, refusal, "application/json")

    edge = int(time.time() * 1000) - 7 * 86_400_000
    lines = [SCHEMA]
    for n, left in enumerate(seconds_left):
        at = edge + left * 1000
        lines.append(record("c", {"id": f"e{n}", "timestamp_ms": at, "type": "lead_created"}))
    lines.append(state({"s": 1}))
    run = _run_through(answer, lines, tmp_path, worker_processes=0, **settings)
    dead = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()[1:]]
    return run, dead


def test_events_that_cross_the_7_days_during_their_requests_are_too_old_not_a_refusal(tmp_path):
    """A batch refused for a stale event, in the API's own words, which name no event, is
    split; each event, fresh when sent alone, crossed the line during its slow request. Refused
    alone with one message, they read as a refusal of everything and the run stopped (exit 1,
    nothing dead-lettered, no STATE); and with on_rejected 'fail' one alone stopped it, though a
    record too old to send does not stop such a run (dead_letter_path set)."""
    run, dead = _aged_in_their_requests(tmp_path, [4, 6], batch_size=2, on_rejected="fail")
    assert run.returncode == 0, run.output
    assert sorted(letter["record"]["id"] for letter in dead) == ["e0", "e1"]
    for letter in dead:
        assert letter["dead_letter"]["stage"] == "window"
        assert letter["dead_letter"]["reason"].startswith(
            "timestamp_ms: older than 7 days when its requests ended (it was not when they "
            "began); the API refused the event (HTTP 422): event_timestamp_ms must be within"
        )
    assert "rejected=2 (window=2)" in run.stderr
    assert "but a record older than 7 days does not stop the run" in run.stderr
    assert run.states == [{"s": 1}]


def test_five_events_that_cross_the_7_days_in_their_own_requests_are_no_refusals_in_a_row(
    tmp_path,
):
    """Five batches of one, in flight at once, each event crossing the line during its slow
    request: five refusals in a row naming no event stopped the run as a gateway's refusal."""
    run, dead = _aged_in_their_requests(tmp_path, [3] * 5, batch_size=1, max_concurrent_requests=5)
    assert run.returncode == 0, run.output
    assert sorted(letter["record"]["id"] for letter in dead) == [f"e{n}" for n in range(5)]
    assert {letter["dead_letter"]["stage"] for letter in dead} == {"window"}
    assert "rejected=5 (window=5)" in run.stderr
    assert run.states == [{"s": 1}]


def test_a_gateway_refusing_everything_is_one_though_its_events_age_meanwhile(tmp_path):
    """A gateway refusing every request in the same words, none about time, slow enough for
    the events near the line to cross it: its refusals were taken for the events' age (every
    record dead-lettered, STATE past them) instead of a refusal of everything."""
    blocked = json.dumps(
        {"error": {"message": "Request blocked by policy", "type": "invalid_request_error"}}
    ).encode()
    run, _ = _aged_in_their_requests(
        tmp_path, [3] * 5, blocked, batch_size=1, max_concurrent_requests=5
    )
    assert run.returncode == 1, run.output
    assert "The API refused 5 events in a row, each sent alone" in run.stderr
    assert run.states == []


def test_a_refusal_of_the_time_field_for_another_reason_is_no_refusal_for_age(tmp_path):
    """ "timestamp_ms must be an integer", answered once the event had aged past the line:
    the word "timestamp" was taken for words about its age (stage window), so on_rejected
    'fail' went on past a record it should stop at."""
    wrong_type = json.dumps(
        {
            "error": {
                "message": "events[0].timestamp_ms must be an integer",
                "type": "invalid_request_error",
                "param": "events[0].timestamp_ms",
            }
        }
    ).encode()
    run, _ = _aged_in_their_requests(tmp_path, [3], wrong_type, batch_size=1, on_rejected="fail")
    assert run.returncode == 1, run.output
    assert "rejected at stage api: the API refused the event (HTTP 422): timestamp_ms must" in (
        run.stderr
    )
    assert run.states == []


def test_an_event_refused_for_its_data_while_fresh_is_an_api_rejection_though_it_aged_later(
    tmp_path,
):
    """Refused for a bad field while inside the window, then past the line by the time the
    rest of its batch was answered: it was relabelled 'older than 7 days' (stage window), so
    on_rejected 'fail' went on past a record it should stop at."""
    invalid = json.dumps(
        {
            "error": {
                "message": "Invalid email address",
                "type": "invalid_request_error",
                "param": "events[0].user",
            }
        }
    ).encode()

    def answer(handler: BaseHTTPRequestHandler) -> None:
        events = json.loads(handler.body)["events"]
        if len(events) == 2:  # (at once: the first is still inside the window)
            _answer(handler, 400, invalid, "application/json")
            return
        time.sleep(3)  # (the second alone, slowly: the first crosses the line meanwhile)
        _answer(handler, 200, b"{}", "application/json")

    edge = int(time.time() * 1000) - 7 * 86_400_000
    lines = [
        SCHEMA,
        record("c", {"id": "e0", "timestamp_ms": edge + 2_500, "type": "lead_created"}),
        record("c", {"id": "e1", "timestamp_ms": edge + 3_600_000, "type": "lead_created"}),
        state({"s": 1}),
    ]
    run = _run_through(
        answer, lines, tmp_path, worker_processes=0, batch_size=2, on_rejected="fail"
    )
    assert run.returncode == 1, run.output
    assert "rejected at stage api: the API refused the event (HTTP 400): Invalid email" in (
        run.stderr
    )
    assert run.states == []


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_state_goes_out_as_the_tap_wrote_it_whatever_the_locale_s_encoding(
    encoding, sandbox, tmp_path
):
    """A STATE holding text outside the locale's encoding (a cursor of "Müller €" under a
    Latin-1 or C locale): written through the text layer, it stopped every run at that STATE
    ("This is a bug", UnicodeEncodeError) or went out in Latin-1, which no JSON reader takes."""
    cursor = '{"cursor":"M\u00fcller \u20ac","file":"caf\u00e9.csv"}'
    lines = f"{SCHEMA}\n{rec(1)}\n" + '{"type":"STATE","value":' + cursor + "}\n"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config(sandbox.url, tmp_path)))
    done = subprocess.run(
        [*TARGET_CMD, "--config", str(path)],
        input=lines.encode(),
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": encoding},
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout == cursor.encode() + b"\n"
    assert stored(sandbox) == ["r1"]


def test_states_go_out_whole_to_a_non_blocking_output_whose_reader_is_slow(sandbox, tmp_path):
    """An output descriptor left non-blocking by what started the run (the CI runners'
    "write could not complete without blocking"), read late: STATE lines were cut at 4,096
    bytes and run into the next, or lost without a word (PYTHONUNBUFFERED), or the run stopped
    as if the output were closed."""
    # (those written: > 64 KiB, the pipe's size, however many STATEs the run had settled when
    # it wrote one: the last alone is larger, so a busy machine that settles more at once and
    # writes fewer lines still writes past the pipe's end)
    states = [{"i": n, "pad": "x" * (16_000 if n < 119 else 70_000)} for n in range(120)]
    lines = [SCHEMA]
    for n, value in enumerate(states):
        lines += [rec(n), state(value)]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config(sandbox.url, tmp_path, batch_size=5, worker_processes=0)))
    for unbuffered in ("1", ""):
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        proc = subprocess.Popen(
            [*TARGET_CMD, "--config", str(path)],
            stdin=subprocess.PIPE,
            stdout=write_end,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": unbuffered},
        )
        os.close(write_end)
        assert proc.stdin is not None
        proc.stdin.write(("\n".join(lines) + "\n").encode())
        proc.stdin.close()
        time.sleep(3)  # (the reader is late: the pipe's 64 KiB fill up meanwhile)
        out = b""
        while chunk := os.read(read_end, 65536):
            out += chunk
        os.close(read_end)
        assert proc.stderr is not None
        err = proc.stderr.read().decode(errors="replace")
        assert proc.wait(timeout=120) == 0, err
        written = [json.loads(line) for line in out.decode().splitlines()]
        assert sum(len(json.dumps(value)) for value in written) > 65536
        assert all(value in states for value in written)
        assert sorted(value["i"] for value in written) == [value["i"] for value in written]
        assert written[-1] == states[-1]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_state_holding_a_lone_surrogate_escape_goes_out_as_the_tap_wrote_it(
    workers, sandbox, tmp_path
):
    """A file tap's bookmark of a file name of a byte that is not UTF-8, as Python's json.dumps
    writes it ("caf\\udce9.csv"): valid JSON, but msgspec reads no such string. The STATE was
    dead-lettered as a bad line and none written (exit 0): every run re-read everything."""
    files = '{"files":{"caf\\udce9.csv":"2024-01-01"}}'
    value = '{"bookmarks":' + files + ',"n":1.10,"big":10000000000000000000000000001}'
    lines = [SCHEMA, rec(1), '{"type":"STATE","value":' + value + "}"]
    run = run_target(config(sandbox.url, tmp_path, worker_processes=workers), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert run.stdout == value + "\n"
    assert stored(sandbox) == ["r1"]
    assert re.search(r"Run summary: received=1 sent=1 .*rejected=0", run.stderr), run.stderr


@pytest.mark.parametrize("value", ['["caf\\udce9"]', '"caf\\udce9"'])
def test_a_state_holding_a_lone_surrogate_that_is_no_object_is_refused(value, sandbox, tmp_path):
    """As any STATE whose value is no object is: it went out as the run's STATE."""
    lines = [SCHEMA, rec(1), '{"type":"STATE","value":' + value + "}"]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 0, run.output
    assert run.stdout == ""
    assert "STATE message's 'value' is not a JSON object" in (tmp_path / "dead.jsonl").read_text()


@pytest.mark.skipif(
    os.geteuid() != 0 or not (shutil.which("setpriv") and shutil.which("prlimit")),
    reason="needs root, setpriv and prlimit (util-linux): the limit binds other users only",
)
def test_a_thread_that_cannot_be_started_is_said_plainly():
    """Under a limit of processes (ulimit -u, a container's pids limit) no thread starts: the
    run ended in a traceback ("cannot join thread before it is started"), or as a bug."""
    import tempfile

    where = Path(tempfile.mkdtemp(prefix="capi-nproc-"))  # (pytest's own is root's alone)
    where.chmod(0o777)
    lines = [SCHEMA, *[rec(n) for n in range(25)]]
    (where / "in.singer").write_text("\n".join(lines) + "\n")
    path = where / "config.json"
    path.write_text(json.dumps(config("http://127.0.0.1:9/v1/events", where)))
    for file in (path, where / "in.singer"):
        file.chmod(0o644)
    for processes in ("1", "2"):
        with (where / "in.singer").open("rb") as stdin:
            done = subprocess.run(
                ["prlimit", f"--nproc={processes}", "setpriv", "--reuid", "54323", "--regid",
                 "54323", "--clear-groups", *TARGET_CMD, "--config", str(path)],
                stdin=stdin, capture_output=True, timeout=120, check=False, cwd=where,
            )  # fmt: skip
        err = done.stderr.decode(errors="replace")
        assert done.returncode == 1, err
        assert "A thread could not be started: the limit of processes or threads" in err
        assert "Traceback" not in err
        assert "This is a bug" not in err
        assert done.stdout == b""
    shutil.rmtree(where)


@pytest.mark.parametrize("workers", [0, 2])
def test_two_files_each_with_a_byte_order_mark_joined_are_read_whole(workers, sandbox, tmp_path):
    """`cat a.singer b.singer` of two files with a byte order mark: the second's SCHEMA was
    'not valid JSON (invalid character)', and its records all came 'before their SCHEMA'."""
    bom = b"\xef\xbb\xbf"
    other = schema("d", {"id": {"type": "string"}}, ["id"])
    first = bom + f"{SCHEMA}\n{rec(1)}\n".encode()
    second = bom + f"{other}\n".encode()
    second += "\n".join(record("d", {"id": f"d{n}", "timestamp": NOW, "type": "lead_created"})
                        for n in range(3)).encode() + b"\n"  # fmt: skip
    second += bom + f"{rec(2)}\n".encode() + bom + b"\n" + bom + b"  \r\n"  # (empty files)
    cfg = config(sandbox.url, tmp_path, streams={"c": {}, "d": {}}, worker_processes=workers)
    run = run_target(cfg, first + second, tmp_path)
    assert run.returncode == 0, run.output
    assert stored(sandbox) == ["d0", "d1", "d2", "r1", "r2"]
    assert "rejected=0" in run.stderr


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("beside", [{"definitions": {"x": {"type": ["null", "string"]}}},
                                    {"selected": True}])  # fmt: skip
def test_a_schema_s_definitions_or_selection_leave_unread_columns_unchecked(
    beside, workers, sandbox, tmp_path
):
    """pipelinewise's logical replication SCHEMAs carry `definitions`, catalogs `selected`:
    the whole record was checked then, and a column the mapping never reads (a json column
    holding "[]" where its schema says object) rejected the conversion."""
    properties = {"cid": {"type": ["integer"]}, "cjson": {"type": ["null", "object"]}}
    message = {"type": "SCHEMA", "stream": "s", "key_properties": ["cid"],
               "schema": {**beside, "type": "object", "properties": properties}}  # fmt: skip
    fields = {"id": "cid", "timestamp": f"'{NOW}'", "action_source": "'other'"}
    streams = {"s": {"event_type": "lead_created", "fields": fields}}
    lines = [json.dumps(message), record("s", {"cid": 2, "cjson": "[]"})]
    cfg = config(sandbox.url, tmp_path, streams=streams, worker_processes=workers)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert stored(sandbox) == ["2"]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_ref_to_a_property_the_mapping_does_not_read_is_resolved(workers, sandbox, tmp_path):
    """A read property whose `$ref` points at another property, unread: the schema cut to the
    read paths pointed to nowhere, and the run stopped ("Unexpected error ...
    PointerToNowhere")."""
    properties = {
        "cid": {"type": "string"},
        "email": {"$ref": "#/properties/other"},
        "other": {"type": ["string", "null"], "maxLength": 40},
    }
    whole = {"definitions": {}, "type": "object", "properties": properties}
    message = {"type": "SCHEMA", "stream": "s", "key_properties": ["cid"], "schema": whole}
    fields = {"id": "cid", "timestamp": f"'{NOW}'", "email": "email"}
    fields["action_source"] = "'other'"
    streams = {"s": {"event_type": "lead_created", "fields": fields}}
    lines = [json.dumps(message), record("s", {"cid": "a", "email": "a@example.com"})]
    cfg = config(sandbox.url, tmp_path, streams=streams, worker_processes=workers)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    assert stored(sandbox) == ["a"]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_closed_schema_s_unread_columns_are_no_extra_properties(workers, sandbox, tmp_path):
    """`additionalProperties: false`, and a field read by its name that the SCHEMA does not
    list: the schema cut to the read paths kept the closure but not the unread columns, so a
    record decoded whole (its items not the shape read) was refused for holding them."""
    properties = {"id": {}, "at": {}, "items": {}, "note": {}}
    whole = {"type": "object", "additionalProperties": False, "properties": properties}
    message = {"type": "SCHEMA", "stream": "s", "key_properties": ["id"], "schema": whole}
    fields = {"id": "id", "timestamp": "at", "contents": "items[].{id: sku}"}
    fields["action_source"] = "'other'"
    streams = {"s": {"event_type": "order_created", "fields": fields}}
    lines = [json.dumps(message)]
    lines.append(record("s", {"id": "o1", "at": NOW, "items": "NULL", "note": 1}))
    lines.append(record("s", {"id": "o2", "at": NOW, "items": [], "note": 1}))
    lines.append(record("s", {"id": "o3", "at": NOW, "items": [], "extra": 1}))
    lines.append(record("s", {"id": "o4", "at": NOW, "items": "NULL", "extra": 1}))
    cfg = config(sandbox.url, tmp_path, streams=streams, worker_processes=workers)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    # (o3's and o4's column the SCHEMA does not list is not read either: no conversion lost
    # for it, whether the record was decoded in part or, o4's items not read, whole)
    assert stored(sandbox) == ["o1", "o2", "o3", "o4"]
    assert "rejected=0" in run.stderr


@pytest.mark.parametrize("workers", [0, 2])
def test_a_number_of_a_billion_decimal_places_in_a_user_field_is_left_out(
    workers, sandbox, tmp_path
):
    """`1e-99999999999` (15 characters) as an external id was written out in full to be hashed:
    a MemoryError stopped the run ("This is a bug"), no STATE, on every rerun."""
    line = (
        '{"type": "RECORD", "stream": "c", "record": {"id": "r1", "timestamp": "'
        + NOW
        + '", "type": "lead_created", "customer": 1e-99999999999}}'
    )
    lines = [SCHEMA, line, rec(2, customer="c2"), state({"bookmark": 2})]
    streams = {"c": {"fields": {"external_id": "customer"}}}
    cfg = config(sandbox.url, tmp_path, streams=streams, worker_processes=workers)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert sorted(events) == ["r1", "r2"]
    assert "user" not in events["r1"]
    digest = hashlib.sha256(b"c2").hexdigest()
    assert events["r2"]["user"] == {"external_ids_sha256": [digest]}
    assert "external_id is not text or a number; sent without it" in run.stderr
    assert run.states[-1] == {"bookmark": 2}


def test_a_long_run_of_digits_that_is_no_number_is_refused_at_once(sandbox, tmp_path):
    """A number was matched by a pattern that tried every split of a run of digits that failed
    to match: 20,000 digits and an "x" as an amount took 10 s, as a time 18 s; these 200,000
    would take a quarter of an hour (run_target gives up after 120 s), the records behind them
    and STATE waiting."""
    digits = "1" * 200_000
    lines = [
        SCHEMA,
        rec(1, total=digits + "x", currency="USD"),
        record("c", {"id": "r2", "timestamp": digits + "e", "type": "lead_created"}),
        rec(3),
        state({"bookmark": 3}),
    ]
    cfg = config(sandbox.url, tmp_path, worker_processes=0)
    cfg["streams"] = {"c": {"fields": {"amount": "total", "currency": "currency"}}}
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output[-2000:]
    assert_clean(run)
    assert stored(sandbox) == ["r3"]
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    reasons = {d["record"]["id"]: d["dead_letter"]["reason"] for d in dead if "record" in d}
    assert reasons["r1"].startswith("amount '1111")
    assert "is not a number" in reasons["r1"]
    assert reasons["r2"].startswith("timestamp '1111")
    assert run.states == [{"bookmark": 3}]


def test_dev_null_for_both_output_files_turns_both_off(sandbox, tmp_path):
    """Both set to /dev/null (the README's way to keep no dead letters, and a Meltano
    environment's way to turn both off) was refused: 'name the same file: the request log's
    lines would break the dead-letter file's replay', though nothing is read back from it."""
    stale = record("c", {"id": "old", "timestamp": iso_minutes_ago(8 * 24 * 60)})
    cfg = config(sandbox.url, tmp_path, dead_letter_path="/dev/null", request_log_path="/dev/null")
    run = run_target(cfg, [SCHEMA, rec(1), stale, state({"b": 1})], tmp_path)
    assert run.returncode == 0, run.output
    assert stored(sandbox) == ["r1"]
    assert run.states == [{"b": 1}]
    # (two names of one regular file are still refused)
    same = config(
        sandbox.url,
        tmp_path,
        dead_letter_path=str(tmp_path / "out.jsonl"),
        request_log_path=str(tmp_path / "." / "out.jsonl"),
    )
    run = run_target(same, [SCHEMA, rec(2)], tmp_path)
    assert run.returncode == 1
    assert "dead_letter_path and request_log_path name the same file" in run.stderr


def _run_in(
    folder: str, config_path: Path, lines: list[str], env: dict[str, str], gone: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """The CLI run from `folder` (removed first, under the running process, when `gone`)."""
    command = " ".join(f"'{part}'" for part in [*TARGET_CMD, "--config", str(config_path)])
    script = f"cd '{folder}' && rmdir '{folder}' && exec {command}" if gone else f"exec {command}"
    return subprocess.run(
        ["sh", "-c", script],
        input=("\n".join(lines) + "\n").encode(),
        capture_output=True,
        timeout=120,
        env=env,
        cwd=None if gone else folder,
        check=False,
    )


def test_relative_output_paths_from_a_removed_working_folder_say_so(sandbox, tmp_path):
    """Run from a folder removed meanwhile (a CI workspace cleaned under a running job), the
    config's check of the two paths ended in a traceback (FileNotFoundError in realpath)."""
    cfg = config(
        sandbox.url, tmp_path, dead_letter_path="dl.jsonl", request_log_path="requests.jsonl"
    )
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(cfg))
    gone = tmp_path / "gone"
    gone.mkdir()
    run = _run_in(str(gone), config_path, [SCHEMA, rec(1)], dict(os.environ), gone=True)
    err = run.stderr.decode()
    assert run.returncode == 1, err
    assert "Traceback" not in err
    assert "This is a bug" not in err
    assert "dead_letter_path 'dl.jsonl' cannot be written (No such file or directory)" in err
    assert sandbox.stats()["requests"] == 0


def test_a_non_ascii_output_path_under_an_ascii_locale_is_a_config_error(sandbox, tmp_path):
    """Under LC_ALL=C without UTF-8 mode, file names are ASCII to Python: a dead_letter_path
    of `dé.jsonl` stopped the run as a bug (UnicodeEncodeError), with a traceback beside a
    request log."""
    cfg = config(
        sandbox.url,
        tmp_path,
        dead_letter_path=str(tmp_path / "d\u00e9.jsonl"),
        request_log_path=str(tmp_path / "requests.jsonl"),
    )
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(cfg))
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}
    env.pop("PYTHONIOENCODING", None)
    run = _run_in(str(tmp_path), config_path, [SCHEMA, rec(1)], env)
    err = run.stderr.decode(errors="replace")
    assert run.returncode == 1, err
    assert "Traceback" not in err
    assert "This is a bug" not in err
    assert "dead_letter_path holds characters this system's file names cannot have here" in err
    assert "PYTHONUTF8=1" in err
    assert sandbox.stats()["requests"] == 0


def test_a_relative_batch_file_from_a_removed_working_folder_stops_cleanly(sandbox, tmp_path):
    """`file://rel/b.jsonl.gz` (the SDK's own test streams name files so) read from a working
    folder removed meanwhile: "Unexpected error (FileNotFoundError...). This is a bug"."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config(sandbox.url, tmp_path)))
    gone = tmp_path / "gone"
    gone.mkdir()
    lines = [SCHEMA, rec(1), state({"bookmark": 1}), _batch(["file://rel/b.jsonl.gz"])]
    run = _run_in(str(gone), config_path, lines, dict(os.environ), gone=True)
    err = run.stderr.decode()
    assert run.returncode == 1, err
    assert "Traceback" not in err
    assert "This is a bug" not in err
    assert "its manifest names 'rel/b.jsonl.gz', which cannot be found" in err
    assert stored(sandbox) == ["r1"]
    assert run.stdout.decode().splitlines() == ['{"bookmark": 1}']


def test_a_schema_s_enum_of_many_thousand_values_is_no_check_of_records(sandbox, tmp_path):
    """An enum of a million ids on a property the mapping reads cost a minute and 8 GB at the
    SCHEMA (the record check is generated code, ~8 KB an item), 100,000 alternatives as much:
    such lists are a tap's promise, left out of the checks. A short enum is still checked."""
    ids = [f"r{n}" for n in range(1, 20_001)]
    lines = [
        schema(
            "c",
            {
                "id": {"type": "string", "enum": ids},
                "type": {"type": "string", "enum": ["lead_created", "order_created"]},
                # (no time is this long: every record is outside the alternatives)
                "timestamp": {
                    "anyOf": [{"type": "string", "minLength": 100 + n} for n in range(5_000)]
                },
            },
            ["id"],
        ),
        rec(1),
        rec(20_002),  # (outside the long enum)
        rec(3, type="signup"),  # (outside the short one)
    ]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 0, run.output[-2000:]
    assert_clean(run)
    assert stored(sandbox) == ["r1", "r20002"]
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    reasons = {d["record"]["id"]: d["dead_letter"] for d in dead if d["type"] == "RECORD"}
    assert list(reasons) == ["r3"]
    assert reasons["r3"]["stage"] == "schema"


def test_a_long_enum_in_definitions_is_left_out_unless_a_not_reaches_it(sandbox, tmp_path):
    """Kept whole in definitions, a pydantic model's enum (`$defs.Kind`, `$ref` from a
    property) of 100,000 values cost 13 s and 900 MB at the SCHEMA again; and one in a oneOf
    branch, left out, made a value match two branches (refused)."""
    kinds = [f"k{n}" for n in range(100_000)]
    schema_ = {
        "type": "object",
        "$defs": {"Kind": {"type": "string", "enum": kinds}, "Banned": {"enum": ["bad"] * 1_001}},
        "properties": {
            "id": {"type": "string", "not": {"$ref": "#/$defs/Banned"}},
            "kind": {"$ref": "#/$defs/Kind"},
            "type": {"oneOf": [{"enum": [f"x{n}" for n in range(1_001)]}, {"type": "string"}]},
        },
    }
    lines = [
        json.dumps({"type": "SCHEMA", "stream": "c", "schema": schema_, "key_properties": ["id"]}),
        rec(1, kind="zzz"),  # (outside the long Kind: no check)
        rec(2, id="bad"),  # (a banned id, through $ref under not: refused, as the tap wrote)
    ]
    cfg = config(sandbox.url, tmp_path, streams={"c": {"fields": {"external_id": "kind"}}})
    run = run_target(cfg, lines, tmp_path, timeout=60)
    assert run.returncode == 0, run.output[-2000:]
    assert_clean(run)
    assert stored(sandbox) == ["r1"]
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert [d["record"]["id"] for d in dead if d["type"] == "RECORD"] == ["bad"]


def test_a_long_enum_under_not_or_if_is_checked_as_the_tap_wrote_it(sandbox, tmp_path):
    """Left out under `not` (`not: {}`) or `if` (its `then` on every record), a long list made
    the check stricter, not looser: every record refused while the run exits 0."""
    banned = [f"x{n}" for n in range(1_001)]
    lines = [
        schema(
            "c",
            {
                "id": {"type": "string", "not": {"enum": banned}},
                "type": {
                    "type": "string",
                    "if": {"enum": [f"y{n}" for n in range(1_001)]},
                    "then": {"maxLength": 1},
                },
            },
            ["id"],
        ),
        rec(1),
        rec(2, id="x7"),  # (a banned id: refused, as the tap wrote)
    ]
    run = run_target(config(sandbox.url, tmp_path), lines, tmp_path)
    assert run.returncode == 0, run.output[-2000:]
    assert_clean(run)
    assert stored(sandbox) == ["r1"]
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert [d["record"]["id"] for d in dead if d["type"] == "RECORD"] == ["x7"]


@pytest.mark.parametrize("workers", [0, 2])
def test_an_oppref_holding_an_email_or_a_phone_number_is_never_sent_raw(workers, sandbox, tmp_path):
    """oppref is sent as written (the page: the original string, unmodified): a column mapped
    to it by mistake sent an email address or a phone number to OpenAI raw, where every other
    field sent raw (obref, a city, a user agent) leaves such a value out. The event goes
    without it, and the log says why without the value."""
    rows = {
        "r1": "jane.doe@example.com",
        "r2": "+1 415 555 2671",
        "r3": "oppref_abc-123",  # an oppref as the page shows one
        "r4": "jane%40example.com",  # (percent-encoded, from a landing page's URL)
    }
    lines = [SCHEMA, *(rec(int(rid[1:]), click=value) for rid, value in rows.items())]
    lines.append(state({"bookmark": 4}))
    streams = {"c": {"fields": {"oppref": "click"}}}
    cfg = config(sandbox.url, tmp_path, streams=streams, worker_processes=workers)
    run = run_target(cfg, lines, tmp_path)
    assert run.returncode == 0, run.output
    assert_clean(run)
    events = {e["id"]: e for e in sandbox.events(PIXEL_ID)}
    assert sorted(events) == ["r1", "r2", "r3", "r4"]
    assert {rid: e.get("oppref") for rid, e in events.items()} == {
        "r1": None,
        "r2": None,
        "r3": "oppref_abc-123",
        "r4": None,
    }
    assert "oppref holds an email address; sent without it" in run.stderr
    assert "oppref holds a phone number; sent without it" in run.stderr
    for value in ("jane.doe", "415 555", "jane%40"):
        assert value not in run.output
    assert run.states[-1] == {"bookmark": 4}
