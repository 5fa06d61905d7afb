"""Deliver batches: retries, bisection of rejected batches, bounded concurrency.

Policy by status, decided in `action_for` and nowhere else:
- 2xx: every event in the request accepted.
- 400/422: the API fails the whole request for one bad event. When the error body names events
  of the request (`param: "events[3]"`, as the live API does), exactly those are rejected with
  the server's messages and the rest is sent again in one request: one bad event in 1,000 costs
  one extra request. When the body names none, names an event the request does not have, or the
  rest fails again, the request is split in halves and both halves are sent, recursively, until
  each bad event is rejected alone: about 2*log2(n) requests for one bad event in n.
- 413: split in halves the same way; one event that is too large alone is rejected.
- 401/403: AuthError (403 `unknown pid`: UnknownPixelError, naming the pixel id); 404:
  NotFoundError. Fatal: no new batch starts, in-flight ones may finish.
- 408/429/5xx (not 501/505) and network errors: the same request is retried with backoff,
  honouring Retry-After, until policy.max_attempts or policy.max_total_seconds (both counted
  per request, from its first attempt) run out; then RetriesExhausted, fatal.
- A 400/422 whose body is not the API's error shape (an HTML page from a proxy), or a batch
  whose every event is refused alone with one message that names no event: RefusedWholesale,
  fatal; such refusals are not about events, so none is rejected.
- Any other status (3xx, 409, 418, 501, ...): UnexpectedResponse, fatal. Deliberately not
  treated like 400: a status with no documented meaning is more likely a wrong api_url or an
  API change than a bad event, and bisecting would then reject every event of the run one by
  one. Stopping costs a rerun; nothing is lost because STATE does not advance.

validate_first: each batch is first sent with validate_only=true and bisected on 400 like
above; only the events that passed are then sent for real. That costs one extra request per
batch when all events are valid (twice the requests), plus the bisection of bad batches during
the validation pass instead of the real one.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from target_openai_capi.contract import MAX_EVENTS_PER_REQUEST
from target_openai_capi.delivery.client import is_api_error, named_events, prepare_body
from target_openai_capi.delivery.errors import (
    AuthError,
    DeliveryError,
    NotFoundError,
    RefusedWholesale,
    RetriesExhausted,
    TransportError,
    UnexpectedResponse,
    UnknownPixelError,
)
from target_openai_capi.delivery.retry import (
    RetryPolicy,
    backoff_delay,
    fits_budget,
    full_jitter,
    is_retryable_status,
    parse_retry_after,
    should_retry,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from target_openai_capi.delivery.client import Client, Response
    from target_openai_capi.delivery.request_log import RequestLog

_log = logging.getLogger(__name__)

# Server messages in WARNING lines are cut to this: logs stay small, dead letters get the full one.
LOG_MESSAGE_CHARS = 200


class Action(enum.Enum):
    """What to do with a response."""

    ACCEPT = "accept"
    RETRY = "retry"
    BISECT = "bisect"  # some event is bad: split until it is alone
    SPLIT = "split"  # the request is too large: split until it fits
    AUTH = "auth"
    NOT_FOUND = "not_found"
    UNEXPECTED = "unexpected"


def action_for(status: int) -> Action:
    """Turn a status into an action: the one place that knows what statuses mean."""
    if 200 <= status <= 299:
        return Action.ACCEPT
    if status in (400, 422):
        return Action.BISECT
    if status == 413:
        return Action.SPLIT
    if status in (401, 403):
        return Action.AUTH
    if status == 404:
        return Action.NOT_FOUND
    if is_retryable_status(status):
        return Action.RETRY
    return Action.UNEXPECTED


@dataclass
class Batch:
    """Wire events (already validated locally) with one opaque tag per event for the caller."""

    events: list[dict[str, Any]]
    tags: list[Any]
    validate_only: bool = False

    def __post_init__(self) -> None:
        """Tags are how the caller maps results back to records: they must line up."""
        if len(self.tags) != len(self.events):
            raise ValueError(f"{len(self.events)} events but {len(self.tags)} tags")


@dataclass
class BatchResult:
    """How one batch ended: which events were accepted, which rejected and why, at what cost."""

    batch: Batch
    accepted: list[int] = field(default_factory=list)
    rejected: list[tuple[int, int, str]] = field(default_factory=list)
    requests: int = 0
    # Rejected events whose refusal named no event (a body without `param`), by index.
    unnamed: set[int] = field(default_factory=set)


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
        self._raise_failure()
        self._in_flight.add(self._executor.submit(self._run, batch))
        return results

    @property
    def client(self) -> Client:
        """The HTTP client (the credential check posts through it, outside any batch)."""
        return self._client

    @property
    def busy(self) -> bool:
        """True while some batch is in flight (or finished, its result not yet collected)."""
        return bool(self._in_flight)

    def drain(self) -> list[BatchResult]:
        """Wait for every in-flight batch; return their results or raise the first fatal error."""
        wait(self._in_flight)
        results = self._collect(wait_for_slot=False)
        self._raise_failure()
        return results

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
            wait(self._in_flight, return_when=FIRST_COMPLETED)
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

    def _raise_failure(self) -> None:
        """Re-raise, in the caller's thread, the first error any batch hit."""
        with self._lock:
            failure = self._failure
        if failure is not None:
            raise failure

    def _run(self, batch: Batch) -> BatchResult:
        """Deliver one batch; record the first failure and stop everything else."""
        try:
            return self._deliver(batch)
        except Exception as e:
            with self._lock:
                if self._failure is None:
                    self._failure = e
            self._stop.set()
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
        self._check_not_wholesale(result)
        return result

    def _check_not_wholesale(self, result: BatchResult) -> None:
        """Every event of a batch refused alone, by answers that named no event, with one
        message that names none either, is a refusal of everything (a gateway, an API change),
        not bad data: nothing is rejected. An answer that names its events is about them."""
        rejected = result.rejected
        if result.accepted or len(rejected) < 2 or len(result.unnamed) < len(rejected):
            return
        messages = {message for _, _, message in rejected}
        if len(messages) == 1 and "events[" not in (message := messages.pop()):
            raise RefusedWholesale(
                rejected[0][1],
                self._client.display_url,
                f"all {len(rejected)} events of a batch were refused alone with the same message",
                message[:LOG_MESSAGE_CHARS],
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
            response = self._send(batch, part, validate_only, result)
            action = action_for(response.status)
            if action is Action.ACCEPT:
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
                    message[:LOG_MESSAGE_CHARS],
                )
            secret = self._client.settings.api_key
            named = named_events(response.body, secret) if action is Action.BISECT else {}
            if len(part) == 1:
                if action is Action.SPLIT:
                    message = f"the event alone is too large for one request: {message}"
                elif 0 in named:
                    message = named[0]  # as an event named in a larger request is reported
                else:
                    result.unnamed.add(part[0])
                result.rejected.append((part[0], response.status, message))
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
                    message[:LOG_MESSAGE_CHARS],
                    then,
                )
            if usable:
                for position, reason in sorted(named.items()):
                    result.rejected.append((part[position], response.status, reason))
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
            try:
                response = self._client.post(body)
            except TransportError as e:
                if self.request_log is not None:
                    self.request_log.write(body, None, str(e))
                if not e.retryable:
                    raise
                status, problem, retry_after = None, str(e), None
            else:
                if self.request_log is not None:
                    self.request_log.write(body, response.status)
                if action_for(response.status) is not Action.RETRY:
                    return response
                status = response.status
                problem = f"HTTP {status}: {self._message(response)}"
                retry_after = parse_retry_after(response.header("Retry-After"), self._wall_clock())
            elapsed = self._clock() - started
            if not should_retry(status, attempt, self._policy):
                raise RetriesExhausted(
                    attempt, elapsed, problem, f"max_attempts is {self._policy.max_attempts}"
                )
            delay = backoff_delay(attempt, retry_after, self._policy, self._jitter)
            if not fits_budget(elapsed, delay, self._policy):
                asked = "the server asked" if retry_after is not None else "backoff called"
                raise RetriesExhausted(
                    attempt,
                    elapsed,
                    problem,
                    f"{asked} for {delay:.1f} s more, beyond max_total_seconds "
                    f"({self._policy.max_total_seconds:g})",
                )
            _log.warning(
                "%s (attempt %d of %d, %d events); retrying in %.1f s",
                problem[:LOG_MESSAGE_CHARS],
                attempt,
                self._policy.max_attempts,
                len(part),
                delay,
            )
            self._sleep(delay)

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
