"""Reads Singer messages; a bad line becomes a recorded rejection instead of ending the run.

RECORD messages are handed on as RecordEnvelopes (reading/envelope.py), decoded by the line
decoder (reading/lines.py) only where their stream's sink reads them; other messages as dicts.
"""

from __future__ import annotations

import decimal
import json
import logging
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import msgspec
import simplejson
from msgspec import UNSET
from singer_sdk.contrib.msgspec import MsgSpecReader
from singer_sdk.exceptions import RecordsWithoutSchemaException
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_openai_capi.main_thread_signals import signal_wakeup
from target_openai_capi.parallel.pool import Ticket, WorkerPool
from target_openai_capi.parallel.prepared import PlanSpec, PreparedRecord
from target_openai_capi.pipeline.accounting import STAGE_INPUT
from target_openai_capi.pipeline.dead_letter import DEAD_LETTER_TYPE
from target_openai_capi.pipeline.settling import RunFailed
from target_openai_capi.reading.decoding import RecordDecoding
from target_openai_capi.reading.envelope import RecordEnvelope
from target_openai_capi.reading.line_chunks import (
    MAX_LINE_BYTES,
    LineChunks,
    overlong_line,
    readable,
    split_lines,
)
from target_openai_capi.reading.lines import (
    LONE_SURROGATE,
    NON_FINITE_NUMBER,
    LineDecoder,
    holds_lone_surrogate,
    holds_non_finite_number,
)


class _StateMessage(msgspec.Struct):
    """A STATE message with its value left as the JSON text the tap wrote."""

    type: Any
    value: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


_state_decoder = msgspec.json.Decoder(_StateMessage)
_UTF8_BOM = b"\xef\xbb\xbf"


# Called with (line number, the line as text, stage, reason) for each line that is rejected.
BadLineHandler = Callable[[int, str, str, str], None]


_log = logging.getLogger(__name__)

# Keys that must hold JSON objects, per message type (the SDK assumes so and would crash).
# (A SCHEMA's `schema` is checked by the target, which refuses the stream for it: records after
# a SCHEMA that is no object must not go on under the stream's earlier one.)
_OBJECT_KEYS = {"RECORD": ("record",), "STATE": ("value",)}


# What each line of the dead-letter file holds (pipeline/dead_letter.py): an input with it is
# a replay of that file, as the file wrote it or rewritten (`jq -c .` takes out the spaces, a
# script may sort the keys): a message whose own `dead_letter` object has `stage` and
# `rejected_at`. Only lines holding the key are parsed to see, and only so many: a tap whose
# records carry a `dead_letter` property of their own costs no more than that.
_REPLAY_KEY = b'"dead_letter"'
_REPLAY_LINES_CHECKED = 1000


def _is_dead_letter(line: str | bytes) -> bool:
    """True for a line the dead-letter file writes (a message with its `dead_letter`)."""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return False
    letter = message.get("dead_letter") if isinstance(message, dict) else None
    return isinstance(letter, dict) and "stage" in letter and "rejected_at" in letter


def _is_object(value: object) -> bool:
    """A JSON object: decoded to a dict, or raw JSON text (a STATE's value) that is one."""
    if isinstance(value, msgspec.Raw):
        return bytes(value).lstrip()[:1] == b"{"
    return isinstance(value, dict)


def _without_bom(line: str | bytes) -> str | bytes:
    if isinstance(line, bytes):
        return line.removeprefix(_UTF8_BOM)
    return line.removeprefix("\ufeff")


class BadLine(Exception):
    """An input line that is not a usable Singer message; str() is the reason."""


