"""Fault injection for POST /v1/events: off by default, seedable so a run can be replayed."""

from __future__ import annotations

import enum
import random
import threading
from dataclasses import dataclass


class Fault(enum.Enum):
    """What the sandbox does to one request instead of (or after) answering it normally."""

    RATE_LIMITED = "429"
    SERVER_ERROR = "500"
    UNAVAILABLE = "503"
    DROP = "drop"  # read the request, close the socket, answer nothing, store nothing
    DROP_AFTER = "drop_after"  # store the events, then close the socket without an answer


@dataclass(frozen=True)
class FaultConfig:
    """Fault rates (fractions of requests, 0..1, summing to at most 1) and their parameters."""

    latency_ms: int = 0
    rate_429: float = 0
    retry_after: int | None = 1  # seconds, sent as Retry-After on 429 and 503; None: no header
    rate_500: float = 0
    rate_503: float = 0
    rate_drop: float = 0
    rate_drop_after: float = 0
    seed: int | None = None

    def __post_init__(self) -> None:
        """Reject settings that cannot mean anything, naming the setting."""
        for name, rate in self.rates().items():
            if not 0 <= rate <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}")
        if sum(self.rates().values()) > 1:
            raise ValueError(
                "the fault rates add up to more than 1: "
                + ", ".join(f"{name}={rate}" for name, rate in self.rates().items() if rate)
            )
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be 0 or more, got {self.latency_ms}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError(f"retry_after must be 0 or more seconds, got {self.retry_after}")

    def rates(self) -> dict[str, float]:
        """Each fault's rate by setting name, in the order a draw checks them."""
        return {
            "rate_429": self.rate_429,
            "rate_500": self.rate_500,
            "rate_503": self.rate_503,
            "rate_drop": self.rate_drop,
            "rate_drop_after": self.rate_drop_after,
        }


_FAULT_BY_RATE = {
    "rate_429": Fault.RATE_LIMITED,
    "rate_500": Fault.SERVER_ERROR,
    "rate_503": Fault.UNAVAILABLE,
    "rate_drop": Fault.DROP,
    "rate_drop_after": Fault.DROP_AFTER,
}


class FaultPlan:
    """Draws the fault for each request from one seeded generator (thread-safe)."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        """Start with config (no faults by default)."""
        self._lock = threading.Lock()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        """Replace the settings and restart the generator from the seed."""
        with self._lock:
            self.config = config
            self._random = random.Random(config.seed)

    def draw(self) -> Fault | None:
        """The fault for the next request, or None.

        Exactly one number is drawn per request whatever the settings, so the same seed and the
        same sequence of requests give the same faults (concurrent requests arrive in no fixed
        order, so replay is exact for a sequential client).
        """
        with self._lock:
            config, point = self.config, self._random.random()
        edge = 0.0
        for name, rate in config.rates().items():
            edge += rate
            if point < edge:
                return _FAULT_BY_RATE[name]
        return None
