"""The main process's side of the worker processes: start them, send plans and chunks, collect.

Correctness never rests on a worker. A worker answers each line with a result prepared under a
numbered version of its stream's plan; the reader uses it only while that version is still the
stream's current one (a SCHEMA in between may have changed the plan), and handles every other
line itself. A spawned worker gets chunks once it said it is ready (it imports for ~0.15 s; the
reader handles chunks itself meanwhile); a forked one at once (its READY comes first). A worker
that stops, answers nonsense, or does not answer in time (READY_SECONDS, ANSWER_SECONDS) breaks
the pool, whose chunks in flight the reader then handles itself, as it does every chunk after
(one warning says so). Each chunk's answers carry its tag
(frames.py): answers to any other chunk than the one asked for break the pool too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
import warnings
from typing import BinaryIO

from target_openai_capi.main_thread_signals import termination_signals_blocked
from target_openai_capi.parallel.frames import (
    CHUNK,
    PLAN,
    READY,
    RESULTS,
    read_frame_within,
    write_frame,
)
from target_openai_capi.parallel.prepared import PlanSpec, PreparedRecord
from target_openai_capi.parallel.worker import serve_forked
from target_openai_capi.reading.line_chunks import enlarge_pipe, readable

Results = list[PreparedRecord | None]
# A chunk sent to a worker: the worker, and the tag its answers will carry (frames.py).
Ticket = tuple["Worker", int]


# How long a worker that stopped answering is given to exit, for its exit code in the warning.
EXIT_WAIT_SECONDS = 0.5


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_worker_processes() -> int:
    """Worker processes when the setting is not given: one per core on a machine of at least two
    (the main process takes its share of a core too), at most four; none on one core."""
    cores = usable_cores()
    return 0 if cores < 2 else min(cores, 4)


# On Linux a worker is forked from the main process once its modules are imported: it starts
# in milliseconds, with nothing to import (~0.15 s of CPU each when started as a new Python), and
# shares the imported code's memory. Elsewhere (macOS: fork is unsafe with its system libraries),
# or beside threads that might hold a lock (fork_is_safe), it is a new Python process.
FORK_WORKERS = sys.platform == "linux"


class _ForkedProcess:
    """A worker forked from this process: what the pool uses of subprocess.Popen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def _exit_code_soon(process: subprocess.Popen[bytes] | _ForkedProcess) -> int | None:
    """The exit code of a worker that stopped answering, given the moment its exit takes
    (its pipe closes before it is reaped); None if it is still running after EXIT_WAIT_SECONDS."""
    deadline = time.monotonic() + EXIT_WAIT_SECONDS
    while (code := process.poll()) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return code


