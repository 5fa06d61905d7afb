"""Deliver batches: retries, bisection of rejected batches, bounded concurrency.

What each status leads to is decided in status_policy.py (`action_for`) and carried out here.

validate_first: each batch is first sent with validate_only=true and bisected on 400 like
above; only the events that passed are then sent for real. That costs one extra request per
batch when all events are valid (twice the requests), plus the bisection of bad batches during
the validation pass instead of the real one.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import TYPE_CHECKING

from target_openai_capi.contract import MAX_EVENT_AGE_MS, MAX_EVENTS_PER_REQUEST
from target_openai_capi.delivery.batch import Batch, BatchResult
from target_openai_capi.delivery.client import (
    is_api_error,
    is_web_page,
    named_events,
    names_the_only_event,
    one_line,
    prepare_body,
    refused_request_field,
)
from target_openai_capi.delivery.errors import (
    AuthError,
    DeliveryError,
    NotFoundError,
    NotTheApi,
    RefusedWholesale,
    RetriesExhausted,
    TransportError,
    UnexpectedResponse,
    UnknownPixelError,
)
from target_openai_capi.delivery.request_log import RequestLogError
from target_openai_capi.delivery.retry import (
    RetryPolicy,
    backoff_delay,
    fits_budget,
    full_jitter,
    parse_retry_after,
    should_retry,
)
from target_openai_capi.delivery.status_policy import Action, action_for
from target_openai_capi.log_safety import cut_text, log_safe
from target_openai_capi.main_thread_signals import termination_signals_blocked

if TYPE_CHECKING:
    from collections.abc import Callable

    from target_openai_capi.delivery.client import Client, Response
    from target_openai_capi.delivery.request_log import RequestLog

# An answer's words about an event's age ("event_timestamp_ms must be within the last 7
# days.", the sandbox's "timestamp_ms: older than 7 days"), not of its time field alone
# ("timestamp_ms must be an integer"): a gateway's refusal of everything speaks of none.
_SPEAKS_OF_TIME = re.compile(
    r"within the last|7 days|seven days|too old|older than|in the past", re.IGNORECASE
)

_log = logging.getLogger(__name__)

# Server messages in WARNING lines are cut to this: logs stay small, dead letters get the full one.
LOG_MESSAGE_CHARS = 200
# A 413 for a request of one event smaller than this is no event's fault: no HTTP API limits
# its bodies that low (nginx's default is 1 MiB), a misconfigured gateway might. It counts as
# a refusal naming no event, as a 400 would: every event of a batch refused so, or five in a
# row, stop the run rather than dead-letter every record.
SMALLEST_BODY_LIMIT = 64 * 1024


class _Stopped(DeliveryError):
    """Raised in a worker between attempts once delivery was stopped (fatal error or close)."""


class Uploader:
    """Delivers batches through a Client; results and errors come back in the caller's thread."""

    def __init__(
        self,
        client: Client,
        *,
        policy: RetryPolicy,
        max_concurrent_requests: int = 1,
        validate_first: bool = False,
        integration_source: str | None = None,
        request_log: RequestLog | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        jitter: Callable[[float], float] = full_jitter,
    ) -> None:
        """sleep defaults to a wait that a fatal error or close() interrupts."""
        if max_concurrent_requests < 1:
            raise ValueError(f"max_concurrent_requests must be >= 1, got {max_concurrent_requests}")
        self._client = client
        self._policy = policy
        self._limit = max_concurrent_requests
        self._validate_first = validate_first
        self._integration_source = integration_source
        self.request_log = request_log
        self._stop = threading.Event()
        self._sleep = sleep if sleep is not None else self._interruptible_sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._jitter = jitter
        self._lock = threading.Lock()
        self._failure: Exception | None = None
        self._in_flight: set[Future[BatchResult]] = set()
        self.requests_sent = 0  # every request posted, whether its batch was delivered or not
        self._unclaimed: list[BatchResult] = []  # delivered, not handed on: a failure came first
        # One request at a time needs no thread: the batch runs inline in submit().
        self._executor = (
            ThreadPoolExecutor(max_workers=self._limit, thread_name_prefix="capi-upload")
            if self._limit > 1
            else None
        )

    # -- the caller's side -------------------------------------------------------------------

    def submit(self, batch: Batch) -> list[BatchResult]:
        """Start delivering batch, blocking while the in-flight limit is reached.

        Returns the results of batches that finished meanwhile; raises the first fatal error.
        """
        self._raise_failure()
        if self._executor is None:
            return [self._run(batch)]
        results = self._collect(wait_for_slot=len(self._in_flight) >= self._limit)
        self._raise_failure(results)
        try:
            # (a thread started here leaves the termination signals to the main one)
            with termination_signals_blocked():
                self._in_flight.add(self._executor.submit(self._run, batch))
        except BaseException:  # (no thread to start: `can't start new thread`)
            self.keep_unclaimed(results)  # delivered: settled after the failure, not lost
            raise
        return results

    @property
    def client(self) -> Client:
        """The HTTP client (the credential check posts through it, outside any batch)."""
        return self._client

    @property
    def policy(self) -> RetryPolicy:
        """The retry bounds of each request (the credential check keeps within them too)."""
        return self._policy

    @property
    def busy(self) -> bool:
        """True while some batch is in flight (or finished, its result not yet collected)."""
        return bool(self._in_flight)

    def drain(self) -> list[BatchResult]:
        """Wait for every in-flight batch; return their results or raise the first fatal error."""
        wait_for(self._in_flight)
        results = self._collect(wait_for_slot=False)
        self._raise_failure(results)
        return results

    def finished(self) -> list[BatchResult]:
        """The results of the batches that finished, without waiting for the others; raises the
        first fatal error."""
        results = self._collect(wait_for_slot=False)
        self._raise_failure(results)
        return results

    def keep_unclaimed(self, results: list[BatchResult]) -> None:
        """Results a caller took but could not hand on (a failure came first): kept for
        finish_after_failure, so that a delivered batch is still counted."""
        self._unclaimed += results

    def finish_after_failure(self, *, wait: bool = True) -> list[BatchResult]:
        """The run failed: stop retrying, wait for the batches in flight to end (each after
        its current request, which its deadline bounds; not `wait`: those not ended stay in
        flight, unsettled), and return every delivered batch no one has settled. Never raises
        a delivery error (the run is stopping for one)."""
        self.stop()
        if wait and self._in_flight:
            wait_for(self._in_flight)
        results, self._unclaimed = self._unclaimed, []
        return results + self._collect(wait_for_slot=False)

    def stop(self) -> None:
        """Stop retrying: in-flight batches end after their current request (not delivered)."""
        self._stop.set()

    def close(self) -> None:
        """Stop and close the client; in-flight batches end after their current request.

        Call drain() first to finish delivering.
        """
        self.stop()
        try:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
        finally:
            self._client.close()
            if self.request_log is not None:
                self.request_log.close()

    def _collect(self, *, wait_for_slot: bool) -> list[BatchResult]:
        """Take finished batches off the in-flight set; optionally wait until one finishes."""
        if wait_for_slot:
            wait_for(self._in_flight, return_when=FIRST_COMPLETED)
        done = {future for future in self._in_flight if future.done()}
        self._in_flight -= done
        results = []
        for future in done:
            if future.cancelled():
                continue
            error = future.exception()
            if error is None:
                results.append(future.result())
            elif not isinstance(error, Exception):
                raise error  # SystemExit and the like: _run does not record those
        # Failed batches were recorded by _run; the caller learns of them from _raise_failure.
        return results

    def _raise_failure(self, collected: list[BatchResult] | None = None) -> None:
        """Re-raise, in the caller's thread, the first error any batch hit; the results
        `collected` meanwhile are kept (keep_unclaimed), not lost with the call."""
        with self._lock:
            failure = self._failure
        if failure is not None:
            if collected:
                self.keep_unclaimed(collected)
            raise failure

    def _run(self, batch: Batch) -> BatchResult:
        """Deliver one batch; record the first failure and stop everything else."""
        try:
            return self._deliver(batch)
        except Exception as e:
            failure = self._record_failure(e)
            if isinstance(e, _Stopped) and failure is not e:
                # (stopped by a failure recorded first, such as a request log that cannot be
                # written: that is what the run stops for, one request at a time too)
                raise failure from None
            raise

    def _interruptible_sleep(self, seconds: float) -> None:
        """Sleep, waking early when delivery is stopped."""
        self._stop.wait(seconds)

    # -- one batch -----------------------------------------------------------------------------

    def _deliver(self, batch: Batch) -> BatchResult:
        """Deliver every event of the batch until each is accepted or rejected on its own."""
        result = BatchResult(batch=batch)
        everything = list(range(len(batch.events)))
        if self._validate_first and not batch.validate_only:
            valid = self._settle(batch, everything, validate_only=True, result=result)
            result.accepted = self._settle(batch, valid, validate_only=False, result=result)
        else:
            result.accepted = self._settle(batch, everything, batch.validate_only, result)
        result.rejected.sort()
        result.expired.sort()
        self._check_not_wholesale(result)
        return result

    def _check_not_wholesale(self, result: BatchResult) -> None:
        """Every event of a batch refused alone, by answers that named no event, with one
        message that names none either, is a refusal of everything (a gateway, an API change),
        not bad data: nothing is rejected. An answer that names its events is about them, and
        so is one to events that crossed the 7 days during their requests (aged)."""
        rejected = [refusal for refusal in result.rejected if refusal[0] not in result.aged]
        if result.accepted or len(rejected) < 2 or len(result.unnamed) < len(rejected):
            return
        messages = {message for _, _, message in rejected}
        if len(messages) == 1 and not names_the_only_event(message := messages.pop()):
            raise RefusedWholesale(
                rejected[0][1],
                self._client.display_url,
                f"all {len(rejected)} events of a batch were refused alone with the same message",
                cut_text(message, LOG_MESSAGE_CHARS),
            )

    def _settle(
        self, batch: Batch, indices: list[int], validate_only: bool, result: BatchResult
    ) -> list[int]:
        """Send these events, splitting rejected requests; return the accepted indices."""
        accepted: list[int] = []
        # A batch over the API's per-request limit is sent in chunks rather than refused whole.
        chunks = [
            indices[i : i + MAX_EVENTS_PER_REQUEST]
            for i in range(0, len(indices), MAX_EVENTS_PER_REQUEST)
        ]
        # A stack, depth-first in batch order, of (events, whether they are what was left after
        # the server named the bad ones: if that fails again, names are not trusted twice).
        pending: list[tuple[list[int], bool]] = [(chunk, False) for chunk in reversed(chunks)]
        warned = False
        while pending:
            part, after_named = pending.pop()
            if batch.times_ms is not None:
                part = self._without_expired(batch, part, result)
                if not part:
                    continue
            response = self._send(batch, part, validate_only, result)
            action = action_for(response.status)
            if action is Action.ACCEPT:
                error = is_api_error(response.body)
                if error or is_web_page(response):
                    raise NotTheApi(
                        response.status,
                        self._client.display_url,
                        cut_text(self._message(response), LOG_MESSAGE_CHARS),
                        error=error,
                    )
                accepted.extend(part)
                continue
            if action not in (Action.BISECT, Action.SPLIT):
                raise self._fatal(action, response)
            message = self._message(response)
            if action is Action.BISECT and not is_api_error(response.body):
                raise RefusedWholesale(
                    response.status,
                    self._client.display_url,
                    "the answer is not the API's error format",
                    cut_text(message, LOG_MESSAGE_CHARS),
                )
            field = refused_request_field(response.body) if action is Action.BISECT else None
            if field is not None:
                raise RefusedWholesale(
                    response.status,
                    self._client.display_url,
                    f"the API refused the request's {field}, which no event can cause",
                    cut_text(message, LOG_MESSAGE_CHARS),
                )
            secret = self._client.settings.api_key
            named = named_events(response.body, secret) if action is Action.BISECT else {}
            if len(part) == 1:
                if action is Action.SPLIT:
                    alone = [batch.events[part[0]]]
                    size = len(prepare_body(alone, validate_only, self._integration_source))
                    if 0 in named_events(response.body, secret):  # the API's words: about it
                        message = f"the event alone is too large for one request: {message}"
                    elif size < SMALLEST_BODY_LIMIT:
                        result.unnamed.add(part[0])
                        # (one wording whatever the size: the same refusal of every event
                        # is told by its one message)
                        message = (
                            f"refused as too large, alone in a request under 64 KiB: {message}"
                        )
                    else:
                        if not is_api_error(response.body):  # (a proxy's page: its limit may
                            result.unnamed.add(part[0])  # refuse every event alone)
                        message = f"the event alone is too large for one request: {message}"
                elif 0 in named:
                    message = named[0]  # as an event named in a larger request is reported
                elif names_the_only_event(message):
                    pass  # its words name the event (events[0]...), whatever its `param` says
                elif named:  # (events[7] of a request of one: its names are not to be trusted)
                    raise RefusedWholesale(
                        response.status,
                        self._client.display_url,
                        f"the answer to a request of one event names events[{min(named)}], "
                        "which it did not have, so its answers cannot say which events are bad",
                        cut_text(message, LOG_MESSAGE_CHARS),
                    )
                else:
                    result.unnamed.add(part[0])
                result.rejected.append((part[0], response.status, message))
                self._note_if_aged(batch, part[0], message, result)
                continue
            usable = not after_named and named and all(i < len(part) for i in named)
            if not warned:
                warned = True  # one line per batch; the caller reports each rejection
                if usable:
                    then = f"rejecting the {len(named)} event(s) it names, resending the rest"
                elif action is Action.BISECT:
                    then = "splitting it to isolate the bad event(s)"
                else:
                    then = "splitting it to send smaller requests"
                _log.warning(
                    "HTTP %d for a request of %d events (%s); %s",
                    response.status,
                    len(part),
                    log_safe(message)[:LOG_MESSAGE_CHARS],
                    then,
                )
            if usable:
                for position, reason in sorted(named.items()):
                    result.rejected.append((part[position], response.status, reason))
                    self._note_if_aged(batch, part[position], reason, result)
                rest = [index for position, index in enumerate(part) if position not in named]
                if rest:
                    pending.append((rest, True))
                continue
            middle = len(part) // 2
            # Both halves are sent whatever happens to the first: bad events may be several.
            pending.append((part[middle:], False))
            pending.append((part[:middle], False))
        accepted.sort()
        return accepted

    def _note_if_aged(self, batch: Batch, index: int, message: str, result: BatchResult) -> None:
        """An event refused, in words about its time, once it was older than the API takes
        (it crossed the line during its requests): refused for its age (result.aged)."""
        if batch.times_ms is None or not _SPEAKS_OF_TIME.search(message):
            return
        if batch.times_ms[index] < int(self._wall_clock() * 1000) - MAX_EVENT_AGE_MS:
            result.aged.add(index)

    def _without_expired(self, batch: Batch, part: list[int], result: BatchResult) -> list[int]:
        """The events of `part` the API still takes by their time; the others are expired."""
        assert batch.times_ms is not None
        oldest = int(self._wall_clock() * 1000) - MAX_EVENT_AGE_MS
        times = batch.times_ms
        if all(times[i] >= oldest for i in part):  # (the usual case)
            return part
        result.expired.extend(i for i in part if times[i] < oldest)
        return [i for i in part if times[i] >= oldest]

    def _send(
        self, batch: Batch, part: list[int], validate_only: bool, result: BatchResult
    ) -> Response:
        """Post these events, retrying transient failures; return the first final response."""
        body = prepare_body(
            [batch.events[i] for i in part], validate_only, self._integration_source
        )
        started = self._clock()
        attempt = 0
        while True:
            if self._stop.is_set():
                raise _Stopped("delivery was stopped before this batch finished")
            attempt += 1
            result.requests += 1
            with self._lock:
                self.requests_sent += 1
            try:
                response = self._client.post(body)
            except TransportError as e:
                if self.request_log is not None:
                    self._log_request(body, None, str(e))
                if not e.retryable:
                    raise
                status, problem, retry_after, asked = None, str(e), None, None
            else:
                if self.request_log is not None:
                    self._log_request(body, response.status)
                if action_for(response.status) is not Action.RETRY:
                    return response
                status = response.status
                problem = f"HTTP {status}: {self._message(response)}"
                asked = response.header("Retry-After")
                retry_after = parse_retry_after(asked, self._wall_clock())
            elapsed = self._clock() - started
            if not should_retry(status, attempt, self._policy):
                raise RetriesExhausted(
                    attempt, elapsed, problem, f"max_attempts is {self._policy.max_attempts}"
                )
            delay = backoff_delay(attempt, retry_after, self._policy, self._jitter)
            if not fits_budget(elapsed, delay, self._policy):
                budget = f"max_retry_seconds ({self._policy.max_total_seconds:g})"
                if retry_after is not None and asked is not None and delay <= retry_after:
                    # (as the server wrote it, the key out: the delay is capped, an HTTP date is
                    # a date; a server may echo the request's headers there)
                    shown = one_line(asked, self._client.settings.api_key)[:60]
                    why = f"the server asked to wait (Retry-After: {shown}), beyond {budget}"
                elif elapsed >= self._policy.max_total_seconds:
                    # (the last attempt alone took what was left: a request may take up to
                    # request_timeout_seconds)
                    why = f"{budget} spent"
                else:
                    why = f"backoff called for {delay:.1f} s more, beyond {budget}"
                raise RetriesExhausted(attempt, elapsed, problem, why)
            _log.warning(
                "%s (attempt %d of %d, %d events); retrying in %.1f s",
                log_safe(problem)[:LOG_MESSAGE_CHARS],
                attempt,
                self._policy.max_attempts,
                len(part),
                delay,
            )
            self._sleep(delay)

    def _log_request(self, body: bytes, status: int | None, error: str | None = None) -> None:
        """One line of the request log. A log that cannot be written stops the run, but the
        answer in hand still counts: an accepted batch is sent, whatever the log says."""
        assert self.request_log is not None
        try:
            self.request_log.write(body, status, error)
        except RequestLogError as e:
            self._record_failure(e)

    def _record_failure(self, error: Exception) -> Exception:
        """Keep the run's first failure and stop all delivery; return that first failure."""
        with self._lock:
            if self._failure is None:
                self._failure = error
            failure = self._failure
        self._stop.set()
        return failure

    def _message(self, response: Response) -> str:
        """The server's message, with the key removed should the server ever echo it."""
        return response.message(self._client.settings.api_key)

    def _fatal(self, action: Action, response: Response) -> DeliveryError:
        """The typed error for a response that must stop the run."""
        message = self._message(response)
        if action is Action.AUTH and response.status == 403 and "unknown pid" in message.lower():
            return UnknownPixelError(self._client.settings.pixel_id, message)
        if action is Action.AUTH:
            return AuthError(response.status, message)
        if action is Action.NOT_FOUND:
            return NotFoundError(self._client.settings.pixel_id, self._client.display_url, message)
        return UnexpectedResponse(response.status, self._client.display_url, message)
