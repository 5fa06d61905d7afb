"""Frames between the main process and a worker (parallel/frames.py), over real pipes."""

from __future__ import annotations

import contextlib
import os
import threading
import time

import pytest

from target_openai_capi.parallel import frames
from target_openai_capi.parallel.frames import RESULTS, read_frame_within, write_frame


@pytest.fixture
def pipe():
    reader, writer = os.pipe()
    yield reader, writer
    for fd in (reader, writer):
        with contextlib.suppress(OSError):  # (a test closed it)
            os.close(fd)


def test_a_frame_is_read_whole_and_nothing_after_it(pipe):
    reader, writer = pipe
    write_frame(writer, RESULTS, b"first", 7)
    write_frame(writer, RESULTS, b"second", 8)
    assert read_frame_within(reader, 5) == (RESULTS, b"first", 7)
    assert read_frame_within(reader, 5) == (RESULTS, b"second", 8)


def test_a_frame_written_in_parts_is_waited_for(pipe):
    reader, writer = pipe
    payload = os.urandom(300_000)  # (more than a pipe holds: written while it is read)

    def write_slowly() -> None:
        time.sleep(0.2)
        write_frame(writer, RESULTS, payload, 3)

    thread = threading.Thread(target=write_slowly)
    thread.start()
    assert read_frame_within(reader, 10) == (RESULTS, payload, 3)
    thread.join()


def test_no_frame_within_the_deadline_is_a_timeout(pipe):
    reader, writer = pipe
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        read_frame_within(reader, 0.3)
    assert 0.25 < time.monotonic() - started < 5
    os.write(writer, frames._HEADER.pack(RESULTS, 1, 10) + b"12345")  # half a payload
    with pytest.raises(TimeoutError):
        read_frame_within(reader, 0.3)


def test_the_end_of_input_cut_frames_and_absurd_lengths_are_no_frame(pipe):
    reader, writer = pipe
    os.write(writer, frames._HEADER.pack(RESULTS, 1, frames.MAX_ANSWER_BYTES + 1))
    assert read_frame_within(reader, 5) is None  # (never allocated)
    os.write(writer, frames._HEADER.pack(RESULTS, 2, 10) + b"12345")
    os.close(writer)
    assert read_frame_within(reader, 5) is None  # cut short by the end of input
    assert read_frame_within(reader, 5) is None  # the end itself
