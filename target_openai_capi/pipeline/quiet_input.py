"""Deliver what waits while the input is quiet: a tap that sends three records and a STATE and
then nothing for an hour must not keep them unsent (and the STATE unwritten) for that hour.

The main thread reads input and holds `lock` while it handles a message; this daemon thread
wakes every `interval` seconds and, only when it can take the lock at once (the main thread is
between messages, waiting for input), lets the pipeline send batches past their age limit and
release the STATE they held back.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from target_openai_capi.log_safety import log_safe
from target_openai_capi.main_thread_signals import termination_signals_blocked

if TYPE_CHECKING:
    from collections.abc import Callable

_log = logging.getLogger(__name__)

# How often the input is checked for quiet: well under the batches' 15 s age limit.
CHECK_INTERVAL_SECONDS = 1.0


class QuietInputDelivery:
    """A daemon thread that calls `deliver` between messages; its first failure is kept."""

    def __init__(
        self,
        deliver: Callable[[], None],
        lock: threading.Lock,
        interval: float = CHECK_INTERVAL_SECONDS,
    ) -> None:
        self._deliver = deliver
        self._lock = lock
        self._interval = interval
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.failure: BaseException | None = None

    def start(self) -> None:
        """Start checking (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="capi-quiet-input", daemon=True)
            with termination_signals_blocked():  # (they are the main thread's to handle)
                self._thread.start()

    def stop(self, *, wait: bool = True) -> None:
        """Stop checking and wait for a delivery under way to finish (unless not `wait`)."""
        self._stopped.set()
        thread = self._thread
        started = thread is not None and thread.ident is not None  # (start() may have failed)
        if wait and started and thread is not threading.current_thread():
            assert thread is not None
            thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            if not self._lock.acquire(blocking=False):
                continue  # a message is being handled: the main thread checks ages itself
            try:
                self._deliver()
            except Exception as exc:  # kept for the main thread, which stops the run with it
                self.failure = exc
                _log.error(
                    "Delivery while the input was quiet failed (the run stops at the next "
                    "input line, or its end): %s",
                    log_safe(str(exc)),
                )
                return
            finally:
                self._lock.release()
