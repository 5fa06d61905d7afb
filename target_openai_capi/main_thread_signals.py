"""SIGINT and SIGTERM end a run's wait for input at once, whenever they arrive.

Python runs a signal's handler in the main thread, between two of its instructions. A signal
that arrives just before the main thread enters its read of the input (after the interpreter
last looked for signals, before the system call) waits with the read for the tap's next line:
with a quiet tap whose pipe stays open, never. A suite run under load caught this about once in
a hundred SIGTERMs sent right after a message: the run never stopped. `signal_wakeup` closes
that gap: the C-level handler also writes a byte to a pipe (`signal.set_wakeup_fd`), and the
reader waits on the input and that pipe together (reading/line_chunks.py), so its wait ends and
the handler runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def signal_wakeup() -> Iterator[int | None]:
    """While inside: a descriptor that turns readable whenever a signal with a Python handler
    arrives (empty it with `drain`). None where there can be none: off the main thread, or off
    POSIX (a wait there is as before)."""
    if os.name != "posix" or threading.current_thread() is not threading.main_thread():
        yield None
        return
    read_end, write_end = os.pipe()
    try:
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)  # (set_wakeup_fd requires it)
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        try:
            yield read_end
        finally:
            signal.set_wakeup_fd(previous)
    finally:
        os.close(read_end)
        os.close(write_end)


def drain(wakeup: int) -> None:
    """Empty the wakeup pipe (what it holds says only that signals came: the handler runs
    anyway, at the main thread's next instruction)."""
    with contextlib.suppress(OSError):  # BlockingIOError: empty
        while os.read(wakeup, 512):
            pass
