"""The files a BATCH message names (the SDK's batch extension): local JSONL, maybe gzipped.

Taps that advertise `batch` write records to files and send `{"type": "BATCH", "stream",
"encoding": {"format": "jsonl", "compression": "gzip" | "none"}, "manifest": [file URLs]}`.
Each file holds one raw record (not a Singer message) a line. Only local files are read: a URL
of any other scheme found in the input is never fetched.
"""

from __future__ import annotations

import decimal
import gzip
import os
import stat
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple
from urllib.parse import unquote, urlsplit

import msgspec

from target_openai_capi.log_safety import show_in_log
from target_openai_capi.reading.envelope import RecordEnvelope
from target_openai_capi.reading.line_chunks import (  # (as for input)
    MAX_LINE_BYTES,
    overlong_line,
    overlong_mark,
)
from target_openai_capi.reading.lines import (
    LONE_SURROGATE,
    NON_FINITE_NUMBER,
    holds_lone_surrogate,
    holds_non_finite_number,
)

_COMPRESSIONS = (None, "none", "gzip")


class BatchFileError(Exception):
    """A BATCH message or one of its files that cannot be read; str() says which and why."""


def check_batch_message(message: dict[str, Any]) -> list[Path]:
    """The local files of a BATCH message (whether each is gzip its first bytes say, whatever
    its `compression`); raises BatchFileError naming the problem."""
    encoding = message.get("encoding")
    manifest = message.get("manifest")
    if not isinstance(encoding, dict):
        raise BatchFileError("its encoding is not an object")
    file_format, compression = encoding.get("format"), encoding.get("compression")
    if file_format != "jsonl":
        raise BatchFileError(
            f"its encoding format {str(file_format)[:40]!r} is not supported (only jsonl; set "
            "the tap's batch_config encoding format to jsonl)"
        )
    if compression not in _COMPRESSIONS:
        raise BatchFileError(
            f"its compression {str(compression)[:40]!r} is not supported (none or gzip)"
        )
    if not isinstance(manifest, list) or not all(isinstance(url, str) for url in manifest):
        raise BatchFileError("its manifest is not a list of file URLs")
    return [_local_path(url) for url in manifest]


# The kernel's and the devices' files are no tap's batch files (/proc/self/environ holds the
# target's environment, the API key with it).
_SYSTEM_DIRS = ("/proc", "/sys", "/dev")


def _local_path(url: str) -> Path:
    try:
        return _checked_local_path(url)
    except ValueError as exc:  # a NUL byte, a lone surrogate, a port that is not a number
        raise BatchFileError(
            f"its manifest names {url[:120]!r}, which is no usable file name ({exc})"
        ) from None


def _checked_local_path(url: str) -> Path:
    parts = urlsplit(url)
    written = url.split("://", 1)[1] if "://" in url else ""  # (its ? and # too)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return _not_a_system_file(_local(written[len(parts.netloc) :], parts.path))
    if parts.scheme == "file" and not any(ch in parts.netloc for ch in ":@"):
        # file://dir/file.jsonl: a path relative to the working directory, as the SDK reads it
        # (its own target test streams are written so); no host is contacted.
        return _not_a_system_file(_local(written, parts.netloc + parts.path))
    if parts.scheme == "" and url:
        return _not_a_system_file(Path(url))
    shown = f"{parts.scheme}://{parts.netloc}{parts.path}"[:120] if parts.scheme else url[:120]
    raise BatchFileError(
        f"its manifest names {shown!r}, which is not a local file: nothing is fetched "
        "from a URL found in the input"
    )


def _local(written: str, path: str) -> Path:
    """The file a manifest's file URL names: its path as written, as the SDK that wrote it
    reads it (it escapes nothing: a file name may hold a literal %20, # or ?), else
    percent-decoded, as a URL written by the book has it (file:///tmp/my%20dir/...)."""
    as_written = Path(written)
    if written and (as_written.exists() or "%" not in written):
        return as_written
    return Path(unquote(path))


def _not_a_system_file(path: Path) -> Path:
    try:
        real = os.path.realpath(path)
    except OSError as exc:  # (a relative name, and the working folder was removed)
        raise BatchFileError(
            f"its manifest names {str(path)[:120]!r}, which cannot be found ({exc.strerror or exc})"
        ) from None
    if real.startswith("/dev/shm/"):  # noqa: S108  (shared memory: a container tap writes there)
        return path
    if any(real == top or real.startswith(top + "/") for top in _SYSTEM_DIRS):
        raise BatchFileError(
            f"its manifest names {str(path)[:120]!r}, a system file, not a tap's batch file"
        )
    return path


