"""What the sandbox answers: the state the request threads share and the reply to each request.

No HTTP here (server.py reads requests and writes replies); the contract's rules are rules.py's.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from target_openai_capi.sandbox.faults import Fault, FaultConfig, FaultPlan
from target_openai_capi.sandbox.rules import (
    Rejection,
    auth_rejection,
    batch_rejection,
    error_body,
    parse_body,
    pixel_rejection,
)
from target_openai_capi.sandbox.stats import Stats
from target_openai_capi.sandbox.store import EventStore

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

# The event stream page shows this many refused batches and latest events per pixel.
MAX_SHOWN_REJECTIONS = 50
MAX_SHOWN_EVENTS = 50
# Well-formed request bodies kept, newest last, for Sandbox.received_bodies().
MAX_KEPT_BODIES = 1000


def wall_clock_ms() -> int:
    """Milliseconds since the epoch, from the system clock."""
    return time.time_ns() // 1_000_000


@dataclass
class Reply:
    """What to answer one request with."""

    status: int
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    events: int = 0  # how many events the request carried, for the log line


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """A Reply with the API's error body for a message that names nothing."""
    return Reply(status, error_body(Rejection(status, message)), headers or {})


class SandboxApp:
    """Everything the handler threads share: settings, store, stats and faults."""

    def __init__(
        self,
        *,
        api_keys: Collection[str] | None,
        pixel_ids: Collection[str] | None,
        db_path: str,
        faults: FaultConfig | None,
        max_body_bytes: int,
        now_ms: Callable[[], int],
        name_params: bool = True,
    ) -> None:
        """Settings as start_sandbox documents them."""
        self.name_params = name_params
        self.api_keys = None if api_keys is None else frozenset(api_keys)
        self.pixel_ids = None if pixel_ids is None else frozenset(pixel_ids)
        self.max_body_bytes = max_body_bytes
        self.now_ms = now_ms
        self.store = EventStore(db_path)
        self.stats = Stats()
        self.faults = FaultPlan(faults)
        self.stopping = threading.Event()  # wakes requests sleeping for injected latency
        self.rejections: deque[dict[str, Any]] = deque(maxlen=MAX_SHOWN_REJECTIONS)
        self.bodies: deque[Any] = deque(maxlen=MAX_KEPT_BODIES)

    def post_events(
        self, authorization: str | None, pixel_id: str | None, body: bytes | None, size: int
    ) -> Reply:
        """Answer one POST /v1/events whose body is `body` (None when over the size limit);
        a refused batch is kept, newest first, for the event stream page."""
        reply = self._answer_events(authorization, pixel_id, body, size)
        if 400 <= reply.status < 500:
            error = reply.payload.get("error", {})
            errors = error.get("errors") or []
            message = errors[0].get("message") if errors else error.get("message")
            at = dt.datetime.now(dt.timezone.utc).strftime("%H:%M:%S")
            self.rejections.appendleft(
                {
                    "at": at,
                    "pixel": pixel_id or "",
                    "status": reply.status,
                    "events": reply.events,
                    "message": message,
                }
            )
        return reply

    def _answer_events(
        self, authorization: str | None, pixel_id: str | None, body: bytes | None, size: int
    ) -> Reply:
        rejection = auth_rejection(authorization, self.api_keys) or pixel_rejection(
            pixel_id, self.pixel_ids
        )
        if rejection:
            return self._rejected(rejection)
        assert pixel_id is not None  # pixel_rejection refused a missing one
        if body is None:
            limit = self.max_body_bytes
            return error_reply(413, f"Request body is {size} bytes; the limit is {limit} bytes")
        parsed = parse_body(body)
        if isinstance(parsed, Rejection):
            return self._rejected(parsed)
        self.bodies.append(orjson.loads(body))  # for tests: what each request carried
        count = len(parsed.events)
        self.stats.batch(
            count, validate_only=parsed.validate_only, integration_source=parsed.integration_source
        )
        rejection = batch_rejection(parsed.events, self.now_ms())
        if rejection:
            return self._rejected(rejection, count)
        stored = duplicates = 0
        if not parsed.validate_only:
            stored, duplicates = self.store.add(pixel_id, parsed.events)
            self.stats.stored(stored, duplicates)
        # ASSUMPTION: the real API's success body is not documented; this one serves tests.
        payload = {
            "received": count,
            "stored": stored,
            "duplicates": duplicates,
            "validate_only": parsed.validate_only,
        }
        return Reply(200, payload, events=count)

    def _rejected(self, rejection: Rejection, events: int = 0) -> Reply:
        """A Reply for a Rejection, naming the bad events unless told not to."""
        body = error_body(rejection, name_params=self.name_params)
        return Reply(rejection.status, body, events=events)

    def fault_reply(self, fault: Fault) -> Reply | None:
        """The answer an injected error fault gives, or None for the connection faults."""
        retry_after = self.faults.config.retry_after
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        if fault is Fault.RATE_LIMITED:
            return error_reply(429, "Rate limit exceeded (sandbox fault)", headers)
        if fault is Fault.SERVER_ERROR:
            return error_reply(500, "Internal server error (sandbox fault)")
        if fault is Fault.UNAVAILABLE:
            return error_reply(503, "Service unavailable (sandbox fault)", headers)
        return None

    def reset(self) -> None:
        """Forget stored events and zero the counters."""
        self.store.clear()
        self.stats.reset()
        self.rejections.clear()
        self.bodies.clear()
