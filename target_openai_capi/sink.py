"""The sink: one per stream, it gives each record's schema verdict and hands it to the pipeline."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import fastjsonschema
import jsonschema
from singer_sdk.exceptions import InvalidJSONSchema, InvalidRecord, MissingKeyPropertiesError
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator
from singer_sdk.typing import DEFAULT_JSONSCHEMA_VALIDATOR

from target_openai_capi.mapping.user_values import blank
from target_openai_capi.parallel.prepared import PlanSpec, PreparedRecord
from target_openai_capi.pipeline.events import Rejection, StreamInfo
from target_openai_capi.pipeline.schema_verdict import (
    CANNOT_APPLY,
    LACKS_KEY_PROPERTIES,
    fast_schema_problem,
    key_rejection,
    schema_rejection,
)
from target_openai_capi.pipeline.settling import RunFailed
from target_openai_capi.reading.decoding import RecordDecoding, stream_decoding
from target_openai_capi.reading.envelope import (
    DELETED_AT,
    SDC_METADATA,
    SOFT_DELETES,
    strip_tap_metadata,
)
from target_openai_capi.reading.schema_check import for_record_checks
from target_openai_capi.reading.schema_paths import prune_schema

if TYPE_CHECKING:
    from collections.abc import Sequence

    from singer_sdk.target_base import Target

    from target_openai_capi.pipeline.run import Pipeline
    from target_openai_capi.reading.envelope import RecordEnvelope


class FastRecordValidator(BaseJSONSchemaValidator):
    """Validates records with fastjsonschema (about 40x faster than jsonschema).

    Formats are not checked and defaults are not filled in: the target reads only the
    fields it maps and parses those itself, so a loosely formatted date elsewhere in a
    record must not reject it.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        super().__init__(schema)
        self._validate = fastjsonschema.compile(schema, use_default=False, use_formats=False)

    def validate(self, record: dict[str, Any]) -> None:
        """Raise InvalidRecord with a reason that names the field, not its value."""
        problem = fast_schema_problem(self._validate, record)
        if problem is not None:
            raise InvalidRecord(problem, record)


class JsonschemaRecordValidator(BaseJSONSchemaValidator):
    """jsonschema's validator of one draft: Draft3Validator for a schema that declares draft 3,
    which fastjsonschema does not know (it reads such a schema as draft 7: `exclusiveMaximum:
    true` became a bound of 1, and every record above it was refused); the SDK's 2020-12 one
    for a schema fastjsonschema cannot compile. Formats are not checked, as above, and a
    reason names the field and the rule, never the value (jsonschema's own quote it: a phone
    number in the log)."""

    def __init__(
        self, schema: dict[str, Any], draft: type[Any] = DEFAULT_JSONSCHEMA_VALIDATOR
    ) -> None:
        super().__init__(schema)
        try:
            draft.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise InvalidJSONSchema(f"Schema Validation Error: {exc}") from exc
        self._validator = draft(schema, format_checker=jsonschema.FormatChecker(formats=()))

    def validate(self, record: dict[str, Any]) -> None:
        try:
            errors = list(self._validator.iter_errors(record))
        except (
            TypeError,
            ValueError,
            ArithmeticError,
            RecursionError,
            jsonschema.exceptions.UnknownType,  # (draft 3 allows type names of one's own)
        ) as exc:
            # (`divisibleBy` under `extends`, a huge number against a float: as
            # fast_schema_problem says it, the record refused, not the run stopped)
            raise InvalidRecord(CANNOT_APPLY.format(type(exc).__name__), record) from None
        if errors:
            try:
                error = jsonschema.exceptions.best_match(errors)
            except TypeError:  # (ranking draft 3's schemas among types compares dicts)
                error = errors[0]
            raise InvalidRecord(_named_not_quoted(error), record)


def _named_not_quoted(error: jsonschema.ValidationError) -> str:
    """A jsonschema error in words that name the field and the rule, not the value."""
    where = "record" + "".join(
        f"[{step}]" if isinstance(step, int) else f".{step}" for step in error.absolute_path
    )
    if error.validator in ("required", "additionalProperties", "dependencies"):
        return f"{where}: {error.message}"  # (names, which are the SCHEMA's or the record's keys)
    if error.validator is None:  # (a `false` schema, which allows no value)
        return f"{where} holds a value where the SCHEMA allows none (a false schema)"
    rule = json.dumps(error.validator_value, default=str)
    return f"{where} does not meet the SCHEMA's {error.validator} {rule[:200]}"


