"""One RECORD line decoded, checked and mapped away from the main process (pure, no I/O).

A worker process (worker.py) runs `RecordPreparer.prepare` on each line the main process hands
it, with the same plan per stream that the main process would use: the same decoding
(reading/decoding.py), the same schema check, the same mapping and contract (pipeline/events.py
`prepare_event`). It answers what that gives: the event built (as its JSON), the record
filtered out or skipped as unmatchable, or rejected by its schema (pipeline/schema_verdict.py,
as the sink words it), the mapping, the contract or the window with its stage and reason
(explaining a refused event is the slowest step of all: a stream of records the contract
refuses must not queue them all on the main process). The main process counts, logs and
dead-letters a rejection from the line it kept, as its own path would. Anything else (a line
that is not a RECORD of a planned stream, any error) is answered None, and the main process
handles that line itself, by its own path, as if no worker existed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import fastjsonschema
import orjson

from target_openai_capi.mapping.assembler import Assembler, compile_assembler
from target_openai_capi.mapping.stream_mapping import StreamMapping, compile_stream_mapping
from target_openai_capi.mapping.user_values import blank
from target_openai_capi.pipeline.accounting import FILTERED, SKIPPED_UNMATCHABLE
from target_openai_capi.pipeline.events import Built, Outcome, Rejection, StreamInfo, prepare_event
from target_openai_capi.pipeline.field_watch import carried
from target_openai_capi.pipeline.schema_verdict import (
    fast_schema_problem,
    fast_schema_rejection,
    key_rejection,
)
from target_openai_capi.reading.decoding import RecordDecoding, stream_decoding
from target_openai_capi.reading.envelope import DELETED_AT, RecordEnvelope, strip_tap_metadata
from target_openai_capi.reading.line_chunks import MAX_LINE_BYTES
from target_openai_capi.reading.lines import LineDecoder

_BUILT = "built"
_REJECTED = "rejected"


@dataclass(frozen=True)
class PlanSpec:
    """Everything a worker needs to treat one stream's records as the main process does; plain
    data, so it can be sent to another process (never the API key: no setting but these)."""

    stream: str
    entry: dict[str, Any]  # the stream's `streams` config entry
    key_properties: tuple[str, ...]
    reads: dict[str, Any]  # the paths the stream's records are read at (sink.record_reads)
    decoding_schema: dict[str, Any] | None  # stream_decoding's `schema`
    validator_schema: dict[str, Any] | None  # the schema fastjsonschema checks (None: no check)
    sdc_possible: bool  # tap metadata may be among the read paths
    user_field_style: str
    default_phone_region: str | None
    watched: bool = False  # a mapped field no event has carried yet: say which each carries
    # The SCHEMA lists _sdc_deleted_at: a record with it set (of a deleted row) is filtered
    # here; else (a binlog tap's delete) the main process filters it, and says so once.
    deletes: bool = False


class PreparedRecord(NamedTuple):
    """What a worker made of one RECORD line, under version `version` of its stream's plan."""

    stream: str
    version: int
    kind: str  # "built", "rejected", FILTERED or SKIPPED_UNMATCHABLE
    event_json: bytes | None
    name: str | None  # the event's dedup name
    event_id: str | None
    identifiers: frozenset[str]
    notes: list[str]
    start: int  # where the line is in its chunk: chunk[start:end]
    end: int
    rejection: Rejection | None = None  # the stage and reason of a rejected record
    carried: int = 0  # the event's watched fields (pipeline/field_watch.py `carried`)
    timestamp_ms: int = 0  # the built event's

    def outcome(self) -> Outcome:
        """The outcome as pipeline/events.py `prepare_event` gives it (the event as JSON)."""
        if self.kind != _BUILT:
            if self.kind == _REJECTED:
                assert self.rejection is not None
                return self.rejection
            return self.kind
        assert self.event_json is not None
        assert self.name is not None
        return Built(
            orjson.Fragment(self.event_json), self.name, self.identifiers, self.timestamp_ms
        )


@dataclass(frozen=True)
class StreamPlan:
    """A PlanSpec compiled: the stream's decoding, schema check and mapping."""

    version: int
    spec: PlanSpec
    info: StreamInfo
    decoding: RecordDecoding
    mapping: StreamMapping
    validate: Any  # fastjsonschema's compiled check, or None
    assemble: Assembler | None  # the mapping's compiled build_event (mapping/assembler.py)

    @classmethod
    def compile(cls, spec: PlanSpec, version: int) -> StreamPlan | None:
        """The plan, or None when the stream's records are not decoded in part (whole)."""
        decoding = stream_decoding(
            spec.reads, spec.decoding_schema, same_rules=spec.validator_schema is not None
        )
        if decoding is None:
            return None
        validate = None
        if spec.validator_schema is not None:
            validate = fastjsonschema.compile(
                spec.validator_schema, use_default=False, use_formats=False
            )
        mapping = compile_stream_mapping(spec.stream, spec.entry)
        return cls(
            version=version,
            spec=spec,
            info=StreamInfo(spec.stream, spec.key_properties, None),
            decoding=decoding,
            mapping=mapping,
            validate=validate,
            assemble=compile_assembler(
                mapping, spec.key_properties, spec.user_field_style, spec.default_phone_region
            ),
        )


