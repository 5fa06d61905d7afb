"""The dead-letter file: rejected records as a Singer stream that the target can read back."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import stat
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import simplejson

from target_openai_capi.log_safety import without_secrets
from target_openai_capi.output_files import append_line, open_owner_only
from target_openai_capi.reading.envelope import properties_in_json

try:
    import fcntl
except ImportError:  # (Windows: runs sharing a dead-letter file are not kept apart)
    fcntl = None  # type: ignore[assignment]

# A raw input line that could not be parsed is kept up to this size, so one huge bad line
# cannot fill the disk; the reason says when it was cut.
MAX_RAW_LINE_CHARS = 65_536
# Message type of lines that were not Singer messages at all; the reader skips them on replay.
DEAD_LETTER_TYPE = "DEAD_LETTER"
# How long a write waits for another holder of the file's lock (another run's write takes
# microseconds) before it goes on without it.
LOCK_WAIT_SECONDS = 5.0


def _dumps(message: Mapping[str, Any]) -> str:
    # simplejson writes Decimals as JSON numbers, so a replayed record parses as it arrived.
    try:
        text: str = simplejson.dumps(message, use_decimal=True, default=str, ensure_ascii=False)
    except ValueError:  # NaN or an infinity (a stream map's float('nan')): no JSON number
        text = simplejson.dumps(_finite(message), use_decimal=True, default=str, ensure_ascii=False)
    return text


def _finite(value: Any) -> Any:
    """The value with each NaN or infinity written as its name ("NaN", "-Infinity"): valid
    JSON that says what the record held (the reason says why it was refused)."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Decimal):
        if value.is_finite():
            return value
        return "NaN" if value.is_nan() else ("-Infinity" if value.is_signed() else "Infinity")
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _raw(record_json: bytes) -> simplejson.RawJSON:
    """JSON text to embed as it is (numbers of any size or precision stay as they came)."""
    return simplejson.RawJSON(record_json.decode("utf-8", errors="surrogateescape"))


class DeadLetterError(Exception):
    """The dead-letter file cannot be opened or written; str() names it and why."""

    def __init__(self, path: Path, exc: OSError, what: str = "dead_letter_path") -> None:
        why = exc.strerror or str(exc)
        super().__init__(f"{what} {str(path)!r} cannot be written ({why})")


