"""The sink: checks each record against its stream schema and hands it to the run's pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import fastjsonschema
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator, JSONSchemaValidator

from target_openai_capi.accounting import STAGE_SCHEMA
from target_openai_capi.decoding import RecordDecoding, record_decoding
from target_openai_capi.mapping.reads import prune_schema, prune_schema_exactly
from target_openai_capi.schema_check import without_patterns

if TYPE_CHECKING:
    from collections.abc import Sequence

    from singer_sdk.target_base import Target

    from target_openai_capi.pipeline import Pipeline


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
        try:
            self._validate(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            reason = exc.message.replace("data", "record", 1)
            raise InvalidRecord(reason, record) from exc


class ConversionsSink(BatchSink):
    """One per stream; batching, delivery and accounting happen in the shared Pipeline."""

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        self.pipeline: Pipeline = target.pipeline  # type: ignore[attr-defined]
        self._rejection: tuple[str, str] | None = None
        super().__init__(target, stream_name, schema, key_properties)

    @property
    def is_full(self) -> bool:
        """Never: the pipeline sends each batch as soon as it holds batch_size events."""
        return False

    def record_reads(self) -> dict[str, Any] | None:
        """The record paths this stream's records are read at (mapping/reads.py), or None: all.

        Those its mapping reads, and the key properties (read for the event id and checked
        by the SDK); for a stream with no mapping, only the key properties.
        """
        keys = dict.fromkeys(self.key_properties, True)
        if not self.pipeline.is_mapped(self.stream_name):
            return keys
        reads = self.pipeline.mappings[self.stream_name].reads
        return None if reads is None else {**reads, **keys}

    def record_decoding(self) -> RecordDecoding | None:
        """How the reader may decode this stream's records (decoding.py), or None: whole.

        Only the paths read; and checked against the schema on the way when the sink would
        validate them with the same rules (fastjsonschema, formats and defaults off).
        """
        reads = self.record_reads()
        if reads is None:
            return None
        if self._validator is None:
            return record_decoding(reads)
        schema = prune_schema_exactly(without_patterns(self.schema), reads)
        if schema is None:
            return None  # a schema rule may need unread properties: decode it all
        if not isinstance(self._validator, FastRecordValidator):
            return record_decoding(reads)
        return record_decoding(reads, schema)

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """fastjsonschema, over the parts of the schema the mapping reads; None if unmapped."""
        if not self.validate_schema or not self.pipeline.is_mapped(self.stream_name):
            return None
        schema = without_patterns(self.schema)  # (schema_check.py says why)
        reads = self.record_reads()
        if reads is not None:
            # A property the mapping never reads can neither break an event nor be sent, so it
            # is not checked (a whole tap-shopify order schema costs 5x its read paths).
            schema = prune_schema(schema, reads)
        try:
            return FastRecordValidator(schema)
        except fastjsonschema.JsonSchemaDefinitionException:
            self.logger.info(
                "Schema of '%s' needs the slower jsonschema validator.", self.stream_name
            )
            return JSONSchemaValidator(schema)

    def _validate_and_parse(self, record: dict[str, Any]) -> dict[str, Any]:
        """Validate; an invalid record is remembered for rejection instead of ending the run.

        A record the reader already checked against the same schema is not checked again.
        The SDK's date parsing is skipped on purpose: the target parses only the fields it
        maps, and an unparseable date elsewhere must not end the run.
        """
        if self._validator is not None and not self.pipeline.record_checked:
            try:
                self._validator.validate(record)
            except InvalidRecord as exc:
                self._rejection = (STAGE_SCHEMA, f"record does not match its schema: {exc}")
        return record

    def _singer_validate_message(self, record: dict[str, Any]) -> None:
        """A record without its key properties is rejected, not fatal (unless on_rejected: fail)."""
        if self.pipeline.settings.on_rejected == "fail":
            super()._singer_validate_message(record)
            return
        missing = [k for k in self.key_properties if k not in record]
        if missing and self._rejection is None:
            self._rejection = (STAGE_SCHEMA, f"record lacks key properties {missing}")

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        """Hand the record to the pipeline (or reject it, if validation failed)."""
        if not self.pipeline.is_mapped(self.stream_name):
            self.pipeline.skip_unmapped(self.stream_name)
        elif self._rejection is not None:
            stage, reason = self._rejection
            self._rejection = None
            self.pipeline.reject(
                self.stream_name, record, self.key_properties, self.original_schema, stage, reason
            )
        else:
            self.pipeline.add_record(
                self.stream_name, record, self.key_properties, self.original_schema
            )

    def process_batch(self, context: dict[str, Any]) -> None:
        """At a drain (end of input, or the SDK's periodic drain): send and wait for everything."""
        self.pipeline.flush()
