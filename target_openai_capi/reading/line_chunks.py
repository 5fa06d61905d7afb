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
# A line longer than this is no record an event comes from (a broken tap, `--input /dev/zero`):
# read no further than a read past the limit, it is skipped to its newline and stands in the
# input as an overlong-line mark with its length and first bytes (a line whose end came in that
# read stays whole); the reader rejects either (`overlong_line`).
MAX_LINE_BYTES = 16 * 1024 * 1024
_KEPT_BYTES = 65_536  # of an overlong line, kept for its dead letter
_OVERLONG = b"\x00overlong line of "  # (no JSON line starts with a NUL)
# Linux lets a pipe hold more: the tap writes on while a chunk is worked on.
_PIPE_BYTES = 1 << 20
_UTF8_BOM = b"\xef\xbb\xbf"


def split_lines(segment: bytes) -> list[bytes]:
    """The lines of a chunk that ends with a newline, each without it (what follows the last
    newline, nothing, is no line). `find` looks for each newline with memchr, where
    `split(b"\n")` compares byte by byte: half the time on 2 KiB lines."""
    lines: list[bytes] = []
    append, find = lines.append, segment.find
    start, end = 0, find(b"\n")
    while end >= 0:
        append(segment[start:end])
        start, end = end + 1, find(b"\n", end + 1)
    return lines


def overlong_mark(size: int, line_start: bytes) -> bytes:
    """What stands for a line of `size` bytes over MAX_LINE_BYTES that begins with
    `line_start`: its size and first bytes (`overlong_line` reads it)."""
    return _OVERLONG + str(size).encode() + b":" + line_start[:_KEPT_BYTES]


def overlong_line(line: str | bytes) -> tuple[int, bytes | str] | None:
    """For a line over MAX_LINE_BYTES, or the mark LineChunks puts where it skipped one (it
    may not see where a line ends in time to): (its length in bytes, its first bytes); None
    for any other line."""
    if isinstance(line, bytes) and line.startswith(_OVERLONG):
        size, _, head = line[len(_OVERLONG) :].partition(b":")
        if size.isdigit() and int(size) > MAX_LINE_BYTES:  # (else input that looks like it)
            return int(size), head
    if len(line) > MAX_LINE_BYTES:  # (a str's characters: each at least one byte)
        length = len(line.encode(errors="surrogatepass") if isinstance(line, str) else line)
        return length, line[:_KEPT_BYTES]
    return None


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
        if b"\n" in self._rest and not readable(self._fd):  # (left after an overlong line)
            return self._cut(self._rest)
        parts: list[bytes | memoryview] = [self._rest] if self._rest else []
        size = len(self._rest)
        whole_line = b"\n" in self._rest
        while True:
            if not whole_line and size > MAX_LINE_BYTES:  # (parts are one line, unfinished)
                return self._bom_off(self._skip_line(b"".join(parts)[:_KEPT_BYTES], size))
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
        return self._cut(b"".join(parts))  # (the last read holds no newline: a long line)

    def _cut(self, buffer: bytes) -> bytes:
        """The buffer's whole lines as the chunk; what follows its last newline waits."""
        end = buffer.rfind(b"\n") + 1
        self._rest = buffer[end:]
        return self._bom_off(buffer[:end])

    def _skip_line(self, head: bytes, size: int) -> bytes:
        """Read on to the end of a line over MAX_LINE_BYTES, keeping none of it but `head`;
        the mark that stands for it, as a line. `size`: its bytes read so far."""
        while True:
            self._wait_for_input()
            data = os.read(self._fd, CHUNK_BYTES)
            if not data:
                self.ended = True
                self._rest = b""
                break
            end = data.find(b"\n")
            if end >= 0:
                size += end
                self._rest = data[end + 1 :]
                break
            size += len(data)
        return overlong_mark(size, head) + b"\n"

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
