"""When a STATE message may be released: only once every record before it is settled."""

from __future__ import annotations

import io
import os
import select
import sys
from collections import deque
from collections.abc import Hashable
from typing import TextIO

import msgspec
import simplejson

# STATEs kept waiting for their records at most; past it, every other one is dropped (the
# latest kept). A run reads ahead of its oldest unsettled record by a few batches at most (the
# uploader blocks at its in-flight limit), so only a tap writing STATE after nearly every record
# of many streams comes near it.
MAX_PENDING_STATES = 10_000
MAX_PENDING_BYTES = 64 * 1024 * 1024  # (and at most this much of their JSON)
# A STATE message's value, kept as the tap wrote it (the reader hands over its JSON text).
StateValue = object


class Checkpoints:
    """Tracks records by arrival order and releases STATE past settled records only.

    Every record gets a sequence number. A record is settled once it is sent, skipped or
    dead-lettered. Records waiting in a batch (still filling, or in flight) hold back the
    "low-water mark": the sequence number of the oldest unsettled record. A STATE that
    arrived after record N may be released once the low-water mark is past N.
    """

    def __init__(self) -> None:
        self._next_seq = 0
        self._holds: dict[Hashable, int] = {}  # batch key -> sequence of its oldest record
        # STATEs not yet released, oldest first: (records it covers, the STATE, its bytes).
        self._pending: deque[tuple[int, StateValue, int]] = deque()
        self._pending_bytes = 0

    @property
    def numbered(self) -> int:
        """How many records have been numbered so far."""
        return self._next_seq

    def next_seq(self) -> int:
        """Number the next record."""
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def hold(self, key: Hashable, oldest_seq: int) -> None:
        """A batch now holds records from `oldest_seq` on."""
        self._holds[key] = oldest_seq

    def release(self, key: Hashable) -> None:
        """The batch's records are all settled."""
        self._holds.pop(key, None)

    def state_received(self, state: StateValue) -> None:
        """Remember a STATE; it covers every record numbered before now.

        Earlier STATEs are kept too (MAX_PENDING_STATES, MAX_PENDING_BYTES): with batches in flight
        the latest one is seldom releasable, while an earlier one is once its records are
        settled. Keeping only the latest left long runs without a STATE for thousands of
        records (a run stopped then resends them all)."""
        size = len(state) if isinstance(state, msgspec.Raw) else 0
        if self._pending and self._pending[-1][0] == self._next_seq:
            self._pending_bytes -= self._pending.pop()[2]  # no record between: it supersedes
        self._pending.append((self._next_seq, state, size))
        self._pending_bytes += size
        while len(self._pending) > 1 and (
            len(self._pending) > MAX_PENDING_STATES or self._pending_bytes > MAX_PENDING_BYTES
        ):
            # Thin out every other one, the latest kept: the bookmark moves in larger steps.
            self._pending = deque(reversed(list(self._pending)[::-2]))
            self._pending_bytes = sum(entry[2] for entry in self._pending)

    def low_water_mark(self) -> int:
        """Sequence number of the oldest unsettled record (or the next one, if none)."""
        return min(self._holds.values(), default=self._next_seq)

    def releasable_state(self) -> StateValue | None:
        """The latest pending STATE whose records are all settled (it and those before it
        are forgotten), or None."""
        if not self._pending:
            return None
        mark = self.low_water_mark()
        state = None
        while self._pending and self._pending[0][0] <= mark:
            _, state, size = self._pending.popleft()
            self._pending_bytes -= size
        return state


class StateWriter:
    """Writes STATE lines exactly as the tap wrote them, skipping a repeat of the last line.

    The reader keeps a STATE's value as its JSON text (msgspec.Raw): numbers of any size or
    precision go out as they came in (the SDK's json.dumps fails on Decimals). Its bytes go to
    standard output's descriptor as they are (UTF-8, whatever the locale's encoding, which a
    text write would use), each line whole (a descriptor left non-blocking by whatever started
    the run takes part of a line, or none, while its reader is slow).
    """

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out  # None: sys.stdout as it is at each write (tests redirect it)
        self._last_line: bytes | None = None

    @property
    def wrote(self) -> bool:
        """Whether a STATE line was written in this run."""
        return self._last_line is not None

    def write(self, state: StateValue) -> None:
        """Write one STATE value as a line, unless it repeats the last one."""
        if isinstance(state, msgspec.Raw):
            line = bytes(state)
        else:
            line = simplejson.dumps(state, use_decimal=True, default=str).encode()
        if line != self._last_line:
            self._last_line = line
            try:
                write_line(self._out or sys.stdout, line)
            except BrokenPipeError:
                _quiet_stdout()
                raise StateOutputClosed(
                    "The STATE output (standard output) was closed by what reads it (Meltano, "
                    "a pipe that ended): no STATE can be written from here on"
                ) from None
            except OSError as exc:  # a full disk, a file that cannot grow, an I/O error
                _quiet_stdout()
                raise StateOutputClosed(
                    f"STATE could not be written to standard output ({exc.strerror or exc}): "
                    "no STATE can be written from here on"
                ) from None


def write_line(out: TextIO, line: bytes) -> None:
    """`line` and a newline, whole, to `out`'s descriptor (after what its text layer holds);
    a stream without one (a test's StringIO) is written as text."""
    try:
        descriptor = out.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        out.write(line.decode("utf-8", errors="surrogateescape") + "\n")
        out.flush()
        return
    out.flush()
    rest = memoryview(line + b"\n")
    while rest:
        try:
            written = os.write(descriptor, rest)
        except BlockingIOError:  # (non-blocking, and its reader is behind: wait for room)
            select.select([], [descriptor], [])
            continue
        rest = rest[written:]


class StateOutputClosed(Exception):
    """Standard output, where STATE goes, was closed by its reader or cannot be written."""


def _quiet_stdout() -> None:
    """Point standard output at /dev/null, so that exiting does not fail to flush it again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # (no real stdout: a test's StringIO)
        pass