def _open(path: Path) -> IO[bytes]:
    """The file to read lines from: gunzipped when it is gzip, whatever its `compression` says
    (singer-sdk's JSONL batches are always gzip, whatever `compression` the message says or
    leaves out; a tap may also say gzip of a file it wrote plain)."""
    with path.open("rb") as head:
        gzipped = head.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if gzipped else path.open("rb")  # type: ignore[return-value]


_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for each non-blank line, a line over MAX_LINE_BYTES as the mark
    that stands for it (line_chunks.py `overlong_line`: its size and first bytes); raises
    BatchFileError if unreadable or not a regular file."""
    show_in_log(str(path)[:200], path.name)  # (a file's name, which holds a UUID, is shown)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise BatchFileError(f"its file {str(path)[:200]!r} is not a regular file")
        with _open(path) as handle:
            number = 0
            limit = MAX_LINE_BYTES + 1 + len(_BOM)  # (the first line's BOM is not counted)
            while line := handle.readline(limit):
                number += 1
                whole = line.endswith(b"\n") or len(line) < limit  # (its end, or the file's)
                if number == 1 and line.startswith(_BOM):  # (as the input's own first line)
                    line = line[len(_BOM) :]
                limit = MAX_LINE_BYTES + 1
                if not whole or len(line) - line.endswith(b"\n") > MAX_LINE_BYTES:
                    yield number, _skipped_to_its_end(handle, line)  # (rejected, as on stdin)
                elif line.strip():
                    yield number, line
    except (OSError, EOFError, zlib.error, ValueError) as exc:  # (BadGzipFile: an OSError)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BatchFileError(f"its file {str(path)[:200]!r} cannot be read ({reason})") from None


def _skipped_to_its_end(handle: IO[bytes], first: bytes) -> bytes:
    """Read on to the end of a line over MAX_LINE_BYTES whose first part is `first`, keeping
    none of it but its first bytes: the mark that stands for it (line_chunks.py)."""
    size = len(first)
    part = first
    while not part.endswith(b"\n") and (part := handle.readline(MAX_LINE_BYTES + 1)):
        size += len(part)
    return overlong_mark(size - part.endswith(b"\n"), first)


class BadBatchLine(NamedTuple):
    """A line of a BATCH file that is no record: rejected like a bad input line."""

    number: int
    text: str
    reason: str


# Records in BATCH files, decoded as the reader decodes RECORD messages: floats as Decimals.
_RECORD_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(float_hook=decimal.Decimal)


def batch_records(stream: str, message: dict[str, Any]) -> Iterator[RecordEnvelope | BadBatchLine]:
    """Each record of a BATCH message's files, in order, or the line that is none; raises
    BatchFileError when the message or a file cannot be used."""
    for path in check_batch_message(message):
        for number, line in read_lines(path):
            where = f"line {number} of BATCH file {path.name!r}"
            if (overlong := overlong_line(line.removesuffix(b"\n"))) is not None:
                size, head = overlong
                reason = (
                    f"{where} is {size:,} bytes long, over the limit of {MAX_LINE_BYTES:,}: no "
                    "record an event is made of is that long (skipped; its first bytes are kept "
                    "here)"
                )
                text = head if isinstance(head, str) else head.decode("utf-8", "replace")
                yield BadBatchLine(number, text, reason)
                continue
            try:
                record = _RECORD_DECODER.decode(line)
            except (msgspec.DecodeError, decimal.InvalidOperation, RecursionError, UnicodeError):
                reason = f"{where} is not a JSON record this target can read"
                if holds_lone_surrogate(line):
                    reason = f"{where} {LONE_SURROGATE}"
                elif holds_non_finite_number(line):
                    reason = f"{where} {NON_FINITE_NUMBER}"
            else:
                if isinstance(record, dict):
                    yield RecordEnvelope(stream, record)
                    continue
                reason = f"{where} is not a JSON object"
            yield BadBatchLine(number, line.decode("utf-8", "replace").rstrip(), reason)
