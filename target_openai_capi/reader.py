"""Reads Singer messages; a bad line becomes a recorded rejection instead of ending the run."""

from __future__ import annotations

import decimal
from collections import Counter
from collections.abc import Callable, Iterable
from typing import IO, Any

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader
from singer_sdk.exceptions import RecordsWithoutSchemaException
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_openai_capi.accounting import STAGE_INPUT
from target_openai_capi.dead_letter import DEAD_LETTER_TYPE

# Floats become Decimals, so money stays exact (the SDK's msgspec reader does the same).
_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(float_hook=decimal.Decimal)

# Called with (line number, the line as text, stage, reason) for each line that is rejected.
BadLineHandler = Callable[[int, str, str, str], None]


# Keys that must hold JSON objects, per message type (the SDK assumes so and would crash).
_OBJECT_KEYS = {"RECORD": ("record",), "SCHEMA": ("schema",), "STATE": ("value",)}


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

    @staticmethod
    def assert_line_requires(line_dict: dict[str, Any], requires: set[str]) -> None:
        """Like the SDK's check, without echoing the message (its record may hold PII)."""
        missing = requires.difference(line_dict)
        if missing:
            kind = line_dict.get("type", "message")
            msg = f"{kind} message is missing required key(s): {', '.join(sorted(missing))}"
            raise InvalidInputLine(msg)

    def deserialize_json(self, line: str | bytes) -> dict[str, Any]:
        """Parse one line; raises BadLine with a reason that does not quote the line."""
        try:
            message = _decoder.decode(line)
        except UnicodeError:  # msgspec raises it for invalid UTF-8 (or lone surrogates) in strings
            raise BadLine("line is not valid UTF-8") from None
        except msgspec.DecodeError as exc:
            raise BadLine(f"line is not valid JSON ({exc})") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise BadLine("line is not a Singer message (a JSON object with a 'type')")
        for key in _OBJECT_KEYS.get(message["type"], ()):
            if key in message and not isinstance(message[key], dict):
                raise BadLine(f"{message['type']} message's {key!r} is not a JSON object")
        return message

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
            if not line.strip():
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
                self._reject(number, line, f"RECORD for stream {stream!r} came before its SCHEMA")
                stats["REJECTED"] += 1
                continue
            stats[kind] += 1
        return stats

    def _reject(self, number: int, line: str | bytes, reason: str) -> None:
        text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
        if self.on_bad_line is None:
            raise InvalidInputLine(f"line {number}: {reason}")
        self.on_bad_line(number, text.rstrip("\r\n"), STAGE_INPUT, reason)
