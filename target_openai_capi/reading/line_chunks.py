"""Input read in chunks of whole lines, straight from a file descriptor.

The reader hands chunks to worker processes (parallel/), so it reads what the tap has written
so far, up to a size, and cuts it after the last newline: the rest waits for the next read. It
never waits for more input while it holds whole lines (a slow tap's STATE is not held back),
and it splits lines exactly as iterating a binary file does (on b"\\n" only). Given the
main_thread_signals.py wakeup, a wait for input also ends when a signal arrives, so its handler
runs at once, however late before the wait the signal came.
"""

from __future__ import annotations

import os
import select
import sys

from target_openai_capi.main_thread_signals import drain

# Up to this much is read at once (a pipe gives at most what it holds, 64 KiB by default).
CHUNK_BYTES = 1 << 20
# Linux lets a pipe hold more: the tap writes on while a chunk is worked on.
_PIPE_BYTES = 1 << 20
_UTF8_BOM = b"\xef\xbb\xbf"


def split_lines(segment: bytes) -> list[bytes]:
    """The lines of a chunk that ends with a newline, each without it."""
    lines = segment.split(b"\n")
    lines.pop()  # what follows the last newline: nothing
    return lines


def enlarge_pipe(fd: int) -> None:
    """Let a pipe hold a whole chunk (Linux; elsewhere, or for a file, nothing changes)."""
    if sys.platform == "linux":
        try:
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        except (OSError, AttributeError):
            pass  # not a pipe, or not allowed: the default size works too


def readable(fd: int, wait: float = 0.0) -> bool:
    """True when reading `fd` would not wait (input is there, or its end), within `wait`
    seconds."""
    ready, _, _ = select.select([fd], [], [], wait)
    return bool(ready)


class LineChunks:
    """Chunks of whole lines from `fd`; the first line loses a UTF-8 byte order mark."""

    def __init__(self, fd: int, wakeup: int | None = None) -> None:
        self._fd = fd
        self._wakeup = wakeup  # main_thread_signals.signal_wakeup's descriptor, or None
        self._rest = b""
        self._first = True
        self.ended = False
        enlarge_pipe(fd)

    def read(self) -> bytes | None:
        """The next chunk of whole lines (each ending with a newline; the input's last line is
        given one), waiting for input only when none is there; None at the end of input."""
        if self.ended:
            return None
        parts: list[bytes | memoryview] = [self._rest] if self._rest else []
        size = len(self._rest)
        whole_line = False
        while True:
            self._wait_for_input()
            data = os.read(self._fd, CHUNK_BYTES)
            if not data:
                self.ended = True
                self._rest = b""
                if size == 0:
                    return None
                buffer = b"".join(parts)
                return self._bom_off(buffer if buffer.endswith(b"\n") else buffer + b"\n")
            parts.append(data)
            size += len(data)
            whole_line = whole_line or b"\n" in data
            # Whole lines in hand: read on only while more is there at once and room is left.
            if whole_line and (size >= CHUNK_BYTES or not readable(self._fd)):
                break
        # The chunk ends at the last newline; what follows waits for the next. Copied once (a
        # chunk is a megabyte): the last read is cut by a view, and one read of whole lines
        # alone is the chunk itself.
        last = data
        cut = last.rfind(b"\n") + 1
        if cut:
            self._rest = last[cut:]
            if len(parts) == 1 and cut == len(last):
                return self._bom_off(last)
            parts[-1] = memoryview(last)[:cut]
            return self._bom_off(b"".join(parts))
        buffer = b"".join(parts)  # (the last read holds no newline: a line longer than it)
        end = buffer.rfind(b"\n") + 1
        self._rest = buffer[end:]
        return self._bom_off(buffer[:end])

    def _wait_for_input(self) -> None:
        """Return once reading would not wait; a signal meanwhile runs its handler (which may
        end the run) and the wait goes on."""
        if self._wakeup is None:
            return
        while True:
            ready, _, _ = select.select([self._fd, self._wakeup], [], [])
            if self._wakeup in ready:
                drain(self._wakeup)
            if self._fd in ready:
                return

    def _bom_off(self, chunk: bytes) -> bytes:
        if self._first:
            self._first = False
            return chunk.removeprefix(_UTF8_BOM)
        return chunk
