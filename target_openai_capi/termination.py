"""One message at a time: termination signals and the quiet-input thread wait for the message.

The main thread handles each Singer message inside `MessageGuard.handle`, holding `lock`.
- The quiet-input thread (pipeline/quiet_input.py) delivers old batches only while the lock is
  free, that is while the main thread waits for input; its failure stops the run at the next
  message.
- SIGTERM / SIGINT (an orchestrator cancelling the run) deliver what is batched, write STATE, log
  the summary and exit 0 (1 if that delivery fails). No request or retry starts past
  `grace_seconds` after the signal (stop_grace_seconds: an API that keeps failing held a
  cancelled run for max_retry_seconds, past any orchestrator's patience). A signal that
  arrives while a message is handled (or the end of input is delivered) takes effect once
  that is done, so batches and checkpoints are never drained half-updated. A second signal
  stops at once, without waiting for the requests in flight (their records are unsettled: the
  next run sends them again) and without STATE past what is unsent; but the same signal again
  within SAME_SIGNAL_SECONDS is the same request to stop (`meltano run`, cancelled by a SIGTERM
  to its process group, sends its own SIGTERM to the target a fraction of a millisecond after
  the group's).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from target_openai_capi.delivery import DeliveryError
from target_openai_capi.main_thread_signals import termination_signals_blocked
from target_openai_capi.pipeline.quiet_input import QuietInputDelivery
from target_openai_capi.pipeline.settling import RunFailed

M = TypeVar("M")

# The same signal again this soon is one request to stop, sent twice (a process group's and
# its parent's), not someone insisting (a person's second Ctrl-C is further apart).
SAME_SIGNAL_SECONDS = 0.1


class MessageGuard:
    """Runs message handlers one at a time and decides what a termination signal does."""

    def __init__(
        self,
        *,
        deliver_when_quiet: Callable[[], None],
        end_of_input: Callable[[], None],
        fail: Callable[[str], NoReturn],
        fail_at_once: Callable[[str], NoReturn],
        stop_sending: Callable[[], None],
        logger: logging.Logger,
        grace_seconds: float = 20.0,
    ) -> None:
        self.lock = threading.Lock()
        self._grace_seconds = grace_seconds
        self.quiet_input = QuietInputDelivery(deliver_when_quiet, self.lock)
        self._end_of_input = end_of_input  # deliver what is left and log the summary
        self._fail = fail  # log why, exit 1
        self._fail_at_once = fail_at_once  # the same, without waiting for requests in flight
        self._stop_sending = stop_sending
        self._logger = logger
        self._in_message = False
        self._pending_signal: int | None = None
        self._terminating = False
        self._first_signal: tuple[int, float] | None = None  # (signum, when)
        self._grace: threading.Timer | None = None  # ends delivery stop_grace_seconds after it

    @property
    def stopped_by_signal(self) -> bool:
        """True once a signal stops the run: its input was not read to its end."""
        return self._terminating

    def handle(self, process: Callable[[M], Any], message: M) -> None:
        """Handle one message; a signal meanwhile takes effect once it is done."""
        self._in_message = True
        try:
            with self.lock:
                if self.quiet_input.failure is not None:
                    raise self.quiet_input.failure
                process(message)
        finally:
            self._in_message = False
        if self._pending_signal is not None:
            signum, self._pending_signal = self._pending_signal, None
            self._stop(signum)

    def handle_end(self, process: Callable[[], None]) -> None:
        """The end of input: stop the quiet-input thread, then deliver what is left."""
        self._in_message = True
        self.quiet_input.stop()
        if self.quiet_input.failure is not None:
            raise self.quiet_input.failure
        try:
            # Under the lock, as a message is handled: a second signal, which stops at once,
            # settles and releases STATE only when it can take the lock, never in the middle
            # of this delivery (between a batch taken off its hold and the batch submitted,
            # STATE could have gone past records never sent).
            with self.lock:
                process()
        finally:
            self._in_message = False
            if self._grace is not None:  # (delivery is over, done or failed)
                self._grace.cancel()
        self._pending_signal = None  # the run ends here anyway

    def signal(self, signum: int) -> None:
        """A termination signal: stop now, after the message in hand, or once delivered."""
        now = time.monotonic()
        if self._first_signal is None:
            self._first_signal = (signum, now)
        elif self._first_signal[0] == signum and now - self._first_signal[1] < SAME_SIGNAL_SECONDS:
            self._logger.info(
                "Received signal %d again within %g s: taken as the same request to stop (as "
                "a process group and its parent, such as meltano run, both send it).",
                signum,
                SAME_SIGNAL_SECONDS,
            )
            return
        self._stop(signum)

    def _stop(self, signum: int) -> None:
        """What a signal does (a signal held while a message was handled, once it is done)."""
        if self._terminating or self._pending_signal is not None:
            self._stop_sending()
            self._fail_at_once(f"Received signal {signum} again: stopping now.")
        if self._grace is None:  # (the first signal: delivery goes on for so long at most)
            self._grace = threading.Timer(self._grace_seconds, self._grace_over, (signum,))
            self._grace.daemon = True
            with termination_signals_blocked():  # (only the main thread takes them)
                self._grace.start()
        if self._in_message:
            self._pending_signal = signum
            self._logger.info(
                "Received signal %d: stopping after the message in hand (delivery goes on for "
                "at most %g s: stop_grace_seconds; a second signal stops at once).",
                signum,
                self._grace_seconds,
            )
            return
        self._terminating = True
        self._logger.info(
            "Received signal %d: delivering what is batched (for at most %g s: "
            "stop_grace_seconds), then stopping; a second signal stops at once.",
            signum,
            self._grace_seconds,
        )
        try:
            self._end_of_input()  # (handle_end, under the lock)
        except (DeliveryError, RunFailed) as exc:
            self._fail(str(exc))
        self._grace.cancel()
        logging.shutdown()
        sys.exit(0)

    def _grace_over(self, signum: int) -> None:
        """stop_grace_seconds after the signal, delivery not done (the timer's thread): no
        request or retry starts from now on; the run then fails with what was not delivered
        left to the next run."""
        self._logger.warning(
            "Signal %d was %g s ago (stop_grace_seconds) and delivery is not done: no request "
            "starts from now on. What is not delivered is sent again by the next run (no STATE "
            "is written past it).",
            signum,
            self._grace_seconds,
        )
        self._stop_sending()
