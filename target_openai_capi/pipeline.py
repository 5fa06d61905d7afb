"""One run of the target: records in, events batched and delivered, every record accounted for."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from target_openai_capi import __version__
from target_openai_capi.accounting import (
    DUPLICATE,
    FILTERED,
    SENT,
    SKIPPED_STREAM,
    SKIPPED_UNMATCHABLE,
    STAGE_API,
    STAGE_MAPPING,
    STAGE_VALIDATION,
    STAGE_WINDOW,
    VALIDATED,
    RunAccount,
)
from target_openai_capi.checkpoint import Checkpoints, StateValue
from target_openai_capi.config import setting
from target_openai_capi.contract import dedup_name, event_problem, window_problem
from target_openai_capi.coverage import MatchCoverage, identifiers
from target_openai_capi.dead_letter import DeadLetterFile
from target_openai_capi.delivery import (
    Batch,
    BatchResult,
    Client,
    ClientSettings,
    RetryPolicy,
    Uploader,
)
from target_openai_capi.delivery.request_log import RequestLog
from target_openai_capi.mapping.errors import MappingError
from target_openai_capi.mapping.event import StreamMapping, build_event, passes_filter

# In-run dedup remembers this many recent (event name, id) keys: far more than a tap re-sends
# around its bookmark, and few enough (~3 MB) that the cap is reached early and memory stays
# flat however long the stream. OpenAI deduplicates on (pixel, type, id) anyway; this only
# saves requests.
RECENT_EVENT_KEYS = 20_000
# A batch that is not full is sent anyway once its oldest event waited this long, so a quiet
# stream still delivers (and its STATE still goes out) without waiting for the end of input.
MAX_BATCH_AGE_SECONDS = 15.0
# How often a long run logs a progress line.
PROGRESS_INTERVAL_SECONDS = 30.0
# Rejections logged one by one per stream and stage; past that they are only counted
# (every one is still in the dead-letter file and the summary).
LOGGED_REJECTIONS = 20
# How often (in records) the cheap time checks above run.
_CHECK_EVERY = 512


# Records kept for dead letters: Decimals stay JSON numbers, so money round-trips exactly.
_RECORD_ENCODER = msgspec.json.Encoder(decimal_format="number", enc_hook=str)
_RECORD_DECODER: msgspec.json.Decoder[dict[str, Any]] = msgspec.json.Decoder(
    dict[str, Any], float_hook=Decimal
)


class RunFailed(Exception):
    """The run must stop; str() is the user-facing reason."""


class RecordRef(NamedTuple):
    """What a batch keeps about each event's source record, for accounting and dead letters."""

    stream: str
    seq: int
    # The record as compact JSON, kept only when a dead-letter file may need it: thousands of
    # large record dicts in flight would cost memory and garbage-collector time.
    record_json: bytes | None
    event_name: str  # with event_id, the API's dedup key: the type, or a custom event's name
    event_id: str
    key_properties: Sequence[str]
    schema: Mapping[str, Any]


@dataclass
class _OpenBatch:
    """Events of one stream waiting for their batch to fill."""

    events: list[dict[str, Any]] = field(default_factory=list)
    refs: list[RecordRef] = field(default_factory=list)
    since: float = 0.0


@dataclass(frozen=True)
class PipelineSettings:
    """The settings a run needs, read once from the config."""

    batch_size: int
    dry_run: bool
    user_field_style: str
    default_phone_region: str | None
    on_rejected: str
    dead_letter_path: str | None
    allow_unmatched_streams: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PipelineSettings:
        """Read the pipeline's settings from the target config."""
        return cls(
            batch_size=int(setting(config, "batch_size")),
            dry_run=bool(setting(config, "dry_run")),
            user_field_style=str(setting(config, "user_field_style")),
            default_phone_region=setting(config, "default_phone_region"),
            on_rejected=str(setting(config, "on_rejected")),
            dead_letter_path=setting(config, "dead_letter_path"),
            allow_unmatched_streams=bool(setting(config, "allow_unmatched_streams")),
        )


def integration_source(config: Mapping[str, Any]) -> str | None:
    """The integration_source every request carries: the setting trimmed, or None to send none."""
    source = setting(config, "integration_source")
    return None if source is None else str(source).strip()


