"""Settling records: every record's outcome counted once, rejections dead-lettered, STATE released.

A record is settled when it is sent (or validated, in a dry run), skipped on purpose, or
rejected. `Settler` counts it (accounting.py), writes a rejection to the dead-letter file
(dead_letter.py) and logs it (a limited number per stream and stage), and releases a STATE
once every record before it is settled (checkpoint.py).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from target_openai_capi.delivery import BatchResult, about_the_event
from target_openai_capi.delivery.client import names_the_only_event
from target_openai_capi.log_safety import cut_text, log_safe, reason_safe
from target_openai_capi.pipeline.accounting import (
    SENT,
    STAGE_API,
    STAGE_WINDOW,
    UNSETTLED,
    VALIDATED,
    RunAccount,
)
from target_openai_capi.pipeline.batching import RecordRef
from target_openai_capi.pipeline.checkpoint import Checkpoints, StateValue
from target_openai_capi.pipeline.coverage import MatchCoverage
from target_openai_capi.pipeline.dead_letter import DeadLetterError, DeadLetterFile
from target_openai_capi.pipeline.events import Rejection, StreamInfo
from target_openai_capi.pipeline.log_limit import LimitedLog
from target_openai_capi.reading.envelope import decode_record

INPUT_STREAM = "(input)"  # what the account calls lines that were not usable messages
# Events refused one by one, each by an answer that named no event, with none accepted between
# them: after this many the refusals are taken for a refusal of everything (a gateway, a pixel
# or key problem the answer does not name, an API change), and the run stops before
# dead-lettering more. The uploader catches it within one batch (delivery/uploader.py); this
# catches it across batches of one event (batch_size 1, a quiet tap's small batches) and when
# each answer words it differently (a request id in the message).
UNNAMED_REFUSALS_IN_A_ROW = 5
# How many records that stream maps made rejected events of are remembered, so that one sent
# to several streams, refused in more than one, is dead-lettered once (its siblings are
# refused together, in the same batches).
SOURCES_REMEMBERED = 65_536
# The reason of an event that aged past the API's window between its record and its request.
EXPIRED_BEFORE_SENT = (
    "timestamp_ms: older than 7 days when its request was to be made (it was not when its "
    "record was read; it waited for its batch to fill, a free request or retries): not sent"
)

# An event the API refused, in words about its age, once it was older than 7 days (it crossed
# the line during its requests): no rerun sends it.
AGED_DURING_ITS_REQUESTS = (
    "timestamp_ms: older than 7 days when its requests ended (it was not when they began)"
)


class RunFailed(Exception):
    """The run must stop; str() is the user-facing reason."""


def is_too_old(rejection: Rejection) -> bool:
    """A record whose event is older than the API's 7 days: no rerun can send it."""
    return rejection.stage == STAGE_WINDOW and "older than 7 days" in rejection.reason