def _spawned(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int, BinaryIO]:
    """A new Python process running worker.py, with its pipe in and its pipe of answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "target_openai_capi.parallel.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        close_fds=True,
        # Not in the terminal's or orchestrator's process group: a Ctrl-C or a signal to the
        # group reaches the main process, which decides; a worker ends when its pipe closes.
        start_new_session=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    # (The pool keeps the Popen, which keeps the stdin object: its fd stays open until close.)
    return process, process.stdin.fileno(), process.stdout  # type: ignore[return-value]


def _forked() -> tuple[_ForkedProcess, int, BinaryIO]:
    """This process forked into a worker (worker.py `serve_forked`), with its two pipes."""
    to_worker, from_main = os.pipe()
    try:
        from_worker, to_main = os.pipe()
    except OSError:  # (out of descriptors: the first pipe is not left open)
        os.close(to_worker)
        os.close(from_main)
        raise
    # SIGINT and SIGTERM wait until the child ignores them: this process's handlers (deliver,
    # write STATE, exit) must never run in it. Here they are only held back for the fork.
    try:
        with termination_signals_blocked(), warnings.catch_warnings():
            # Python 3.12+ warns that a thread of this process may hold a lock the child then
            # waits for. The child takes none: it closes every inherited descriptor, imports
            # nothing, logs nothing, and leaves by os._exit (worker.py serve_forked).
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
            if pid == 0:  # the worker, at once: it never returns from here
                serve_forked(to_worker, to_main)
    except OSError:
        for fd in (to_worker, from_main, from_worker, to_main):
            os.close(fd)
        raise
    os.close(to_worker)
    os.close(to_main)
    return _ForkedProcess(pid), from_main, os.fdopen(from_worker, "rb")


# How long a forked worker may take to say it is ready (it needs ~10 ms) before it is taken
# for stuck and the run goes on without workers.
READY_SECONDS = 30.0
# How long a worker may take to answer a chunk (a megabyte of lines, or one longer line: ~0.1 s
# of work) before it is taken for stuck: the reader then handles the chunk, and every chunk
# after, itself. The main process would take as long as the worker on the same lines, so this
# only ends a wait for a worker that hangs on its own.
ANSWER_SECONDS = 300.0

# Threads a worker may be forked beside. The quiet-input watcher delivers only under the lock
# the main thread holds while it handles a SCHEMA (when workers start), so it holds nothing a
# worker needs. Any other thread (an upload thread inside OpenSSL, a library's own) might hold
# a lock the child would wait for forever: then workers are started as new Pythons instead.
_FORK_SAFE_THREADS = frozenset({"capi-quiet-input"})


def fork_is_safe() -> bool:
    """True when this process may fork a worker: on Linux, with no thread but this one and the
    quiet-input watcher."""
    here = threading.current_thread()
    return FORK_WORKERS and all(
        thread is here or thread.name in _FORK_SAFE_THREADS for thread in threading.enumerate()
    )


class Worker:
    """One worker process, with a thread that writes its frames (never the main thread: a
    worker blocked on a full pipe of answers must not block the main thread's writes). Forked
    when `env` is None (fork_is_safe), else a new Python with that environment."""

    def __init__(self, env: dict[str, str] | None) -> None:
        self.process: subprocess.Popen[bytes] | _ForkedProcess
        self.forked = env is None
        if env is None:
            self.process, self._to_worker, self.answers = _forked()
        else:
            self.process, self._to_worker, self.answers = _spawned(env)
        # A chunk in one write (not sixteen 64 KiB hand-overs, each waiting for this process's
        # writer thread to get the interpreter back); answers in one read.
        enlarge_pipe(self._to_worker)
        enlarge_pipe(self.answers.fileno())
        self.ready = False
        self.failed = False
        self._frames: queue.SimpleQueue[tuple[int, bytes, int] | None] = queue.SimpleQueue()
        self.failure = ""  # why it failed, where more than that it stopped
        self._writer = threading.Thread(target=self._write, name="capi-worker-writer", daemon=True)
        self._closed = False

    def begin(self) -> None:
        """Start writing frames (after every worker is forked: a fork copies no thread); not
        for a worker closed already (its pipe's number may be another file's by now)."""
        if self._closed:
            return
        with termination_signals_blocked():  # (they are the main thread's to handle)
            self._writer.start()

    def send(self, kind: int, payload: bytes, tag: int = 0) -> None:
        self._frames.put((kind, payload, tag))

    def _write(self) -> None:
        while True:
            frame = self._frames.get()
            if frame is None:
                break
            try:
                write_frame(self._to_worker, *frame)
            except OSError:  # the worker is gone: the main thread finds out when it reads
                self.failed = True
                break
        self._close_the_pipe_to_it()

    def _close_the_pipe_to_it(self) -> None:
        """Close the pipe this process writes the worker's frames to (its writer's end)."""
        with contextlib.suppress(OSError):
            if isinstance(self.process, subprocess.Popen):
                if self.process.stdin is not None:
                    self.process.stdin.close()
            else:
                os.close(self._to_worker)

    def poll_ready(self) -> bool:
        """True once the worker said it is ready (without waiting for it)."""
        if not self.ready and not self.failed and readable(self.answers.fileno()):
            frame = self._read(READY_SECONDS)
            if frame is None or isinstance(frame, TimeoutError) or frame[0] != READY:
                self.failed = True
            else:
                self.ready = True
        return self.ready and not self.failed

    def _read(self, seconds: float) -> tuple[int, bytes, int] | TimeoutError | None:
        """The worker's next frame; None when it ended (or its pipe failed); TimeoutError when
        none came within `seconds`. Never through a buffer: see read_frame_within."""
        try:
            return read_frame_within(self.answers.fileno(), seconds)
        except TimeoutError as exc:
            return exc
        except (OSError, ValueError):  # (ValueError: a descriptor select() cannot watch)
            return None

    def takes_chunks(self) -> bool:
        """True when a chunk sent now will be answered: the worker said it is ready, or it was
        forked (ready within milliseconds, with nothing to import: its READY comes first)."""
        return self.poll_ready() or (self.forked and not self.failed)

    def results(self, tag: int) -> Results | None:
        """The answers to the chunk sent with `tag`, which must be the oldest in flight, or
        None if the worker failed (or answered another chunk)."""
        if self.failed:
            return None
        if not self.ready:  # a forked worker, sent chunks before its READY was read
            # A child that is not ready within the deadline is taken for stuck: the chunk is
            # handled here instead.
            frame = self._read(READY_SECONDS)
            if frame is None or isinstance(frame, TimeoutError) or frame[0] != READY:
                self.failed = True  # (it "could not start")
                return None
            self.ready = True
        frame = self._read(ANSWER_SECONDS)
        if isinstance(frame, TimeoutError):
            self.failed = True
            self.failure = f"did not answer within {ANSWER_SECONDS:g} s"
            return None
        if frame is None or frame[0] != RESULTS:
            self.failed = True
            return None
        if frame[2] != tag:
            self.failed = True
            self.failure = "answered another chunk than the one asked for"
            return None
        try:
            results: Results = pickle.loads(frame[1])  # noqa: S301 (our own worker)
        except Exception:
            self.failed = True
            return None
        return results

    def close(self) -> None:
        """End the worker now: every answer the run needs has been read (a worker may still be
        importing, in a run shorter than its start-up). Its process is reaped and both its
        pipes closed, also when its writer never started (the pool gave up as it started)."""
        if self._closed:
            return
        self._closed = True
        self._frames.put(None)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self._writer.ident is not None:
            self._writer.join(timeout=5)  # (it closes the pipe to the worker)
        else:
            self._close_the_pipe_to_it()
        self.answers.close()


class WorkerPool:
    """Worker processes that prepare RECORD lines (prepared.py) for the reader."""

    def __init__(self, processes: int, logger: logging.Logger, secret: str = "") -> None:
        self.processes = processes
        self._logger = logger
        self._secret = secret
        self._workers: list[Worker] = []
        self._next = 0
        self._tag = 0  # the last chunk's tag
        self._version = 0
        # stream -> (version, spec): the plan every worker has, or will have before its next chunk.
        self._plans: dict[str, tuple[int, PlanSpec]] = {}
        self.broken = False
        self.started = False  # whether worker processes were started in this run
        self._wanted = False  # the reader reads chunks: worth starting workers once a plan is set

    @property
    def depth(self) -> int:
        """Chunks to keep in flight: two a worker, so none waits while the main thread works."""
        return 2 * max(1, len(self._workers))

    def start(self) -> None:
        """Start the worker processes as soon as a stream has a plan (they get ready while the
        main process reads on): a run whose records all stay in this process starts none."""
        self._wanted = True
        if self._workers or self.broken or self.processes < 1 or not self._plans:
            return
        env = None  # forked: see fork_is_safe
        if not fork_is_safe():
            env = {
                name: value
                for name, value in os.environ.items()
                if "API_KEY" not in name.upper() and not (self._secret and self._secret in value)
            }
        self.started = True
        try:
            for _ in range(self.processes):
                self._workers.append(Worker(env))
        except OSError as exc:
            self._break(f"could not start a worker process ({exc})")
            return
        finally:
            for worker in self._workers:
                worker.begin()
        for stream, (version, spec) in self._plans.items():
            self._send_plan(stream, version, spec)

    def set_plan(self, stream: str, spec: PlanSpec | None) -> None:
        """The stream's records are prepared by this plan from now on (None: not at all)."""
        if spec is None and stream not in self._plans:
            return  # nothing to drop: no plan changes
        self._version += 1
        if spec is None:
            del self._plans[stream]
        else:
            self._plans[stream] = (self._version, spec)
            if self._wanted and not self._workers:
                self.start()
                return  # (start sends every plan)
        self._send_plan(stream, self._version, spec)

    @property
    def plans_set(self) -> int:
        """How many times a plan was set or dropped (it changes when a SCHEMA changed a plan)."""
        return self._version

    def current(self, stream: str, version: int) -> bool:
        """True when `version` is the stream's current plan (a result under it is usable)."""
        plan = self._plans.get(stream)
        return plan is not None and plan[0] == version

    def usable(self) -> bool:
        """True when a chunk sent now would be prepared: a worker takes chunks and a plan is
        set."""
        if self.broken or not self._plans:
            return False
        if any(worker.takes_chunks() for worker in self._workers):
            return True
        if self._workers and all(worker.failed for worker in self._workers):
            self._break("no worker process could start")
        return False

    def submit(self, chunk: bytes) -> Ticket | None:
        """Send a chunk to the next worker that takes chunks (None if none does): its answers
        are read with `collect`, in the order the worker's chunks were sent."""
        for _ in range(len(self._workers)):
            worker = self._workers[self._next % len(self._workers)]
            self._next += 1
            if worker.takes_chunks():
                self._tag += 1
                worker.send(CHUNK, chunk, self._tag)
                return worker, self._tag
        return None

    def collect(self, ticket: Ticket) -> Results | None:
        """The answers to the chunk of `ticket`, one per line; None when the reader must handle
        that chunk itself."""
        worker, tag = ticket
        results = None if self.broken else worker.results(tag)
        if results is None:
            if not self.broken:
                code = _exit_code_soon(worker.process)
                what = worker.failure or ("stopped" if worker.ready else "could not start")
                self._break(
                    f"a worker process {what}" + ("" if code is None else f" (exit code {code})")
                )
            return None
        return results

    def close(self) -> None:
        """Stop the worker processes."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.close()

    def _send_plan(self, stream: str, version: int, spec: PlanSpec | None) -> None:
        payload = pickle.dumps((stream, version, spec), protocol=pickle.HIGHEST_PROTOCOL)
        for worker in self._workers:
            worker.send(PLAN, payload)

    def _break(self, why: str) -> None:
        self.broken = True
        self._logger.warning("%s: the run goes on in one process.", why)
        for worker in self._workers:  # (ended, reaped, their pipes closed: nothing left open)
            worker.close()