class DeadLetterFile:
    """Appends one JSON line per rejected record; opened on first use, owner-only (0600).

    Rejected records are written as Singer RECORD messages, each stream's preceded by its
    SCHEMA message (again whenever the stream's SCHEMA changed since its last dead letter),
    with the rejection in an extra `dead_letter` key. Singer readers ignore unknown keys, so
    once the cause is fixed the file replays as it is:
    `target-openai-capi --config config.json --input dead_letter.jsonl`.
    Lines that were not Singer messages at all are written as `DEAD_LETTER` messages,
    which the target counts and skips on replay.
    """

    def __init__(self, path: str | Path, described_as: str = "dead_letter_path") -> None:
        self.path = Path(path)
        self.described_as = described_as  # what a message calls it (a replay's own file)
        self._fd: int | None = None
        # Per stream, the SCHEMA (schema, key properties) its last dead letters were written
        # under: a record is written after its own, so the file replays under the schema each
        # record came with, also when the stream's SCHEMA changed during the run.
        self._schemas_written: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
        self.lines_written = 0
        self._created = False  # opened at start-up; removed again if nothing was written
        self._failed = False  # a write failed (and was reported)
        # A regular file, which other runs may append to too (pipelines sharing one config):
        # each write is made under a lock on it, and its size after this run's last write
        # tells whether another run wrote since (then a record's SCHEMA line is written again).
        self._regular = False
        self._lockable = True  # (False on a file system that takes no lock)
        self._end: int | None = None

    def open(self) -> None:
        """Open (create) the file now, so a path that cannot be written is found at start-up.

        Raises DeadLetterError naming the path and why.
        """
        if self._fd is not None:
            return
        try:
            self._created = not self.path.exists()
            self._fd = open_owner_only(self.path)
            self._regular = stat.S_ISREG(os.fstat(self._fd).st_mode)
        except OSError as exc:
            raise DeadLetterError(self.path, exc, self.described_as) from None

    @contextlib.contextmanager
    def _shared(self) -> Iterator[int]:
        """The open file, locked against the other runs that write to it (a regular file), and
        opened again if another run removed it (one that created it and wrote nothing)."""
        self.open()
        assert self._fd is not None
        if not self._regular or fcntl is None or not self._lockable:
            yield self._fd
            return
        locked = self._lock(self._fd)
        try:
            if os.fstat(self._fd).st_nlink == 0:  # removed since: the path is a new file
                if locked:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None
                self.open()
                assert self._fd is not None
                locked = self._lockable and self._lock(self._fd)
                self._schemas_written.clear()
        except OSError as exc:
            self._failed = True
            raise DeadLetterError(self.path, exc, self.described_as) from None
        try:
            yield self._fd
        finally:
            if locked:
                with contextlib.suppress(OSError):
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _lock(self, fd: int) -> bool:
        """Take the file's lock; False when it cannot be had: a file system without locks
        (NFS without lockd, some FUSE mounts), or another holder past LOCK_WAIT_SECONDS (a
        user's `flock`, a run stopped mid-write). Either way this run's writes go on unlocked
        from then on, as before runs sharing the file were kept apart, rather than fail or
        hang the run."""
        assert fcntl is not None
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._lockable = False  # (held for good: the next writes do not wait)
                    return False
                time.sleep(0.002)
            except OSError:
                self._lockable = False
                return False

    def _written_by_another(self, fd: int) -> bool:
        """True when the file changed since this run's last line (another run appended)."""
        if not self._regular or self._end is None:
            return False
        try:
            return os.fstat(fd).st_size != self._end
        except OSError:
            return True

    def _note_end(self, fd: int) -> None:
        if self._regular:
            with contextlib.suppress(OSError):
                self._end = os.fstat(fd).st_size

    def is_file(self, stat: os.stat_result) -> bool:
        """True when `stat` is of this very file (e.g. the run's input is its own output)."""
        try:
            mine = os.stat(self.path)
        except OSError:
            return False
        return (mine.st_dev, mine.st_ino) == (stat.st_dev, stat.st_ino)

    def _write(self, fd: int, message: Mapping[str, Any]) -> None:
        # The whole line or none of it (a full disk leaves no part of one to break a replay),
        # written at once: a crash later in the run must not lose what was rejected.
        line = without_secrets(_dumps(message)) + "\n"
        try:
            append_line(fd, line.encode("utf-8", "surrogateescape"))
        except OSError as exc:
            self._failed = True
            raise DeadLetterError(self.path, exc, self.described_as) from None
        self.lines_written += 1

    def record(
        self,
        *,
        stream: str,
        schema: Mapping[str, Any] | None,
        key_properties: Sequence[str],
        record: Mapping[str, Any],
        stage: str,
        reason: str,
        server_message: str | None = None,
        event_id: str | None = None,
        record_json: bytes | None = None,
    ) -> None:
        """Dead-letter one record of a stream: `record_json` (the record's JSON as it arrived)
        written as it is when given, else `record`; the key is read from `record`."""
        missing = [k for k in key_properties if k not in record]
        if missing and record_json is not None:  # (tap metadata, taken out before mapping)
            record = {**record, **properties_in_json(record_json, missing)}
        key = {k: record.get(k) for k in key_properties} or None
        with self._shared() as fd:
            if self._written_by_another(fd):  # its lines may hold a SCHEMA of this stream
                self._schemas_written.clear()
            if schema is not None and self._schema_changed(stream, schema, key_properties):
                keys = list(key_properties)
                self._write(
                    fd,
                    {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": keys},
                )
                self._schemas_written[stream] = (schema, keys)
            self._write(
                fd,
                {
                    "type": "RECORD",
                    "stream": stream,
                    "record": record if record_json is None else _raw(record_json),
                    "dead_letter": {
                        "stage": stage,
                        "reason": reason,
                        "server_message": server_message,
                        "key": key,
                        "event_id": event_id,
                        "rejected_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                    },
                },
            )
            self._note_end(fd)

    def _schema_changed(
        self, stream: str, schema: Mapping[str, Any], key_properties: Sequence[str]
    ) -> bool:
        """True unless the stream's last SCHEMA line in the file is this one."""
        written = self._schemas_written.get(stream)
        if written is None:
            return True
        last_schema, last_keys = written
        if last_schema is not schema:  # (the same object: the usual case)
            if last_schema != schema:
                return True
            self._schemas_written[stream] = (schema, last_keys)  # (compared once, not again)
        return last_keys != list(key_properties)

    def line(self, *, line_number: int, raw: str, stage: str, reason: str) -> None:
        """Dead-letter an input line that was not a usable Singer message."""
        if len(raw) > MAX_RAW_LINE_CHARS:
            reason += f" (line cut to its first {MAX_RAW_LINE_CHARS} characters here)"
            raw = raw[:MAX_RAW_LINE_CHARS]
        with self._shared() as fd:
            if self._written_by_another(fd):
                self._schemas_written.clear()
            self._write(
                fd,
                {
                    "type": DEAD_LETTER_TYPE,
                    "dead_letter": {
                        "stage": stage,
                        "reason": reason,
                        "line_number": line_number,
                        "raw_line": raw,
                        "rejected_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                    },
                },
            )
            self._note_end(fd)

    def close(self) -> None:
        """Close the file if it was opened; one this run created and left empty goes again,
        unless another run wrote to it meanwhile (a run that shares the path)."""
        if self._fd is None:
            return
        empty_mine = None  # (where no lock is taken: the file as this run leaves it)
        if self._created and self.lines_written == 0:
            if self._regular and fcntl is not None and self._lockable:
                with contextlib.suppress(OSError, DeadLetterError), self._shared() as fd:
                    if self._empty_at_its_path(fd):
                        self.path.unlink()  # (under the lock: no run writes to it meanwhile)
            else:  # (Windows removes no open file: closed first, then removed)
                with contextlib.suppress(OSError):
                    if self._empty_at_its_path(self._fd):
                        empty_mine = os.fstat(self._fd)
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.close(fd)
        except OSError as exc:
            if not self._failed:  # (a write that failed was reported when it failed)
                raise DeadLetterError(self.path, exc, self.described_as) from None
        if empty_mine is not None:
            with contextlib.suppress(OSError):
                found = os.stat(self.path)
                same = (found.st_dev, found.st_ino) == (empty_mine.st_dev, empty_mine.st_ino)
                if same and not found.st_size:
                    self.path.unlink()

    def _empty_at_its_path(self, fd: int) -> bool:
        """True when the open file is still the one at the path, and empty."""
        mine = os.fstat(fd)
        if not stat.S_ISREG(mine.st_mode) or mine.st_size:
            return False
        found = os.stat(self.path)
        return (found.st_dev, found.st_ino) == (mine.st_dev, mine.st_ino)


def input_stat(file_input: IO[Any] | None) -> os.stat_result | None:
    """What the run reads from (a file or stdin), to tell whether it is the dead-letter file."""
    try:
        return os.fstat((file_input or sys.stdin).fileno())
    except (OSError, ValueError, AttributeError):  # no real file behind it (a test's StringIO)
        return None