def uploader_from_config(config: Mapping[str, Any]) -> Uploader:
    """The HTTP side of a run, built from the target config."""
    client = Client(
        ClientSettings(
            api_url=str(setting(config, "api_url")),
            pixel_id=str(config["pixel_id"]),
            api_key=str(config["api_key"]),
            user_agent=f"target-openai-capi/{__version__}",
            read_timeout_s=float(setting(config, "request_timeout_seconds")),
        )
    )
    return Uploader(
        client,
        policy=RetryPolicy(
            max_attempts=int(setting(config, "max_attempts")),
            max_total_seconds=float(setting(config, "max_retry_seconds")),
        ),
        max_concurrent_requests=int(setting(config, "max_concurrent_requests")),
        validate_first=bool(setting(config, "validate_first")),
        integration_source=integration_source(config),
        request_log=RequestLog(path) if (path := config.get("request_log_path")) else None,
    )


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
    ) -> None:
        self.settings = settings
        self.mappings = mappings
        self.uploader = uploader
        self.account = RunAccount()
        self.coverage = MatchCoverage()
        self.checkpoints = Checkpoints()
        self._emit_state = emit_state
        self._logger = logger
        self._now_ms = now_ms
        self._dead_letters = (
            DeadLetterFile(settings.dead_letter_path) if settings.dead_letter_path else None
        )
        self._open: dict[str, _OpenBatch] = {}
        # The record being added, as it arrived, when the reader decoded only the paths the
        # mapping reads (reader.py): its JSON, or the whole line it came in. None: whole already.
        self.record_source: msgspec.Raw | None = None
        self.record_line: str | bytes | None = None
        # True when the reader also checked that record against its stream schema (decoding.py).
        self.record_checked = False
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._warned_streams: set[str] = set()
        self._logged_rejections: dict[tuple[str, str], int] = {}
        self._next_progress = time.monotonic() + PROGRESS_INTERVAL_SECONDS
        self._hashed_id_streams: set[str] = set()  # streams checked for hashed event ids
        # Whether any record reached a stream that has an entry under `streams`.
        self.matched_any = False

    def open_dead_letters(self, input_stat: os.stat_result | None) -> None:
        """Open the dead-letter file at start-up (raises DeadLetterError if it cannot be).

        A run whose input is its own dead-letter file (a replay) writes new rejections to a
        sibling file instead, so it never reads what it writes and the replay ends.
        """
        dead = self._dead_letters
        if dead is None:
            return
        if input_stat is not None and dead.is_file(input_stat):
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            replay = dead.path.with_name(f"{dead.path.stem}.replay-{stamp}{dead.path.suffix}")
            self._logger.warning(
                "The input is the dead-letter file itself: this run's rejections go to %s.",
                replay,
            )
            dead = self._dead_letters = DeadLetterFile(replay)
        dead.open()

    # Records in

    def is_mapped(self, stream: str) -> bool:
        """True when the stream has an entry under `streams`."""
        return stream in self.mappings

    def skip_unmapped(self, stream: str) -> None:
        """Count a record of a stream that has no mapping (warn once per stream)."""
        self._settle_immediately(stream, SKIPPED_STREAM)
        if stream not in self._warned_streams:
            self._warned_streams.add(stream)
            self._logger.warning(
                "Stream '%s' has no entry under `streams`: its records are counted and skipped.",
                stream,
            )

    def filtered_by_stream_map(self, stream: str) -> None:
        """Count a record that a stream map dropped before it reached a sink."""
        self._settle_immediately(stream, FILTERED)

    def add_record(
        self,
        stream: str,
        record: Mapping[str, Any],
        key_properties: Sequence[str],
        schema: Mapping[str, Any],
    ) -> None:
        """Map one record and queue its event, or settle it as filtered, duplicate or rejected."""
        self.matched_any = True
        if self.checkpoints.numbered % _CHECK_EVERY == 0:
            self._periodic_checks()
        mapping = self.mappings[stream]
        try:
            if not passes_filter(mapping, record):
                self._settle_immediately(stream, FILTERED)
                return
            event, notes = build_event(
                mapping,
                record,
                key_properties,
                user_field_style=self.settings.user_field_style,
                default_phone_region=self.settings.default_phone_region,
                # An id hashed from the record covers all of it, not only the read paths.
                whole_record=lambda: self._whole(record),
            )
        except MappingError as exc:
            self.reject(
                stream,
                record,
                key_properties,
                schema,
                STAGE_MAPPING,
                str(exc),
                event_id=exc.event_id,
            )
            return
        for note in notes:
            self._log_limited(stream, "note", "Record of '%s': %s", stream, note)
        if stream not in self._hashed_id_streams and "id" not in mapping.fields:
            self._say_if_ids_are_hashed(stream, event["id"], key_properties)
        problem = event_problem(event)
        if problem is not None:
            self.reject(
                stream,
                record,
                key_properties,
                schema,
                STAGE_VALIDATION,
                problem,
                event_id=event["id"],
            )
            return
        problem = window_problem(event["timestamp_ms"], self._now_ms())
        if problem is not None:
            self.reject(
                stream, record, key_properties, schema, STAGE_WINDOW, problem, event_id=event["id"]
            )
            return
        wanted = mapping.match_identifiers
        if wanted is not None and not identifiers(event) & wanted:
            self._settle_immediately(stream, SKIPPED_UNMATCHABLE)
            return
        event_name = dedup_name(event)
        if self._seen_recently(event_name, event["id"]):
            self._settle_immediately(stream, DUPLICATE)
            return
        seq = self.checkpoints.next_seq()
        self._queue(
            stream,
            event,
            RecordRef(
                stream,
                seq,
                None if self._dead_letters is None else self._record_json(record),
                event_name,
                event["id"],
                key_properties,
                schema,
            ),
        )

    def _say_if_ids_are_hashed(
        self, stream: str, event_id: str, key_properties: Sequence[str]
    ) -> None:
        """Once per stream: its event ids are hashes of the records (no id, no key properties)."""
        self._hashed_id_streams.add(stream)
        if event_id.startswith("rec_") and not key_properties:
            self._logger.warning(
                "Stream '%s' has no `id` mapping, no `id` property and no key properties: its "
                "event ids are hashes of each record's own data (tap metadata _sdc_* left out), "
                "so an edited row becomes a new event. Map `fields.id` to a stable column.",
                stream,
            )

    def _record_json(self, record: Mapping[str, Any]) -> bytes:
        if self.record_source is not None:
            return bytes(self.record_source)
        return _RECORD_ENCODER.encode(record)

    def _whole(self, record: Mapping[str, Any]) -> Mapping[str, Any]:
        """The record being added, whole (the reader may have decoded only the read paths)."""
        try:
            if self.record_source is not None:
                return _RECORD_DECODER.decode(self.record_source)
            if self.record_line is not None:
                whole: Mapping[str, Any] = _RECORD_DECODER.decode(self.record_line)["record"]
                return whole  # (the line is a JSON object too: the RECORD message)
        except (msgspec.DecodeError, UnicodeError):  # unread parts the reader did not check
            pass
        return record

    def _seen_recently(self, event_name: str, event_id: str) -> bool:
        key = (event_name, event_id)
        if key in self._recent:
            return True
        self._recent[key] = None
        if len(self._recent) > RECENT_EVENT_KEYS:
            self._recent.popitem(last=False)
        return False

    def _settle_immediately(self, stream: str, outcome: str) -> None:
        self.checkpoints.next_seq()
        self.account.count(stream, outcome)

    # Rejections

    def reject(
        self,
        stream: str,
        record: Mapping[str, Any],
        key_properties: Sequence[str],
        schema: Mapping[str, Any] | None,
        stage: str,
        reason: str,
        *,
        server_message: str | None = None,
        event_id: str | None = None,
        seq_taken: bool = False,
    ) -> None:
        """Dead-letter one record with its stage and reason (or stop, if the config says so)."""
        if not seq_taken:
            self.checkpoints.next_seq()
        self.account.reject(stream, stage)
        if self._dead_letters is not None:
            self._dead_letters.record(
                stream=stream,
                schema=schema,
                key_properties=key_properties,
                # seq_taken: an event in flight, whose record came back whole from record_json.
                record=record if seq_taken else self._whole(record),
                stage=stage,
                reason=reason,
                server_message=server_message,
                event_id=event_id,
            )
        # The record's key stays out of the log: a stream may be keyed by an email address.
        self._log_limited(
            stream,
            stage,
            "Rejected a record of '%s' at %s: %s%s",
            stream,
            stage,
            reason,
            " (its key and content are in the dead-letter file)" if self._dead_letters else "",
        )
        if self.settings.on_rejected == "fail":
            raise RunFailed(
                f"A record of stream '{stream}' was rejected at stage {stage}: {reason} "
                "(on_rejected is 'fail')"
            )

    def reject_line(self, line_number: int, raw: str, stage: str, reason: str) -> None:
        """Dead-letter an input line that was not a usable Singer message."""
        self.checkpoints.next_seq()
        self.account.reject("(input)", stage)
        if self._dead_letters is not None:
            self._dead_letters.line(line_number=line_number, raw=raw, stage=stage, reason=reason)
        self._log_limited("(input)", stage, "Rejected input line %d: %s", line_number, reason)
        if self.settings.on_rejected == "fail":
            raise RunFailed(f"Input line {line_number} was rejected: {reason}")

    def _log_limited(self, stream: str, kind: str, msg: str, *args: object) -> None:
        n = self._logged_rejections.get((stream, kind), 0)
        self._logged_rejections[(stream, kind)] = n + 1
        if n < LOGGED_REJECTIONS:
            self._logger.warning(msg, *args)
        elif n == LOGGED_REJECTIONS:
            self._logger.warning(
                "More of the same for '%s' (%s): only counted from now on%s.",
                stream,
                kind,
                "; every one is in the dead-letter file" if self._dead_letters else "",
            )

    # Batches out

    def _queue(self, stream: str, event: dict[str, Any], ref: RecordRef) -> None:
        open_batch = self._open.get(stream)
        if open_batch is None:
            open_batch = self._open[stream] = _OpenBatch(since=time.monotonic())
            self.checkpoints.hold(("open", stream), ref.seq)
        open_batch.events.append(event)
        open_batch.refs.append(ref)
        if len(open_batch.events) >= self.settings.batch_size:
            self._submit(stream)

    def _submit(self, stream: str) -> None:
        open_batch = self._open.pop(stream, None)
        if open_batch is None:
            return
        self.checkpoints.release(("open", stream))
        mapping = self.mappings[stream]
        dry_run = self.settings.dry_run if mapping.dry_run is None else mapping.dry_run
        batch = Batch(events=open_batch.events, tags=open_batch.refs, validate_only=dry_run)
        self.checkpoints.hold(id(batch), open_batch.refs[0].seq)
        self._settle(self.uploader.submit(batch))

    def flush(self) -> None:
        """Send every open batch, however small, and wait for all in flight."""
        for stream in list(self._open):
            self._submit(stream)
        self._settle(self.uploader.drain())

    def _settle(self, results: list[BatchResult]) -> None:
        for result in results:
            refs: list[RecordRef] = result.batch.tags
            outcome = VALIDATED if result.batch.validate_only else SENT
            self.account.requests += result.requests
            for index in result.accepted:
                ref = refs[index]
                self.account.count(ref.stream, outcome)
                self.coverage.count(ref.stream, result.batch.events[index])
            for index, status, message in result.rejected:
                ref = refs[index]
                # Not sent, so a later copy in this run (perhaps fixed by then) is not a duplicate.
                self._recent.pop((ref.event_name, ref.event_id), None)
                self.reject(
                    ref.stream,
                    {} if ref.record_json is None else _RECORD_DECODER.decode(ref.record_json),
                    ref.key_properties,
                    ref.schema,
                    STAGE_API,
                    f"the API refused the event (HTTP {status}): {message}",
                    server_message=message,
                    event_id=ref.event_id,
                    seq_taken=True,
                )
            self.checkpoints.release(id(result.batch))
        self.release_state()

    # STATE and time

    def state_received(self, state: StateValue) -> None:
        """Hold a STATE until every record before it is settled."""
        self.checkpoints.state_received(state)
        self._flush_old_batches()
        self.release_state()

    @property
    def nothing_matched(self) -> bool:
        """True while records arrived but none for a configured stream (a misnamed entry)."""
        return (
            bool(self.mappings)
            and not self.matched_any
            and self.account.total(SKIPPED_STREAM) > 0
            and not self.settings.allow_unmatched_streams
        )

    def release_state(self) -> None:
        """Emit the pending STATE if every record before it is settled."""
        state = self.checkpoints.releasable_state()
        if state is not None:
            self._emit_state(state)

    def _flush_old_batches(self) -> None:
        cutoff = time.monotonic() - MAX_BATCH_AGE_SECONDS
        for stream, open_batch in list(self._open.items()):
            if open_batch.since <= cutoff:
                self._submit(stream)

    def deliver_when_quiet(self) -> None:
        """While no input arrives: send batches past their age limit, wait for every batch in
        flight, and release the STATE they held back (quiet_input.py calls this)."""
        cutoff = time.monotonic() - MAX_BATCH_AGE_SECONDS
        if not self.uploader.busy and all(b.since > cutoff for b in self._open.values()):
            return
        self._flush_old_batches()
        self._settle(self.uploader.drain())
        self.release_state()

    def _periodic_checks(self) -> None:
        self._flush_old_batches()
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
        if self._dead_letters is not None:
            self._dead_letters.close()
