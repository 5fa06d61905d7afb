"""Reads Singer messages; a bad line becomes a recorded rejection instead of ending the run."""

from __future__ import annotations

import decimal
from collections import Counter
from collections.abc import Callable, Iterable
from typing import IO, Any

import msgspec
from msgspec import UNSET
from singer_sdk.contrib.msgspec import MsgSpecReader
from singer_sdk.exceptions import RecordsWithoutSchemaException
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_openai_capi.accounting import STAGE_INPUT
from target_openai_capi.dead_letter import DEAD_LETTER_TYPE
from target_openai_capi.decoding import RecordDecoding

# Floats become Decimals, so money stays exact (the SDK's msgspec reader does the same).
_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(float_hook=decimal.Decimal)

# A RECORD message whose record was decoded only in part carries the whole record's JSON, as it
# arrived, under this key (for the dead-letter file, which keeps records whole, and for an event
# id that is a hash of the whole record); or, when it was read in one pass, its whole line.
RECORD_SOURCE_KEY = "_target_openai_capi_record_source"
RECORD_LINE_KEY = "_target_openai_capi_record_line"
# Present (True) when the decoder also checked the record against its (cut-down) stream schema.
RECORD_CHECKED_KEY = "_target_openai_capi_record_checked"


class _RecordEnvelope(msgspec.Struct):
    """A message's type and stream, with its record left as JSON until the stream is known."""

    type: Any
    stream: Any = msgspec.UNSET
    record: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    time_extracted: Any = msgspec.UNSET
    version: Any = msgspec.UNSET


_envelope_decoder = msgspec.json.Decoder(_RecordEnvelope)


class _StateMessage(msgspec.Struct):
    """A STATE message with its value left as the JSON text the tap wrote."""

    type: Any
    value: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


_state_decoder = msgspec.json.Decoder(_StateMessage)
_UTF8_BOM = b"\xef\xbb\xbf"


def _check_utf8(line: str | bytes) -> None:
    """Raise UnicodeDecodeError unless the line is UTF-8, the parts not decoded too."""
    if isinstance(line, bytes) and not line.isascii():
        line.decode()


def _message(
    envelope: Any,
    record: Any,
    decoding: RecordDecoding | None = None,
    source: msgspec.Raw | None = None,
    line: str | bytes | None = None,
) -> dict[str, Any]:
    """A RECORD message dict; decoding (and the record's source or line) when decoded in part."""
    message: dict[str, Any] = {"type": "RECORD", "stream": envelope.stream, "record": record}
    if decoding is not None:
        if source is not None:
            message[RECORD_SOURCE_KEY] = source
        else:
            message[RECORD_LINE_KEY] = line
        if decoding.checks_schema and decoding.leaves_ok(record):
            message[RECORD_CHECKED_KEY] = True
    if envelope.time_extracted is not UNSET:
        message["time_extracted"] = envelope.time_extracted
    if envelope.version is not UNSET:
        message["version"] = envelope.version
    return message


# Called with (line number, the line as text, stage, reason) for each line that is rejected.
BadLineHandler = Callable[[int, str, str, str], None]


