"""The target CLI with proposed hot-path changes applied as patches, to measure them first.

    python benchmarks/variants.py --variants prune,gc -- --config config.json < stream.singer

Each variant is a small patch of the installed package that stands for a change proposed in
benchmarks/RESULTS.md; run.py --variants runs them next to the unpatched target. A variant
changes no file: it only exists in this process.
"""

from __future__ import annotations

import argparse
import dataclasses
import decimal
import functools
import gc
import re
import sys
from collections.abc import Callable
from typing import Any

import msgspec

from target_openai_capi import pipeline, sink
from target_openai_capi.mapping import identity
from target_openai_capi.mapping.event import EVENT_FIELDS
from target_openai_capi.mapping.reads import prune_schema, read_paths
from target_openai_capi.presets import apply_preset
from target_openai_capi.target import TargetOpenAICapi


def _nogc() -> None:
    """Upper bound of what the cyclic garbage collector costs: switch it off."""
    gc.disable()


# --- validate-read: validate only what the mapping reads --------------------------------------


def stream_reads(entry: dict[str, Any], key_properties: list[str]) -> dict[str, Any] | None:
    """The record paths a `streams` entry reads (mapping/reads.py tree), or None: anything."""
    entry = apply_preset(entry)
    fields = entry.get("fields") or {}
    texts = list(fields.values())
    for key in ("filter", "event_type_from"):
        if entry.get(key):
            texts.append(entry[key])
    if entry.get("event_type") is None and entry.get("event_type_from") is None:
        texts.append("type")
    # An event field that is not mapped is read from the property of the same name.
    whole = [*key_properties, *(set(EVENT_FIELDS) - set(fields))]
    return read_paths(texts, whole)


def _validate_read() -> None:
    """The sink validates the stream schema cut down to the paths the mapping reads."""
    original = sink.ConversionsSink.get_validator

    def get_validator(self: sink.ConversionsSink) -> Any:
        entry = (self.config.get("streams") or {}).get(self.stream_name)
        if not self.validate_schema or entry is None:
            return original(self)
        tree = stream_reads(entry, list(self.key_properties or []))
        if tree is None:
            return original(self)
        return sink.FastRecordValidator(prune_schema(self.schema, tree))

    sink.ConversionsSink.get_validator = get_validator  # type: ignore[method-assign]


def _keeps_record_dicts() -> bool:
    """Whether batches still keep each source record as a dict (before the proposed change)."""
    return "record" in pipeline.RecordRef.__dataclass_fields__


def _slim_refs() -> None:
    """Batches keep the record only when a dead-letter file may need it."""
    if not _keeps_record_dicts():
        return  # the package already does this (RecordRef.record_json)
    original = pipeline.Pipeline._queue

    def _queue(self: pipeline.Pipeline, stream: str, event: dict[str, Any], ref: Any) -> None:
        if self._dead_letters is None:
            key = {k: ref.record.get(k) for k in ref.key_properties}
            make: Any = pipeline.RecordRef  # the pre-change signature (record: Mapping)
            ref = make(ref.stream, ref.seq, key, ref.event_id, ref.key_properties, ref.schema)
        original(self, stream, event, ref)

    pipeline.Pipeline._queue = _queue  # type: ignore[method-assign]


def _encoded_refs() -> None:
    """Batches keep each record as compact JSON bytes (one object the collector skips)."""
    if not _keeps_record_dicts():
        return  # the package already does this (RecordRef.record_json)
    encoder = msgspec.json.Encoder(decimal_format="number")
    decoder = msgspec.json.Decoder(float_hook=decimal.Decimal)
    queue, reject = pipeline.Pipeline._queue, pipeline.Pipeline.reject

    def _queue(self: pipeline.Pipeline, stream: str, event: dict[str, Any], ref: Any) -> None:
        ref = dataclasses.replace(ref, record=encoder.encode(ref.record))
        queue(self, stream, event, ref)

    def _reject(self: pipeline.Pipeline, stream: str, record: Any, *args: Any, **kw: Any) -> None:
        if isinstance(record, bytes):
            record = decoder.decode(record)
        reject(self, stream, record, *args, **kw)

    pipeline.Pipeline._queue = _queue  # type: ignore[method-assign]
    pipeline.Pipeline.reject = _reject  # type: ignore[method-assign]


def _cache_user() -> None:
    """Normalised-and-hashed user values are cached: cities, states, countries, names repeat."""
    normalise = identity._normalise
    cached = functools.lru_cache(maxsize=65_536)(normalise)

    def _normalise(name: str, value: object, region: str | None) -> str:
        if isinstance(value, str):
            return cached(name, value, region)
        return normalise(name, value, region)

    identity._normalise = _normalise


def _dedup_20k() -> None:
    """The in-run dedup window holds 20,000 recent keys instead of 200,000 (~4 MB, not ~40)."""
    pipeline.RECENT_EVENT_KEYS = 20_000


def _phone_fast() -> None:
    """A phone written as +digits (E.164) skips libphonenumber; its length is not checked."""
    e164 = identity._e164_digits
    plain = re.compile(r"\+[1-9][0-9]{7,14}")

    def _e164_digits(text: str, region: str | None) -> str:
        compact = text.replace(" ", "").replace("-", "")
        if plain.fullmatch(compact):
            return identity.PHONE_PREFIX + compact[1:]
        return e164(text, region)

    identity._e164_digits = _e164_digits  # type: ignore[assignment]


VARIANTS: dict[str, Callable[[], None]] = {
    "phone-fast": _phone_fast,
    "dedup-20k": _dedup_20k,
    "cache-user": _cache_user,
    "encoded-refs": _encoded_refs,
    "nogc": _nogc,
    "validate-read": _validate_read,
    "slim-refs": _slim_refs,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", required=True, help=f"comma-separated: {', '.join(VARIANTS)}")
    args, rest = parser.parse_known_args()
    for name in filter(None, args.variants.split(",")):
        VARIANTS[name]()
    sys.argv = [sys.argv[0], *[a for a in rest if a != "--"]]
    TargetOpenAICapi.cli()


if __name__ == "__main__":
    main()
