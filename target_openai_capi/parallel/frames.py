"""Frames between the main process and a worker: a kind byte, a tag, a length, the payload.

A CHUNK's tag numbers it; the RESULTS for it carry the same tag, so the main process takes
answers only for the chunk it asks for (pool.py `collect`)."""

from __future__ import annotations

import os
import struct
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