class TolerantReader(MsgSpecReader):
    """msgspec-based Singer reader that hands bad lines to `on_bad_line` and goes on.

    The SDK's readers end the run on a malformed line and log the whole line (which may hold
    PII). This one reads bytes (so invalid UTF-8 is a rejected line, not a crash), reports
    the line number and what is wrong, and never puts the line's content in an error message.
    """

    on_bad_line: BadLineHandler | None = None
    # Worker processes that prepare records (parallel/), and where a prepared record goes.
    pool: WorkerPool | None = None
    # Records a worker prepared, in input order, with the chunk whose lines they are.
    on_prepared: Callable[[list[PreparedRecord], bytes], None] | None = None
    records_prepared = 0  # RECORDs a worker prepared (the rest this process handled itself)
    # With on_rejected: fail, a bad line ends the run with the SDK's own exception.
    strict = False
    # Called once when the input holds dead-letter lines (a replay of the dead-letter file).
    on_replay: Callable[[], None] | None = None
    _replay_lines_checked = 0  # lines holding the key that were no dead letter

    def __init__(self) -> None:
        super().__init__()
        self.lines = LineDecoder()
        # Streams whose SCHEMA was refused, with why (their records' rejections say so).
        self.refused_schemas: dict[str, str] = {}

    @property
    def keep_sources(self) -> bool:
        """Whether partly decoded records keep their JSON as it arrived (for dead letters)."""
        return self.lines.keep_sources

    @keep_sources.setter
    def keep_sources(self, keep: bool) -> None:
        self.lines.keep_sources = keep

    def set_record_decoding(
        self, stream: str, decoding: RecordDecoding | None, spec: PlanSpec | None = None
    ) -> None:
        """Decode the stream's records with `decoding` from now on (None: whole); worker
        processes prepare them by `spec` (None: this process handles them)."""
        self.lines.set_plan(stream, decoding)
        if self.pool is not None:
            self.pool.set_plan(stream, spec if decoding is not None else None)

    @staticmethod
    def assert_line_requires(line_dict: dict[str, Any], requires: set[str]) -> None:
        """Like the SDK's check, without echoing the message (its record may hold PII)."""
        missing = requires.difference(line_dict)
        if missing:
            kind = line_dict.get("type", "message")
            msg = f"{kind} message is missing required key(s): {', '.join(sorted(missing))}"
            raise InvalidInputLine(msg)

    def deserialize_json(self, line: str | bytes) -> dict[str, Any] | RecordEnvelope:  # type: ignore[override]
        """Parse one line; raises BadLine with a reason that does not quote the line.

        A RECORD becomes a RecordEnvelope. A STATE's value is kept as the JSON text the tap wrote
        (msgspec.Raw), so it goes out exactly as it came in, whatever numbers it holds.
        """
        try:
            message = self.lines.decode(line)
        except UnicodeError:  # msgspec raises it for invalid UTF-8 (or lone surrogates) in strings
            raise BadLine("line is not valid UTF-8") from None
        except msgspec.DecodeError as exc:
            mark = b"\xef\xbb\xbf" if isinstance(line, bytes) else "\ufeff"
            rest = line[len(mark) :]
            if line.startswith(mark) and not rest.startswith(mark):  # type: ignore[arg-type]
                # A byte order mark inside the input (two files joined, each with its own):
                # no JSON begins with one, so it is read without it, as the first line is
                # (one: more are no file's start).
                return self.deserialize_json(rest)
            if not _is_utf8(line):  # (bytes of a surrogate, as CESU-8 writes: no escape)
                raise BadLine("line is not valid UTF-8") from None
            if "out of range" not in str(exc):
                lone = holds_lone_surrogate(line)
                state = _state_of_lone_surrogates(line) if lone else None
                if state is None:
                    if lone:
                        raise BadLine(f"line {LONE_SURROGATE}") from None
                    if "UTF-8" in str(exc):  # (msgspec's decoding in one pass says so)
                        raise BadLine("line is not valid UTF-8") from None
                    if holds_non_finite_number(line):
                        raise BadLine(f"line {NON_FINITE_NUMBER}") from None
                    raise BadLine(f"line is not valid JSON ({exc})") from None
                message = state  # (checked below as any STATE is: its value an object)
            else:
                # An integer of over 4,300 digits, or 1e99999999999: valid JSON, beyond reading.
                message = self._state_or_none(line)
                if message is None:
                    raise BadLine("line holds a number too large to read exactly") from None
        except decimal.InvalidOperation:  # a number beyond what a Decimal can hold
            message = self._state_or_none(line)
            if message is None:
                raise BadLine("line holds a number too large to read exactly") from None
        except RecursionError:
            raise BadLine("line is nested too deeply to read (arrays or objects)") from None
        if type(message) is RecordEnvelope:
            return message
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise BadLine("line is not a Singer message (a JSON object with a 'type')")
        if message["type"] == "STATE" and not isinstance(message.get("value"), msgspec.Raw):
            message = self._state_or_none(line) or message
        for key in _OBJECT_KEYS.get(message["type"], ()):
            if key in message and not _is_object(message[key]):
                raise BadLine(f"{message['type']} message's {key!r} is not a JSON object")
        if message["type"] == "RECORD":
            return self._record_envelope(message)
        result: dict[str, Any] = message
        return result

    def _record_envelope(self, message: dict[str, Any]) -> RecordEnvelope:
        self.assert_line_requires(message, {"stream", "record"})
        stream = message["stream"]
        if not isinstance(stream, str):
            raise BadLine("RECORD message's 'stream' is not a string")
        return RecordEnvelope(stream, message["record"])

    @staticmethod
    def _state_or_none(line: str | bytes) -> dict[str, Any] | None:
        """The line as a STATE message whose value is its raw JSON text, or None."""
        try:
            state = _state_decoder.decode(line)
        except (msgspec.DecodeError, RecursionError):
            return None
        if state.type != "STATE":
            return None
        return (
            {"type": "STATE"} if state.value is UNSET else {"type": "STATE", "value": state.value}
        )

    def process_lines(
        self,
        file_input: IO[Any] | None,
        callbacks: dict[str, Callable[[dict[str, Any]], None]],
    ) -> Counter[str]:
        """Dispatch each line to its callback; bad lines go to `on_bad_line`."""
        stats: Counter[str] = Counter()
        filein = file_input or self.default_input
        # Read bytes where we can: faster, and undecodable input is a bad line, not a crash.
        lines: Iterable[str | bytes] = getattr(filein, "buffer", None) or filein
        fd = _file_descriptor(lines)
        with signal_wakeup() as wakeup:  # (a signal ends a wait for input: see the module)
            if fd is None:
                self._process_each(lines, callbacks, stats)
            elif self.pool is not None and self.on_prepared is not None:
                self._process_chunks(LineChunks(fd, wakeup), fd, callbacks, stats)
            else:
                lines = _lines_of(LineChunks(fd, wakeup))  # (which takes off a byte order mark)
                self._process_each(lines, callbacks, stats, bom_taken_off=True)
        return stats

    def _process_each(
        self,
        lines: Iterable[str | bytes],
        callbacks: dict[str, Callable[[dict[str, Any]], None]],
        stats: Counter[str],
        *,
        bom_taken_off: bool = False,
    ) -> None:
        """Every line here, one after the other (no worker processes)."""
        for number, line in enumerate(lines, start=1):
            if number == 1 and not bom_taken_off:  # a byte order mark some writers put first
                line = _without_bom(line)
            if self.on_replay is not None:
                self._look_for_replay(line)
            self._process_line(number, line, callbacks, stats)

    def _look_for_replay(self, text: str | bytes) -> None:
        """Tell `on_replay` (once) when the text (a line, or a chunk of lines) holds a line the
        dead-letter file writes; after _REPLAY_LINES_CHECKED lines that held the key and were
        none, look no more."""
        assert self.on_replay is not None
        if isinstance(text, str):  # (a line read as text: not the usual path)
            text = text.encode("utf-8", "surrogateescape")
        at = text.find(_REPLAY_KEY)
        while at >= 0:
            start = text.rfind(b"\n", 0, at) + 1
            end = text.find(b"\n", at)
            end = len(text) if end < 0 else end
            if _is_dead_letter(text[start:end]):
                on_replay, self.on_replay = self.on_replay, None
                on_replay()
                return
            self._replay_lines_checked += 1
            if self._replay_lines_checked >= _REPLAY_LINES_CHECKED:
                self.on_replay = None
                return
            at = text.find(_REPLAY_KEY, end)

    def _process_chunks(
        self,
        chunks: LineChunks,
        fd: int,
        callbacks: dict[str, Callable[[dict[str, Any]], None]],
        stats: Counter[str],
    ) -> None:
        """Read the input in chunks of whole lines that worker processes prepare (parallel/),
        while this process handles the chunks before them, each line in input order."""
        pool = self.pool
        on_prepared = self.on_prepared
        assert pool is not None
        assert on_prepared is not None
        pool.start()
        # Chunks read, in input order, each with the worker preparing it (None: handled here).
        pending: deque[tuple[bytes, Ticket | None]] = deque()
        number = 0
        try:
            while True:
                # Keep workers busy: send chunks ahead, as far as input is there already.
                while len(pending) < pool.depth and not chunks.ended:
                    if pending and not readable(fd):
                        break
                    chunk = chunks.read()
                    if chunk is None:
                        break
                    if self.on_replay is not None:
                        self._look_for_replay(chunk)
                    ticket = pool.submit(chunk) if pool.usable() else None
                    pending.append((chunk, ticket))
                    if ticket is None:
                        break  # this one is handled here, after those before it
                if not pending:
                    return
                chunk, ticket = pending.popleft()
                results = None if ticket is None else pool.collect(ticket)
                if results is None:
                    lines = split_lines(chunk)
                    for index, line in enumerate(lines):
                        number += 1
                        plans = pool.plans_set
                        self._process_line(number, line, callbacks, stats)
                        if (
                            pool.plans_set != plans
                            and index + 1 < len(lines)
                            and not pending  # (else a worker has chunks from after this one)
                            and pool.usable()
                        ):
                            # A SCHEMA gave the workers a plan: the rest of the chunk to them
                            # (the first chunk holds the first SCHEMA, and ~1 MiB of records).
                            rest = b"\n".join(lines[index + 1 :]) + b"\n"
                            pending.append((rest, pool.submit(rest)))
                            break
                else:
                    number = self._process_answered(chunk, results, number, callbacks, stats)
        finally:
            pool.close()

    def _process_answered(
        self,
        chunk: bytes,
        results: list[PreparedRecord | None],
        number: int,
        callbacks: dict[str, Callable[[dict[str, Any]], None]],
        stats: Counter[str],
    ) -> int:
        """A chunk a worker answered: each prepared record whose plan is still its stream's
        current one (asked in input order, so after any SCHEMA line before it) goes on in runs;
        every other line is handled here. Returns the last line's number."""
        pool = self.pool
        assert pool is not None
        lines = None  # the chunk is cut into lines only for lines handled here
        run: list[PreparedRecord] = []
        for index, prepared in enumerate(results):
            number += 1
            if prepared is not None and pool.current(prepared.stream, prepared.version):
                run.append(prepared)
                continue
            if run:  # (before this line: it may be a SCHEMA that changes a plan)
                self._hand_on(run, chunk, stats)
                run = []
            if lines is None:
                lines = split_lines(chunk)
                if len(lines) != len(results):
                    raise RuntimeError("a worker answered a chunk with the wrong number of lines")
            self._process_line(number, lines[index], callbacks, stats)
        if run:
            self._hand_on(run, chunk, stats)
        return number

    def _hand_on(self, run: list[PreparedRecord], chunk: bytes, stats: Counter[str]) -> None:
        """Records prepared by a worker, with their chunk, to `on_prepared`, in input order."""
        assert self.on_prepared is not None
        self.on_prepared(run, chunk)
        stats["RECORD"] += len(run)
        self.records_prepared += len(run)

    def _process_line(
        self,
        number: int,
        line: str | bytes,
        callbacks: dict[str, Callable[[dict[str, Any]], None]],
        stats: Counter[str],
    ) -> None:
        """Dispatch one line to its callback; a bad line goes to `on_bad_line`."""
        if not line or line.isspace() or _only_a_byte_order_mark(line):
            stats["BLANK"] += 1  # blank lines carry nothing; the SDK would stop here
            return
        message: dict[str, Any] | RecordEnvelope = {}
        error: type[Exception]
        try:
            if (overlong := overlong_line(line)) is not None:
                size, line = overlong
                raise BadLine(
                    f"line of {size:,} bytes, over the limit of {MAX_LINE_BYTES:,}: no record "
                    "an event is made of is that long (skipped; its first bytes are kept here)"
                )
            message = self.deserialize_json(line)
            kind = message["type"] if isinstance(message, dict) else "RECORD"
            if kind == DEAD_LETTER_TYPE:
                # A replayed dead-letter file: lines that never were records stay skipped.
                if not stats[kind]:
                    _log.warning(
                        "Line %d and any like it are DEAD_LETTER lines (input lines that were "
                        "not usable Singer messages, or records of a refused SCHEMA or before "
                        "any SCHEMA, kept as raw text): a replay skips them; they stay in the "
                        "file being read.",
                        number,
                    )
                stats[kind] += 1
                return
            callback = callbacks.get(kind)
            if callback is None:
                raise BadLine(f"unknown Singer message type {kind!r}")
            callback(message)  # type: ignore[arg-type]  # RECORD: the envelope
        except (BadLine, InvalidInputLine) as exc:
            reason, error = str(exc), BadLine
        except RecordsWithoutSchemaException:
            error = RecordsWithoutSchemaException
            stream = message.stream if type(message) is RecordEnvelope else None
            refused = self.refused_schemas.get(stream) if isinstance(stream, str) else None
            reason = f"RECORD for stream {stream!r} came before its SCHEMA"
            if refused is not None:
                reason = f"RECORD for stream {stream!r}, whose SCHEMA was refused ({refused})"
        else:
            stats[kind] += 1
            return
        # The line is recorded (dead letter, count, log) in either mode; on_rejected: fail
        # then stops the run with the error of its kind, naming the line.
        try:
            self._reject(number, line, reason)
        except RunFailed:  # (the pipeline's own stop on a rejection)
            if not self.strict:
                raise
        stats["REJECTED"] += 1
        if self.strict:
            raise error(f"input line {number}: {reason}")

    def _reject(self, number: int, line: str | bytes, reason: str) -> None:
        text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
        if self.on_bad_line is None:
            raise InvalidInputLine(f"line {number}: {reason}")
        self.on_bad_line(number, text.rstrip("\r\n"), STAGE_INPUT, reason)