class RecordPreparer:
    """The worker's side: the current plan of each stream, and each line prepared by it."""

    def __init__(self) -> None:
        self.plans: dict[str, StreamPlan] = {}
        self.lines = LineDecoder()
        self.lines.keep_sources = False  # one pass: the main process keeps the line itself
        # One object for each set of identifier kinds: a chunk's answers pickle each set once.
        self._kinds: dict[frozenset[str], frozenset[str]] = {}

    def set_plan(self, stream: str, version: int, spec: PlanSpec | None) -> None:
        """Prepare the stream's records by this plan from now on (None: not at all)."""
        plan = None if spec is None else StreamPlan.compile(spec, version)
        if plan is None:
            self.plans.pop(stream, None)
            self.lines.set_plan(stream, None)
        else:
            self.plans[stream] = plan
            self.lines.set_plan(stream, plan.decoding)

    def prepare_all(self, lines: list[bytes]) -> list[PreparedRecord | None]:
        """Each line of a chunk prepared, in order (`split_lines` gave the lines)."""
        now_ms = int(time.time() * 1000)
        results = []
        start = 0
        for line in lines:
            end = start + len(line)
            results.append(self.prepare(line, now_ms, start, end))
            start = end + 1  # (the newline)
        return results

    def prepare(
        self, line: bytes, now_ms: int, start: int = 0, end: int = 0
    ) -> PreparedRecord | None:
        """The line's record prepared, or None: the main process handles the line itself.
        `start` and `end` say where the line is in its chunk."""
        try:
            return self._prepare(line, now_ms, start, end)
        except Exception:  # whatever it is, the main process meets it again and says so
            return None

    def _prepare(self, line: bytes, now_ms: int, start: int, end: int) -> PreparedRecord | None:
        if not line or line.isspace() or len(line) > MAX_LINE_BYTES:
            return None  # (an overlong line: the main process rejects it, saying why)
        envelope = self.lines.decode(line)
        if type(envelope) is not RecordEnvelope:
            return None
        plan = self.plans.get(envelope.stream)
        if plan is None:
            return None
        spec = plan.spec
        # What the sink checks before mapping (sink.py ConversionsSink.add): tap metadata out,
        # the record against its schema unless the decoder checked it, the key properties.
        if DELETED_AT in envelope.record:
            if not blank(envelope.record[DELETED_AT]):
                if not spec.deletes:
                    return None
                return self._before_mapping(plan, FILTERED, start, end)
            strip_tap_metadata(envelope)
        elif spec.sdc_possible or not envelope.partial:
            strip_tap_metadata(envelope)
        record = envelope.record
        if plan.validate is not None and not envelope.schema_checked:
            problem = fast_schema_problem(plan.validate, record)
            if problem is not None:
                return self._before_mapping(
                    plan, _REJECTED, start, end, fast_schema_rejection(problem, record)
                )
        rejection = key_rejection(record, spec.key_properties)
        if rejection is not None:
            return self._before_mapping(plan, _REJECTED, start, end, rejection)
        outcome, notes, event_id = prepare_event(
            plan.mapping,
            plan.info,
            envelope,
            user_field_style=spec.user_field_style,
            default_phone_region=spec.default_phone_region,
            now_ms=now_ms,
            assemble=plan.assemble,
        )
        if type(outcome) is Built:
            event = outcome.event
            assert isinstance(event, dict)  # built here, not serialised yet
            event_json = orjson.dumps(event)
            return PreparedRecord(
                plan.spec.stream,
                plan.version,
                _BUILT,
                event_json,
                outcome.name,
                event_id,
                self._kinds.setdefault(outcome.identifiers, outcome.identifiers),
                notes,
                start,
                end,
                carried=carried(event) if spec.watched else 0,
                timestamp_ms=outcome.timestamp_ms,
            )
        rejection = None
        if type(outcome) is Rejection:
            kind, rejection = _REJECTED, outcome
        elif outcome in (FILTERED, SKIPPED_UNMATCHABLE):
            kind = str(outcome)
        else:
            return None
        return PreparedRecord(
            plan.spec.stream,
            plan.version,
            kind,
            None,
            None,
            event_id,
            frozenset(),
            notes,
            start,
            end,
            rejection,
        )

    @staticmethod
    def _before_mapping(
        plan: StreamPlan, kind: str, start: int, end: int, rejection: Rejection | None = None
    ) -> PreparedRecord:
        """A record settled before it was mapped: filtered (a row deleted at the source), or
        refused (its schema, or a key property missing)."""
        return PreparedRecord(
            plan.spec.stream,
            plan.version,
            kind,
            None,
            None,
            None,
            frozenset(),
            [],
            start,
            end,
            rejection,
        )
