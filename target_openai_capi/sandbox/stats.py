"""Counters that tests, benchmarks and people read from GET /sandbox/stats."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    """Counts for POST /v1/events, updated by the handler threads under one lock."""

    def __init__(self) -> None:
        """Start at zero."""
        self._lock = threading.Lock()
        self._in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Back to zero (requests still in flight keep counting as in flight)."""
        with self._lock:
            self._requests = 0
            self._accepted = 0
            self._duplicates = 0
            self._rejected_batches = 0
            self._validate_only_requests = 0
            self._largest_batch = 0
            self._max_in_flight = self._in_flight
            self._by_status: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()
            self._integration_sources: Counter[str] = Counter()

    def request_started(self) -> None:
        """A POST arrived; it is in flight until request_ended."""
        with self._lock:
            self._requests += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def request_ended(self) -> None:
        """A POST was answered or dropped."""
        with self._lock:
            self._in_flight -= 1

    def answered(self, status: int) -> None:
        """A response went out with this status."""
        with self._lock:
            self._by_status[str(status)] += 1
            if 400 <= status < 500 and status != 429:
                self._rejected_batches += 1

    def fault(self, kind: str) -> None:
        """A fault was injected."""
        with self._lock:
            self._faults[kind] += 1

    def batch(self, size: int, *, validate_only: bool, integration_source: str | None) -> None:
        """A well-formed body with size events reached validation."""
        with self._lock:
            self._largest_batch = max(self._largest_batch, size)
            self._integration_sources[integration_source or "(none)"] += 1
            if validate_only:
                self._validate_only_requests += 1

    def stored(self, stored: int, duplicates: int) -> None:
        """A batch was stored: stored new events, duplicates already known."""
        with self._lock:
            self._accepted += stored
            self._duplicates += duplicates

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of every counter."""
        with self._lock:
            return {
                "requests": self._requests,
                "accepted": self._accepted,
                "duplicates": self._duplicates,
                "rejected_batches": self._rejected_batches,
                "validate_only_requests": self._validate_only_requests,
                "largest_batch": self._largest_batch,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "by_status": dict(sorted(self._by_status.items())),
                "faults_injected": sum(self._faults.values()),
                "faults_by_kind": dict(sorted(self._faults.items())),
                # Well-formed requests by integration_source, "(none)" for those without one.
                "integration_sources": dict(sorted(self._integration_sources.items())),
            }