def _lines_of(chunks: LineChunks) -> Iterator[bytes]:
    """The lines of the input, read in chunks (the first has lost a byte order mark)."""
    while (chunk := chunks.read()) is not None:
        yield from split_lines(chunk)


def _file_descriptor(source: object) -> int | None:
    """The input's file descriptor, where chunks can be read from it (posix), else None."""
    if os.name != "posix":
        return None
    try:
        fd = source.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None
    return fd if isinstance(fd, int) else None


def _only_a_byte_order_mark(line: str | bytes) -> bool:
    """A line that is a byte order mark and blanks (an empty file saved with one, joined in):
    a blank line. (Not strip() of every line: it would copy each.)"""
    mark = b"\xef\xbb\xbf" if isinstance(line, bytes) else "\ufeff"
    return line.startswith(mark) and line[len(mark) :].strip() == line[:0]  # type: ignore[arg-type]


def _is_utf8(line: str | bytes) -> bool:
    """False when the line is bytes that are not UTF-8 (strictly: no encoded surrogates)."""
    if isinstance(line, str) or line.isascii():
        return True
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _state_of_lone_surrogates(line: str | bytes) -> dict[str, Any] | None:
    """A STATE whose strings hold a lone surrogate escape (Python's json.dumps writes one for a
    file name of a byte that is not UTF-8, as file taps keep in their bookmarks), its value as
    JSON text for the writer, or None for any other message. msgspec reads no such string, not
    even to skip it: the value is written again, escapes, numbers and key order as they were
    (its spacing may differ)."""
    try:
        message = simplejson.loads(line, use_decimal=True)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict) or message.get("type") != "STATE":
        return None
    if "value" not in message:
        return {"type": "STATE"}
    value = simplejson.dumps(message["value"], use_decimal=True, separators=(",", ":"))
    return {"type": "STATE", "value": msgspec.Raw(value.encode())}
