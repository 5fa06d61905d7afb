"""Open batches, one per stream: filled to batch_size or an age limit, then submitted."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from target_openai_capi.delivery import Batch, BatchResult, Uploader
from target_openai_capi.delivery.batch import WireEvent
from target_openai_capi.pipeline.checkpoint import Checkpoints
from target_openai_capi.pipeline.events import StreamInfo
from target_openai_capi.reading.envelope import record_json_in_line

# A batch that is not full is sent anyway once its oldest event waited this long, so a quiet
# stream still delivers (and its STATE still goes out) without waiting for the end of input.
MAX_BATCH_AGE_SECONDS = 15.0
# A batch is also sent once the records it keeps for dead letters (their lines as they came)
# reach this many bytes, so that large records cost memory in proportion to what is in flight
# (max_concurrent_requests batches and the open ones), not to batch_size: 1,000 records of 1 MiB
# each would otherwise keep 1 GiB a batch. Records of ~10 KiB fill a batch of 1,000 first.
MAX_KEPT_BYTES_PER_BATCH = 16 * 1024 * 1024


class RecordRef(NamedTuple):
    """What a batch keeps about each event's source record, for accounting and dead letters."""

    stream: StreamInfo
    seq: int
    # The record as compact JSON, kept only when a dead-letter file may need it: thousands of
    # large record dicts in flight would cost memory and garbage-collector time. Or instead the
    # whole RECORD line it came in (`line`), for an event a worker process built.
    record_json: bytes | None
    event_name: str  # with event_id, the API's dedup key: the type, or a custom event's name
    event_id: str
    identifiers: frozenset[str]  # the identifier kinds the event carries (match coverage)
    line: bytes | None = None
    timestamp_ms: int = 0  # the event's time (the API refuses it once older than 7 days)
    # The stream whose record the user's stream maps made this one of: its dead letter's.
    written_as: StreamInfo | None = None

    def source_json(self) -> bytes | None:
        """The record's JSON as it arrived, when it was kept."""
        if self.line is not None:
            return record_json_in_line(self.line)
        return self.record_json


@dataclass
class _OpenBatch:
    """Events of one stream waiting for their batch to fill."""

    events: list[WireEvent] = field(default_factory=list)
    refs: list[RecordRef] = field(default_factory=list)
    since: float = 0.0
    kept_bytes: int = 0  # of the refs' kept records (RecordRef.line, record_json)
    oldest: int = 0  # the lowest record number among the refs (STATE is held before it)


class Batcher:
    """Holds each stream's open batch and submits it to the uploader when it is due.

    Every method returns the results of batches the uploader finished meanwhile, for the
    caller to settle. An open batch holds back STATE from its oldest record on (checkpoints).
    """

    def __init__(
        self,
        batch_size: int,
        uploader: Uploader,
        checkpoints: Checkpoints,
        validate_only: Callable[[str], bool],
    ) -> None:
        self._batch_size = batch_size
        self._uploader = uploader
        self._checkpoints = checkpoints
        self._validate_only = validate_only  # stream name -> dry run?
        self._open: dict[str, _OpenBatch] = {}
        self._submitted = 0  # batches submitted so far (each one's Batch.number)

    def add(self, event: WireEvent, ref: RecordRef) -> list[BatchResult]:
        """Queue one event; submit its stream's batch if that is now full."""
        stream = ref.stream.name
        open_batch = self._open.get(stream)
        if open_batch is None:
            open_batch = self._open[stream] = _OpenBatch(since=time.monotonic(), oldest=ref.seq)
            self._checkpoints.hold(("open", stream), ref.seq)
        elif ref.seq < open_batch.oldest:  # a copy batched again, its first copy refused
            open_batch.oldest = ref.seq
            self._checkpoints.hold(("open", stream), ref.seq)
        open_batch.events.append(event)
        open_batch.refs.append(ref)
        kept = ref.line if ref.line is not None else ref.record_json
        if kept is not None:
            open_batch.kept_bytes += len(kept)
        if (
            len(open_batch.events) >= self._batch_size
            or open_batch.kept_bytes >= MAX_KEPT_BYTES_PER_BATCH
        ):
            return self._submit(stream)
        return []

    def any_due(self) -> bool:
        """True when an open batch is past the age limit or a submitted one is in flight."""
        cutoff = time.monotonic() - MAX_BATCH_AGE_SECONDS
        return self._uploader.busy or any(b.since <= cutoff for b in self._open.values())

    def submit_old(self) -> list[BatchResult]:
        """Submit every open batch past the age limit."""
        cutoff = time.monotonic() - MAX_BATCH_AGE_SECONDS
        return self._submit_each([s for s, b in self._open.items() if b.since <= cutoff])

    def submit_all(self) -> list[BatchResult]:
        """Submit every open batch, however small, and wait for all in flight."""
        results = self._submit_each(list(self._open))
        try:
            return results + self._uploader.drain()
        except BaseException:
            self._uploader.keep_unclaimed(results)
            raise

    def _submit_each(self, streams: list[str]) -> list[BatchResult]:
        """Submit these streams' batches; the results that came back meanwhile. If one
        submission fails, those already collected are left with the uploader (keep_unclaimed)
        for the settling after the failure."""
        results: list[BatchResult] = []
        try:
            for stream in streams:
                results += self._submit(stream)
        except BaseException:
            self._uploader.keep_unclaimed(results)
            raise
        return results

    def finished(self) -> list[BatchResult]:
        """The batches that finished, without waiting for those still in flight."""
        return self._uploader.finished()

    def _submit(self, stream: str) -> list[BatchResult]:
        open_batch = self._open.pop(stream)
        self._checkpoints.release(("open", stream))
        batch = Batch(
            events=open_batch.events,
            tags=open_batch.refs,
            validate_only=self._validate_only(stream),
            number=self._submitted,
            times_ms=[ref.timestamp_ms for ref in open_batch.refs],
        )
        self._submitted += 1
        self._checkpoints.hold(id(batch), open_batch.oldest)
        return self._uploader.submit(batch)
