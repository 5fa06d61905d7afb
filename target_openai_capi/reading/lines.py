"""Decoding one input line: RECORDs of planned streams only at their read paths, the rest whole.

Each stream with a plan (reading/decoding.py `stream_decoding`, set at SCHEMA time) has its
records decoded only where its sink reads them; other lines are decoded whole. Records come in
runs of one stream, so the stream of the record before is the guess for the next line: a line of
that stream is then decoded in one pass.
"""

from __future__ import annotations

import decimal
import json
from typing import Any

import msgspec
from msgspec import UNSET

from target_openai_capi.reading.decoding import RecordDecoding
from target_openai_capi.reading.envelope import RecordEnvelope

# Floats become Decimals, so money stays exact (the SDK's msgspec reader does the same).
WHOLE_LINE_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(float_hook=decimal.Decimal)


class _Envelope(msgspec.Struct):
    """A message's type and stream, with its record left as JSON until the stream is known."""

    type: Any
    stream: Any = msgspec.UNSET
    record: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


_ENVELOPE_DECODER = msgspec.json.Decoder(_Envelope)


def _check_utf8(line: str | bytes) -> None:
    """Raise UnicodeDecodeError unless the line is UTF-8, the parts not decoded too."""
    if isinstance(line, bytes) and not line.isascii():
        line.decode()


def _envelope(
    stream: str,
    record: dict[str, Any],
    decoding: RecordDecoding,
    *,
    source: msgspec.Raw | None = None,
    line: str | bytes | None = None,
) -> RecordEnvelope:
    checked = decoding.checks_schema and decoding.leaves_ok(record)
    return RecordEnvelope(stream, record, source=source, line=line, schema_checked=checked)


class LineDecoder:
    """Decodes lines with the current plan of each stream."""

    def __init__(self) -> None:
        self._plans: dict[str, RecordDecoding] = {}
        # Keep each partly decoded record's JSON as it arrived, which takes a second pass over the
        # line: for dead letters (whole records). Else records come in one pass with their line.
        self.keep_sources = True
        # The last record's stream and its plan (None: decoded whole), to guess the next.
        self._last: tuple[str, RecordDecoding | None] | None = None

    def set_plan(self, stream: str, decoding: RecordDecoding | None) -> None:
        """Decode the stream's records with `decoding` from now on (None: whole)."""
        if decoding is None:
            self._plans.pop(stream, None)
        else:
            self._plans[stream] = decoding
        self._last = None

    def decode(self, line: str | bytes) -> Any:
        """A RecordEnvelope for a RECORD decoded in part; else the line's JSON, decoded whole.

        Raises what msgspec raises for a line that is not JSON (or not UTF-8).
        """
        plans = self._plans
        if not plans:
            return WHOLE_LINE_DECODER.decode(line)
        last = self._last
        if last is not None and last[1] is None:
            # A stream decoded whole: one pass, and no envelope scan first.
            message = WHOLE_LINE_DECODER.decode(line)
            if type(message) is not dict:
                return message
            stream = message.get("stream")
            if message.get("type") != "RECORD" or type(stream) is not str:
                return message
            last = self._last = (stream, plans.get(stream))
            if last[1] is None:
                return message
            # A planned stream's record after one decoded whole (streams interleaved, as a
            # log-based tap writes them): decoded as its plan reads after all, or a worker
            # could not prepare it (parallel/prepared.py takes envelopes only).
        if last is not None and not self.keep_sources:
            envelope = self._decode_as(line, last[0], last[1])
            if envelope is not None:
                return envelope
        try:
            scanned = _ENVELOPE_DECODER.decode(line)
        except msgspec.ValidationError:  # not an object with a type: said by the whole decode
            return WHOLE_LINE_DECODER.decode(line)
        stream = scanned.stream
        decoding = plans.get(stream) if type(stream) is str else None
        if scanned.type == "RECORD" and type(stream) is str:
            self._last = (stream, decoding)
        source = scanned.record
        if scanned.type != "RECORD" or decoding is None or source is UNSET:
            return WHOLE_LINE_DECODER.decode(line)
        _check_utf8(line)
        try:
            record = decoding.decoder.decode(source)
        except msgspec.ValidationError:  # not shaped as read (or as the schema says): decode all
            whole = WHOLE_LINE_DECODER.decode(source)
            if type(whole) is not dict:
                return _not_object(stream)
            return RecordEnvelope(stream, whole, kept=source if self.keep_sources else None)
        return _envelope(stream, record, decoding, source=source)

    @staticmethod
    def _decode_as(
        line: str | bytes, stream: str, decoding: RecordDecoding | None
    ) -> RecordEnvelope | None:
        """The envelope, if the line is a RECORD of `stream` shaped as its plan reads."""
        assert decoding is not None
        assert decoding.message_decoder is not None
        try:
            message = decoding.message_decoder.decode(line)
        except msgspec.ValidationError:
            return None
        if message.type != "RECORD" or message.stream != stream or message.record is UNSET:
            return None
        _check_utf8(line)
        return _envelope(stream, message.record, decoding, line=line)


def _not_object(stream: str) -> dict[str, Any]:
    """A RECORD whose record is not an object, for the reader to refuse as a whole decode would."""
    return {"type": "RECORD", "stream": stream, "record": None}


# Why a line is refused that the standard library's json reads (msgspec says only where).
LONE_SURROGATE = (
    "holds a string with a lone UTF-16 surrogate escape (such as \\ud800): half of a "
    "character, which no UTF-8 text (nor the API) can carry"
)
NON_FINITE_NUMBER = (
    "holds NaN or Infinity, which JSON does not allow (Python's json.dumps writes them for a "
    "float that is no number, such as a missing value read with pandas): the tap should write "
    "null there"
)


def holds_lone_surrogate(line: str | bytes) -> bool:
    """True when a line msgspec refused is JSON whose strings hold a lone UTF-16 surrogate
    escape ("\\ud800"): the syntax allows it, Unicode has no such character, and msgspec says
    only "unexpected end of hex escape" or "Input data was truncated"."""
    try:
        parsed = json.loads(line)
    except (ValueError, RecursionError):
        return False
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (ValueError, RecursionError):
        return False
    return False


def holds_non_finite_number(line: str | bytes) -> bool:
    """True when a line msgspec refused is JSON but for a NaN, Infinity or -Infinity, which
    the standard library's json reads (and writes) and JSON does not allow."""
    found = False

    def constant(name: str) -> None:
        nonlocal found
        found = True

    try:
        json.loads(line, parse_constant=constant)
    except (ValueError, RecursionError):
        return False
    return found
