"""Frames between the main process and a worker: a kind byte, a tag, a length, the payload.

A CHUNK's tag numbers it; the RESULTS for it carry the same tag, so the main process takes
answers only for the chunk it asks for (pool.py `collect`)."""

from __future__ import annotations

import os
import select
import struct
import time
from typing import BinaryIO

_HEADER = struct.Struct("<BQQ")  # kind, tag, payload length

# main -> worker
PLAN = 1  # pickle of (stream, version, PlanSpec | None)
CHUNK = 2  # whole lines, as read (reading/line_chunks.py)
# worker -> main
READY = 3  # the worker has imported what it needs
RESULTS = 4  # pickle of one PreparedRecord or None per line of a chunk, in order


def write_frame(fd: int, kind: int, payload: bytes, tag: int = 0) -> None:
    """Write one frame to a file descriptor, whole."""
    for part in (_HEADER.pack(kind, tag, len(payload)), payload):
        view = memoryview(part)
        while view:
            written = os.write(fd, view)
            view = view[written:]


def read_frame(source: BinaryIO) -> tuple[int, bytes, int] | None:
    """The next frame as (kind, payload, tag), or None at the end of input (or a frame cut
    short)."""
    header = source.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    kind, tag, length = _HEADER.unpack(header)
    payload = source.read(length)
    if len(payload) < length:
        return None
    return kind, payload, tag


# A worker's answers to a chunk are about the chunk's size (a megabyte, or one longer line).
MAX_ANSWER_BYTES = 1 << 32


def read_frame_within(fd: int, seconds: float) -> tuple[int, bytes, int] | None:
    """The next frame from a file descriptor, as read_frame gives it; TimeoutError when it is
    not there whole within `seconds`; None at the end of input, or for a frame cut short or
    longer than MAX_ANSWER_BYTES. Read without a buffer, so nothing after the frame is taken:
    every frame from `fd` must be read this way."""
    deadline = time.monotonic() + seconds
    header = _read_exactly(fd, _HEADER.size, deadline)
    if header is None:
        return None
    kind, tag, length = _HEADER.unpack(header)
    if length > MAX_ANSWER_BYTES:  # (not a frame a worker writes: a broken stream)
        return None
    payload = _read_exactly(fd, length, deadline)
    if payload is None:
        return None
    return kind, payload, tag


def _read_exactly(fd: int, size: int, deadline: float) -> bytes | None:
    """`size` bytes from `fd` by `deadline` (time.monotonic), else TimeoutError; None when the
    input ends first."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError
        count = os.readv(fd, [view[got:]])
        if count == 0:
            return None
        got += count
    return bytes(buffer)
