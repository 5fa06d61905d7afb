"""When a STATE message may be released: only once every record before it is settled."""

from __future__ import annotations

import sys
from collections.abc import Hashable
from typing import TextIO

import msgspec
import simplejson

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
        self._pending_state: tuple[int, StateValue] | None = None

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
        """Remember a STATE; it covers every record numbered before now."""
        # Only the latest STATE matters: a later one supersedes an earlier one.
        self._pending_state = (self._next_seq, state)

    def low_water_mark(self) -> int:
        """Sequence number of the oldest unsettled record (or the next one, if none)."""
        return min(self._holds.values(), default=self._next_seq)

    def releasable_state(self) -> StateValue | None:
        """The pending STATE if every record before it is settled (and forget it)."""
        if self._pending_state is None:
            return None
        covers, state = self._pending_state
        if self.low_water_mark() < covers:
            return None
        self._pending_state = None
        return state


class StateWriter:
    """Writes STATE lines exactly as the tap wrote them, skipping a repeat of the last line.

    The reader keeps a STATE's value as its JSON text (msgspec.Raw): numbers of any size or
    precision go out as they came in (the SDK's json.dumps fails on Decimals).
    """

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out  # None: sys.stdout as it is at each write (tests redirect it)
        self._last_line: str | None = None

    def write(self, state: StateValue) -> None:
        """Write one STATE value as a line, unless it repeats the last one."""
        if isinstance(state, msgspec.Raw):
            line = bytes(state).decode("utf-8", errors="surrogateescape")
        else:
            line = simplejson.dumps(state, use_decimal=True, default=str)
        if line != self._last_line:
            self._last_line = line
            out = self._out or sys.stdout
            out.write(line + "\n")
            out.flush()