# Keys that must hold JSON objects, per message type (the SDK assumes so and would crash).
_OBJECT_KEYS = {"RECORD": ("record",), "SCHEMA": ("schema",), "STATE": ("value",)}


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
    # With on_rejected: fail, a bad line ends the run with the SDK's own exception.
    strict = False

    def __init__(self) -> None:
        super().__init__()
        # Streams whose records are decoded only where their mapping reads (set by the target).
        self.record_decoders: dict[str, RecordDecoding] = {}
        # Keep each such record's JSON as it arrived (RECORD_SOURCE_KEY), which takes a second
        # pass over the line: for dead letters. Else records come in one pass (RECORD_LINE_KEY).
        self.keep_sources = True
        # The last record's stream and its decoding (None: decoded whole), to guess the next.
        self._last: tuple[str, RecordDecoding | None] | None = None
        # Streams whose SCHEMA was refused, with why (their records' rejections say so).
        self.refused_schemas: dict[str, str] = {}

    @staticmethod
    def assert_line_requires(line_dict: dict[str, Any], requires: set[str]) -> None:
        """Like the SDK's check, without echoing the message (its record may hold PII)."""
        missing = requires.difference(line_dict)
        if missing:
            kind = line_dict.get("type", "message")
            msg = f"{kind} message is missing required key(s): {', '.join(sorted(missing))}"
            raise InvalidInputLine(msg)

    def deserialize_json(self, line: str | bytes) -> dict[str, Any]:
        """Parse one line; raises BadLine with a reason that does not quote the line.

        A STATE's value is kept as the JSON text the tap wrote (msgspec.Raw), so it goes out
        exactly as it came in, whatever numbers it holds.
        """
        try:
            message = self._decode(line)
        except UnicodeError:  # msgspec raises it for invalid UTF-8 (or lone surrogates) in strings
            raise BadLine("line is not valid UTF-8") from None
        except msgspec.DecodeError as exc:
            raise BadLine(f"line is not valid JSON ({exc})") from None
        except decimal.InvalidOperation:  # a number beyond what a Decimal can hold
            message = self._state_or_none(line)
            if message is None:
                raise BadLine("line holds a number too large to read exactly") from None
        except RecursionError:
            raise BadLine("line is nested too deeply to read (arrays or objects)") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise BadLine("line is not a Singer message (a JSON object with a 'type')")
        if message["type"] == "STATE" and not isinstance(message.get("value"), msgspec.Raw):
            message = self._state_or_none(line) or message
        for key in _OBJECT_KEYS.get(message["type"], ()):
            if key in message and not _is_object(message[key]):
                raise BadLine(f"{message['type']} message's {key!r} is not a JSON object")
        result: dict[str, Any] = message
        return result

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

    def set_record_decoding(self, stream: str, decoding: RecordDecoding | None) -> None:
        """Decode the stream's records with `decoding` from now on (None: whole)."""
        if decoding is None:
            self.record_decoders.pop(stream, None)
        else:
            self.record_decoders[stream] = decoding
        self._last = None

    def _decode(self, line: str | bytes) -> Any:
        decoders = self.record_decoders
        if not decoders:
            return _decoder.decode(line)
        # Records come in runs of one stream: guess it from the record before.
        if self._last is not None and self._last[1] is None:
            # A stream decoded whole: one pass, and no envelope scan first.
            message = _decoder.decode(line)
            if not isinstance(message, dict):
                return message  # not a Singer message: deserialize_json says so
            stream = message.get("stream")
            if message.get("type") == "RECORD" and isinstance(stream, str):
                self._last = (stream, decoders.get(stream))  # (correct, if whole, either way)
            return message
        if self._last is not None and not self.keep_sources:
            message = self._decode_as(line, *self._last)
            if message is not None:
                return message
        try:
            envelope = _envelope_decoder.decode(line)
        except msgspec.ValidationError:  # not an object with a type: said by the whole decode
            return _decoder.decode(line)
        stream = envelope.stream
        decoding = decoders.get(stream) if isinstance(stream, str) else None
        source = envelope.record
        if envelope.type == "RECORD" and isinstance(stream, str):
            self._last = (stream, decoding)
        if envelope.type != "RECORD" or decoding is None or source is UNSET:
            return _decoder.decode(line)
        _check_utf8(line)
        try:
            record = decoding.decoder.decode(source)
        except msgspec.ValidationError:  # not shaped as read (or as the schema says): decode all
            return _message(envelope, _decoder.decode(source))
        return _message(envelope, record, decoding, source)

    def _decode_as(
        self, line: str | bytes, stream: str, decoding: RecordDecoding | None
    ) -> dict[str, Any] | None:
        """The message, if the line is a RECORD of `stream` shaped as its decoding reads."""
        assert decoding is not None
        assert decoding.message_decoder is not None
        try:
            envelope = decoding.message_decoder.decode(line)
        except msgspec.ValidationError:
            return None
        if envelope.type != "RECORD" or envelope.stream != stream or envelope.record is UNSET:
            return None
        _check_utf8(line)
        return _message(envelope, envelope.record, decoding, line=line)

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
        for number, line in enumerate(lines, start=1):
            if number == 1:  # a UTF-8 byte order mark some writers put first is not content
                line = _without_bom(line)
            if not line or line.isspace():  # (not strip(): it would copy every line)
                stats["BLANK"] += 1  # blank lines carry nothing; the SDK would stop here
                continue
            try:
                message = self.deserialize_json(line)
                kind = message["type"]
                if kind == DEAD_LETTER_TYPE:
                    # A replayed dead-letter file: lines that never were records stay skipped.
                    stats[kind] += 1
                    continue
                callback = callbacks.get(kind)
                if callback is None:
                    raise BadLine(f"unknown Singer message type {kind!r}")
                callback(message)
            except (BadLine, InvalidInputLine) as exc:
                if self.strict:
                    raise
                self._reject(number, line, str(exc))
                stats["REJECTED"] += 1
                continue
            except RecordsWithoutSchemaException:
                if self.strict:
                    raise
                stream = message.get("stream")
                refused = self.refused_schemas.get(stream) if isinstance(stream, str) else None
                reason = f"RECORD for stream {stream!r} came before its SCHEMA"
                if refused is not None:
                    reason = f"RECORD for stream {stream!r}, whose SCHEMA was refused ({refused})"
                self._reject(number, line, reason)
                stats["REJECTED"] += 1
                continue
            stats[kind] += 1
        return stats

    def _reject(self, number: int, line: str | bytes, reason: str) -> None:
        text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
        if self.on_bad_line is None:
            raise InvalidInputLine(f"line {number}: {reason}")
        self.on_bad_line(number, text.rstrip("\r\n"), STAGE_INPUT, reason)
