"""One run: records in, events built, batched and delivered, every record settled once.

The three jobs are separate objects: `EventBuilder` (events.py) turns a record into an event or a
verdict, `Batcher` (batching.py) holds open batches and submits them, `Settler` (settling.py)
counts outcomes, dead-letters rejections and releases STATE. `Pipeline` wires them and is what the
target talks to.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import stat
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from target_openai_capi.contract import DATA_SHAPE_BY_TYPE
from target_openai_capi.delivery import BatchResult, Uploader
from target_openai_capi.delivery.batch import WireEvent
from target_openai_capi.log_safety import log_safe, show_in_log
from target_openai_capi.mapping.event import (
    amounts_both_read,
    carries,
    fields_not_carried,
    id_key_properties,
)
from target_openai_capi.mapping.reads import (
    filter_truth_traps,
    read_into_text,
    read_paths,
    schema_types,
    the_event_s_own_columns,
    unknown_reads,
)
from target_openai_capi.mapping.stream_mapping import EVENT_FIELDS, StreamMapping
from target_openai_capi.mapping.user_fields import USER_FIELDS
from target_openai_capi.parallel.prepared import PreparedRecord
from target_openai_capi.pipeline.accounting import DUPLICATE, FILTERED, SKIPPED_STREAM, UNSETTLED
from target_openai_capi.pipeline.batching import Batcher, RecordRef
from target_openai_capi.pipeline.checkpoint import Checkpoints, StateValue
from target_openai_capi.pipeline.dead_letter import DeadLetterFile
from target_openai_capi.pipeline.events import (
    Built,
    EventBuilder,
    HeldCopy,
    Rejection,
    StreamInfo,
)
from target_openai_capi.pipeline.field_watch import FieldWatch
from target_openai_capi.pipeline.log_limit import LimitedLog
from target_openai_capi.pipeline.settings import PipelineSettings
from target_openai_capi.pipeline.settling import Settler
from target_openai_capi.reading.envelope import (
    DELETED_AT,
    SDC_METADATA,
    SOFT_DELETES,
    RecordEnvelope,
    properties_in_json,
    record_json_in_line,
)
from target_openai_capi.stream_matching import misspelt_entry

# How often a long run logs a progress line.
PROGRESS_INTERVAL_SECONDS = 30.0
# How often (in records) the cheap time checks (batch age, progress) run.
_CHECK_EVERY = 512


class _Held(NamedTuple):
    """A later copy of an event, held until the first copy is settled (events.py HeldCopy)."""

    event: WireEvent
    ref: RecordRef


class Pipeline:
    """Maps records to events, batches and delivers them, and settles every record once."""

    def __init__(
        self,
        settings: PipelineSettings,
        mappings: Mapping[str, StreamMapping],
        uploader: Uploader,
        emit_state: Callable[[StateValue], None],
        logger: logging.Logger,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        written_expressions: Mapping[str, Mapping[str, str]] | None = None,
        preset_expressions: Mapping[str, tuple[str, Mapping[str, str]]] | None = None,
    ) -> None:
        """`written_expressions`: per stream, every expression the user's config wrote, by
        where ('fields.currency', 'filter'): checked against each SCHEMA
        (warn_of_unknown_reads), the fields watched for a value (field_watch.py).
        `preset_expressions`: per stream, its preset's name and those of its expressions that
        are checked against each SCHEMA too (stream_mapping.py preset_expressions)."""
        self.settings = settings
        self.written_expressions = written_expressions or {}
        self.preset_expressions = preset_expressions or {}
        watched: dict[str, dict[str, str]] = {}
        for stream, expressions in self.written_expressions.items():
            # (a field the stream's one event type has no place for is said at start-up)
            not_carried = fields_not_carried(mappings.get(stream))
            watched[stream] = {
                where.removeprefix("fields."): text
                for where, text in expressions.items()
                if where.startswith("fields.") and where.removeprefix("fields.") not in not_carried
            }
        self.field_watch = FieldWatch(
            watched, many_types=[name for name, m in mappings.items() if m.event_type is None]
        )
        self._unknown_reads_told: set[tuple[str, str, str]] = set()
        self._partial_ids_told: set[tuple[str, tuple[str, ...]]] = set()
        self._deletes_told: set[str | tuple[str, str]] = set()
        # The input is a file other than the dead-letter file (`--input old.jsonl`, `< old.jsonl`).
        self._input_is_another_file = False
        self.mappings = mappings
        self.uploader = uploader
        self.checkpoints = Checkpoints()
        self._logger = logger
        log = LimitedLog(logger, dead_letters=bool(settings.dead_letter_path))
        self.events = EventBuilder(
            mappings,
            user_field_style=settings.user_field_style,
            default_phone_region=settings.default_phone_region,
            log=log,
            now_ms=now_ms,
        )
        self.batches = Batcher(settings.batch_size, uploader, self.checkpoints, self._dry_run)
        self.settler = Settler(
            self.checkpoints,
            log,
            emit_state,
            self.events.forget,
            fail_on_rejection=settings.on_rejected == "fail",
        )
        self.account = self.settler.account
        self.coverage = self.settler.coverage
        # Events batched or in flight by (name, id), each with the later copies held behind it
        # (events.py HeldCopy), and the copies to batch again once the first was refused.
        self._unsettled: dict[tuple[str, str], list[_Held]] = {}
        self._requeue: list[_Held] = []
        self._requeued = 0  # how many copies were batched again, all told
        self._held_seqs: set[int] = set()  # sequence numbers of held copies (until settled)
        # Per stream, records whose event was batched or held and is not settled yet.
        self._waiting: Counter[str] = Counter()
        self._replaying = False  # rejections already go to a replay's own file
        self.events.is_unsettled = self._unsettled.__contains__
        self.validate_only_streams = frozenset(s for s in mappings if self._dry_run(s))
        self.events.validate_only_streams = self.validate_only_streams
        self.settler.on_event_settled = self._event_settled
        self._warned_streams: set[str] = set()
        # Streams without an entry that look like an entry none of whose stream arrived (a
        # misspelling, or a table named alike that comes first: `order` before `orders`).
        self._suspected: dict[str, str] = {}
        self._next_progress = time.monotonic() + PROGRESS_INTERVAL_SECONDS
        # Whether any record (or SCHEMA) reached a stream that has an entry under `streams`.
        self.matched_any = False
        self.described: set[str] = set()  # streams whose SCHEMA arrived
        # Per stream as the tap names it, records its stream maps dropped (`__filter__`).
        self.dropped_by_stream_map: Counter[str] = Counter()
        # Streams the user's stream_maps name (`customers: null` drops one on purpose; one
        # named nowhere is dropped by `__else__: null`), set by the target.
        self.named_in_stream_maps: frozenset[str] = frozenset()
        # Per stream, the streams its maps make (its own name, aliases, `__source__` copies).
        self.stream_map_outputs: dict[str, list[str]] = {}

    def dry_run_records(self) -> int:
        """Records of streams in dry run received so far (their events only validated)."""
        return sum(self.account.received(stream) for stream in self.validate_only_streams)

    def holds_state_back(self) -> bool:
        """True when no STATE may go out: a dry run (a bookmark past records only validated,
        filtered or rejected while a mapping is tried out would make the real run after it,
        Meltano keeping the STATE, start past them and never send them). A global dry_run that
        every entry under `streams` overrides with `dry_run: false` leaves a real run."""
        dry_run_applies = bool(self.validate_only_streams) or not self.mappings
        return (self.settings.dry_run and dry_run_applies) or self.dry_run_records() > 0

    def _dry_run(self, stream: str) -> bool:
        mapping = self.mappings[stream]
        return self.settings.dry_run if mapping.dry_run is None else mapping.dry_run

    def open_dead_letters(self, input_stat: os.stat_result | None) -> None:
        """Open the dead-letter file at start-up (raises DeadLetterError if it cannot be).

        A run whose input is its own dead-letter file (a replay) writes new rejections to a
        sibling file instead, so it never reads what it writes and the replay ends.
        """
        path = self.settings.dead_letter_path
        if not path:
            return
        dead = DeadLetterFile(path)
        if input_stat is not None and dead.is_file(input_stat):
            dead = self._replay_file(dead, "The input is the dead-letter file itself")
        elif input_stat is not None and stat.S_ISREG(input_stat.st_mode):
            self._input_is_another_file = True  # (a replay of it may write where it is told)
        dead.open()
        self.settler.dead_letters = dead

    def input_is_a_replay(self) -> None:
        """The input holds dead-letter lines (read through a pipe: `cat dead.jsonl | ...`):
        this run's rejections go to a sibling file from now on, so that a replay of the
        dead-letter file never appends to the file being read (and never ends)."""
        dead = self.settler.dead_letters
        if dead is None or self._replaying or self._input_is_another_file:
            return
        self._replaying = True
        replay = self._replay_file(dead, "The input holds dead letters (a replay)")
        replay.open()
        self.settler.dead_letters = replay
        dead.close()

    def _replay_file(self, dead: DeadLetterFile, why: str) -> DeadLetterFile:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        replay = dead.path.with_name(f"{dead.path.stem}.replay-{stamp}{dead.path.suffix}")
        show_in_log(str(replay))  # (its time would read as a number to hide)
        self._logger.warning("%s: this run's rejections go to %s.", why, replay)
        self._replaying = True
        return DeadLetterFile(replay, described_as="the replay's dead-letter file")

    # Records in

    def is_mapped(self, stream: str) -> bool:
        """True when the stream has an entry under `streams`."""
        return stream in self.mappings

    def schema_arrived(self, streams: list[str]) -> None:
        """A SCHEMA arrived for these streams (the tap's name, and its stream maps' aliases):
        an entry among them is named right, though no record may follow (a quiet stream)."""
        self.described.update(streams)
        if not self.matched_any and any(stream in self.mappings for stream in streams):
            self.matched_any = True

    def skip_unmapped(self, stream: str) -> None:
        """Count a record of a stream that has no mapping (warn once per stream). When the
        stream looks like an entry misspelt, no STATE goes out from then on until a stream of
        that entry's name arrives (`misspelt_entries`): else the run fails at its end, as the
        stream's records were skipped and a STATE would move past them."""
        self.settler.outcome(stream, SKIPPED_STREAM)
        if stream not in self._warned_streams:
            self._warned_streams.add(stream)
            if not self.settings.allow_unmatched_streams:
                waiting = [entry for entry in self.mappings if not self._arrived(entry)]
                if entry := misspelt_entry(stream, waiting):
                    self._suspected[stream] = entry
                    self._logger.warning(
                        "Stream '%s' has no entry under `streams`, and `streams.%s` has matched "
                        "no stream yet: is it misspelt? The stream's records are skipped, and no "
                        "STATE is written until a stream '%s' arrives; if none does, the run "
                        "fails at its end.",
                        stream,
                        entry,
                        entry,
                    )
                    return
            self._logger.warning(
                "Stream '%s' has no entry under `streams`%s: its records are counted and skipped.",
                stream,
                "" if self.mappings else " (the config has none: nothing is sent)",
            )

    def _arrived(self, entry: str) -> bool:
        """True when a stream of the entry's name arrived (its SCHEMA, or a record)."""
        counts = self.account.outcomes.get(entry)  # (a defaultdict: read, not filled)
        return (
            bool(counts and any(counts.values()))
            or entry in self._waiting
            or (entry in self.described)
        )

    def misspelt_entries(self) -> dict[str, str]:
        """Streams without an entry, each with the entry it looks misspelt for, of entries no
        stream has matched: while any, no STATE goes out; at the end the run fails."""
        if not self._suspected:
            return {}
        return {s: e for s, e in self._suspected.items() if not self._arrived(e)}

    def tell_of_deletes(self, stream: str) -> None:
        """Once a stream: its SCHEMA says its records may be of rows deleted at the source."""
        if stream in self._deletes_told:
            return
        self._deletes_told.add(stream)
        self._logger.info(
            "Stream '%s' is replicated with deletes (its SCHEMA has %s): a record of a row "
            "deleted at the source is no conversion, and is counted filtered, not sent.",
            stream,
            DELETED_AT,
        )

    def tell_of_soft_deletes(self, stream: str, column: str, declared: object) -> None:
        """Once a stream: its SCHEMA has another loader's mark of a deleted row, which its
        mapping does not read: such rows are sent as conversions unless filtered. The filter
        named fits the column's type as the SCHEMA declares it (`'false'` and 0 are true to
        JMESPath: `!column` of a text or number column would leave out every row)."""
        if (stream, column) in self._deletes_told:
            return
        self._deletes_told.add((stream, column))
        named = set(schema_types(declared) or ())
        if column == "_fivetran_deleted" and named & {"string"}:
            hint = "_fivetran_deleted != 'true'"
        elif column == "_fivetran_deleted" and named & {"integer", "number"}:
            hint = "_fivetran_deleted != `1`"
        else:
            hint = SOFT_DELETES[column]
        self._logger.warning(
            "Stream '%s' has %s, a loader's mark of a row deleted at the source, which its "
            "mapping does not read: a deleted row is sent as a conversion. To leave them out, "
            "set streams.%s.filter: %s.",
            stream,
            column,
            stream,
            json.dumps(hint),
        )

    def deleted_at_source(self, stream: str, *, listed: bool = True) -> None:
        """Count a record of a row deleted at the source (it has DELETED_AT) as filtered; the
        first of a stream whose SCHEMA does not list DELETED_AT (`listed`) is told of."""
        self.matched_any = True
        self.settler.outcome(stream, FILTERED)
        if not listed and stream not in self._deletes_told:
            self._deletes_told.add(stream)
            self._logger.info(
                "Records of stream '%s' carry %s, though its SCHEMA does not list it (as binlog "
                "taps write deletes): a record of a row deleted at the source is no conversion, "
                "and is counted filtered, not sent.",
                stream,
                DELETED_AT,
            )

    def dropped_by_else(self) -> int:
        """Records `__else__: null` dropped, of streams the stream maps name nowhere: they count
        as records that arrived for the misnamed-entry stop (an entry misspelt as its map's
        key, `order` for `orders`, would have kept them); a stream named to be dropped does
        not."""
        return sum(
            count
            for stream, count in self.dropped_by_stream_map.items()
            if stream not in self.named_in_stream_maps
        )

    def filtered_by_stream_map(self, stream: str, outputs: list[str]) -> None:
        """Count a record that the stream's maps (which make the `outputs` streams) all dropped
        before it reached a sink: a `__filter__`, `__else__: null`, the stream mapped to null."""
        self.dropped_by_stream_map[stream] += 1
        self.stream_map_outputs[stream] = outputs
        self.settler.outcome(stream, FILTERED)

    def add(
        self, stream: StreamInfo, envelope: RecordEnvelope, rejection: Rejection | None = None
    ) -> None:
        """One record of a mapped stream, with the sink's schema verdict (None: it passed):
        its event queued, or the record settled as filtered, duplicate, skipped or rejected."""
        self.matched_any = True
        if self.checkpoints.numbered % _CHECK_EVERY == 0:
            self._periodic_checks()
        if rejection is not None:
            self.reject(stream, envelope, rejection)
            return
        built = self.events.build(stream, envelope)
        if type(built) is Built or type(built) is HeldCopy:
            # (a record that stream maps made is dead-lettered as it arrived, under its stream)
            written_as, as_received = envelope.before_maps or (None, envelope)
            record_json = None if self.settler.dead_letters is None else as_received.json()
            event = built.built.event if isinstance(built, HeldCopy) else built.event
            assert isinstance(event, dict)  # built here, not by a worker
            if stream.name in self.field_watch.unseen:
                self.field_watch.event(stream.name, event)
            self._queue(stream, built, event["id"], record_json, None, written_as)
        elif type(built) is Rejection:
            self.reject(stream, envelope, built)
        else:
            self.settler.outcome(stream.name, built)  # type: ignore[arg-type]

    def add_prepared(self, stream: StreamInfo, prepared: PreparedRecord, chunk: bytes) -> None:
        """One record of a mapped stream that a worker process decoded, checked and mapped
        (parallel/): what the main process's own path would have made of it. Its line is in
        `chunk`, cut out only to keep it for the dead-letter file (not the whole chunk: a batch
        may take its events from many chunks)."""
        self.matched_any = True
        if self.checkpoints.numbered % _CHECK_EVERY == 0:
            self._periodic_checks()
        outcome = prepared.outcome()
        built = self.events.settle_prepared(stream, outcome, prepared.notes, prepared.event_id)
        if type(built) is Built or type(built) is HeldCopy:
            if stream.name in self.field_watch.unseen:
                self.field_watch.carried(stream.name, prepared.carried)
            kept = None
            if self.settler.dead_letters is not None:
                kept = chunk[prepared.start : prepared.end]
            self._queue(stream, built, str(prepared.event_id), None, kept)
        elif type(built) is Rejection:
            self._reject_prepared(stream, built, chunk[prepared.start : prepared.end])
        else:
            self.settler.outcome(stream.name, built)  # type: ignore[arg-type]

    def _reject_prepared(self, stream: StreamInfo, rejection: Rejection, line: bytes) -> None:
        """Dead-letter a record that a worker rejected, as `reject` does one rejected here: its
        JSON as it arrived, cut from its line (the worker kept nothing of it), and its key."""
        record_json = None
        key: dict[str, Any] = {}  # (the record's key properties: all the dead letter reads)
        if self.settler.dead_letters is not None:
            record_json = record_json_in_line(line)
            # Tap metadata was taken out before mapping, as `add` has it: never part of a key.
            names = [name for name in stream.key_properties if name not in SDC_METADATA]
            key = properties_in_json(record_json or b"{}", names)
        self.settler.reject(stream, key, rejection, record_json=record_json)

    def _queue(
        self,
        stream: StreamInfo,
        built: Built | HeldCopy,
        event_id: str,
        record_json: bytes | None,
        line: bytes | None,
        written_as: StreamInfo | None = None,
    ) -> None:
        """Batch a built event, with what settling its record may need; or hold a later copy
        of one still on its way (it holds STATE back until it is settled)."""
        seq = self.checkpoints.next_seq()
        event = built.built if type(built) is HeldCopy else built
        assert type(event) is Built
        ref = RecordRef(
            stream,
            seq,
            record_json,
            event.name,
            event_id,
            event.identifiers,
            line,
            event.timestamp_ms,
            written_as,
        )
        key = (event.name, event_id)
        self._waiting[stream.name] += 1
        if type(built) is HeldCopy and key in self._unsettled:
            self._held_seqs.add(seq)
            self.checkpoints.hold(("held", seq), seq)
            self._unsettled[key].append(_Held(event.event, ref))
            return
        self._unsettled.setdefault(key, [])
        finished = self.batches.add(event.event, ref)
        if finished:  # (most records only join an open batch: nothing to settle)
            self._settle(finished)

    def _event_settled(self, ref: RecordRef, accepted: bool) -> None:
        """A batched event was settled: the copies held behind it are duplicates if it was
        accepted; if it was refused, the first of them is batched in its place."""
        self._waiting[ref.stream.name] -= 1
        held = self._unsettled.pop((ref.event_name, ref.event_id), None)
        if self._held_seqs and ref.seq in self._held_seqs:  # it was a held copy itself
            self._held_seqs.discard(ref.seq)
            self.checkpoints.release(("held", ref.seq))
        if not held:
            return
        if accepted:
            for copy in held:
                self.settler.account.count(copy.ref.stream.name, DUPLICATE)
                self._waiting[copy.ref.stream.name] -= 1
                self._held_seqs.discard(copy.ref.seq)
                self.checkpoints.release(("held", copy.ref.seq))
        else:
            self._requeue.append(held[0])
            self._unsettled[(ref.event_name, ref.event_id)] = held[1:]

    def _settle(self, results: list[BatchResult]) -> None:
        """Settle finished batches; batch again the copies whose first copy was refused."""
        self.settler.settle(results)
        while self._requeue:
            copy = self._requeue.pop(0)
            self._requeued += 1
            key = (copy.ref.event_name, copy.ref.event_id)
            self._unsettled.setdefault(key, [])
            self.events.mark_sent(key)
            finished = self.batches.add(copy.event, copy.ref)
            if finished:
                self.settler.settle(finished)

    def settle_after_failure(self, *, wait: bool = True) -> None:
        """The run stopped on an error: let the batches in flight end (each after its current
        request: no retries; not `wait`: only those already ended), and count those the API
        accepted whole as sent (STATE past them if it may go), so that the summary and the
        bookmark say what was delivered. Nothing here raises."""
        try:
            results = self.uploader.finish_after_failure(wait=wait)
            self.settler.settle_after_failure(results)
        except Exception as exc:  # (a second failure, e.g. writing STATE: the first one is
            # reported; its batches count as unsettled, so nothing is counted that was not)
            self._logger.warning("Settling after the failure failed too: %s", log_safe(str(exc)))
            self._logger.debug("Settling after the failure failed", exc_info=True)
        self.count_requests_made()

    def count_requests_made(self) -> None:
        """Count in the summary every request made, those of batches not settled too."""
        self.account.requests = max(self.account.requests, self.uploader.requests_sent)

    def warn_of_unknown_reads(self, stream: str, schema: Mapping[str, Any]) -> None:
        """Once each: an expression the user wrote for the stream reads a property its SCHEMA
        does not list (mapping/reads.py unknown_reads)."""
        expressions = self.written_expressions.get(stream) or {}
        mapping = self.mappings.get(stream)
        for name in read_into_text(None if mapping is None else mapping.reads, schema):
            if (stream, "text", name) in self._unknown_reads_told:
                continue
            self._unknown_reads_told.add((stream, "text", name))
            shown = log_safe(name)[:80]
            self._logger.warning(
                "streams.%s reads inside %s, which the stream's SCHEMA types as text (JSON kept "
                "as text, as warehouse copies keep nested columns): every path inside it reads "
                "null. Map the fields that read it through parse_json(%s).",
                stream,
                shown,
                shown,
            )
        preset, from_preset = self.preset_expressions.get(stream) or ("", {})
        self._warn_of_preset_reads(stream, preset, from_preset, schema)
        if not preset:
            self._warn_of_the_event_s_own_columns(stream, mapping, schema)
            self._warn_of_an_integer_amount(stream, mapping, schema)
            self._warn_of_fields_read_by_name(stream, mapping, expressions, schema)
        row_filter = expressions.get("filter") or from_preset.get("filter")
        for name, how in [] if row_filter is None else filter_truth_traps(row_filter, schema):
            if (stream, "filter", name) in self._unknown_reads_told:
                continue
            self._unknown_reads_told.add((stream, "filter", name))
            shown = log_safe(name)[:80]
            if how.endswith("as number"):
                advice = f"0 is true to JMESPath too. Compare it instead: {shown} == `1` (or !=)"
            elif how.endswith("as boolean"):
                advice = (
                    f"a boolean equals no number or text. Test it instead: {shown} (or "
                    f"!{shown}), or compare it with `true`"
                )
            else:
                advice = (
                    "to JMESPath any text but '' is true ('false' and '0' too), and no text "
                    f"equals `true` or `false`. Compare it instead: lower({shown}) == 'true' "
                    "(or !=)"
                )
            self._logger.warning(
                "streams.%s.filter%s: %s is %s: %s.",
                stream,
                "" if "filter" in expressions else f" (of the preset {preset})",
                shown,
                how,
                advice,
            )
        for where, name in unknown_reads(expressions, schema):
            if (stream, where, name) in self._unknown_reads_told:
                continue
            self._unknown_reads_told.add((stream, where, name))
            shown = log_safe(name)[:80]
            if name in SDC_METADATA:
                self._logger.warning(
                    "streams.%s.%s reads %r, tap metadata, which is taken out of records before "
                    "they are mapped: it reads null. %s",
                    stream,
                    where,
                    name,
                    "Records of rows deleted at the source (with it set) are filtered without it."
                    if name == DELETED_AT
                    else "Map a column of the row instead.",
                )
                continue
            self._logger.warning(
                "streams.%s.%s reads %r, a property the stream's SCHEMA does not list: it reads "
                "null on every record unless records carry it anyway. For a value, quote it "
                "('%s'); for a property, check its name against the SCHEMA.",
                stream,
                where,
                shown,
                shown,
            )

    def _warn_of_the_event_s_own_columns(
        self, stream: str, mapping: StreamMapping | None, schema: Mapping[str, Any]
    ) -> None:
        """Once a stream: its SCHEMA lists the sent event's own objects or names (a table that
        copied events: `user`, `data`, `emails_sha256`), which no field reads."""
        reads = None if mapping is None else mapping.reads
        names = [n for n in the_event_s_own_columns(reads, schema) if (stream, "event", n) not in
                 self._unknown_reads_told]  # fmt: skip
        if not names:
            return
        self._unknown_reads_told.update((stream, "event", name) for name in names)
        self._logger.warning(
            "streams.%s: the stream's SCHEMA lists %s, named as in the event the API takes, "
            "which no field reads: fields are read at their own names (email, amount, "
            "currency, contents...). If the stream copies sent events, its events go without "
            "them: map each you need, e.g. email: user.emails_sha256, amount_minor: data.amount "
            "(minor units already), currency: data.currency.",
            stream,
            ", ".join(repr(log_safe(name)[:80]) for name in names),
        )

    def _warn_of_fields_read_by_name(
        self,
        stream: str,
        mapping: StreamMapping | None,
        expressions: Mapping[str, str],
        schema: Mapping[str, Any],
    ) -> None:
        """Once a stream whose entry maps fields: the event fields it leaves unmapped that are
        read from the record's columns of their names (a table shaped like the event is read
        so), named, since a column may be something else (a ticket's `state` is no region, a
        country's `currency` no price's)."""
        if mapping is None or not any(where.startswith("fields.") for where in expressions):
            return
        listed = schema.get("properties") or {}
        by_name = [
            name
            for name in listed
            if name in EVENT_FIELDS
            and name not in mapping.fields
            and name not in mapping.unread
            and name not in ("id", "timestamp", "timestamp_ms")  # (the record's own: as meant)
            and _taken_by(mapping, name)
        ]
        # A table shaped like the event, read by name as the cookbook's recipes mean it, has
        # several such columns: past two, only user fields are named (what they hold goes to
        # the API as the person's: a customer's account `state` as their region).
        if len(by_name) > 2:
            by_name = [name for name in by_name if name in USER_FIELDS]
        if not by_name or (stream, "by name", "") in self._unknown_reads_told:
            return
        self._unknown_reads_told.add((stream, "by name", ""))
        shown = ", ".join(log_safe(str(name))[:80] for name in by_name)
        self._logger.warning(
            "streams.%s also reads %s from the record's columns of those names, which its "
            "fields do not map (an unmapped field is read by its name). If a column is not that "
            'field (a ticket\'s state is no region), map the field to null (e.g. state: "`null`").',
            stream,
            shown,
        )

    def _warn_of_an_integer_amount(
        self, stream: str, mapping: StreamMapping | None, schema: Mapping[str, Any]
    ) -> None:
        """Once a stream: neither amount nor amount_minor is mapped, so `amount` is read from
        the record's property of that name, as major units, and the SCHEMA types it as an
        integer: most likely minor units (Stripe's cents), which would be sent a hundred times
        over. Mapped either way, nothing is said."""
        if mapping is None or mapping.reads is None or not amounts_both_read(mapping):
            return
        if "amount" in mapping.unread:  # (mapped to null: not read)
            return
        types = schema_types((schema.get("properties") or {}).get("amount"))
        if not types or "integer" not in types or not set(types) <= {"integer", "null"}:
            return
        if (stream, "amount", "integer") in self._unknown_reads_told:
            return
        self._unknown_reads_told.add((stream, "amount", "integer"))
        self._logger.warning(
            "streams.%s reads amount from the record's 'amount', which the stream's SCHEMA "
            "types as an integer: it is sent as major units (2900 is 2,900.00). If it is in "
            "minor units (cents, as Stripe writes amounts), map amount_minor: amount; if it "
            "is in major units, map amount: amount to say so.",
            stream,
        )

    def _warn_of_preset_reads(
        self, stream: str, preset: str, expressions: Mapping[str, str], schema: Mapping[str, Any]
    ) -> None:
        """Once each: the preset's filter reads a property the stream's SCHEMA does not list,
        or one of its fields that matter (or its event_type_from) reads none that it lists: a
        tap whose catalog left the column out, a table whose columns are named otherwise."""
        for where, text in expressions.items():
            unknown = [name for _, name in unknown_reads({where: text}, schema)]
            if not unknown or (where != "filter" and len(unknown) < len(read_paths([text]) or {})):
                continue
            if (stream, where, "preset") in self._unknown_reads_told:
                continue
            self._unknown_reads_told.add((stream, where, "preset"))
            names = ", ".join(repr(log_safe(name)[:80]) for name in unknown)
            listed = schema.get("properties") or {}
            other_case = [
                repr(log_safe(str(column))[:80])
                for name in unknown
                for column in listed
                if str(column).lower() == name.lower()
            ]
            hint = ""
            if other_case:  # (a warehouse's upper-case columns: EVENT_TEXT for event_text)
                hint = f" (it lists {', '.join(other_case)}: names are case-sensitive)"
            shown = log_safe(text)
            shown = shown if len(shown) <= 80 else shown[:79] + "…"
            if where == "filter":
                effect = "the filter decides alike for every record (test ones too)"
            elif where == "event_type_from":
                effect = "the events have no name, and their records are rejected"
            else:
                effect = "the events go without it"
            self._logger.warning(
                "streams.%s.%s of the preset %s (%s) reads %s, which the stream's SCHEMA does "
                "not list%s: it reads null on every record unless records carry it anyway, so "
                "%s. Select it in the tap (its catalog), or write %s yourself.",
                stream,
                where,
                preset,
                shown,
                names,
                hint,
                effect,
                where,
            )

    def warn_of_an_id_from_part_of_the_key(self, stream: str, keys: Sequence[str]) -> None:
        """Once a stream and key: the user's `id` is one column of a key of several (`id` of
        tenant_id, id): rows alike in it and not in the rest would be one event."""
        text = (self.written_expressions.get(stream) or {}).get("fields.id")
        keys = id_key_properties(keys)
        if not isinstance(text, str) or len(keys) < 2:
            return
        column = text.strip()
        if column[:1] == '"' and column[-1:] == '"':
            column = column[1:-1]
        if column not in keys or (stream, tuple(keys)) in self._partial_ids_told:
            return
        self._partial_ids_told.add((stream, tuple(keys)))
        others = [key for key in keys if key != column]
        parts = ", ".join(f"to_string({_as_path(key)})" for key in keys)
        self._logger.warning(
            "streams.%s.fields.id reads %s alone, one of the stream's key properties (%s): two "
            "rows alike in it and not in %s are one event (the later counted a duplicate, and "
            "dropped by the API). Map the id to the whole key, join(':', [%s]), or leave it "
            "unmapped: the id is then made of the whole key.",
            stream,
            log_safe(column),
            ", ".join(log_safe(key) for key in keys),
            ", ".join(log_safe(key) for key in others),
            log_safe(parts),
        )

    def count_unsettled(self) -> int:
        """After the run stopped on an error: count as unsettled the records whose events were
        in open batches, in flight, or held, with no answer (so that the summary still accounts
        for every record received); how many there were."""
        waiting = +self._waiting  # (streams with none left out)
        for stream, n in waiting.items():
            self.account.count(stream, UNSETTLED, n)
        self._waiting.clear()
        return sum(waiting.values())

    def reject(self, stream: StreamInfo, envelope: RecordEnvelope, rejection: Rejection) -> None:
        """Dead-letter one record, whole, with its stage and reason (one that stream maps made:
        as it arrived, under its own stream)."""
        written_as = None
        if envelope.before_maps is not None:
            written_as, envelope = envelope.before_maps
            if self.settler.dead_letters is not None:  # (its JSON: it may be written once)
                self.settler.reject(
                    stream,
                    envelope.record,
                    rejection,
                    record_json=envelope.json(),
                    written_as=written_as,
                )
                return
        source = envelope.source_json()
        record = envelope.whole() if source is None else envelope.record
        self.settler.reject(stream, record, rejection, record_json=source, written_as=written_as)

    def reject_line(
        self, line_number: int, raw: str, stage: str, reason: str, *, in_batch_file: bool = False
    ) -> None:
        """Dead-letter an input line that was not a usable Singer message (or a line of a
        BATCH message's file)."""
        self.settler.reject_line(line_number, raw, stage, reason, in_batch_file=in_batch_file)

    # Batches out, STATE and time

    def flush(self) -> None:
        """Send every open batch, however small, and wait for all in flight (and again for the
        copies batched in place of refused ones)."""
        while True:
            requeued = self._requeued
            self._settle(self.batches.submit_all())
            if self._requeued == requeued:
                return

    def state_received(self, state: StateValue) -> None:
        """Hold a STATE until every record before it is settled."""
        self.checkpoints.state_received(state)
        self._settle(self.batches.submit_old())

    def release_state(self) -> None:
        """Emit the pending STATE if every record before it is settled."""
        self.settler.release_state()

    @property
    def nothing_matched(self) -> bool:
        """True while records arrived but none for a configured stream (a misnamed entry)."""
        if not self.mappings or self.matched_any or self.settings.allow_unmatched_streams:
            return False  # (first: at each STATE, the sums below go over every stream)
        return self.account.total(SKIPPED_STREAM) + self.dropped_by_else() > 0

    def deliver_when_quiet(self) -> None:
        """While no input arrives: send batches past their age limit, settle those finished,
        and release the STATE they held back (quiet_input.py calls this each second). Those
        still in flight are not waited for: the lock it holds meanwhile keeps the main thread
        from its next message, and one batch waiting out a 429 would stop every other."""
        if not self.batches.any_due():
            return
        results = self.batches.submit_old()
        try:
            results += self.batches.finished()
        except BaseException:
            self.uploader.keep_unclaimed(results)  # (delivered: settled after the failure)
            raise
        self._settle(results)

    def _periodic_checks(self) -> None:
        self._settle(self.batches.submit_old())
        now = time.monotonic()
        if now >= self._next_progress:
            self._next_progress = now + PROGRESS_INTERVAL_SECONDS
            self._logger.info(self.account.progress_line())

    def close(self) -> None:
        """Release files and connections (the caller has flushed)."""
        self.close_dead_letters()
        self.uploader.close()

    def close_dead_letters(self) -> None:
        """Close the dead-letter file (removed again if this run created it and left it empty)."""
        if self.settler.dead_letters is not None:
            self.settler.dead_letters.close()


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _as_path(name: str) -> str:
    """A property name as a JMESPath expression reading it (quoted unless a bare identifier)."""
    return name if _IDENTIFIER.fullmatch(name) else json.dumps(name)


def _taken_by(mapping: StreamMapping, name: str) -> bool:
    """Whether the stream's events may carry the field (a fixed event type's data shape takes
    only its own: no plan_id in a lead, no custom_event_name but in a custom event)."""
    if name == "custom_event_name":
        return mapping.event_type == "custom"
    return mapping.event_type not in DATA_SHAPE_BY_TYPE or carries(mapping.event_type, name)