class Settler:
    """Settles records and the batches that carried their events."""

    def __init__(
        self,
        checkpoints: Checkpoints,
        log: LimitedLog,
        emit_state: Callable[[StateValue], None],
        forget_event: Callable[[str, str], None],
        *,
        fail_on_rejection: bool,
    ) -> None:
        self.account = RunAccount()
        self.coverage = MatchCoverage()
        self.dead_letters: DeadLetterFile | None = None
        self._checkpoints = checkpoints
        self._log = log
        self._emit_state = emit_state
        self._forget_event = forget_event  # an event the API refused may come again
        self._fail_on_rejection = fail_on_rejection
        self._told_too_old = False  # (on_rejected: fail goes on past records too old to send)
        # Told of each batched event once settled: accepted (True) or refused (False).
        self.on_event_settled: Callable[[RecordRef, bool], None] = lambda ref, accepted: None
        # Batches finish in any order (several in flight); "in a row" is in the order they were
        # submitted: a run is batches of consecutive numbers, each refused naming no event.
        # Each finished batch at or after the first unfinished one (`_unfinished`) is kept here
        # by number, with its refusals (-1: it breaks a run); those before it are summed up in
        # the run that ends just before it (`_run_before`).
        self._finished: dict[int, int] = {}
        self._unfinished = 0
        self._run_before = 0
        self.left_over: list[BatchResult] = []  # finished, not settled: the run stopped first
        # Digests of the latest records as they arrived that stream maps made rejected events
        # of, dead-lettered (_written_before).
        self._sources_written: OrderedDict[bytes, None] = OrderedDict()

    def outcome(self, stream: str, outcome: str) -> None:
        """Settle a record that never reaches a batch (filtered, duplicate, skipped)."""
        self._checkpoints.next_seq()
        self.account.count(stream, outcome)

    def reject(
        self,
        stream: StreamInfo,
        record: Mapping[str, Any],
        rejection: Rejection,
        *,
        in_batch: bool = False,
        record_json: bytes | None = None,
        written_as: StreamInfo | None = None,
    ) -> None:
        """Dead-letter one whole record with its stage and reason (or stop, if configured so):
        `record_json`, its JSON as it arrived, when given; else `record`.

        in_batch: the record's event was batched, so its sequence number is already taken.
        written_as: the stream the record arrived in, when stream maps made it into `stream`'s
        (its dead letter goes under that stream's SCHEMA, as it arrived).
        """
        if not in_batch:
            self._checkpoints.next_seq()
        if self.dead_letters is not None and not self._written_before(written_as, record_json):
            written = written_as or stream
            try:
                self.dead_letters.record(
                    stream=written.name,
                    schema=written.schema,
                    key_properties=written.key_properties,
                    record=record,
                    stage=rejection.stage,
                    reason=rejection.reason,
                    server_message=rejection.server_message,
                    event_id=rejection.event_id,
                    record_json=record_json,
                )
            except DeadLetterError:  # (not rejected, which says it is in the file: the run
                if not in_batch:  # stops, STATE before it; a batched one is still waiting,
                    self.account.count(stream.name, UNSETTLED)  # counted with the others)
                raise
        self.account.reject(stream.name, rejection.stage)
        # The record's key stays out of the log: a stream may be keyed by an email address.
        self._log.warning(
            stream.name,
            rejection.stage,
            "Rejected a record of '%s' at %s: %s%s",
            stream.name,
            rejection.stage,
            reason_safe(rejection.reason),  # (values that may be personal data: in the file only)
            " (its key and content are in the dead-letter file)" if self.dead_letters else "",
        )
        if self._fail_on_rejection and self.dead_letters is not None and is_too_old(rejection):
            if not self._told_too_old:
                self._told_too_old = True
                self._log.logger.warning(
                    "on_rejected is 'fail', but a record older than 7 days does not stop the "
                    "run: the API takes no such event, so no rerun sends it (a tap that reads "
                    "rows by their update time re-reads old ones that changed). Such records are "
                    "in the dead-letter file, counted at stage window (if every record is, check "
                    "the field that gives the time), and the run goes on."
                )
        elif self._fail_on_rejection:
            advice = (
                ". No rerun can send a record older than 7 days: set dead_letter_path to keep "
                "such records and go on, or check the field that gives the time"
                if is_too_old(rejection)
                else ""
            )
            raise RunFailed(
                f"A record of stream '{stream.name}' was rejected at stage {rejection.stage}: "
                f"{reason_safe(rejection.reason)} (on_rejected is 'fail'){advice}"
            )

    def _written_before(self, written_as: StreamInfo | None, record_json: bytes | None) -> bool:
        """True when the record stream maps made this one of was dead-lettered already (maps
        that send one stream to several, two of which refused it): its replay through the
        maps makes both again, so it is written once."""
        if written_as is None or record_json is None:
            return False
        digest = hashlib.sha256(written_as.name.encode() + b"\n" + record_json).digest()
        if digest in self._sources_written:
            return True
        self._sources_written[digest] = None
        if len(self._sources_written) > SOURCES_REMEMBERED:
            self._sources_written.popitem(last=False)
        return False

    def reject_line(
        self, line_number: int, raw: str, stage: str, reason: str, *, in_batch_file: bool = False
    ) -> None:
        """Dead-letter an input line that was not a usable Singer message (`in_batch_file`: a
        line of a BATCH message's file, `line_number` its number there, named by `reason`)."""
        self._checkpoints.next_seq()
        if self.dead_letters is not None:
            try:
                self.dead_letters.line(line_number=line_number, raw=raw, stage=stage, reason=reason)
            except DeadLetterError:  # (not rejected, which says it is in the file)
                self.account.count(INPUT_STREAM, UNSETTLED)
                raise
        self.account.reject(INPUT_STREAM, stage)
        where = "a line of a BATCH file" if in_batch_file else f"input line {line_number}"
        self._log.warning(INPUT_STREAM, stage, "Rejected %s: %s", where, log_safe(reason))
        if self._fail_on_rejection:
            raise RunFailed(f"{where[0].upper()}{where[1:]} was rejected: {reason}")

    def settle(self, results: list[BatchResult]) -> None:
        """Settle the records of finished batches, then release STATE if it may go. When one
        stops the run (on_rejected: fail, refusals in a row), the batches after it are kept
        in `left_over` (settle_after_failure)."""
        for position, result in enumerate(results):
            try:
                self._settle_batch(result)
            except BaseException:
                self.left_over += results[position + 1 :]
                raise
        self.release_state()

    def settle_after_failure(self, results: list[BatchResult]) -> None:
        """The run stopped: settle the batches the API accepted whole (their records sent,
        STATE past them if it may go); any other stays unsettled, nothing more dead-lettered."""
        accepted = [r for r in self.left_over + results if not r.rejected and not r.expired]
        self.left_over = []
        for result in accepted:
            self._settle_batch(result, check=False)
        self.release_state()

    def _settle_batch(self, result: BatchResult, *, check: bool = True) -> None:
        """Count, dead-letter and release the records of one finished batch (`check`: for
        refusals in a row; not once the run stopped)."""
        refs: list[RecordRef] = result.batch.tags
        outcome = VALIDATED if result.batch.validate_only else SENT
        self.account.requests += result.requests
        if check:
            self._check_refusals_in_a_row(result)
        for index in result.accepted:
            ref = refs[index]
            self.account.count(ref.stream.name, outcome)
            self.coverage.count_kinds(ref.stream.name, ref.identifiers)
            self.on_event_settled(ref, True)
        for index, status, message in result.rejected:
            ref = refs[index]
            refused = f"the API refused the event (HTTP {status}): {about_the_event(message)}"
            self._reject_batched(
                ref,
                Rejection(
                    STAGE_WINDOW if index in result.aged else STAGE_API,
                    f"{AGED_DURING_ITS_REQUESTS}; {refused}" if index in result.aged else refused,
                    event_id=ref.event_id,
                    server_message=message,  # (as the API wrote it, position included)
                ),
            )
        for index in result.expired:
            ref = refs[index]
            self._reject_batched(
                ref, Rejection(STAGE_WINDOW, EXPIRED_BEFORE_SENT, event_id=ref.event_id)
            )
        self._checkpoints.release(id(result.batch))

    def _reject_batched(self, ref: RecordRef, rejection: Rejection) -> None:
        """Dead-letter the record of a batched event that was not accepted; only then is it
        settled (a copy held behind another may hold STATE back by itself: if its dead letter
        cannot be written, the run stops with STATE still before it)."""
        self._forget_event(ref.event_name, ref.event_id)
        record_json = ref.source_json()
        record = decode_record(record_json or b"{}") or {}  # (for its key)
        try:
            self.reject(
                ref.stream,
                record,
                rejection,
                in_batch=True,
                record_json=record_json,
                written_as=ref.written_as,
            )
        except DeadLetterError:
            raise  # (not in the file: unsettled, and still holding STATE before it)
        except BaseException:  # RunFailed (on_rejected: fail): rejected, the run stops
            self.on_event_settled(ref, False)
            raise
        self.on_event_settled(ref, False)

    def _check_refusals_in_a_row(self, result: BatchResult) -> None:
        """Raise RunFailed, before its events are dead-lettered, when this batch makes
        UNNAMED_REFUSALS_IN_A_ROW events refused alone by answers that named none, in batches
        of consecutive numbers (the order they were submitted: a batch accepted between two
        refusals may finish before both; one slow batch before them changes nothing)."""
        number, refused = result.batch.number, _unnamed_refusals(result)
        self._finished[number] = refused
        if refused > 0:
            in_a_row = refused
            before = number - 1
            while before >= self._unfinished and self._finished.get(before, -1) >= 0:
                in_a_row += self._finished[before]
                before -= 1
            if before < self._unfinished:  # (every batch back to the first unfinished)
                in_a_row += self._run_before
            after = number + 1
            while self._finished.get(after, -1) >= 0:
                in_a_row += self._finished[after]
                after += 1
            if in_a_row >= UNNAMED_REFUSALS_IN_A_ROW:
                _, status, message = result.rejected[-1]
                raise RunFailed(
                    f"The API refused {in_a_row} events in a row, each sent alone, with "
                    "answers that name no event and none accepted between them (the last: "
                    f"HTTP {status}, {cut_text(message, 200)}). That is not bad data but a "
                    "refusal of everything (a gateway, the pixel or key, an API change): stopping "
                    "without "
                    "STATE past these events; the last of them were not dead-lettered."
                )
        while self._unfinished in self._finished:
            refused = self._finished.pop(self._unfinished)
            self._run_before = 0 if refused < 0 else self._run_before + refused
            self._unfinished += 1

    def release_state(self) -> None:
        """Emit the pending STATE if every record before it is settled."""
        state = self._checkpoints.releasable_state()
        if state is not None:
            self._emit_state(state)


def _unnamed_refusals(result: BatchResult) -> int:
    """How many of the batch's events were refused alone by answers naming no event; -1 when
    the batch breaks a run of such refusals (an event accepted, or the API named events: it
    speaks of bad data); 0 when it neither adds to a run nor breaks it."""
    if result.accepted:
        return -1
    if not result.rejected:
        return 0
    if any(
        index not in result.unnamed or names_the_only_event(message) or index in result.aged
        for index, _, message in result.rejected
    ):
        # (named in `param`, or in its message as the uploader's own check reads it; or past
        # the 7 days when its refusal came, which spoke of its age: uploader.py `_note_if_aged`)
        return -1
    return len(result.rejected)
