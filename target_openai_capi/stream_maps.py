"""A record through the user's stream maps (the SDK's mapper), each result to its stream's sink.

Only streams with stream maps come here (target.py sends the others straight to their sink).
A map may rename the stream (`__alias__`), reshape or drop the record, or send one stream to
several (`__source__`); a user's expression that fails on one record rejects that record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from singer_sdk.exceptions import RecordsWithoutSchemaException
from singer_sdk.sinks import Sink

from target_openai_capi.mapping.user_values import blank
from target_openai_capi.pipeline.accounting import STAGE_MAPPING
from target_openai_capi.pipeline.events import Rejection, StreamInfo
from target_openai_capi.pipeline.run import Pipeline
from target_openai_capi.reading.envelope import DELETED_AT, RecordEnvelope
from target_openai_capi.sink import ConversionsSink


def through_stream_maps(
    maps: Sequence[Any],
    envelope: RecordEnvelope,
    sink_for: Callable[[str], Sink | None],
    pipeline: Pipeline,
    source: StreamInfo,
) -> None:
    """Run each of the stream's maps on the record; a record no map keeps is `filtered`.

    `source` is the record's own stream (its SCHEMA as the tap sent it), for a rejection.
    """
    if not pipeline.matched_any and any(pipeline.is_mapped(m.stream_alias) for m in maps):
        # A record of a configured stream, whatever the map makes of it: the `streams` entry
        # is not misnamed (a map that drops or fails on every record must not say it is).
        pipeline.matched_any = True
    # Every map first: one that fails rejects the record whole, none of its copies sent (a
    # record sent to two streams, its second map failing, was rejected and sent once).
    made = []
    for stream_map in maps:
        try:
            made.append((stream_map.stream_alias, stream_map.transform(dict(envelope.record))))
        except Exception as exc:  # a user's stream map expression failed on this record
            _reject(source, envelope, exc, pipeline)
            return
    reached_a_sink = False
    deleted_at = envelope.record.get(DELETED_AT)
    for alias, record in made:
        if record is None:
            continue  # the map dropped it
        if DELETED_AT not in record and not blank(deleted_at):
            # (a map keeping chosen columns, `__else__: null`, left it out: a delete at the
            # source stays one, filtered by the sink, not sent as a conversion)
            record[DELETED_AT] = deleted_at
        sink = sink_for(alias)
        if not isinstance(sink, ConversionsSink):
            raise RecordsWithoutSchemaException(f"RECORD for stream {alias!r} has no SCHEMA")
        reached_a_sink = True
        copy = RecordEnvelope(alias, record)
        copy.before_maps = (source, envelope)  # (its dead letter: the record as it arrived)
        sink.add(copy)
    if not reached_a_sink:
        pipeline.filtered_by_stream_map(envelope.stream, [m.stream_alias for m in maps])


def _reject(
    source: StreamInfo, envelope: RecordEnvelope, exc: Exception, pipeline: Pipeline
) -> None:
    """Reject the record under its own stream and SCHEMA, as it arrived (a replay of the dead
    letter runs the stream maps again)."""
    detail = " ".join(str(exc).split())[:200]
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause).strip():  # (the SDK's words leave out what failed)
        detail += f" ({type(cause).__name__}: {' '.join(str(cause).split())[:200]})"
    pipeline.reject(
        source,
        envelope,
        Rejection(
            STAGE_MAPPING,
            f"stream_maps expression failed on this record ({type(exc).__name__}: {detail})",
        ),
    )