def declares_draft_3(schema: Any) -> bool:
    """Whether a schema says it is JSON Schema draft 3 (`$schema`)."""
    declared = schema.get("$schema") if isinstance(schema, dict) else None
    return isinstance(declared, str) and "draft-03" in declared


class ConversionsSink(BatchSink):
    """One per stream; batching, delivery and accounting happen in the shared Pipeline.

    The target hands it each record (`add`), past the SDK's per-record path: the sink checks the
    record against its stream schema and passes it on with its verdict.
    """

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        self.pipeline: Pipeline = target.pipeline  # type: ignore[attr-defined]
        # get_validator, called by the SDK in __init__, reads it.
        self._mapped = self.pipeline.is_mapped(stream_name)
        # Replicated with deletes (LOG_BASED): a record of a deleted row carries its time in
        # DELETED_AT, which every mapped stream's records are read at: binlog taps (tap-mysql)
        # write it on a delete without listing it in the SCHEMA.
        self._deletes = self._mapped and DELETED_AT in (schema.get("properties") or {})
        super().__init__(target, stream_name, schema, key_properties)
        self.info = StreamInfo(stream_name, tuple(self.key_properties), self.original_schema)
        self._strict = self.pipeline.settings.on_rejected == "fail"
        self._count = self.record_counter_metric.increment  # the SDK's record_count METRIC
        # Tap metadata can only be in a record decoded whole or read by the mapping.
        reads = self.record_reads()
        self._sdc_possible = reads is None or any(
            name in reads
            for name in SDC_METADATA
            if name != DELETED_AT  # (see `add`)
        )
        if self._mapped:
            self.pipeline.warn_of_unknown_reads(stream_name, self.schema)
            self.pipeline.warn_of_an_id_from_part_of_the_key(stream_name, self.key_properties)
        if self._deletes:
            self.pipeline.tell_of_deletes(stream_name)
        if self._mapped:
            reads = self.pipeline.mappings[stream_name].reads
            properties = schema.get("properties") or {}
            for column in SOFT_DELETES.keys() & properties.keys():
                if reads is not None and column not in reads:
                    self.pipeline.tell_of_soft_deletes(stream_name, column, properties[column])

    @property
    def is_full(self) -> bool:
        """Never: the pipeline sends each batch as soon as it holds batch_size events."""
        return False

    def add(self, envelope: RecordEnvelope) -> None:
        """One record of this stream: skipped if the stream has no mapping, else passed on to
        the pipeline with its schema verdict."""
        self._count()
        if self._strict and not self._mapped:
            self._require_key_properties(envelope)
        if not self._mapped:
            self.pipeline.skip_unmapped(self.stream_name)
            return
        record = envelope.record
        if DELETED_AT in record:
            if not blank(record[DELETED_AT]):
                self.pipeline.deleted_at_source(self.stream_name, listed=self._deletes)
                return
            strip_tap_metadata(envelope)
        elif self._sdc_possible or not envelope.partial:
            strip_tap_metadata(envelope)
        verdict = self.schema_verdict(envelope)
        try:
            self.pipeline.add(self.info, envelope, verdict)
        except RunFailed as exc:  # (on_rejected: fail; the record counted and dead-lettered)
            if verdict is not None and verdict.reason.startswith(LACKS_KEY_PROPERTIES):
                raise MissingKeyPropertiesError(str(exc)) from None  # (as the SDK's tests expect)
            raise

    def add_prepared(self, run: list[PreparedRecord], chunk: bytes) -> None:
        """Records of this stream that a worker process checked and mapped as `add` would
        (parallel/prepared.py), with the chunk of lines they are from: on to the pipeline."""
        self.record_counter_metric.increment(len(run))  # the SDK's record_count METRIC
        add = self.pipeline.add_prepared
        info = self.info
        for prepared in run:
            add(info, prepared, chunk)

    def schema_verdict(self, envelope: RecordEnvelope) -> Rejection | None:
        """None when the record may be mapped; else why not (stage `schema`).

        A record the reader already checked against the same schema is not checked again. The
        SDK's date parsing is left out on purpose: the target parses only the fields it maps,
        and an unparseable date elsewhere must not end the run.
        """
        record = envelope.record
        if self._validator is not None and not envelope.schema_checked:
            try:
                self._validator.validate(record)
            except InvalidRecord as exc:
                return schema_rejection(exc)
        return key_rejection(record, self.key_properties)

    def _require_key_properties(self, envelope: RecordEnvelope) -> None:
        """With on_rejected: fail, a record of a stream without an entry that lacks its key
        properties ends the run with the SDK's error (its standard target tests expect it)."""
        missing = [k for k in self.key_properties if k not in envelope.record]
        if missing:
            raise MissingKeyPropertiesError(
                f"Record of stream '{self.stream_name}' lacks key properties {missing}"
            )

    def record_reads(self) -> dict[str, Any] | None:
        """The record paths this stream's records are read at (mapping/reads.py), or None: all.

        Those its mapping reads, and the key properties (read for the event id and checked
        here); for a stream with no mapping, only the key properties.
        """
        keys = dict.fromkeys(self.key_properties, True)
        if not self._mapped:
            return keys
        reads = self.pipeline.mappings[self.stream_name].reads
        keys[DELETED_AT] = True  # (a record of a deleted row: filtered, see `add`)
        return None if reads is None else {**reads, **keys}

    def record_decoding(self) -> RecordDecoding | None:
        """How the reader may decode this stream's records (reading/decoding.py), or None: whole."""
        validator = self._validator
        return stream_decoding(
            self.record_reads(),
            None if validator is None else self.schema,
            same_rules=isinstance(validator, FastRecordValidator),
        )

    def plan_spec(self, entry: dict[str, Any]) -> PlanSpec | None:
        """What a worker process needs to check and map this stream's records as `add` does
        (parallel/), or None when they stay in this process: not mapped, decoded whole, checked
        by the slower jsonschema validator, or key properties required (on_rejected: fail)."""
        validator = self._validator
        reads = self.record_reads()
        if not self._mapped or reads is None or self._strict:
            return None
        if validator is not None and not isinstance(validator, FastRecordValidator):
            return None
        settings = self.pipeline.settings
        return PlanSpec(
            stream=self.stream_name,
            entry=entry,
            key_properties=tuple(self.key_properties),
            reads=reads,
            decoding_schema=None if validator is None else self.schema,
            validator_schema=None if validator is None else validator.schema,
            sdc_possible=self._sdc_possible,
            deletes=self._deletes,
            user_field_style=settings.user_field_style,
            default_phone_region=settings.default_phone_region,
            watched=self.stream_name in self.pipeline.field_watch.unseen,
        )

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """The records' check over the parts of the schema the mapping reads: fastjsonschema's
        (jsonschema's Draft3Validator for a draft-3 SCHEMA, jsonschema's 2020-12 validator for
        one fastjsonschema cannot compile); None if unmapped."""
        if not self.validate_schema or not self._mapped:
            return None
        if declares_draft_3(self.schema):
            try:
                return JsonschemaRecordValidator(
                    self._checked_schema(draft_3_as_7=False), jsonschema.Draft3Validator
                )
            except InvalidJSONSchema:  # (draft 3 in name only: read as draft 7, flags as bounds)
                pass
        schema = self._checked_schema(draft_3_as_7=True)
        try:
            return FastRecordValidator(schema)
        except fastjsonschema.JsonSchemaDefinitionException:
            self.logger.info(
                "Schema of '%s' needs the slower jsonschema validator.", self.stream_name
            )
            return JsonschemaRecordValidator(schema)

    def _checked_schema(self, *, draft_3_as_7: bool) -> Any:
        """The schema records are checked against (schema_check.py says why), cut down to what
        the mapping reads: a property it never reads can neither break an event nor be sent,
        so it is not checked (reading/schema_paths.py)."""
        schema = for_record_checks(self.schema, draft_3_as_7=draft_3_as_7)
        reads = self.record_reads()
        return schema if reads is None else prune_schema(schema, reads)

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        """Not used: the target hands records to `add` (the SDK's per-record path is skipped)."""
        raise NotImplementedError("records reach ConversionsSink.add")

    def process_batch(self, context: dict[str, Any]) -> None:
        """At a drain (end of input): send and wait for everything."""
        self.pipeline.flush()
