"""One RECORD message as the reader hands it on: the record, and what the reader knows about it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from target_openai_capi.pipeline.events import StreamInfo

# Whole records, decoded as the reader decodes them (floats as Decimals: money stays exact), and
# encoded back (Decimals as JSON numbers) for the dead-letter file.
WHOLE_RECORD_DECODER: msgspec.json.Decoder[dict[str, Any]] = msgspec.json.Decoder(
    dict[str, Any], float_hook=Decimal
)
RECORD_ENCODER = msgspec.json.Encoder(decimal_format="number", enc_hook=str)

# Tap metadata the SDK takes out of records before a sink sees them (add_record_metadata is not a
# setting of this target), so that a mapping never reads it.
# Set on a record of a row deleted at the source (tap-postgres and others' LOG_BASED replication).
DELETED_AT = "_sdc_deleted_at"
# Other loaders' marks of a row deleted at the source, kept as a column (a soft delete): with
# the filter that leaves such rows out. Not filtered unasked: a loader's table may keep them
# for a reason the target cannot know; the stream is told of at its SCHEMA.
SOFT_DELETES = {
    "_fivetran_deleted": "!_fivetran_deleted",  # (Fivetran: true on a deleted row)
    "_ab_cdc_deleted_at": "!_ab_cdc_deleted_at",  # (Airbyte's CDC: the time of the delete)
}
SDC_METADATA = (
    "_sdc_extracted_at",
    "_sdc_received_at",
    "_sdc_batched_at",
    "_sdc_deleted_at",
    "_sdc_sequence",
    "_sdc_table_version",
    "_sdc_sync_started_at",
)


def decode_record(text: str | bytes) -> dict[str, Any] | None:
    """A JSON object decoded whole as the reader decodes records, or None when it cannot be
    (parts the reader skipped may hold a number beyond a Decimal, deep nesting, bad UTF-8)."""
    try:
        value = WHOLE_RECORD_DECODER.decode(text)
    except (msgspec.DecodeError, UnicodeError, InvalidOperation, RecursionError):
        return None
    return value


_TOP_LEVEL = msgspec.json.Decoder(dict[str, msgspec.Raw])
_VALUE = msgspec.json.Decoder(float_hook=Decimal)


def properties_in_json(record_json: bytes, names: Iterable[str]) -> dict[str, Any]:
    """The named top-level properties of a record's JSON, each decoded alone: the others are
    skipped, so a part that would not decode (a number beyond a Decimal) costs none of them."""
    try:
        top = _TOP_LEVEL.decode(record_json)
    except (msgspec.DecodeError, UnicodeError, RecursionError):
        return {}
    found = {}
    for name in names:
        if name in top:
            try:
                found[name] = _VALUE.decode(top[name])
            except (msgspec.DecodeError, UnicodeError, InvalidOperation, RecursionError):
                continue
    return found


class _RecordOfLine(msgspec.Struct):
    record: msgspec.Raw = msgspec.Raw(b"null")


_RECORD_OF_LINE = msgspec.json.Decoder(_RecordOfLine)


def record_json_in_line(line: bytes) -> bytes | None:
    """The record's JSON exactly as it stands in a RECORD line, or None if it cannot be read."""
    try:
        return bytes(_RECORD_OF_LINE.decode(line).record)
    except (msgspec.DecodeError, UnicodeError, RecursionError):
        return None


class RecordEnvelope:
    """A record of one stream, with its source when only the read paths were decoded.

    `record` holds what the mapping reads (reading/decoding.py), or all of it. When it holds only
    part, `source` is the record's JSON as it arrived or, read in one pass, `line` is the whole
    RECORD line; either gives the whole record back (`whole()`) for the dead-letter file and for
    an event id hashed from the record. `schema_checked` is True when the decoder also checked the
    record against its stream schema, so the sink need not check it again. `original` is the
    record as it arrived when `record` became a changed copy of it (tap metadata taken out).
    `kept` is the JSON of a record decoded whole because it was not shaped as read (a schema
    rejection, most often), as it arrived, for its dead letter: written as a worker process's
    rejection of it is, from the line. `before_maps` is, for a record the user's stream maps
    made, its stream and envelope before them: what its dead letter holds, so that a replay
    through the same maps makes the same record again (stream_maps.py).
    """

    __slots__ = (
        "before_maps",
        "kept",
        "line",
        "original",
        "record",
        "schema_checked",
        "source",
        "stream",
    )

    def __init__(
        self,
        stream: str,
        record: dict[str, Any],
        *,
        source: msgspec.Raw | None = None,
        line: str | bytes | None = None,
        schema_checked: bool = False,
        kept: msgspec.Raw | None = None,
    ) -> None:
        self.stream = stream
        self.record = record
        self.source = source
        self.kept = kept
        self.line = line
        self.schema_checked = schema_checked
        self.original: dict[str, Any] | None = None
        self.before_maps: tuple[StreamInfo, RecordEnvelope] | None = None

    @property
    def partial(self) -> bool:
        """True when `record` holds only the paths the mapping reads."""
        return self.source is not None or self.line is not None

    def whole(self) -> Mapping[str, Any]:
        """The whole record as it arrived (`record` itself when that is whole).

        Parts the reader did not decode may not decode now (a number beyond what a Decimal
        holds, nesting too deep, bad UTF-8): then the record as decoded is all there is.
        """
        whole = self.whole_exactly()
        return self.record if whole is None else whole

    def whole_exactly(self) -> Mapping[str, Any] | None:
        """The whole record as it arrived, or None when parts the reader did not decode do not
        decode now (a number too large to read exactly): a hash of the record is made of it."""
        if self.original is not None:
            return self.original
        if self.source is not None:
            text: bytes | None = bytes(self.source)
        elif self.line is not None:  # (the record's part of the line only)
            line = self.line if isinstance(self.line, bytes) else self.line.encode()
            text = record_json_in_line(line)
        else:
            return self.record
        whole = None if text is None else decode_record(text)
        return whole if isinstance(whole, dict) else None

    def json(self) -> bytes:
        """The whole record as JSON: as it arrived when the reader kept that, else compact."""
        return self.source_json() or RECORD_ENCODER.encode(self.whole())

    def source_json(self) -> bytes | None:
        """The record's JSON exactly as it arrived, when the reader kept it."""
        if self.source is not None:
            return bytes(self.source)
        return None if self.kept is None else bytes(self.kept)


def strip_tap_metadata(envelope: RecordEnvelope) -> None:
    """Take tap metadata (SDC_METADATA) out of the envelope's record; a whole record is kept as
    it arrived first, for its dead letter."""
    record = envelope.record
    present = [name for name in SDC_METADATA if name in record]
    if present:
        if not envelope.partial:  # dead letters keep the record as it arrived
            envelope.original = dict(record)
        for name in present:
            del record[name]
