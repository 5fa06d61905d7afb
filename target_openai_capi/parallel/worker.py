"""A worker process: prepares the RECORD lines the main process sends it (prepared.py).

    python -m target_openai_capi.parallel.worker

It talks to the main process over its standard input and output only, in frames (frames.py): a
plan for a stream, then chunks of lines, each answered with one result per line, in order. It
never sees the API key, writes no file, sends nothing, and ends at the end of its input (when the
main process is done, or gone). It ignores SIGINT and SIGTERM: the main process decides what a
signal means for the run, and closes the pipe when it is done.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import sys


def main() -> None:
    """Serve the main process until its pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The frames go over file descriptors 0 and 1; anything printed goes to stderr instead.
    reader = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    writer = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

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
    write_frame(writer, READY, b"")
    while True:
        frame = read_frame(reader)
        if frame is None:
            return
        kind, payload = frame
        if kind == PLAN:
            stream, version, spec = pickle.loads(payload)  # noqa: S301 (our own main process)
            try:
                preparer.set_plan(stream, version, spec)
            except Exception:  # (it compiled in the main process) its records stay there
                preparer.set_plan(stream, version, None)
            gc.freeze()  # the compiled plan too: the collector need not walk it again and again
        elif kind == CHUNK:
            results = preparer.prepare_all(split_lines(payload))
            write_frame(writer, RESULTS, pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        main()
