"""SIGINT and SIGTERM reach the main thread, and end its wait for input at once (POSIX).

Python runs a signal's handler in the main thread, between two of its instructions. Two ways a
signal could be held up while the main thread waits:
- It arrives just before the main thread enters its read of the input: after the interpreter
  last looked for signals, before the system call. The read then waits for input, and the
  handler with it: with a quiet tap whose pipe stays open, for good. A suite run under load
  caught this about once in a hundred SIGTERMs sent right after a message. `signal_wakeup`
  closes that gap for the wait on input: the C-level handler also writes a byte to a pipe
  (`signal.set_wakeup_fd`), and the reader waits on the input and that pipe together
  (reading/line_chunks.py), so its wait ends and the handler runs. (Other waits of the main
  thread end by themselves: a worker's answer, ~0.1 s; a request, its timeout.)
- The kernel hands a signal sent to the process to any one thread that does not block it, and
  only that thread's system call is interrupted. Every thread the target starts (uploads,
  worker-pipe writers, the quiet-input watcher) is started inside
  `termination_signals_blocked()`: it inherits a mask that blocks these signals for good, so
  the kernel hands them to the main thread, whose wait (a request in flight, a join) they
  interrupt.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

# The signals termination.py decides on; every thread but the main one blocks them.
TERMINATION_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def termination_signals_blocked() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread while inside (a thread started here keeps them
    blocked for good); restore the mask after. A signal that arrives meanwhile waits, and is
    handled once the block ends. Where threads have no signal mask (not POSIX), nothing."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, TERMINATION_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


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
