"""A worker process: prepares the RECORD lines the main process sends it (prepared.py).

On Linux the main process forks its workers (pool.py; `serve_forked` below), elsewhere it starts
each as `python -m target_openai_capi.parallel.worker` (`main`). Either way a worker talks to the
main process over two pipes only, in frames (frames.py): a plan for a stream, then chunks of
lines, each answered with one result per line, in order. It writes no file, sends nothing (a
spawned one has no API key in its environment; a forked one shares the main process's memory),
and ends at the end of its input (when the main process is done, or gone). It ignores SIGINT
and SIGTERM: the main process decides what a signal means for the run, and closes the pipe when
it is done.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import sys
import traceback
import warnings
from typing import BinaryIO, NoReturn

from target_openai_capi.main_thread_signals import TERMINATION_SIGNALS

# Plans (one per stream and SCHEMA) whose compiled objects are frozen out of the collector's
# walks; later ones are left to it, so that a replaced one can be freed.
MAX_FROZEN_PLANS = 16


def _ignore_termination_signals() -> None:
    """The main process decides what SIGINT and SIGTERM mean (termination.py): ignored here."""
    for signum in TERMINATION_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def main() -> None:
    """Serve the main process until its pipe closes (started as `python -m`)."""
    _ignore_termination_signals()
    # The frames go over file descriptors 0 and 1; anything printed goes to stderr instead.
    reader = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    writer = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(reader, writer)


def serve_forked(reader_fd: int, writer_fd: int) -> NoReturn:
    """The worker's side of pool.py's os.fork(): serve the main process, then leave at once.

    The child has a copy of the main process: its threads are gone (a lock one held stays held),
    and its open files, sockets and unflushed buffers (STATE on stdout) are shared. So the child
    closes every descriptor but its two pipes, points stdin at /dev/null and stdout at stderr,
    takes no lock of the main process (it logs nothing, imports nothing), and ends by os._exit:
    no buffer is flushed and no exit handler runs twice.
    """
    code = 1
    try:
        os.setsid()  # out of the main process's group, as a spawned worker is
        _ignore_termination_signals()
        # The main process's signal wakeup pipe (main_thread_signals.py) is closed below, and
        # its descriptor number may be taken again (by a pipe to the main process): a signal
        # must never write a byte there.
        signal.set_wakeup_fd(-1)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, TERMINATION_SIGNALS)  # (held for the fork)
        gc.freeze()  # the main process's objects: never walked, never finalised here
        # A warning would go through the main process's handlers (Meltano turns warnings on,
        # the SDK logs them), whose locks may be held: a worker warns of nothing.
        warnings.simplefilter("ignore")
        _keep_only_descriptors(reader_fd, writer_fd)
        with os.fdopen(reader_fd, "rb", buffering=1 << 16) as reader:
            serve(reader, writer_fd)
        code = 0
    except BrokenPipeError:
        code = 0  # the main process is gone or done
    except BaseException:
        with contextlib.suppress(BaseException):  # (not through sys.stderr: its lock may be held)
            os.write(2, traceback.format_exc().encode("utf-8", "replace"))
    finally:
        os._exit(code)


def _keep_only_descriptors(reader_fd: int, writer_fd: int) -> None:
    """Close every inherited descriptor but the two pipes and stderr (another worker's pipe
    held open here would keep that worker from seeing the end of its input)."""
    keep = sorted({reader_fd, writer_fd})
    if keep[0] <= 2:  # (the main process started without stdin or stdout: a pipe got 0 or 1)
        raise OSError(f"a worker's pipe is descriptor {keep[0]}")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)  # not the main process's input
    os.dup2(2, 1)  # not its output: STATE goes there
    os.close(null)
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: every descriptor number there may be
        os.closerange(3, keep[0])
        os.closerange(keep[0] + 1, keep[-1])
        os.closerange(keep[-1] + 1, os.sysconf("SC_OPEN_MAX"))
        return
    for fd in open_fds:
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def serve(reader: BinaryIO, writer: int) -> None:
    """Answer the frames read from `reader` on `writer` until `reader` ends."""
    from target_openai_capi.parallel.frames import (
        CHUNK,
        PLAN,
        READY,
        RESULTS,
        read_frame,
        write_frame,
    )
    from target_openai_capi.parallel.prepared import RecordPreparer
    from target_openai_capi.reading.line_chunks import split_lines

    preparer = RecordPreparer()
    gc.freeze()  # what the imports built lives as long as the process
    plans_frozen = 0
    write_frame(writer, READY, b"")
    while True:
        frame = read_frame(reader)
        if frame is None:
            return
        kind, payload, tag = frame
        if kind == PLAN:
            stream, version, spec = pickle.loads(payload)  # noqa: S301 (our own main process)
            try:
                preparer.set_plan(stream, version, spec)
            except Exception:  # (it compiled in the main process) its records stay there
                preparer.set_plan(stream, version, None)
            if plans_frozen < MAX_FROZEN_PLANS:
                # The compiled plan too: the collector need not walk it again and again. Not
                # past the first few: a frozen plan a later SCHEMA replaces is never freed (a
                # stream whose SCHEMA changed every hundred records grew each worker by
                # ~60 KiB a change).
                gc.freeze()
                plans_frozen += 1
        elif kind == CHUNK:
            results = preparer.prepare_all(split_lines(payload))
            answer = pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)
            write_frame(writer, RESULTS, answer, tag)  # (the chunk's tag: whose answers)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        main()
